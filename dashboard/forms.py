"""Forms of the dashboard pages: the orders filter and the order and conversation actions.

They only parse and validate input; the selectors and the services do the rest.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from commerce.forms import SubmissionField
from commerce.models import OrderStatus

PAYMENT_STATES = [
    ("", _("Any payment state")),
    ("unpaid", _("Awaiting payment")),
    ("paid", _("Paid (not refunded)")),
    ("refunded", _("Refunded (partly or fully)")),
    ("failed", _("Payment failed")),
    ("closed", _("Expired or cancelled")),
    ("review", _("Flagged for review")),
]

SORTS = [
    ("newest", _("Newest first")),
    ("oldest", _("Oldest first")),
    ("total_desc", _("Largest total")),
    ("total_asc", _("Smallest total")),
]


class OrderFilterForm(forms.Form):
    """The orders list's filters, read from the query string (all optional)."""

    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Order number, name, email or phone")}
        ),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), *OrderStatus.choices],
    )
    payment = forms.ChoiceField(label=_("Payment"), required=False, choices=PAYMENT_STATES)
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    source = forms.CharField(
        label=_("Referral source"),
        required=False,
        max_length=40,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. ADS, SHORTLINK")}),
    )
    ad = forms.CharField(label=_("Ad id"), required=False, max_length=64)
    sort = forms.ChoiceField(label=_("Sort"), required=False, choices=SORTS)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date."))
        cleaned["sort"] = cleaned.get("sort") or "newest"
        for name in ("q", "source", "ad"):
            cleaned[name] = (cleaned.get(name) or "").strip()
        return cleaned


class CancelForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=250, required=False)


class NoteForm(forms.Form):
    message = forms.CharField(label=_("Note"), max_length=300)
    submission_key = SubmissionField()


class ReplyForm(forms.Form):
    text = forms.CharField(
        label=_("Reply"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    submission_key = SubmissionField()

    def clean_text(self) -> str:
        text = self.cleaned_data["text"].strip()
        if not text:
            raise forms.ValidationError(_("The reply is empty."))
        return text
