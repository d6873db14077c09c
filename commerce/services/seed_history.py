"""A large, realistic order history for trying the dashboard at scale (``manage.py seed_orders``).

What it writes, deterministically from ``seed``:

- ``merchants`` shops (slugs ``seed-shop-<n>``) of very different sizes (Zipf-like weights),
  each with a small catalog, one or two currencies and a handful of ads and m.me links;
- customers (about one per five orders) with English and Arabic names, e-mail and phone on most,
  and a referral (a click-to-Messenger ad, an m.me link, or none);
- ``orders`` orders spread over ``days`` days (more recent days busier, evenings busier than
  nights), each with one to three lines, and the statuses a real shop has: mostly paid and
  shipped or delivered, some expired, cancelled, failed, refunded; the last hour still pending;
- their timeline events, and, when the payments app is installed, their payment attempts and
  refunds (looked up by app label: commerce does not import payments);
- then the pre-aggregated figures (``sales_figures_rebuild``) and a synthetic funnel (no
  conversations or carts are seeded, so those steps are drawn around the orders).

Fast: rows are generated in batches and written with ``COPY`` on PostgreSQL (``executemany``
elsewhere), with ids assigned here so lines, payments and events need no round trip.
It refuses to run when seeded shops exist, unless ``replace`` removes them first.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.apps import apps
from django.db import connection, models, transaction
from django.utils import timezone

from commerce.models import (
    Customer,
    DailyFunnel,
    Merchant,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    Shipment,
    StockReservation,
    Variant,
)
from commerce.services.orders import order_number_prefix
from commerce.services.sales_figures import day_of, sales_figures_rebuild
from core.currencies import currency_exponent
from core.exceptions import ApplicationError

__all__ = ["SEED_SLUG_PREFIX", "SeedResult", "seed_history_create", "seed_history_remove"]

SEED_SLUG_PREFIX = "seed-shop-"
MAX_ORDERS = 20_000_000
MAX_MERCHANTS = 10_000
MAX_DAYS = 3650
BATCH = 20_000
PRODUCTS_PER_MERCHANT = 12

CURRENCIES = ["USD", "KWD", "AED", "SAR", "EUR", "GBP", "BHD", "QAR"]
FIRST_NAMES = [
    "Layla", "Omar", "Sara", "Yousef", "Noura", "Ahmed", "Fatima", "Khalid", "Mariam", "Ali",
    "Hessa", "Faisal", "Aisha", "Hamad", "Reem", "Jassim", "Emma", "Liam", "Olivia", "Noah",
    "Amelia", "James", "Sophia", "Lucas", "Mia", "Ethan", "Chloe", "Adam", "Zara", "Rami",
    "ليلى", "عمر", "سارة", "يوسف", "نورة", "أحمد", "فاطمة", "خالد", "مريم", "علي",
]  # fmt: skip
LAST_NAMES = [
    "Al-Sabah", "Haddad", "Khan", "Nasser", "Saleh", "Mansour", "Rahman", "Aziz", "Karim",
    "Smith", "Brown", "Wilson", "Taylor", "Moore", "Clark", "Hall", "Young", "Lopez",
    "الحداد", "الخطيب", "المنصور", "العلي", "الكبير", "الصالح",
]  # fmt: skip
PRODUCT_WORDS = ["T-shirt", "Hoodie", "Cap", "Mug", "Tote bag", "Scarf", "Notebook", "Candle",
                 "Abaya", "Perfume", "Dates box", "Phone case"]  # fmt: skip
# Status of an order placed over an hour ago, with its weight.
FINAL_STATUSES = [
    (Order.Status.DELIVERED, 46),
    (Order.Status.FULFILLED, 8),
    (Order.Status.PAID, 6),
    (Order.Status.REFUNDED, 3),
    (Order.Status.PARTIALLY_REFUNDED, 2),
    (Order.Status.EXPIRED, 25),
    (Order.Status.CANCELLED, 5),
    (Order.Status.PAYMENT_FAILED, 5),
]
PAID = {
    Order.Status.PAID,
    Order.Status.FULFILLED,
    Order.Status.DELIVERED,
    Order.Status.REFUNDED,
    Order.Status.PARTIALLY_REFUNDED,
}
# Relative busyness of each hour of the day (evenings are busiest).
HOUR_WEIGHTS = [2, 1, 1, 1, 1, 2, 3, 4, 5, 6, 7, 7, 8, 8, 7, 7, 8, 9, 11, 13, 14, 12, 8, 4]


class SeedError(ApplicationError):
    pass


@dataclass(frozen=True)
class SeedResult:
    merchants: int
    customers: int
    orders: int
    lines: int
    payments: int
    events: int
    figure_rows: int


# -- writing rows fast --------------------------------------------------------------------------


class _Json:
    """JSON written by hand for the hottest rows (events): ``{"key": value}`` of plain values."""

    __slots__ = ("text",)

    def __init__(self, data: dict) -> None:
        self.text = "{" + ", ".join(f'"{k}": {_json_value(v)}' for k, v in data.items()) + "}"


def _json_value(value) -> str:
    return str(value) if isinstance(value, int) else f'"{value}"'


class _Table:
    """Rows of one model as tuples in column order, with every unset column's default."""

    def __init__(self, model: type[models.Model]) -> None:
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.columns = [f.column for f in self.fields]
        self.index = {f.attname: i for i, f in enumerate(self.fields)}
        self.defaults = [self._default(f) for f in self.fields]
        self.json = [i for i, f in enumerate(self.fields) if isinstance(f, models.JSONField)]
        self.rows: list[list] = []

    @staticmethod
    def _default(field: models.Field):
        if field.has_default():
            return field.get_default()
        if field.null:
            return None
        if field.empty_strings_allowed:
            return ""
        return None

    def add(self, **values) -> None:
        row = list(self.defaults)
        for name, value in values.items():
            row[self.index[name]] = value
        for i in self.json:
            value = row[i]
            row[i] = value.text if isinstance(value, _Json) else json.dumps(value)
        self.rows.append(row)

    def flush(self) -> int:
        rows, self.rows = self.rows, []
        if rows:
            _write(self.model._meta.db_table, self.columns, rows, self.fields)
        return len(rows)


def _write(table: str, columns: list[str], rows: list[list], fields) -> None:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            sql = f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"
            with cursor.cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        prepared = [
            [
                connection.ops.adapt_datetimefield_value(value)
                if isinstance(value, datetime)
                else value
                for value in row
            ]
            for row in rows
        ]
        placeholders = ", ".join(["%s"] * len(columns))
        cursor.executemany(
            f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
            f"VALUES ({placeholders})",
            prepared,
        )


@contextlib.contextmanager
def _secondary_indexes_dropped(model_list: Iterable[type[models.Model]]) -> Iterator[None]:
    """On PostgreSQL, drop the tables' indexes that back no constraint while the rows are
    copied in, and build them again afterwards: building an index once over a million rows is
    several times cheaper than updating it a million times. The tables stay locked (ACCESS
    EXCLUSIVE) until the seed commits; elsewhere nothing changes."""
    if connection.vendor != "postgresql":
        yield
        return
    tables = [m._meta.db_table for m in model_list]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes i WHERE i.schemaname = current_schema()"
            " AND i.tablename = ANY(%s) AND NOT EXISTS"
            " (SELECT 1 FROM pg_constraint k WHERE k.conname = i.indexname)",
            [tables],
        )
        definitions = cursor.fetchall()
        for name, _definition in definitions:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
        # Orders are copied before their customers: foreign keys are checked at the end (an
        # earlier seed in the same transaction may have made them immediate).
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    yield
    with connection.cursor() as cursor:
        # The deferred foreign-key checks of the copied rows run now (they would at commit):
        # PostgreSQL builds no index on a table with checks pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _name, definition in definitions:
            cursor.execute(definition)


def _next_id(model: type[models.Model]) -> int:
    return (model.objects.aggregate(m=models.Max("pk"))["m"] or 0) + 1


def _reset_sequences(model_list: Iterable[type[models.Model]]) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite and others continue after the highest id by themselves
    with connection.cursor() as cursor:
        for model in model_list:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "  # noqa: S608
                f"COALESCE((SELECT MAX(id) FROM {connection.ops.quote_name(table)}), 1))",
                [table],
            )


# -- the history ----------------------------------------------------------------------------------


def _weighted(rng: random.Random, weights: list[float]) -> Callable[[], int]:
    """A picker of an index with the given weights (cumulative table + bisect: fast)."""
    total = 0.0
    cumulative = []
    for weight in weights:
        total += weight
        cumulative.append(total)

    def pick() -> int:
        return bisect.bisect_right(cumulative, rng.random() * total)

    return pick


def _order_times(rng: random.Random, count: int, *, days: int, now: datetime) -> list[datetime]:
    """``count`` moments in the last ``days`` days, sorted; recent days and evenings busier."""
    pick_hour = _weighted(rng, HOUR_WEIGHTS)
    start_day = day_of(now) - timedelta(days=days - 1)
    tz = timezone.get_default_timezone()
    midnight = timezone.make_aware(datetime.combine(start_day, datetime.min.time()), tz)
    moments = []
    while len(moments) < count:
        # Busier towards today: day offsets drawn from a linearly rising density.
        day = int(days * (rng.random() ** 0.6))
        seconds = day * 86400 + pick_hour() * 3600 + int(rng.random() * 3600)
        moment = midnight + timedelta(seconds=min(seconds, days * 86400 - 1))
        if moment <= now:
            moments.append(moment)
    moments.sort()
    return moments


@dataclass
class _Shop:
    merchant: Merchant
    currencies: list[str]
    variants: dict[str, list[tuple[int, str, str, int]]]  # currency -> (id, title, sku, price)
    ads: list[str]
    links: list[str]
    prefix: str
    sequence: int = 1000


def _price(rng: random.Random, currency: str) -> int:
    major = rng.choice([5, 8, 10, 12, 15, 19, 25, 30, 45, 60, 90, 120])
    if currency in {"KWD", "BHD"}:
        major = max(1, major // 3)
    return major * 10 ** currency_exponent(currency)


def _shops_create(rng: random.Random, count: int, now: datetime) -> list[_Shop]:
    shops = []
    for n in range(1, count + 1):
        currency = CURRENCIES[(n - 1) % len(CURRENCIES)]
        merchant = Merchant.objects.create(
            name=f"Seed shop {n}",
            slug=f"{SEED_SLUG_PREFIX}{n}",
            default_currency=currency,
            default_locale="ar" if n % 3 == 0 else "en",
        )
        currencies = [currency] + (["USD"] if n % 5 == 0 and currency != "USD" else [])
        variants: dict[str, list] = defaultdict(list)
        for p in range(PRODUCTS_PER_MERCHANT):
            cur = currencies[p % len(currencies)]
            title = f"{PRODUCT_WORDS[p % len(PRODUCT_WORDS)]} {p + 1}"
            product = Product.objects.create(merchant=merchant, title=title, handle=f"p-{p + 1}")
            variant = Variant.objects.create(
                product=product,
                merchant=merchant,
                name="One size",
                sku=f"S{n}-{p + 1}",
                price_minor=_price(rng, cur),
                currency=cur,
                stock_on_hand=1000,
            )
            variants[cur].append((variant.pk, title, variant.sku, variant.price_minor))
        ads = [f"{120200000000000 + n * 1000 + a}" for a in range(rng.randint(2, 8))]
        links = [f"spring-{n}", f"insta-bio-{n}", f"story-{n}"][: rng.randint(1, 3)]
        shops.append(
            _Shop(merchant, currencies, dict(variants), ads, links, order_number_prefix(merchant))
        )
    return shops


def _referral(rng: random.Random, shop: _Shop) -> tuple[str, str, str]:
    """(source, ad id, ref) the way Messenger reports them: ADS with an ad id, SHORTLINK with a
    ref, or nothing (the customer just wrote)."""
    roll = rng.random()
    if roll < 0.35:
        return "ADS", rng.choice(shop.ads), ""
    if roll < 0.55:
        return "SHORTLINK", "", rng.choice(shop.links)
    return "", "", ""


@dataclass
class _Customer:
    id: int
    shop: _Shop
    first_name: str
    last_name: str
    email: str
    phone: str
    referral: tuple[str, str, str]
    paused: bool
    last_seen: datetime | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


def _customers_plan(
    rng: random.Random, shops: list[_Shop], count: int, pick_shop
) -> dict[int, list[_Customer]]:
    """Customers per shop index, in memory: written after the orders, once their last
    interaction is known (foreign keys are checked at commit)."""
    next_id = _next_id(Customer)
    by_shop: dict[int, list[_Customer]] = defaultdict(list)
    for n in range(count):
        index = n if n < len(shops) else pick_shop()  # every shop gets at least one
        shop = shops[index]
        by_shop[index].append(
            _Customer(
                id=next_id,
                shop=shop,
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                email=f"shopper{next_id}@example.com" if rng.random() < 0.7 else "",
                phone=f"+9655{next_id % 10_000_000:07d}" if rng.random() < 0.8 else "",
                referral=_referral(rng, shop),
                paused=rng.random() < 0.001,
            )
        )
        next_id += 1
    return by_shop


def _customers_write(by_shop: dict[int, list[_Customer]], now: datetime) -> None:
    table = _Table(Customer)
    created = now - timedelta(days=400)
    for customers in by_shop.values():
        for c in customers:
            seen = c.last_seen or created
            table.add(
                id=c.id,
                created_at=created,
                updated_at=seen,
                merchant_id=c.shop.merchant.pk,
                page_id=f"1044{c.shop.merchant.pk:011d}",
                psid=f"24{c.id:014d}",
                first_name=c.first_name,
                last_name=c.last_name,
                locale="ar_AR" if c.first_name[0] > "z" else "en_US",
                email=c.email,
                phone=c.phone,
                referral_source=c.referral[0],
                referral_ad_id=c.referral[1],
                referral_ref=c.referral[2],
                last_interaction_at=seen,
                bot_paused_at=seen if c.paused else None,
            )
            if len(table.rows) >= BATCH:
                table.flush()
    table.flush()


def _status_for(rng: random.Random, placed: datetime, now: datetime, pick_final) -> str:
    if now - placed < timedelta(hours=1):
        return Order.Status.PENDING_PAYMENT if rng.random() < 0.4 else Order.Status.PAID
    status = FINAL_STATUSES[pick_final()][0]
    if now - placed < timedelta(days=2) and status in (Order.Status.DELIVERED,):
        return Order.Status.FULFILLED if rng.random() < 0.5 else Order.Status.PAID
    return status


@dataclass
class _Counts:
    orders: int = 0
    lines: int = 0
    payments: int = 0
    events: int = 0


class _Writer:
    """The tables of one batch of orders, flushed together."""

    def __init__(self, payment_model, refund_model) -> None:
        self.orders = _Table(Order)
        self.lines = _Table(OrderLine)
        self.events = _Table(OrderEvent)
        self.payments = _Table(payment_model) if payment_model else None
        self.refunds = _Table(refund_model) if refund_model else None
        self.counts = _Counts()

    def flush(self) -> None:
        self.counts.orders += self.orders.flush()
        self.counts.lines += self.lines.flush()
        self.counts.events += self.events.flush()
        if self.payments is not None:
            self.counts.payments += self.payments.flush()
            self.refunds.flush()


def _order_rows(
    rng: random.Random,
    *,
    writer: _Writer,
    ids: dict[str, int],
    shop: _Shop,
    customer: _Customer,
    placed: datetime,
    now: datetime,
    status: str,
    checkouts: Counter,
) -> None:
    order_id = ids["order"]
    ids["order"] += 1
    customer_id, referral, email, phone, name = (
        customer.id,
        customer.referral,
        customer.email,
        customer.phone,
        customer.name,
    )
    customer.last_seen = placed
    currency = rng.choice(shop.currencies)
    catalog = shop.variants[currency]
    lines = []
    for variant in rng.sample(catalog, k=min(len(catalog), rng.choice([1, 1, 1, 2, 2, 3]))):
        quantity = rng.choice([1, 1, 1, 2, 3])
        lines.append((variant, quantity, variant[3] * quantity))
    subtotal = sum(total for _v, _q, total in lines)
    shipping = (
        0
        if subtotal > 50 * 10 ** currency_exponent(currency)
        else 2 * 10 ** currency_exponent(currency)
    )
    total = subtotal + shipping
    paid = status in PAID
    paid_at = placed + timedelta(seconds=rng.randint(30, 900)) if paid else None
    if paid_at and paid_at > now:
        paid_at = now
    refunded = 0
    if status == Order.Status.REFUNDED:
        refunded = total
    elif status == Order.Status.PARTIALLY_REFUNDED:
        refunded = max(1, total // 3)
    fulfilled_at = (
        paid_at + timedelta(hours=rng.randint(2, 48))
        if status in (Order.Status.FULFILLED, Order.Status.DELIVERED)
        else None
    )
    if fulfilled_at and fulfilled_at > now:
        fulfilled_at = now
    delivered_at = (
        min(now, fulfilled_at + timedelta(days=rng.randint(1, 5)))
        if status == Order.Status.DELIVERED
        else None
    )
    closed = status in (Order.Status.EXPIRED, Order.Status.CANCELLED, Order.Status.PAYMENT_FAILED)
    reserved_until = placed + timedelta(minutes=30)
    closed_at = min(now, reserved_until) if closed else None
    shop.sequence += 1
    number = f"{shop.prefix}-{shop.sequence}"
    updated = max(t for t in (placed, paid_at, fulfilled_at, delivered_at, closed_at) if t)
    needs_review = paid and rng.random() < 0.002
    writer.orders.add(
        id=order_id,
        created_at=placed,
        updated_at=updated,
        merchant_id=shop.merchant.pk,
        customer_id=customer_id,
        number=number,
        status=status,
        currency=currency,
        locale="en_US",
        subtotal_minor=subtotal,
        shipping_minor=shipping,
        total_minor=total,
        refunded_minor=refunded,
        shipping_method_name="Standard",
        shipping_name=name,
        shipping_line1=f"Block {rng.randint(1, 12)}, Street {rng.randint(1, 90)}",
        shipping_city=rng.choice(["Kuwait City", "Dubai", "Riyadh", "Doha", "Manama", "London"]),
        shipping_country=rng.choice(["KW", "AE", "SA", "QA", "BH", "GB"]),
        contact_email=email,
        contact_phone=phone,
        referral_source=referral[0],
        referral_ad_id=referral[1],
        referral_ref=referral[2],
        reserved_until=reserved_until,
        paid_at=paid_at,
        fulfilled_at=fulfilled_at,
        delivered_at=delivered_at,
        closed_at=closed_at,
        needs_review=needs_review,
        review_reason="Amount paid differs from the order total." if needs_review else "",
    )
    for variant, quantity, line_total in lines:
        writer.lines.add(
            id=ids["line"],
            order_id=order_id,
            variant_id=variant[0],
            product_title=variant[1],
            variant_name="One size",
            sku=variant[2],
            unit_price_minor=variant[3],
            quantity=quantity,
            total_minor=line_total,
        )
        ids["line"] += 1
    _event(writer, ids, order_id, OrderEvent.Kind.CREATED, placed, {"total_minor": total})
    started = paid or status == Order.Status.PAYMENT_FAILED or rng.random() < 0.3
    if started and writer.payments is not None:
        _payment_rows(writer, ids, order_id, status, currency, total, placed, paid_at, refunded)
    if started:
        checkouts[(shop.merchant.pk, day_of(placed))] += 1
    final_kind = {
        Order.Status.EXPIRED: OrderEvent.Kind.EXPIRED,
        Order.Status.CANCELLED: OrderEvent.Kind.CANCELLED,
        Order.Status.PAYMENT_FAILED: OrderEvent.Kind.PAYMENT_FAILED,
    }.get(status)
    if paid:
        _event(writer, ids, order_id, OrderEvent.Kind.PAID, paid_at, {"to": "paid"})
    if fulfilled_at:
        _event(writer, ids, order_id, OrderEvent.Kind.FULFILLED, fulfilled_at, {"to": "fulfilled"})
    if delivered_at:
        _event(writer, ids, order_id, OrderEvent.Kind.DELIVERED, delivered_at, {"to": "delivered"})
    if refunded:
        _event(writer, ids, order_id, OrderEvent.Kind.REFUNDED, updated, {"amount_minor": refunded})
    if final_kind:
        _event(writer, ids, order_id, final_kind, closed_at, {"to": status})


def _event(writer: _Writer, ids: dict, order_id: int, kind: str, at: datetime, data: dict) -> None:
    writer.events.add(
        id=ids["event"], order_id=order_id, kind=kind, created_at=at, data=_Json(data)
    )
    ids["event"] += 1


def _payment_rows(writer, ids, order_id, status, currency, total, placed, paid_at, refunded):
    payment_id = ids["payment"]
    ids["payment"] += 1
    paid = paid_at is not None
    created = placed + timedelta(seconds=20)
    payment_status = (
        "succeeded" if paid else ("failed" if status == "payment_failed" else "expired")
    )
    writer.payments.add(
        id=payment_id,
        created_at=created,
        updated_at=paid_at or created,
        order_id=order_id,
        gateway="stripe_checkout",
        status=payment_status,
        attempt=1,
        amount_minor=total,
        currency=currency,
        idempotency_key=f"seed:{order_id}:1",
        checkout_session_id=f"cs_seed_{order_id}",
        payment_intent_id=f"pi_seed_{order_id}" if paid else "",
        charge_id=f"ch_seed_{order_id}" if paid else None,
        card_brand="visa" if paid else "",
        card_last4="4242" if paid else "",
        expires_at=placed + timedelta(minutes=30),
        succeeded_at=paid_at,
        failure_reason="Your card was declined." if status == "payment_failed" else "",
        is_test=True,
    )
    if refunded:
        writer.refunds.add(
            id=ids["refund"],
            created_at=paid_at,
            updated_at=paid_at,
            payment_id=payment_id,
            order_id=order_id,
            amount_minor=refunded,
            currency=currency,
            status="succeeded",
            provider_refund_id=f"re_seed_{order_id}",
            completed_at=paid_at,
        )
        ids["refund"] += 1


def _funnel_rows(rng: random.Random, placed: Counter, checkouts: Counter) -> int:
    """Synthetic conversations and carts around the seeded orders (none are seeded)."""
    rows = []
    for (merchant_id, day), orders in placed.items():
        carts = orders + int(orders * rng.uniform(0.3, 0.9))
        rows.append(
            DailyFunnel(
                merchant_id=merchant_id,
                day=day,
                conversations=carts + int(carts * rng.uniform(1.0, 2.5)),
                carts=carts,
                checkouts=checkouts.get((merchant_id, day), 0),
            )
        )
    DailyFunnel.objects.bulk_create(rows, batch_size=5000)
    return len(rows)


def seed_history_remove() -> int:
    """Delete every seeded shop and all its rows; return how many shops were removed."""
    merchants = list(
        Merchant.objects.filter(slug__startswith=SEED_SLUG_PREFIX).values_list("pk", flat=True)
    )
    if not merchants:
        return 0
    table = {m: connection.ops.quote_name(m._meta.db_table) for m in (Order, OrderEvent, OrderLine)}
    ids = ", ".join(str(int(pk)) for pk in merchants)
    order_ids = f"SELECT id FROM {table[Order]} WHERE merchant_id IN ({ids})"  # noqa: S608
    dependents = [OrderEvent, OrderLine, StockReservation, Shipment]
    if apps.is_installed("payments"):
        dependents = [apps.get_model("payments", "Refund"), apps.get_model("payments", "Payment")]
        dependents += [OrderEvent, OrderLine, StockReservation, Shipment]
    statements = [
        f"DELETE FROM {connection.ops.quote_name(m._meta.db_table)} "  # noqa: S608
        f"WHERE order_id IN ({order_ids})"
        for m in dependents
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
        # What is left (orders, customers, catalog, figures) goes through the ORM's cascade;
        # orders first, since customers and merchants protect them.
        Order.objects.filter(merchant_id__in=merchants).delete()
        Merchant.objects.filter(pk__in=merchants).delete()
    return len(merchants)


def _check_arguments(orders: int, merchants: int, days: int) -> None:
    if not 1 <= orders <= MAX_ORDERS:
        raise SeedError(f"--orders must be between 1 and {MAX_ORDERS:,}.", code="seed_orders")
    if not 1 <= merchants <= MAX_MERCHANTS:
        raise SeedError(
            f"--merchants must be between 1 and {MAX_MERCHANTS:,}.", code="seed_merchants"
        )
    if merchants > orders:
        raise SeedError("--merchants cannot exceed --orders.", code="seed_merchants")
    if not 1 <= days <= MAX_DAYS:
        raise SeedError(f"--days must be between 1 and {MAX_DAYS}.", code="seed_days")


def seed_history_create(
    *,
    orders: int,
    merchants: int = 20,
    days: int = 365,
    seed: int = 1,
    replace: bool = False,
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> SeedResult:
    """Seed the history described in the module docstring and return what was written.

    :raises SeedError: an argument is out of range, or seeded shops exist and ``replace`` is
        false (nothing is written).
    """
    _check_arguments(orders, merchants, days)
    existing = Merchant.objects.filter(slug__startswith=SEED_SLUG_PREFIX).count()
    if existing and not replace:
        raise SeedError(
            f"{existing} seeded shops already exist; run with --replace to seed them again.",
            code="seed_exists",
        )
    if existing:
        progress(f"removing the {existing} seeded shops from an earlier run")
        seed_history_remove()
    now = now or timezone.now()
    rng = random.Random(seed)
    payment_model = apps.get_model("payments", "Payment") if apps.is_installed("payments") else None
    refund_model = apps.get_model("payments", "Refund") if payment_model else None
    with transaction.atomic():
        shops = _shops_create(rng, merchants, now)
        # Zipf-like shop sizes: shop n gets weight 1/n (a few big shops, a long tail).
        pick_shop = _weighted(rng, [1 / (n + 1) for n in range(merchants)])
        customer_count = max(merchants, orders // 5)
        progress(f"{merchants} shops, {customer_count:,} customers")
        customers = _customers_plan(rng, shops, customer_count, pick_shop)
        shop_indexes = sorted(customers)
        pick_final = _weighted(rng, [w for _s, w in FINAL_STATUSES])
        ids = {"order": _next_id(Order), "line": _next_id(OrderLine), "event": _next_id(OrderEvent)}
        if payment_model:
            ids["payment"] = _next_id(payment_model)
            ids["refund"] = _next_id(refund_model)
        writer = _Writer(payment_model, refund_model)
        placed_per_day: Counter = Counter()
        checkouts: Counter = Counter()
        loaded = [Customer, Order, OrderLine, OrderEvent]
        if payment_model:
            loaded += [payment_model, refund_model]
        with _secondary_indexes_dropped(loaded):
            for n, placed in enumerate(_order_times(rng, orders, days=days, now=now), start=1):
                index = pick_shop()
                if index not in customers:
                    index = shop_indexes[index % len(shop_indexes)]
                shop = shops[index]
                customer = rng.choice(customers[index])
                status = _status_for(rng, placed, now, pick_final)
                _order_rows(
                    rng, writer=writer, ids=ids, shop=shop, customer=customer, placed=placed,
                    now=now, status=status, checkouts=checkouts,
                )  # fmt: skip
                placed_per_day[(shop.merchant.pk, day_of(placed))] += 1
                if n % BATCH == 0:
                    writer.flush()
                    progress(f"{n:,} orders written")
            writer.flush()
            progress(f"writing {customer_count:,} customers")
            _customers_write(customers, now)
            progress("building the indexes")
        for shop in shops:
            Merchant.objects.filter(pk=shop.merchant.pk).update(order_sequence=shop.sequence)
        _reset_sequences(loaded)
    progress("building the daily figures")
    first = day_of(now) - timedelta(days=days - 1)
    figure_rows = sales_figures_rebuild(first=first, last=day_of(now))
    DailyFunnel.objects.filter(merchant__slug__startswith=SEED_SLUG_PREFIX).delete()
    figure_rows += _funnel_rows(rng, placed_per_day, checkouts)
    if connection.vendor == "postgresql" and connection.get_autocommit():
        # What autovacuum would do over the next minutes anyway (visibility map, hint bits,
        # planner statistics), done now so the pages are read in their steady state.
        progress("vacuuming and analysing the tables")
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    counts = writer.counts
    return SeedResult(
        merchants=merchants,
        customers=customer_count,
        orders=counts.orders,
        lines=counts.lines,
        payments=counts.payments,
        events=counts.events,
        figure_rows=figure_rows,
    )
