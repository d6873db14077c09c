"""REST API serializers: the shape of requests and responses, nothing more.

Related objects are looked up only among the caller's merchants (``ScopedPrimaryKeyRelatedField``),
so an id of another merchant's row answers "does not exist", exactly like an id that was never
used. The merchant of a new row comes from the caller: see ``MerchantOwnedSerializer``.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from commerce.models import (
    Cart,
    CartLine,
    Category,
    Customer,
    Merchant,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    ProductImage,
    Shipment,
    Variant,
)
from commerce.selectors.access import (
    merchants_for_user,
    scope_queryset,
    user_is_operator,
    user_roles,
)
from core.exceptions import ApplicationError
from core.money import Money

MAX_OPTIONS = 10
MAX_OPTION_LENGTH = 40


def _request_user(context: dict):
    request = context.get("request")
    return getattr(request, "user", None)


def _locale(context: dict) -> str:
    request = context.get("request")
    return getattr(request, "LANGUAGE_CODE", None) or translation.get_language() or "en"


def duplicate_error(field: str, message: str, code: str) -> ApplicationError:
    """A 400 shaped like a validation error, with a stable code of its own (``duplicate_sku``)."""
    return ApplicationError(str(message), code=code, extra={"fields": {field: [str(message)]}})


# -- errors and money ---------------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """Every error the API returns, whatever the status."""

    message = serializers.CharField(help_text="A sentence fit to show a person.")
    code = serializers.CharField(
        help_text=(
            "Stable machine code: invalid, not_authenticated, authentication_failed, "
            "permission_denied, not_found, invalid_transition, duplicate_sku, throttled..."
        )
    )
    extra = serializers.DictField(
        help_text='Details; for validation errors {"fields": {"<field>": ["<message>"]}}.'
    )


class MoneySerializer(serializers.Serializer):
    """An exact amount: integer minor units of an ISO 4217 currency, and how people read it."""

    amount_minor = serializers.IntegerField(read_only=True)
    currency = serializers.CharField(read_only=True)
    formatted = serializers.SerializerMethodField()

    def get_formatted(self, money: Money) -> str:
        return money.format(_locale(self.context))


# -- scoped relations ---------------------------------------------------------------------------


class ScopedPrimaryKeyRelatedField(serializers.PrimaryKeyRelatedField):
    """A primary key looked up only among the rows of the caller's merchants."""

    def __init__(self, *, merchant_path: str = "merchant", **kwargs):
        self.merchant_path = merchant_path
        super().__init__(**kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        user = _request_user(self.context)
        if queryset.model is Merchant:
            return merchants_for_user(user)
        return scope_queryset(queryset, user=user, merchant_path=self.merchant_path)


class MerchantOwnedSerializer(serializers.ModelSerializer):
    """Rows owned by a merchant: the merchant is one the caller may see, never taken on trust.

    Staff with one membership need not say which merchant; operators and staff of several
    merchants must pass ``merchant`` (an id among the merchants they may see, else 400). The
    merchant of an existing row never changes.
    """

    merchant = ScopedPrimaryKeyRelatedField(
        queryset=Merchant.objects.all(),
        required=False,
        help_text=(
            "The shop that owns the row. Required on create for operators and for staff of "
            "several shops; staff of one shop may leave it out. Cannot be changed."
        ),
    )

    def resolve_merchant(self, attrs: dict) -> Merchant:
        if self.instance is not None:
            merchant = attrs.get("merchant", self.instance.merchant)
            if merchant.pk != self.instance.merchant_id:
                raise serializers.ValidationError(
                    {"merchant": _("A row cannot be moved to another shop.")}
                )
            return merchant
        if attrs.get("merchant") is not None:
            return attrs["merchant"]
        user = _request_user(self.context)
        roles = user_roles(user)
        if not user_is_operator(user) and len(roles) == 1:
            return Merchant.objects.get(pk=next(iter(roles)))
        raise serializers.ValidationError(
            {"merchant": _("You have access to several shops: pass the merchant id.")},
            code="required",
        )

    def check_unique(self, *, merchant: Merchant, attrs: dict, field: str, message, code: str):
        value = attrs.get(field)
        if value in (None, ""):
            return
        clash = self.Meta.model.objects.filter(merchant=merchant, **{field: value})
        if self.instance is not None:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise duplicate_error(field, message, code)


# -- catalog ------------------------------------------------------------------------------------


class CategorySerializer(MerchantOwnedSerializer):
    parent = ScopedPrimaryKeyRelatedField(
        queryset=Category.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Category
        fields = [
            "id",
            "merchant",
            "parent",
            "name",
            "name_ar",
            "slug",
            "position",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness per merchant is checked in validate() with its own error code.
        validators: list = []

    def validate(self, attrs: dict) -> dict:
        merchant = self.resolve_merchant(attrs)
        attrs["merchant"] = merchant
        parent = attrs.get("parent")
        if parent is not None:
            if parent.merchant_id != merchant.pk:
                raise serializers.ValidationError(
                    {"parent": _("The parent category belongs to another shop.")}
                )
            if self.instance is not None and self._is_descendant_or_self(parent):
                raise serializers.ValidationError(
                    {"parent": _("A category cannot be inside itself.")}, code="cycle"
                )
        self.check_unique(
            merchant=merchant,
            attrs=attrs,
            field="slug",
            message=_("Another category already uses this slug."),
            code="duplicate_slug",
        )
        return attrs

    def _is_descendant_or_self(self, parent: Category) -> bool:
        seen: set[int] = set()
        node: Category | None = parent
        while node is not None and node.pk not in seen:
            if node.pk == self.instance.pk:
                return True
            seen.add(node.pk)
            node = node.parent
        return False


class StockSeenField(serializers.IntegerField):
    """Read: the variant's stock on hand (so a representation sent back carries what it saw)."""

    def get_attribute(self, instance):
        return instance.stock_on_hand


class VariantSerializer(serializers.ModelSerializer):
    product = ScopedPrimaryKeyRelatedField(queryset=Product.objects.all())
    merchant = serializers.PrimaryKeyRelatedField(read_only=True)
    currency = serializers.ChoiceField(
        choices=Variant._meta.get_field("currency").choices,
        required=False,
        help_text="ISO 4217 code; defaults to the shop's currency on create.",
    )
    price = MoneySerializer(read_only=True)
    stock_on_hand_seen = StockSeenField(
        required=False,
        min_value=0,
        help_text=(
            "The stock_on_hand your change starts from: reads return it equal to stock_on_hand; "
            "send it back with a new stock_on_hand. The change applies only if the stock is "
            "still this number (else 409 stock_changed, nothing saved), so a sale made since "
            "you read the variant is never undone. Without it: the stock when the request is "
            "read."
        ),
    )
    stock_available = serializers.IntegerField(read_only=True)

    class Meta:
        model = Variant
        fields = [
            "id",
            "product",
            "merchant",
            "name",
            "name_ar",
            "sku",
            "options",
            "price_minor",
            "currency",
            "price",
            "stock_on_hand",
            "stock_on_hand_seen",
            "stock_reserved",
            "stock_available",
            "is_active",
            "position",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["stock_reserved", "created_at", "updated_at"]
        extra_kwargs = {
            "price_minor": {"min_value": 0},
            "stock_on_hand": {"min_value": 0},
        }

    def validate_options(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError(_('Options must be an object, e.g. {"size": "M"}.'))
        if len(value) > MAX_OPTIONS:
            raise serializers.ValidationError(
                _("At most %(count)d options.") % {"count": MAX_OPTIONS}
            )
        for name, option in value.items():
            if not isinstance(option, str):
                raise serializers.ValidationError(_("Option values must be text."))
            for text in (name, option):
                if not text or len(text) > MAX_OPTION_LENGTH or "\x00" in text:
                    raise serializers.ValidationError(
                        _("Option names and values must be 1 to %(max)d characters.")
                        % {"max": MAX_OPTION_LENGTH}
                    )
        return value

    def validate(self, attrs: dict) -> dict:
        product = attrs.get("product") or getattr(self.instance, "product", None)
        if product is None:  # partial update without a product: keep the instance's
            raise serializers.ValidationError({"product": _("This field is required.")})
        if self.instance is not None and product.merchant_id != self.instance.merchant_id:
            raise serializers.ValidationError(
                {"product": _("A variant cannot be moved to another shop.")}
            )
        if self.instance is None and not attrs.get("currency"):
            attrs["currency"] = product.merchant.default_currency
        sku = attrs.get("sku")
        if sku:
            clash = Variant.objects.filter(merchant_id=product.merchant_id, sku=sku)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise duplicate_error(
                    "sku", _("This SKU is already used in this shop."), "duplicate_sku"
                )
        return attrs


class ProductImageSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = ProductImage
        fields = ["id", "url", "alt_text", "width", "height", "position"]
        read_only_fields = fields

    def get_url(self, image: ProductImage) -> str:
        url = image.image.url
        request = self.context.get("request")
        return request.build_absolute_uri(url) if request is not None else url


class ProductVariantSerializer(VariantSerializer):
    """A variant as nested in its product (read-only; write variants at /api/variants/)."""

    class Meta(VariantSerializer.Meta):
        read_only_fields = VariantSerializer.Meta.fields


class ProductSerializer(MerchantOwnedSerializer):
    category = ScopedPrimaryKeyRelatedField(
        queryset=Category.objects.all(), required=False, allow_null=True
    )
    variants = ProductVariantSerializer(many=True, read_only=True)
    images = ProductImageSerializer(many=True, read_only=True)

    class Meta:
        model = Product
        fields = [
            "id",
            "merchant",
            "category",
            "handle",
            "title",
            "title_ar",
            "description",
            "description_ar",
            "is_active",
            "position",
            "variants",
            "images",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        validators: list = []

    def validate(self, attrs: dict) -> dict:
        merchant = self.resolve_merchant(attrs)
        attrs["merchant"] = merchant
        category = attrs.get("category")
        if category is not None and category.merchant_id != merchant.pk:
            raise serializers.ValidationError(
                {"category": _("The category belongs to another shop.")}
            )
        self.check_unique(
            merchant=merchant,
            attrs=attrs,
            field="handle",
            message=_("Another product already uses this handle."),
            code="duplicate_handle",
        )
        return attrs


# -- customers and carts ------------------------------------------------------------------------


# Blank-able email and URL columns are rendered as plain strings: "" is a legal value, and the
# OpenAPI "email"/"uri" formats would call it invalid.
def _text(help_text: str) -> serializers.CharField:
    return serializers.CharField(read_only=True, help_text=help_text)


class CustomerSerializer(serializers.ModelSerializer):
    email = _text("Email address, or empty.")

    class Meta:
        model = Customer
        fields = [
            "id",
            "merchant",
            "page_id",
            "psid",
            "first_name",
            "last_name",
            "locale",
            "timezone_offset",
            "email",
            "phone",
            "last_interaction_at",
            "conversation_state",
            "bot_paused_at",
            "referral_ref",
            "referral_source",
            "referral_ad_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CustomerSummarySerializer(serializers.ModelSerializer):
    email = _text("Email address, or empty.")

    class Meta:
        model = Customer
        fields = ["id", "first_name", "last_name", "email", "phone"]
        read_only_fields = fields


class CartLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="variant.sku", read_only=True)
    product = serializers.IntegerField(source="variant.product_id", read_only=True)
    product_title = serializers.CharField(source="variant.product.title", read_only=True)
    variant_name = serializers.CharField(source="variant.name", read_only=True)
    unit_price = MoneySerializer(source="variant.price", read_only=True)
    total = serializers.SerializerMethodField()

    class Meta:
        model = CartLine
        fields = [
            "id",
            "variant",
            "product",
            "sku",
            "product_title",
            "variant_name",
            "quantity",
            "unit_price",
            "total",
        ]
        read_only_fields = fields

    @extend_schema_field(MoneySerializer)
    def get_total(self, line: CartLine) -> dict:
        return MoneySerializer(line.variant.price * line.quantity, context=self.context).data


class CartPriceSerializer(serializers.Serializer):
    """The cart priced now from catalog prices (shipping is chosen at checkout, so none here)."""

    subtotal = MoneySerializer()
    discount = MoneySerializer()
    tax = MoneySerializer()
    total = MoneySerializer()
    voucher_code = serializers.CharField(
        allow_null=True, help_text="The voucher applied, or null when none applies."
    )


# Wrapped in allOf so that drf-spectacular keeps it inline: a "StatusEnum" component named from
# the field would collide with the order's status (and settings.py is not the API's to change).
@extend_schema_field(
    {"type": "string", "allOf": [{"type": "string", "enum": list(Cart.Status.values)}]}
)
class CartStatusField(serializers.CharField):
    pass


class CartSerializer(serializers.ModelSerializer):
    customer = CustomerSummarySerializer(read_only=True)
    status = CartStatusField(read_only=True)
    lines = CartLineSerializer(many=True, read_only=True)
    price = serializers.SerializerMethodField(
        help_text="Null when the cart has nothing buyable or mixes currencies."
    )

    class Meta:
        model = Cart
        fields = [
            "id",
            "merchant",
            "customer",
            "status",
            "voucher_code",
            "lines",
            "price",
            "reminder_sent_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(CartPriceSerializer(allow_null=True))
    def get_price(self, cart: Cart) -> dict | None:
        breakdown = self.context["cart_prices"].get(cart.pk)
        if breakdown is None:
            return None
        return CartPriceSerializer(
            {
                "subtotal": breakdown.subtotal,
                "discount": breakdown.discount,
                "tax": breakdown.tax,
                "total": breakdown.total,
                "voucher_code": breakdown.voucher.code if breakdown.voucher else None,
            },
            context=self.context,
        ).data


# -- orders -------------------------------------------------------------------------------------


class OrderLineSerializer(serializers.ModelSerializer):
    unit_price = serializers.SerializerMethodField()
    total = serializers.SerializerMethodField()

    class Meta:
        model = OrderLine
        fields = [
            "id",
            "variant",
            "product_title",
            "variant_name",
            "sku",
            "image_url",
            "quantity",
            "unit_price_minor",
            "unit_price",
            "total_minor",
            "total",
        ]
        read_only_fields = fields

    @extend_schema_field(MoneySerializer)
    def get_unit_price(self, line: OrderLine) -> dict:
        return MoneySerializer(
            Money(line.unit_price_minor, line.order.currency), context=self.context
        ).data

    @extend_schema_field(MoneySerializer)
    def get_total(self, line: OrderLine) -> dict:
        return MoneySerializer(
            Money(line.total_minor, line.order.currency), context=self.context
        ).data


class ShipmentSerializer(serializers.ModelSerializer):
    tracking_url = _text("http(s) link to follow the parcel, or empty.")

    class Meta:
        model = Shipment
        fields = [
            "id",
            "order",
            "carrier",
            "tracking_number",
            "tracking_url",
            "shipped_at",
            "delivered_at",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


class OrderEventSerializer(serializers.ModelSerializer):
    actor_user = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of the staff member who acted; null for the system or the customer.",
    )

    class Meta:
        model = OrderEvent
        fields = ["id", "kind", "actor", "actor_user", "message", "data", "created_at"]
        read_only_fields = fields


_ORDER_MONEY = ("subtotal", "discount", "shipping", "tax", "total", "refunded")


class OrderSerializer(serializers.ModelSerializer):
    """An order as listed: status, customer and amounts."""

    customer = CustomerSummarySerializer(read_only=True)
    subtotal = MoneySerializer(read_only=True)
    discount = MoneySerializer(read_only=True)
    shipping = MoneySerializer(read_only=True)
    tax = MoneySerializer(read_only=True)
    total = MoneySerializer(read_only=True)
    refunded = MoneySerializer(read_only=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "number",
            "merchant",
            "customer",
            "status",
            "currency",
            *(f"{name}_minor" for name in _ORDER_MONEY),
            *_ORDER_MONEY,
            "voucher_code",
            "shipping_method_name",
            "needs_review",
            "created_at",
            "updated_at",
            "paid_at",
            "fulfilled_at",
            "delivered_at",
            "closed_at",
        ]
        read_only_fields = fields


class OrderDetailSerializer(OrderSerializer):
    """An order with its lines, shipments, address and timeline."""

    contact_email = _text("Email address given at checkout, or empty.")

    lines = OrderLineSerializer(many=True, read_only=True)
    shipments = ShipmentSerializer(many=True, read_only=True)
    events = OrderEventSerializer(many=True, read_only=True)

    class Meta(OrderSerializer.Meta):
        fields = [
            *OrderSerializer.Meta.fields,
            "locale",
            "tax_rate_bp",
            "prices_include_tax",
            "shipping_name",
            "shipping_line1",
            "shipping_line2",
            "shipping_city",
            "shipping_region",
            "shipping_postal_code",
            "shipping_country",
            "contact_email",
            "contact_phone",
            "referral_ref",
            "referral_source",
            "referral_ad_id",
            "reserved_until",
            "review_reason",
            "lines",
            "shipments",
            "events",
        ]
        read_only_fields = fields


# -- order actions (request bodies) ------------------------------------------------------------


class FulfilSerializer(serializers.Serializer):
    carrier = serializers.CharField(max_length=60)
    tracking_number = serializers.CharField(max_length=80, required=False, allow_blank=True)
    tracking_url = serializers.URLField(max_length=500, required=False, allow_blank=True)


class MarkDeliveredSerializer(serializers.Serializer):
    shipment = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="The shipment that arrived; all of them when left out.",
    )

    def validate_shipment(self, value: int | None) -> Shipment | None:
        if value is None:
            return None
        shipment = self.context["order"].shipments.filter(pk=value).first()
        if shipment is None:
            raise serializers.ValidationError(_("No such shipment in this order."))
        return shipment


class CancelSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


class NoteSerializer(serializers.Serializer):
    message = serializers.CharField(max_length=300)


# -- authentication ----------------------------------------------------------------------------


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, style={"input_type": "password"})


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(
        read_only=True, help_text="The new token; shown only in this answer, never again."
    )
    expires_at = serializers.DateTimeField(
        read_only=True, help_text="When the token stops working."
    )
