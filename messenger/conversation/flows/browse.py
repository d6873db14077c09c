"""Browsing (DESIGN.md section 5, flow 2): categories, product carousels, variants, search.

Payloads: ``SHOP`` (categories; ``SHOP:page=<n>`` for the next ones), ``CATEGORY:<id>``,
``CATEGORY:id=<id>,page=<n>`` (``CATEGORY:page=<n>`` pages through the whole catalog of a shop
without categories), ``PRODUCT:<id>``, ``VARIANTS:<product id>`` (``VARIANTS:id=<id>,buy=1`` when
the choice leads to checkout), ``ADD:variant=<id>,qty=<n>``, ``BUY:variant=<id>``,
``SEARCH_MORE:page=<n>``. Free-text search and ``product-<SKU>`` referrals come from the engine
(``search_show``, ``referral_open``).

Every id is looked up within ``turn.merchant`` among active rows; anything else gets the same
polite "no longer available" and changes nothing. Each turn runs a fixed number of queries,
whatever the size of the catalog: pages are sliced in the database, variants and images are
prefetched.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from commerce.models import CartLine, Category, Product, ProductImage, Variant
from commerce.services.carts import cart_add, cart_get_open
from core.money import Money
from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.keywords import text_normalize
from messenger.conversation.router import Payload, handler_for, on_payload, payload_build
from messenger.conversation.turn import Turn
from messenger.models import MessengerPage
from payments.services.buy_button import buy_button_payload_build, buy_button_payment_summary

__all__ = [
    "featured_carousel",
    "product_element",
    "products_visible",
    "referral_open",
    "search_show",
    "variant_buyable",
]

PAGE_SIZE = 10  # the generic template's element limit
MAX_PAGE = 1000  # beyond this a page number is shopper nonsense, not a real page
CATEGORIES_SHOWN = 12  # plus "More" = 13 quick replies, the platform limit
VARIANTS_SHOWN = 11  # plus Cart and Shop = 13 quick replies
LOW_STOCK = 5  # "Only n left" at or below this
SEARCH_MAX_LENGTH = 100
SEARCH_MAX_TERMS = 5
REFERRAL_PREFIX = "product-"


# -- selectors (merchant-scoped, fixed query count) ------------------------------------------------


def products_visible(*, merchant_id: int) -> QuerySet[Product]:
    """The merchant's active products with at least one active variant, in display order, with
    their merchant, ``active_variants`` and ``image_list`` (three queries per evaluation)."""
    return (
        Product.objects.filter(merchant_id=merchant_id, is_active=True)
        .filter(Exists(Variant.objects.filter(product_id=OuterRef("pk"), is_active=True)))
        .select_related("merchant")
        .prefetch_related(
            Prefetch(
                "variants",
                queryset=Variant.objects.filter(is_active=True).order_by("position", "id"),
                to_attr="active_variants",
            ),
            Prefetch(
                "images",
                queryset=ProductImage.objects.order_by("position", "id"),
                to_attr="image_list",
            ),
        )
        .order_by("position", "title", "id")
    )


def variant_buyable(*, merchant_id: int, variant_id: int | None) -> Variant | None:
    """The merchant's active variant of an active product, with its product; else ``None``."""
    if variant_id is None:
        return None
    return (
        Variant.objects.select_related("product")
        .filter(pk=variant_id, merchant_id=merchant_id, is_active=True, product__is_active=True)
        .first()
    )


def _page_of(queryset: QuerySet[Product], page: int) -> tuple[list[Product], bool]:
    """Products of page ``page`` (1-based) and whether another page follows."""
    start = (page - 1) * PAGE_SIZE
    rows = list(queryset[start : start + PAGE_SIZE + 1])
    return rows[:PAGE_SIZE], len(rows) > PAGE_SIZE


def _page_param(payload: Payload) -> int | None:
    """The ``page`` parameter (1 when absent), ``None`` when it is malformed or absurd."""
    if "page" not in payload.params:
        return 1
    page = payload.int_param("page")
    return page if page is not None and page <= MAX_PAGE else None


# -- product cards ---------------------------------------------------------------------------------


def _price_label(turn: Turn, variants: Sequence[Variant]) -> str:
    currency = variants[0].currency
    prices = sorted(v.price_minor for v in variants if v.currency == currency)
    lowest = common.money(turn, Money(prices[0], currency))
    if prices[0] != prices[-1]:
        return _("from %(price)s") % {"price": lowest}
    return lowest


def _stock_hint(available: int) -> str:
    if available <= 0:
        return _("Out of stock")
    if available <= LOW_STOCK:
        return ngettext("Only %(count)d left", "Only %(count)d left", available) % {
            "count": available
        }
    return ""


def _image_url(product: Product) -> str | None:
    images = getattr(product, "image_list", None)
    if images is None:
        images = list(product.images.order_by("position", "id"))
    for image in images:
        if image.image:
            return common.absolute_url(image.image.url)
    return None


def _payment_button(turn: Turn, product: Product, variant: Variant) -> dict:
    """The legacy buy button selling one ``variant`` (pages in buy-button mode)."""
    label = product.localized_title(turn.locale)
    if len(getattr(product, "active_variants", ())) > 1 and variant.name:
        label = f"{label} – {variant.localized_name(turn.locale)}"
    return builders.payment_button(
        title="buy",
        payload=buy_button_payload_build(variant_id=variant.pk, customer_id=turn.customer.pk),
        payment_summary=buy_button_payment_summary(page=turn.page, variant=variant, label=label),
    )


def product_element(turn: Turn, product: Product, *, variant: Variant | None = None) -> dict:
    """One generic-template card: localized title, price ("from" when variants differ) and stock
    hint, first image, buttons *Add to cart*, *Buy now* and *Details* (webview).

    ``product`` comes from ``products_visible`` (variants and images prefetched). With
    ``variant`` (a referral naming a SKU) the card sells that variant only.
    """
    variants = [variant] if variant is not None else list(product.active_variants)
    available = sum(v.stock_available for v in variants)
    subtitle = " · ".join(
        part for part in (_price_label(turn, variants), _stock_hint(available)) if part
    )
    buttons = []
    if available > 0:
        if len(variants) == 1:
            add = payload_build("ADD", variant=variants[0].pk, qty=1)
            buy = payload_build("BUY", variant=variants[0].pk)
        else:
            add = payload_build("VARIANTS", product.pk)
            buy = payload_build("VARIANTS", id=product.pk, buy=1)
        buttons += [
            builders.postback_button(pgettext("button", "Add to cart"), add),
            builders.postback_button(pgettext("button", "Buy now"), buy),
        ]
        if len(variants) == 1 and turn.page.mode == MessengerPage.Mode.BUY_BUTTON:
            # Legacy v1.2 buy button instead of Buy now; the reference wants it first.
            buttons = [_payment_button(turn, product, variants[0]), buttons[0]]
    buttons.append(
        builders.url_button(
            pgettext("button", "Details"),
            common.product_url(product=product, language=turn.language),
            webview_height_ratio="tall",
        )
    )
    return builders.generic_element(
        product.localized_title(turn.locale),
        subtitle=subtitle,
        image_url=_image_url(product),
        buttons=buttons,
    )


def _carousel(turn: Turn, products: Sequence[Product], quick_replies: Sequence[dict]) -> dict:
    return builders.generic_template(
        [product_element(turn, product) for product in products],
        quick_replies=quick_replies,
    )


def featured_carousel(turn: Turn, *, quick_replies: Sequence[dict]) -> dict | None:
    """The shop's first products in the merchant's display order (the admin's *position*), as
    the carousel Get Started shows: a shopper sees something to buy before the first tap.
    ``None`` when the shop has nothing to sell."""
    rows, _more = _page_of(products_visible(merchant_id=turn.merchant.pk), 1)
    if not rows:
        return None
    return _carousel(turn, rows, quick_replies)


# -- categories ------------------------------------------------------------------------------------


def _categories_page(turn: Turn, page: int) -> tuple[list[Category], bool]:
    """The merchant's active categories holding at least one visible product (one query)."""
    visible = Product.objects.filter(
        category_id=OuterRef("pk"), is_active=True, variants__is_active=True
    )
    categories = (
        Category.objects.filter(merchant_id=turn.merchant.pk, is_active=True)
        .filter(Exists(visible))
        .order_by("position", "name", "id")
    )
    start = (page - 1) * CATEGORIES_SHOWN
    rows = list(categories[start : start + CATEGORIES_SHOWN + 1])
    return rows[:CATEGORIES_SHOWN], len(rows) > CATEGORIES_SHOWN


def _categories_quick_replies(turn: Turn, page: int = 1) -> list[dict] | None:
    """Categories as quick replies (with *More*), ``None`` when the shop has none."""
    categories, more = _categories_page(turn, page)
    if not categories:
        return None
    replies = [
        builders.quick_reply(category.localized_name(turn.locale), f"CATEGORY:{category.pk}")
        for category in categories
    ]
    if more:
        replies.append(
            builders.quick_reply(pgettext("quick reply", "More"), f"SHOP:page={page + 1}")
        )
    return replies


@on_payload("SHOP")
def shop(turn: Turn, payload: Payload) -> None:
    page = _page_param(payload)
    if page is None:
        turn.say(common.sorry_not_understood(turn))
        return
    replies = _categories_quick_replies(turn, page)
    if replies is None:
        if page == 1:  # A shop without categories: show everything.
            _products_show(turn, category=None, page=1)
        else:
            turn.say(common.sorry_not_understood(turn))
        return
    turn.say(builders.text(_("What are you shopping for today?"), quick_replies=replies))


@on_payload("CATEGORY")
def category(turn: Turn, payload: Payload) -> None:
    page = _page_param(payload)
    category_id = payload.int_param("arg" if payload.arg else "id")
    if page is None or (category_id is None and (payload.arg or "id" in payload.params)):
        turn.say(common.sorry_not_understood(turn))
        return
    found = None
    if category_id is not None:
        found = Category.objects.filter(
            pk=category_id, merchant_id=turn.merchant.pk, is_active=True
        ).first()
        if found is None:
            turn.say(common.sorry_unavailable(turn))
            return
    _products_show(turn, category=found, page=page)


def _products_show(turn: Turn, *, category: Category | None, page: int) -> None:
    products = products_visible(merchant_id=turn.merchant.pk)
    if category is not None:
        products = products.filter(category_id=category.pk)
    rows, more = _page_of(products, page)
    if not rows:
        turn.say(
            builders.text(
                _("There is nothing more to show here."),
                quick_replies=[common.qr_shop(), common.qr_cart(), common.qr_menu()],
            )
        )
        return
    quick_replies = []
    if more:
        more_payload = (
            payload_build("CATEGORY", id=category.pk, page=page + 1)
            if category is not None
            else payload_build("CATEGORY", page=page + 1)
        )
        quick_replies.append(builders.quick_reply(pgettext("quick reply", "More"), more_payload))
    quick_replies += [
        builders.quick_reply(pgettext("quick reply", "Categories"), "SHOP"),
        common.qr_cart(),
    ]
    turn.say(_carousel(turn, rows, quick_replies))


# -- one product and its variants ------------------------------------------------------------------


def _product_for(turn: Turn, product_id: int | None) -> Product | None:
    if product_id is None:
        return None
    return products_visible(merchant_id=turn.merchant.pk).filter(pk=product_id).first()


@on_payload("PRODUCT")
def product(turn: Turn, payload: Payload) -> None:
    found = _product_for(turn, payload.int_param("arg" if payload.arg else "id"))
    if found is None:
        turn.say(common.sorry_unavailable(turn))
        return
    _product_show(turn, found)


def _product_show(turn: Turn, product: Product, *, variant: Variant | None = None) -> None:
    several = variant is None and len(product.active_variants) > 1
    quick_replies = [] if several else [common.qr_cart(), common.qr_keep_shopping()]
    turn.say(
        builders.generic_template(
            [product_element(turn, product, variant=variant)], quick_replies=quick_replies
        )
    )
    if several:
        _variants_say(turn, product, buy=False)


@on_payload("VARIANTS")
def variants(turn: Turn, payload: Payload) -> None:
    found = _product_for(turn, payload.int_param("arg" if payload.arg else "id"))
    if found is None:
        turn.say(common.sorry_unavailable(turn))
        return
    _variants_say(turn, found, buy=payload.params.get("buy") == "1")


def _variants_say(turn: Turn, product: Product, *, buy: bool) -> None:
    """The variants as a list with prices, and the ones in stock as quick replies."""
    title = product.localized_title(turn.locale)
    lines = []
    choices = []
    for variant in product.active_variants:
        name = variant.localized_name(turn.locale)
        price = common.money(turn, variant.price)
        available = variant.stock_available
        if available <= 0:
            lines.append(_("• %(name)s: %(price)s (out of stock)") % {"name": name, "price": price})
            continue
        if available <= LOW_STOCK:
            lines.append(
                ngettext(
                    "• %(name)s: %(price)s (only %(count)d left)",
                    "• %(name)s: %(price)s (only %(count)d left)",
                    available,
                )
                % {"name": name, "price": price, "count": available}
            )
        else:
            lines.append(_("• %(name)s: %(price)s") % {"name": name, "price": price})
        if len(choices) < VARIANTS_SHOWN:
            label = f"{name} · {price}"
            payload = (
                payload_build("BUY", variant=variant.pk)
                if buy
                else payload_build("ADD", variant=variant.pk, qty=1)
            )
            choices.append(builders.quick_reply(label if len(label) <= 20 else name, payload))
    if not choices:
        turn.say(
            builders.text(
                _("Sorry, %(product)s is out of stock.") % {"product": title},
                quick_replies=[common.qr_keep_shopping(), common.qr_cart(), common.qr_menu()],
            )
        )
        return
    text = _("%(product)s: which one would you like?") % {"product": title}
    turn.say(
        builders.text(
            "\n".join([text, *lines]),
            quick_replies=[*choices, common.qr_cart(), common.qr_keep_shopping()],
        )
    )


# -- adding to the cart ----------------------------------------------------------------------------


def _variant_label(turn: Turn, variant: Variant) -> str:
    title = variant.product.localized_title(turn.locale)
    name = variant.localized_name(turn.locale)
    return _("%(product)s (%(variant)s)") % {"product": title, "variant": name} if name else title


@on_payload("ADD")
def add(turn: Turn, payload: Payload) -> None:
    quantity = payload.int_param("qty") if "qty" in payload.params else 1
    if quantity is None or "variant" not in payload.params:
        turn.say(common.sorry_not_understood(turn))
        return
    variant = variant_buyable(merchant_id=turn.merchant.pk, variant_id=payload.int_param("variant"))
    if variant is None:
        turn.say(common.sorry_unavailable(turn))
        return
    cart_add(cart=cart_get_open(customer=turn.customer), variant_id=variant.pk, quantity=quantity)
    text = ngettext(
        "Added %(item)s to your cart.",
        "Added %(count)d × %(item)s to your cart.",
        quantity,
    ) % {"item": _variant_label(turn, variant), "count": quantity}
    turn.say(
        builders.text(
            text,
            quick_replies=[common.qr_checkout(), common.qr_keep_shopping(), common.qr_cart()],
        )
    )


@on_payload("BUY")
def buy(turn: Turn, payload: Payload) -> None:
    """Put one unit in the cart (unless it is there already), then start the checkout."""
    variant = variant_buyable(merchant_id=turn.merchant.pk, variant_id=payload.int_param("variant"))
    if variant is None:
        turn.say(common.sorry_unavailable(turn))
        return
    cart = cart_get_open(customer=turn.customer)
    if not CartLine.objects.filter(cart_id=cart.pk, variant_id=variant.pk).exists():
        cart_add(cart=cart, variant_id=variant.pk, quantity=1)
    checkout = handler_for("CHECKOUT")
    if checkout is not None:
        checkout(turn, Payload("CHECKOUT"))
    else:  # pragma: no cover - the checkout flow registers CHECKOUT
        handler_for("CART")(turn, Payload("CART"))


# -- search ----------------------------------------------------------------------------------------


def _search_terms(query: str) -> list[str]:
    """Words to look for; a plural "s" and the Arabic article "ال" are dropped so that "shirts"
    finds "Shirt" and "القميص" finds "قميص"."""
    terms = []
    for word in text_normalize(query).split()[:SEARCH_MAX_TERMS]:
        if len(word) > 3 and word.startswith("ال"):
            word = word[2:]
        elif len(word) > 3 and word.endswith("s") and word.isascii():
            word = word[:-1]
        terms.append(word)
    return terms


_ALEFS = "اأإآ"
_SEARCH_FIELDS = ("title", "title_ar", "description", "description_ar")


def _spellings(term: str) -> set[str]:
    """``term`` as shoppers and merchants may spell it in Arabic: with or without a hamza on a
    leading alef, final ة or ه, final ى or ي (``text_normalize`` folded the term to the bare
    letters; the catalog keeps what the merchant typed)."""
    forms = {term}
    if term[:1] in _ALEFS:
        forms |= {alef + term[1:] for alef in _ALEFS}
    if term[-1:] == "ه":
        forms |= {form[:-1] + "ة" for form in forms}
    if term[-1:] == "ي":
        forms |= {form[:-1] + "ى" for form in forms}
    return forms


def _search_queryset(turn: Turn, terms: Sequence[str]) -> QuerySet[Product]:
    """Products matching every term in one of the fields (one query, plus the prefetches)."""
    products = products_visible(merchant_id=turn.merchant.pk)
    for term in terms:
        matches = Q()
        for form in sorted(_spellings(term)):
            for field in _SEARCH_FIELDS:
                matches |= Q(**{f"{field}__icontains": form})
        products = products.filter(matches)
    return products


def search_show(turn: Turn, *, query: str, page: int) -> None:
    """Products matching every word of ``query`` (title, description, in both languages), a page
    at a time; the query is kept in the context for ``SEARCH_MORE``."""
    query = query.strip()[:SEARCH_MAX_LENGTH]
    terms = _search_terms(query)
    if not terms:
        turn.say(common.sorry_not_understood(turn))
        return
    common.context_update(turn, search_query=query)
    rows, more = _page_of(_search_queryset(turn, terms), page)
    if not rows:
        text = (
            _("Sorry, I found nothing for “%(query)s”. Try another word, or browse:")
            if page == 1
            else _("That's everything I found for “%(query)s”.")
        ) % {"query": query}
        replies = _categories_quick_replies(turn) or [common.qr_shop()]
        turn.say(builders.text(text, quick_replies=[*replies[:12], common.qr_cart()]))
        return
    if page == 1:
        turn.say(builders.text(_("Here is what I found for “%(query)s”:") % {"query": query}))
    quick_replies = []
    if more:
        quick_replies.append(
            builders.quick_reply(
                pgettext("quick reply", "More"), payload_build("SEARCH_MORE", page=page + 1)
            )
        )
    quick_replies += [
        builders.quick_reply(pgettext("quick reply", "Categories"), "SHOP"),
        common.qr_cart(),
    ]
    turn.say(_carousel(turn, rows, quick_replies))


@on_payload("SEARCH_MORE")
def search_more(turn: Turn, payload: Payload) -> None:
    page = _page_param(payload)
    query = turn.context("search_query")
    if page is None or not isinstance(query, str) or not query:
        turn.say(common.sorry_not_understood(turn))
        return
    search_show(turn, query=query, page=page)


# -- referrals (m.me links and click-to-Messenger ads) ---------------------------------------------


def referral_open(turn: Turn, *, ref: str, greet: bool) -> bool:
    """Open the product of a ``product-<SKU>`` ref, after a greeting when ``greet`` (Get
    Started). ``False`` (nothing said) when the ref names no buyable variant of this merchant."""
    if not ref.lower().startswith(REFERRAL_PREFIX):
        return False
    sku = ref[len(REFERRAL_PREFIX) :].strip()
    if not sku or len(sku) > 64:
        return False
    variant = (
        Variant.objects.filter(merchant_id=turn.merchant.pk, sku=sku, is_active=True)
        .only("pk", "product_id")
        .first()
    )
    if variant is None:
        return False
    product = _product_for(turn, variant.product_id)
    if product is None:
        return False
    chosen = next((v for v in product.active_variants if v.pk == variant.pk), None)
    if greet:
        turn.say(builders.text(common.greeting_text(turn)))
    _product_show(turn, product, variant=chosen)
    return True
