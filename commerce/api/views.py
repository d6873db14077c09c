"""REST API views: scope the queryset, parse the request, call one service, render.

Every queryset goes through ``scope_queryset``: another merchant's id is a 404 whatever the
method, never a 403 that would tell the caller the row exists.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.db.models import Prefetch, ProtectedError, RestrictedError
from django.utils.translation import gettext as _
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_view,
)
from rest_framework import filters as drf_filters
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from commerce.api import filters, serializers
from commerce.api.auth import TokenObtainView, TokenThrottle, TokenUsernameThrottle  # noqa: F401
from commerce.api.idempotency import (
    E422_REUSED,
    IDEMPOTENCY_KEY,
    idempotency_key,
    replay_headers,
)
from commerce.api.permissions import MerchantRolePermission
from commerce.api.schema import error_response
from commerce.exceptions import CartError
from commerce.models import (
    Cart,
    CartLine,
    Category,
    Customer,
    Order,
    OrderEvent,
    Product,
    ProductImage,
    Variant,
    Voucher,
)
from commerce.selectors.access import (
    scope_queryset,
    user_can_cancel_orders,
    user_can_edit_catalog,
    user_can_handle_orders,
)
from commerce.selectors.carts import cart_price, cart_price_of_lines, variant_is_buyable_in
from commerce.services.orders import (
    order_add_note,
    order_cancel,
    order_fulfil,
    order_mark_delivered,
)
from commerce.services.pricing import PriceBreakdown
from commerce.services.stock import StockCount, stock_on_hand_set
from core.exceptions import ApplicationError, ConflictError

logger = logging.getLogger(__name__)

Actor = OrderEvent.Actor


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


# -- documented error responses -----------------------------------------------------------------

E400 = error_response("The request is malformed or a field is invalid.")
E400_FILTER = error_response("A query parameter is malformed (e.g. created_after is not ISO 8601).")
E401 = error_response(
    "No or an invalid token (the response carries `WWW-Authenticate: Token`).",
    ("missing", "Authentication credentials were not provided.", "not_authenticated"),
)
E403 = error_response(
    "The caller has no shop, or a read-only (support) role for a write.",
    ("read_only", "Your role in this shop is read-only.", "permission_denied"),
)
E404 = error_response(
    "No such object among the caller's shops (other shops' ids answer the same way), "
    "or a page past the end.",
    ("missing", "Not found.", "not_found"),
)
E409 = error_response(
    "The object's state forbids the action (e.g. an illegal order status transition).",
    ("transition", "This order cannot be shipped now.", "invalid_transition"),
)


LIST_ERRORS = {400: E400_FILTER, 401: E401, 403: E403, 404: E404}
DETAIL_ERRORS = {401: E401, 403: E403, 404: E404}
WRITE_ERRORS = {400: E400, 401: E401, 403: E403}
CHANGE_ERRORS = {400: E400, 401: E401, 403: E403, 404: E404}
E409_STOCK = error_response(
    "stock_on_hand moved (a sale, another edit) since the value in stock_on_hand_seen (or, "
    "without it, since this request read the variant): nothing was saved; read it again.",
    (
        "stock_changed",
        "The stock of TEE-M changed while you were editing it: it is now 9, not 10 (a sale or "
        "another edit). Nothing was saved; check the number and save again.",
        "stock_changed",
    ),
)
DELETE_ERRORS = {401: E401, 403: E403, 404: E404, 409: E409}
ACTION_ERRORS = {400: E400, 401: E401, 403: E403, 404: E404, 409: E409}


def crud_schema(serializer, noun: str, change_errors: dict | None = None):
    """``extend_schema_view`` for a ModelViewSet: documented bodies, responses and errors."""
    change_errors = change_errors or CHANGE_ERRORS
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {noun}s", responses={200: serializer(many=True), **LIST_ERRORS}
        ),
        retrieve=extend_schema(
            summary=f"Get a {noun}", responses={200: serializer, **DETAIL_ERRORS}
        ),
        create=extend_schema(
            summary=f"Create a {noun}",
            request=serializer,
            responses={201: serializer, **WRITE_ERRORS},
        ),
        update=extend_schema(
            summary=f"Replace a {noun}",
            request=serializer,
            responses={200: serializer, **change_errors},
        ),
        partial_update=extend_schema(
            summary=f"Change some fields of a {noun}",
            request=serializer,
            responses={200: serializer, **change_errors},
        ),
        destroy=extend_schema(
            summary=f"Delete a {noun}",
            responses={204: None, **DELETE_ERRORS},
        ),
    )


def read_schema(serializer, noun: str):
    return extend_schema_view(
        list=extend_schema(
            summary=f"List {noun}s", responses={200: serializer(many=True), **LIST_ERRORS}
        ),
        retrieve=extend_schema(
            summary=f"Get a {noun}", responses={200: serializer, **DETAIL_ERRORS}
        ),
    )


# -- base classes -------------------------------------------------------------------------------


class ScopedViewSetMixin:
    """Scope every queryset to the caller's merchants; list with filters and pagination."""

    permission_classes = [MerchantRolePermission]
    pagination_class = Pagination
    filter_backends = [filters.FilterBackend, drf_filters.SearchFilter, drf_filters.OrderingFilter]
    #: lookup from the model to its merchant, for ``scope_queryset`` and the role check
    merchant_path = "merchant"
    # Any segment reaches the view, so a malformed id ("0.5", "abc") is the API's JSON 404 too,
    # not Django's HTML page for an unknown URL.
    lookup_value_regex = "[^/]+"
    base_queryset = None

    def get_queryset(self):
        queryset = self.base_queryset.all()
        return scope_queryset(queryset, user=self.request.user, merchant_path=self.merchant_path)


class CatalogViewSet(ScopedViewSetMixin, viewsets.ModelViewSet):
    """Plain CRUD. The merchant comes from the caller (see ``MerchantOwnedSerializer``)."""

    def perform_create(self, serializer) -> None:
        self._check_can_edit(self._merchant_id_of_new(serializer.validated_data))
        self._save(serializer)

    def perform_update(self, serializer) -> None:
        self._save(serializer)

    def perform_destroy(self, instance) -> None:
        try:
            with transaction.atomic():
                instance.delete()
        except (ProtectedError, RestrictedError):
            raise ConflictError(
                _("It is still used by orders or reservations; deactivate it instead."),
                code="protected",
            ) from None

    def _merchant_id_of_new(self, data: dict) -> int:
        return data["merchant"].pk

    def _check_can_edit(self, merchant_id: int) -> None:
        if not user_can_edit_catalog(self.request.user, merchant_id):
            raise PermissionDenied(_("Your role in this shop is read-only."))

    @staticmethod
    def _save(serializer) -> None:
        # The serializer checked uniqueness; a concurrent insert can still win the race.
        try:
            with transaction.atomic():
                serializer.save()
        except IntegrityError:
            raise ApplicationError(
                _("Another row with the same unique value was just saved; try again."),
                code="duplicate",
            ) from None


# -- catalog ------------------------------------------------------------------------------------


@crud_schema(serializers.CategorySerializer, "category")
class CategoryViewSet(CatalogViewSet):
    """Product categories of the caller's shops."""

    base_queryset = Category.objects.all()
    serializer_class = serializers.CategorySerializer
    filterset_class = filters.CategoryFilter
    search_fields = ["name", "name_ar", "slug"]
    ordering_fields = ["position", "name", "created_at", "id"]
    ordering = ["position", "name", "id"]


@crud_schema(serializers.ProductSerializer, "product")
class ProductViewSet(CatalogViewSet):
    """Products with their variants and image URLs (write variants at /api/variants/)."""

    base_queryset = Product.objects.prefetch_related(
        Prefetch("variants", queryset=Variant.objects.order_by("position", "id")),
        Prefetch("images", queryset=ProductImage.objects.order_by("position", "id")),
    )
    serializer_class = serializers.ProductSerializer
    filterset_class = filters.ProductFilter
    search_fields = ["title", "title_ar", "handle", "variants__sku"]
    ordering_fields = ["position", "title", "handle", "created_at", "updated_at", "id"]
    ordering = ["position", "title", "id"]


@crud_schema(serializers.VariantSerializer, "variant", {**CHANGE_ERRORS, 409: E409_STOCK})
class VariantViewSet(CatalogViewSet):
    """Buyable variants: price in minor units of a currency, stock on hand.

    A change of ``stock_on_hand`` is a count over ``stock_on_hand_seen`` (ADR 0004): it applies
    only where the stock is still that number, else 409 ``stock_changed`` and nothing is saved.
    """

    base_queryset = Variant.objects.all()
    serializer_class = serializers.VariantSerializer
    filterset_class = filters.VariantFilter
    search_fields = ["sku", "name", "name_ar", "product__title"]
    ordering_fields = ["position", "sku", "price_minor", "stock_on_hand", "created_at", "id"]
    ordering = ["product_id", "position", "id"]

    def _merchant_id_of_new(self, data: dict) -> int:
        return data["product"].merchant_id

    def perform_create(self, serializer) -> None:
        serializer.validated_data.pop("stock_on_hand_seen", None)  # a new row has no past
        super().perform_create(serializer)

    def perform_update(self, serializer) -> None:
        """Save the other fields (``Variant.save()`` never writes the stock), then the count."""
        variant = serializer.instance
        value = serializer.validated_data.pop("stock_on_hand", None)
        seen = serializer.validated_data.pop("stock_on_hand_seen", None)
        if seen is None:  # the caller did not say: the stock when this request read it
            seen = variant.stock_on_hand
        with transaction.atomic():
            self._save(serializer)
            if value is not None and value != seen:
                stock_on_hand_set(counts=[StockCount(variant.pk, value=value, seen=seen)])
                variant.refresh_from_db(fields=["stock_on_hand", "stock_reserved", "updated_at"])


# -- customers and carts ------------------------------------------------------------------------


@read_schema(serializers.CustomerSerializer, "customer")
class CustomerViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Shoppers of the caller's shops (read-only)."""

    base_queryset = Customer.objects.all()
    serializer_class = serializers.CustomerSerializer
    search_fields = ["first_name", "last_name", "email", "phone"]
    ordering_fields = ["last_interaction_at", "created_at", "first_name", "last_name", "id"]
    ordering = ["-created_at", "-id"]


def _cart_breakdown(cart: Cart, voucher: Voucher | None) -> PriceBreakdown | None:
    """The cart's price from rows loaded in bulk for a page of carts (no queries of its own)."""
    lines = [
        (line.variant, line.quantity)
        for line in cart.lines.all()
        if variant_is_buyable_in(variant=line.variant, cart=cart)
    ]
    if not lines:
        return None
    try:
        return cart_price_of_lines(cart=cart, lines=lines, voucher=voucher)
    except CartError:
        return None  # mixed currencies: there is no single total


@read_schema(serializers.CartSerializer, "cart")
class CartViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Carts with their lines and a price computed now from the catalog (read-only)."""

    base_queryset = Cart.objects.select_related("merchant", "customer").prefetch_related(
        Prefetch(
            "lines",
            queryset=CartLine.objects.select_related("variant__product").order_by(
                "created_at", "id"
            ),
        )
    )
    serializer_class = serializers.CartSerializer
    filterset_class = filters.CartFilter
    ordering_fields = ["updated_at", "created_at", "id"]
    ordering = ["-updated_at", "-id"]

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        page = self.paginate_queryset(queryset)
        carts = list(page)
        vouchers = self._vouchers_of(carts)
        self.cart_prices = {
            cart.pk: _cart_breakdown(cart, vouchers.get((cart.merchant_id, cart.voucher_code)))
            for cart in carts
        }
        return self.get_paginated_response(self.get_serializer(carts, many=True).data)

    def retrieve(self, request, *args, **kwargs):
        cart = self.get_object()
        try:
            self.cart_prices = {cart.pk: cart_price(cart=cart)}
        except CartError:
            self.cart_prices = {}
        return Response(self.get_serializer(cart).data)

    def get_serializer_context(self) -> dict:
        return {**super().get_serializer_context(), "cart_prices": getattr(self, "cart_prices", {})}

    @staticmethod
    def _vouchers_of(carts: list[Cart]) -> dict[tuple[int, str], Voucher]:
        codes = {(cart.merchant_id, cart.voucher_code) for cart in carts if cart.voucher_code}
        if not codes:
            return {}
        vouchers = Voucher.objects.filter(
            merchant_id__in={merchant_id for merchant_id, _code in codes},
            code__in={code for _merchant_id, code in codes},
        )
        return {(voucher.merchant_id, voucher.code): voucher for voucher in vouchers}


# -- orders -------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        responses={200: serializers.OrderSerializer(many=True), **LIST_ERRORS},
    ),
    retrieve=extend_schema(
        summary="Get an order with its lines, shipments and timeline",
        responses={200: serializers.OrderDetailSerializer, **DETAIL_ERRORS},
    ),
)
class OrderViewSet(ScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Orders of the caller's shops; status changes go through the order services."""

    action_permissions = {
        "fulfil": user_can_handle_orders,
        "mark_delivered": user_can_handle_orders,
        "notes": user_can_handle_orders,
        "cancel": user_can_cancel_orders,
    }

    base_queryset = Order.objects.select_related("customer")
    serializer_class = serializers.OrderSerializer
    filterset_class = filters.OrderFilter
    search_fields = ["number", "contact_email", "contact_phone", "shipping_name"]
    ordering_fields = ["created_at", "total_minor", "number", "id"]
    ordering = ["-created_at", "-id"]

    def get_queryset(self):
        queryset = super().get_queryset()
        return self._with_details(queryset) if self.action == "retrieve" else queryset

    @staticmethod
    def _with_details(queryset):
        return queryset.prefetch_related(
            "lines",
            "shipments",
            Prefetch("events", queryset=OrderEvent.objects.select_related("actor_user")),
        )

    def get_serializer_class(self):
        if self.action == "list":
            return serializers.OrderSerializer
        return serializers.OrderDetailSerializer

    def _order_detail(self, order: Order) -> Response:
        fresh = self._with_details(self.get_queryset()).get(pk=order.pk)
        context = self.get_serializer_context()
        return Response(serializers.OrderDetailSerializer(fresh, context=context).data)

    def _parse(self, serializer_class, order: Order) -> dict:
        serializer = serializer_class(
            data=self.request.data, context={**self.get_serializer_context(), "order": order}
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(
        summary="Ship an order: record a shipment (paid -> fulfilled)",
        description="Send an `Idempotency-Key` so that a retried request records one "
        "shipment and one shipping message. Without it, a parcel whose carrier and tracking "
        "number are already recorded on the order is refused (`shipment_duplicate`, 400).",
        parameters=[IDEMPOTENCY_KEY],
        request=serializers.FulfilSerializer,
        responses={201: serializers.ShipmentSerializer, **ACTION_ERRORS, 422: E422_REUSED},
    )
    @action(detail=True, methods=["post"])
    def fulfil(self, request, pk=None):
        order = self.get_object()
        data = self._parse(serializers.FulfilSerializer, order)
        shipment = order_fulfil(
            order=order, user=request.user, submission_key=idempotency_key(request), **data
        )
        return Response(
            serializers.ShipmentSerializer(shipment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
            headers=replay_headers(shipment),
        )

    @extend_schema(
        summary="Mark an order (or one of its shipments) delivered",
        request=serializers.MarkDeliveredSerializer,
        responses={200: serializers.OrderDetailSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="mark-delivered")
    def mark_delivered(self, request, pk=None):
        order = self.get_object()
        data = self._parse(serializers.MarkDeliveredSerializer, order)
        order_mark_delivered(order=order, user=request.user, shipment=data.get("shipment"))
        return self._order_detail(order)

    @extend_schema(
        summary="Cancel an unpaid order and release its stock",
        request=serializers.CancelSerializer,
        responses={200: serializers.OrderDetailSerializer, **ACTION_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = self.get_object()
        data = self._parse(serializers.CancelSerializer, order)
        order_cancel(
            order=order, user=request.user, actor=Actor.STAFF, reason=data.get("reason", "")
        )
        return self._order_detail(order)

    @extend_schema(
        summary="Add a staff note to the order's timeline",
        description="Send an `Idempotency-Key` so that a retried request adds one note.",
        parameters=[IDEMPOTENCY_KEY],
        request=serializers.NoteSerializer,
        responses={201: serializers.OrderEventSerializer, **ACTION_ERRORS, 422: E422_REUSED},
    )
    @action(detail=True, methods=["post"])
    def notes(self, request, pk=None):
        order = self.get_object()
        data = self._parse(serializers.NoteSerializer, order)
        event = order_add_note(
            order=order,
            message=data["message"],
            user=request.user,
            submission_key=idempotency_key(request),
        )
        return Response(
            serializers.OrderEventSerializer(event, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
            headers=replay_headers(event),
        )
