"""Forms shared by the admin and the dashboard: catalog prices typed in major units (converted
exactly to minor units), stock counts that never undo a sale, the fulfilment of an order, and the
one-time submission token that makes a staff action harmless to submit twice."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from uuid import uuid4

from django import forms
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from commerce.models import Variant
from commerce.services.stock import StockCount, stock_on_hand_set
from commerce.services.submissions import SUBMISSION_KEY_MAX
from core.currencies import UnknownCurrencyError
from core.money import Money


class StockCountForm(forms.ModelForm):
    """A variant form whose ``stock_on_hand`` is a count typed over the number the page showed.

    ``Variant.save()`` never writes stock on hand (ADR 0004): a sale made while the page was
    open would be undone. The field carries a hidden copy of the number it showed
    (``show_hidden_initial``), and a changed number goes through ``stock_on_hand_set`` once the
    variant is saved, which applies it only where the stock is still that number. The usual
    case (a sale while the page was open) is a field error here, with the hidden copy moved to
    the current stock so that saving again applies the number; a sale in the instant between
    this check and the write raises ``StockChangedError`` from ``save()`` (the admin reports it).
    Used by the variant change page, the product page's variant inline and ``list_editable``.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "stock_on_hand" in self.fields:
            self.fields["stock_on_hand"].show_hidden_initial = True

    def _stock_seen(self) -> int | None:
        """The number the page showed; without the hidden copy, the stock when this was read."""
        raw = self.data.get(self["stock_on_hand"].html_initial_name)
        try:
            return int(raw)
        except (TypeError, ValueError):
            return self.get_initial_for_field(self.fields["stock_on_hand"], "stock_on_hand")

    def _stock_count(self) -> StockCount | None:
        if "stock_on_hand" not in self.fields or self.instance._state.adding:
            return None
        value = getattr(self, "cleaned_data", {}).get("stock_on_hand")
        seen = self._stock_seen()
        if value is None or seen is None or value == seen:
            return None
        return StockCount(self.instance.pk, value=value, seen=seen)

    def clean(self):
        cleaned = super().clean()
        count = self._stock_count()
        if count is None:
            return cleaned
        current = (
            Variant.objects.filter(pk=count.variant_id)
            .values_list("stock_on_hand", flat=True)
            .first()
        )
        if current is not None and current not in (count.seen, count.value):
            self.add_error(
                "stock_on_hand",
                _(
                    "The stock changed while you were editing: it is now %(current)d, not "
                    "%(seen)d (a sale or another edit). Check the number and save again."
                )
                % {"current": current, "seen": count.seen},
            )
            # Saving again starts from the stock as it is now.
            self.data = self.data.copy()
            self.data[self["stock_on_hand"].html_initial_name] = str(current)
        return cleaned

    def save(self, commit=True):
        count = self._stock_count()
        variant = super().save(commit=commit)
        if count is None:
            return variant
        if commit:
            self._stock_apply(count)
        else:  # the admin saves the variant, then calls save_m2m()
            save_m2m = self.save_m2m

            def save_m2m_and_stock():
                save_m2m()
                self._stock_apply(count)

            self.save_m2m = save_m2m_and_stock
        return variant

    def _stock_apply(self, count: StockCount) -> None:
        """:raises StockChangedError: a sale moved the stock after ``clean()`` looked."""
        stock_on_hand_set(counts=[count])
        self.instance.refresh_from_db(fields=["stock_on_hand", "stock_reserved", "updated_at"])


class VariantForm(StockCountForm):
    """Price typed as "12.50", stored exactly in ``price_minor``; currency: the shop's default."""

    price = forms.CharField(
        label=_("price"),
        max_length=24,
        help_text=_("In the currency's major unit, e.g. 12.50 (USD), 500 (JPY), 1.250 (KWD)."),
    )

    class Meta:
        model = Variant
        fields = [
            "product",
            "name",
            "name_ar",
            "sku",
            "options",
            "price",
            "currency",
            "stock_on_hand",
            "is_active",
            "position",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].required = False
        if self.instance.pk and self.instance.currency:
            self.initial["price"] = str(self.instance.price.to_major())

    def _product(self):
        product = self.cleaned_data.get("product")
        if product is None and self.instance.product_id:
            product = self.instance.product
        return product

    def clean(self):
        cleaned = super().clean()
        product = self._product()
        currency = cleaned.get("currency") or (product.merchant.default_currency if product else "")
        raw_price = (cleaned.get("price") or "").strip()
        if not currency or not raw_price:
            return cleaned
        cleaned["currency"] = currency
        try:
            amount = Decimal(raw_price)
        except InvalidOperation:
            self.add_error("price", _("Enter a number such as 12.50."))
            return cleaned
        if amount < 0:
            self.add_error("price", _("The price cannot be negative."))
            return cleaned
        try:
            money = Money.from_major(amount, currency)
        except (ValueError, UnknownCurrencyError) as exc:
            self.add_error("price", str(exc))
            return cleaned
        self.instance.price_minor = money.amount_minor
        self.instance.currency = currency
        return cleaned


class UniqueSkuInlineFormSet(forms.BaseInlineFormSet):
    """Two new variants in one save with the same SKU: refuse before the database does."""

    def clean(self):
        super().clean()
        seen: dict[str, int] = {}
        for index, form in enumerate(self.forms):
            if not hasattr(form, "cleaned_data") or form.cleaned_data.get("DELETE"):
                continue
            sku = (form.cleaned_data.get("sku") or "").strip()
            if not sku:
                continue
            if sku in seen:
                form.add_error("sku", _("This SKU appears twice in this product."))
            seen[sku] = index


def submission_key_new() -> str:
    return uuid4().hex


class SubmissionField(forms.CharField):
    """A hidden one-time token, new each time the form is rendered (ADR 0007).

    The action's service stores it with what the submission created, so the same form sent
    twice (a double click, the browser's resubmit) is recorded once. Optional: a post without
    one (a page rendered before the field existed) is simply not deduplicated; the service
    refuses a malformed one.
    """

    widget = forms.HiddenInput

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", SUBMISSION_KEY_MAX)
        kwargs.setdefault("initial", submission_key_new)
        super().__init__(**kwargs)


class FulfilForm(forms.Form):
    """A shipment: carrier, tracking number and the tracking page (http or https only), plus
    the form's one-time ``submission_key``."""

    carrier = forms.CharField(label=_("Carrier"), max_length=60)
    tracking_number = forms.CharField(label=_("Tracking number"), max_length=80, required=False)
    tracking_url = forms.URLField(
        label=_("Tracking URL"),
        max_length=500,
        required=False,
        assume_scheme="https",
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("The page where the customer can follow the parcel (http or https)."),
    )
    submission_key = SubmissionField()


def fulfil_done_message(order, shipment) -> str:
    """What the admin and the dashboard say after a fulfil form: shipped, or (the same form
    sent twice) already recorded, nothing sent again."""
    values = {"number": order.number, "shipment": shipment}
    if getattr(shipment, "replayed", False):
        return (
            _(
                "Order %(number)s: the shipment with %(shipment)s was already recorded by this "
                "form; nothing was sent again."
            )
            % values
        )
    return _("Order %(number)s shipped with %(shipment)s.") % values
