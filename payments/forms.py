"""Forms shared by the admin and the dashboard."""

from __future__ import annotations

from django import forms
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from commerce.forms import SubmissionField
from core.money import Money


class RefundForm(forms.Form):
    """An amount in major units of the order's currency ("12.50"), at most ``remaining_minor``;
    ``cleaned_data["amount"]`` is in minor units."""

    amount = forms.CharField(
        label=_("Amount"), max_length=20, help_text=_("In major units, e.g. 12.50.")
    )
    reason = forms.CharField(label=_("Reason"), max_length=200, required=False)
    submission_key = SubmissionField()

    def __init__(self, *args, currency: str, remaining_minor: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.currency = currency
        self.remaining_minor = remaining_minor

    def clean_amount(self) -> int:
        raw = self.cleaned_data["amount"].strip().replace(",", "")
        try:
            amount = Money.from_major(raw, self.currency).amount_minor
        except ValueError:  # not a number, or more decimals than the currency has
            raise forms.ValidationError(
                _("Enter an amount such as 12.50, with at most the currency's decimals.")
            ) from None
        if amount <= 0:
            raise forms.ValidationError(_("The amount must be more than zero."))
        if amount > self.remaining_minor:
            remaining = Money(self.remaining_minor, self.currency).format(get_language() or "en")
            raise forms.ValidationError(
                _("At most %(remaining)s can still be refunded.") % {"remaining": remaining}
            )
        return amount
