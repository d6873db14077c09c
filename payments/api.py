"""REST API of the payments app: an order's refunds, ``/api/orders/<id>/refunds/``.

It lives here, not in ``commerce/api``, because commerce must not import payments; the URL is
mounted from ``payments/urls.py`` next to the commerce router's order routes. Scoping and roles
are the commerce API's: another merchant's order is a 404, support staff may list refunds but
not make them (403), owners, managers and operators refund.
"""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
)
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from commerce.api.idempotency import (
    E422_REUSED,
    IDEMPOTENCY_KEY,
    idempotency_key,
    replay_headers,
)
from commerce.api.permissions import MerchantRolePermission
from commerce.api.schema import error_response
from commerce.api.serializers import MoneySerializer
from commerce.models import Order
from commerce.selectors.access import scope_queryset, user_can_cancel_orders
from payments.models import Payment, Refund
from payments.services.refunds import refund_request

__all__ = ["OrderRefundsView", "RefundRequestSerializer", "RefundSerializer"]


class RefundSerializer(serializers.ModelSerializer):
    """A refund of (part of) an order's payment; ``pending`` until the provider confirms it."""

    amount = serializers.SerializerMethodField()
    # A plain string in the schema: another component named "Status" would collide with
    # the order's status enum (spectacular warns, and --fail-on-warn must stay clean).
    status = serializers.CharField(
        read_only=True,
        help_text="pending (sent, not confirmed yet), succeeded, failed (also after it had "
        "succeeded: the money came back), canceled, or abandoned (the provider never "
        "answered; nothing was refunded).",
    )
    requested_by = serializers.SlugRelatedField(
        slug_field="username",
        read_only=True,
        allow_null=True,
        help_text="Username of the staff member who asked for it; null when it was made at "
        "the payment provider.",
    )

    class Meta:
        model = Refund
        fields = [
            "id",
            "order",
            "payment",
            "amount_minor",
            "currency",
            "amount",
            "status",
            "reason",
            "provider_refund_id",
            "requested_by",
            "failure_reason",
            "created_at",
            "completed_at",
        ]
        read_only_fields = fields

    @extend_schema_field(MoneySerializer)
    def get_amount(self, refund: Refund) -> dict:
        return MoneySerializer(refund.amount, context=self.context).data


class RefundRequestSerializer(serializers.Serializer):
    """``payment`` must be one of the order (pass the order as ``context["order"]``)."""

    amount_minor = serializers.IntegerField(
        min_value=1,
        help_text="Amount to give back, in minor units of the order's currency (cents). At most "
        "what the refunded payment collected minus its refunds already made or pending.",
    )
    payment = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Id of the order's payment to refund (an order paid twice has two). Without "
        "it, the oldest payment that still covers the amount.",
    )
    reason = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        default="",
        help_text="Shown on the order's timeline.",
    )

    def validate_payment(self, value: int) -> Payment:
        payment = Payment.objects.filter(order=self.context["order"], pk=value).first()
        if payment is None:
            raise serializers.ValidationError("Not a payment of this order.")
        return payment


_E400 = error_response(
    "The amount is missing, not an integer or not positive, or `payment` is not one of the "
    "order's payments."
)
_E401 = error_response(
    "No or an invalid token (the response carries `WWW-Authenticate: Token`).",
    ("missing", "Authentication credentials were not provided.", "not_authenticated"),
)
_E403 = error_response(
    "The caller has no shop, or only a support role in the order's shop.",
    ("read_only", "Your role in this shop is read-only.", "permission_denied"),
)
_E404 = error_response(
    "No such order among the caller's shops (other shops' ids answer the same way).",
    ("missing", "Not found.", "not_found"),
)
_E409 = error_response(
    "The refund cannot be made: nothing was paid (or the payment did not succeed), it is more "
    "than is left to refund of the payment, or the payment provider refused it.",
    ("too_much", "At most $10.00 of order A1B2-1042 can still be refunded.", "refund_exceeds_paid"),
    (
        "unpaid",
        "Nothing was paid for order A1B2-1042, so nothing can be refunded.",
        "refund_nothing_paid",
    ),
    ("refused", "The payment service refused the refund: ...", "refund_refused"),
)


_ORDER_ID = OpenApiParameter(
    "id", int, OpenApiParameter.PATH, description="The order's id (another shop's: 404)."
)


def user_can_refund(user, merchant_id: int | None = None) -> bool:
    """Refunds give money back: owners and managers (and operators), as for cancelling."""
    return user_can_cancel_orders(user, merchant_id)


class OrderRefundsView(GenericAPIView):
    """The refunds of one order: list them, or ask for a new one."""

    permission_classes = [MerchantRolePermission]
    #: read by ``MerchantRolePermission`` for the role check of writes
    action = "refund"
    action_permissions = {"refund": user_can_refund}
    merchant_path = "merchant"
    queryset = Order.objects.all()
    serializer_class = RefundSerializer
    pagination_class = None
    filter_backends: list = []

    def get_queryset(self):
        return scope_queryset(
            Order.objects.select_related("merchant"),
            user=self.request.user,
            merchant_path=self.merchant_path,
        )

    @extend_schema(
        operation_id="orders_refunds_list",
        summary="List an order's refunds",
        tags=["orders"],
        parameters=[_ORDER_ID],
        responses={200: RefundSerializer(many=True), 401: _E401, 403: _E403, 404: _E404},
    )
    def get(self, request, pk):
        order = self.get_object()
        refunds = order.refunds.select_related("requested_by").order_by("created_at", "pk")
        data = RefundSerializer(refunds, many=True, context=self.get_serializer_context()).data
        return Response(data)

    @extend_schema(
        operation_id="orders_refunds_create",
        summary="Refund (part of) what was paid for an order",
        description="Sends the refund to the payment provider with an idempotency key built "
        "from the new refund's id. The refund is `pending` until the provider confirms it; the "
        "order then becomes `partially_refunded` or `refunded` by what is left paid for it (a "
        "duplicate payment given back leaves it paid). A refund that fails afterwards gives "
        "the amount back to the order. Send an `Idempotency-Key` so that a retried request "
        "refunds once.",
        tags=["orders"],
        parameters=[_ORDER_ID, IDEMPOTENCY_KEY],
        request=RefundRequestSerializer,
        responses={
            201: RefundSerializer,
            400: _E400,
            401: _E401,
            403: _E403,
            404: _E404,
            409: _E409,
            422: E422_REUSED,
        },
    )
    def post(self, request, pk):
        order = self.get_object()
        parsed = RefundRequestSerializer(data=request.data, context={"order": order})
        parsed.is_valid(raise_exception=True)
        refund = refund_request(
            order=order,
            payment=parsed.validated_data.get("payment"),
            amount_minor=parsed.validated_data["amount_minor"],
            user=request.user,
            reason=parsed.validated_data.get("reason", ""),
            submission_key=idempotency_key(request),
        )
        data = RefundSerializer(refund, context=self.get_serializer_context()).data
        return Response(data, status=status.HTTP_201_CREATED, headers=replay_headers(refund))
