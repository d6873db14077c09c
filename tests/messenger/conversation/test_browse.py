"""Browse flow: categories, product carousels, paging, variants, add to cart, search, and a
constant number of queries per turn whatever the size of the catalog."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from commerce.models import CartLine, Category, Product, ProductImage, Variant
from core.money import Money
from tests.factories import category_create, merchant_create, product_create, variant_create
from tests.messenger.conversation import support
from tests.messenger.conversation.support import Chat, chat_for

pytestmark = pytest.mark.django_db

# Fixtures shared by the conversation tests.
chat, chat_ar, merchant = support.chat, support.chat_ar, support.merchant

BASE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


def _image(product, name: str, **fields) -> ProductImage:
    """An image row without a file (dimensions given, so Django never opens it)."""
    return ProductImage.objects.create(product=product, image=name, width=600, height=600, **fields)


def _lines(chat: Chat) -> dict[int, int]:
    return dict(
        CartLine.objects.filter(cart__customer=chat.customer).values_list("variant_id", "quantity")
    )


# -- categories -----------------------------------------------------------------------------------


def test_shop_lists_categories_with_products_as_quick_replies(chat, merchant):
    shirts = category_create(merchant=merchant, name="Shirts", name_ar="قمصان", position=1)
    shoes = category_create(merchant=merchant, name="Shoes", name_ar="أحذية", position=2)
    category_create(merchant=merchant, name="Empty")
    category_create(merchant=merchant, name="Hidden", is_active=False)
    for category in (shirts, shoes):
        variant_create(product=product_create(merchant=merchant, category=category))
    # A category whose only product has no active variant is not offered either.
    inactive = category_create(merchant=merchant, name="Nothing to buy")
    variant_create(product=product_create(merchant=merchant, category=inactive), is_active=False)

    [message] = chat.tap("SHOP", text="Shop")

    assert message["text"] == "What are you shopping for today?"
    assert Chat.quick_reply_titles(message) == ["Shirts", "Shoes"]
    assert Chat.quick_reply_payloads(message) == [f"CATEGORY:{shirts.pk}", f"CATEGORY:{shoes.pk}"]


def test_categories_in_arabic(chat_ar, merchant):
    shirts = category_create(merchant=merchant, name="Shirts", name_ar="قمصان")
    variant_create(product=product_create(merchant=merchant, category=shirts))

    [message] = chat_ar.say("تسوق")

    assert message["text"] == "ماذا تبحث عنه اليوم؟"
    assert Chat.quick_reply_titles(message) == ["قمصان"]


def test_more_than_thirteen_categories_page_with_more(chat, merchant):
    categories = [
        category_create(merchant=merchant, name=f"Category {i:02d}", position=i) for i in range(15)
    ]
    for category in categories:
        variant_create(product=product_create(merchant=merchant, category=category))

    [first] = chat.tap("SHOP")
    assert len(first["quick_replies"]) == 13
    assert Chat.quick_reply_payloads(first)[-1] == "SHOP:page=2"
    assert Chat.quick_reply_titles(first)[-1] == "More"

    [second] = chat.tap("SHOP:page=2")
    assert Chat.quick_reply_payloads(second) == [f"CATEGORY:{c.pk}" for c in categories[12:]]


def test_shop_without_categories_shows_all_products(chat, merchant):
    variant_create(product=product_create(merchant=merchant, title="Lonely product"))

    [carousel] = chat.tap("SHOP")

    assert [e["title"] for e in Chat.elements(carousel)] == ["Lonely product"]


# -- product carousels ----------------------------------------------------------------------------


@pytest.fixture
def shirts(merchant) -> Category:
    return category_create(merchant=merchant, name="Shirts", name_ar="قمصان")


def test_category_carousel_cards(chat, merchant, shirts):
    linen = product_create(
        merchant=merchant, category=shirts, title="Linen shirt", title_ar="قميص كتان", position=1
    )
    only = variant_create(product=linen, price_minor=2500, stock=40, name="One size")
    _image(linen, "products/1/linen.jpg", position=0)
    _image(linen, "products/1/linen-back.jpg", position=1)
    polo = product_create(merchant=merchant, category=shirts, title="Polo", position=2)
    variant_create(product=polo, price_minor=1800, stock=1, name="S")
    variant_create(product=polo, price_minor=1500, stock=1, name="M")
    gone = product_create(merchant=merchant, category=shirts, title="Sold out tee", position=3)
    variant_create(product=gone, price_minor=900, stock=0)
    # Never shown: inactive, without active variants, other category, other merchant.
    variant_create(product=product_create(merchant=merchant, category=shirts, is_active=False))
    variant_create(product=product_create(merchant=merchant, category=shirts), is_active=False)
    variant_create(product=product_create(merchant=merchant))
    variant_create(product=product_create(merchant=merchant_create()))

    [carousel] = chat.tap(f"CATEGORY:{shirts.pk}", text="Shirts")

    payload = carousel["attachment"]["payload"]
    assert payload["template_type"] == "generic"
    assert payload["image_aspect_ratio"] == "square"
    first, second, third = payload["elements"]
    assert first["title"] == "Linen shirt"
    assert first["subtitle"] == "$25.00"
    assert first["image_url"] == f"{BASE}/media/products/1/linen.jpg"
    assert first["buttons"] == [
        {"type": "postback", "title": "Add to cart", "payload": f"ADD:variant={only.pk},qty=1"},
        {"type": "postback", "title": "Buy now", "payload": f"BUY:variant={only.pk}"},
        {
            "type": "web_url",
            "title": "Details",
            "url": f"{BASE}/shop/{merchant.slug}/{linen.handle}/?lang=en",
            "webview_height_ratio": "tall",
        },
    ]
    assert second["title"] == "Polo"
    assert second["subtitle"] == "from $15.00 · Only 2 left"
    assert "image_url" not in second
    assert [b.get("payload") for b in second["buttons"][:2]] == [
        f"VARIANTS:{polo.pk}",
        f"VARIANTS:id={polo.pk},buy=1",
    ]
    assert third["subtitle"] == "$9.00 · Out of stock"
    assert [b["title"] for b in third["buttons"]] == ["Details"]
    assert Chat.quick_reply_payloads(carousel) == ["SHOP", "CART"]


def test_category_carousel_in_arabic(chat_ar, merchant, shirts):
    linen = product_create(merchant=merchant, category=shirts, title="Linen", title_ar="قميص كتان")
    variant_create(product=linen, price_minor=2500, stock=3)
    variant_create(product=linen, price_minor=3000, stock=0)

    [carousel] = chat_ar.tap(f"CATEGORY:{shirts.pk}")

    [card] = Chat.elements(carousel)
    price = Money(2500, "USD").format("ar")
    assert card["title"] == "قميص كتان"
    assert card["subtitle"] == f"ابتداءً من {price} · بقيت 3 قطع فقط"
    assert [b["title"] for b in card["buttons"]] == ["أضف إلى السلة", "اشترِ الآن", "التفاصيل"]
    assert Chat.quick_reply_titles(carousel) == ["الأقسام", "السلة"]


def test_category_pages_with_more(chat, merchant, shirts):
    products = [
        product_create(merchant=merchant, category=shirts, title=f"Shirt {i:02d}", position=i)
        for i in range(23)
    ]
    for product in products:
        variant_create(product=product)

    [page1] = chat.tap(f"CATEGORY:{shirts.pk}")
    assert [e["title"] for e in Chat.elements(page1)] == [p.title for p in products[:10]]
    assert Chat.quick_reply_payloads(page1) == [f"CATEGORY:id={shirts.pk},page=2", "SHOP", "CART"]

    [page3] = chat.tap(f"CATEGORY:id={shirts.pk},page=3")
    assert [e["title"] for e in Chat.elements(page3)] == [p.title for p in products[20:]]
    assert Chat.quick_reply_payloads(page3) == ["SHOP", "CART"]

    [beyond] = chat.tap(f"CATEGORY:id={shirts.pk},page=9")
    assert beyond["text"] == "There is nothing more to show here."
    assert Chat.quick_reply_payloads(beyond) == ["SHOP", "CART", "MENU"]


@pytest.mark.parametrize(
    "payload",
    ["CATEGORY:{other}", "CATEGORY:999999", "CATEGORY:{hidden}", "PRODUCT:{foreign}"],
)
def test_foreign_or_stale_category_and_product_are_refused_politely(chat, merchant, payload):
    other = category_create(merchant=merchant_create())
    hidden = category_create(merchant=merchant, is_active=False)
    foreign = product_create(merchant=other.merchant)
    variant_create(product=foreign)

    [reply] = chat.tap(payload.format(other=other.pk, hidden=hidden.pk, foreign=foreign.pk))

    assert reply["text"] == "Sorry, that item is no longer available."
    assert Chat.quick_reply_payloads(reply) == ["SHOP", "CART", "MENU"]


@pytest.mark.parametrize(
    "payload", ["CATEGORY:abc", "CATEGORY:id=1,page=0", "CATEGORY:id=1,page=x", "SHOP:page=-1"]
)
def test_malformed_browse_payloads(chat, payload):
    [reply] = chat.tap(payload)

    assert reply["text"].startswith("Sorry, I didn't get that.")


# -- one product, variants ------------------------------------------------------------------------


@pytest.fixture
def tee(merchant):
    product = product_create(merchant=merchant, title="Tee", title_ar="تيشيرت")
    small = variant_create(product=product, name="S", name_ar="صغير", price_minor=1000, stock=8)
    medium = variant_create(product=product, name="M", name_ar="وسط", price_minor=1200, stock=2)
    large = variant_create(product=product, name="L", name_ar="كبير", price_minor=1400, stock=0)
    return product, small, medium, large


def test_product_card_and_its_variants(chat, tee):
    product, small, medium, _large = tee

    card, choice = chat.tap(f"PRODUCT:{product.pk}")

    [element] = Chat.elements(card)
    assert element["title"] == "Tee"
    assert element["subtitle"] == "from $10.00"
    assert choice["text"] == (
        "Tee: which one would you like?\n"
        "• S: $10.00\n"
        "• M: $12.00 (only 2 left)\n"
        "• L: $14.00 (out of stock)"
    )
    assert Chat.quick_reply_payloads(choice) == [
        f"ADD:variant={small.pk},qty=1",
        f"ADD:variant={medium.pk},qty=1",
        "CART",
        "SHOP",
    ]
    assert Chat.quick_reply_titles(choice)[:2] == ["S · $10.00", "M · $12.00"]


def test_variants_for_buy_now_lead_to_checkout(chat_ar, tee):
    product, small, medium, _large = tee

    [choice] = chat_ar.postback(f"VARIANTS:id={product.pk},buy=1")

    assert choice["text"].startswith("تيشيرت: أيّها تريد؟\n• صغير: ")
    assert Chat.quick_reply_payloads(choice)[:2] == [
        f"BUY:variant={small.pk}",
        f"BUY:variant={medium.pk}",
    ]
    assert Chat.quick_reply_titles(choice)[-2:] == ["السلة", "متابعة التسوق"]


def test_variants_all_out_of_stock(chat, merchant):
    product = product_create(merchant=merchant, title="Rare")
    variant_create(product=product, stock=0)
    variant_create(product=product, stock=0)

    [reply] = chat.postback(f"VARIANTS:{product.pk}")

    assert reply["text"] == "Sorry, Rare is out of stock."
    assert Chat.quick_reply_payloads(reply) == ["SHOP", "CART", "MENU"]


# -- add to cart ----------------------------------------------------------------------------------


def test_add_to_cart(chat, tee):
    _product, small, _medium, _large = tee

    [reply] = chat.postback(f"ADD:variant={small.pk},qty=1", title="Add to cart")

    assert reply["text"] == "Added Tee (S) to your cart."
    assert Chat.quick_reply_payloads(reply) == ["CHECKOUT", "SHOP", "CART"]
    assert Chat.quick_reply_titles(reply) == ["Checkout", "Keep shopping", "Cart"]
    assert _lines(chat) == {small.pk: 1}

    [again] = chat.postback(f"ADD:variant={small.pk},qty=2")
    assert again["text"] == "Added 2 × Tee (S) to your cart."
    assert _lines(chat) == {small.pk: 3}


def test_add_to_cart_in_arabic(chat_ar, tee):
    _product, small, _medium, _large = tee

    [reply] = chat_ar.tap(f"ADD:variant={small.pk},qty=1")

    assert reply["text"] == "أُضيف تيشيرت (صغير) إلى سلتك."
    assert Chat.quick_reply_titles(reply) == ["إتمام الشراء", "متابعة التسوق", "السلة"]


@pytest.mark.parametrize(
    ("payload", "answer"),
    [
        ("ADD:variant={foreign},qty=1", "Sorry, that item is no longer available."),
        ("ADD:variant={inactive},qty=1", "Sorry, that item is no longer available."),
        ("ADD:variant={deleted},qty=1", "Sorry, that item is no longer available."),
        ("ADD:variant={hidden_product},qty=1", "Sorry, that item is no longer available."),
        ("BUY:variant={foreign}", "Sorry, that item is no longer available."),
        ("ADD:variant=abc,qty=1", "Sorry, that item is no longer available."),
        ("ADD:variant={small},qty=-1", "Sorry, I didn't get that."),
        ("ADD:variant={small},qty=0", "Sorry, I didn't get that."),
        ("ADD:variant={small},qty=1.5", "Sorry, I didn't get that."),
        ("ADD:variant={small},qty=" + "9" * 30, "Sorry, I didn't get that."),
        ("ADD:qty=1", "Sorry, I didn't get that."),
        ("ADD:variant={small},qty=5000", "You can order at most 10 of this item."),
        ("ADD:variant={out},qty=1", "Sorry, this item is out of stock."),
        ("ADD:variant={small},qty=9", "Only 8 left in stock."),
    ],
)
def test_forged_or_impossible_add_changes_nothing(chat, merchant, tee, payload, answer):
    _product, small, _medium, out = tee
    foreign = variant_create(product=product_create(merchant=merchant_create()))
    inactive = variant_create(product=product_create(merchant=merchant), is_active=False)
    hidden_product = variant_create(product=product_create(merchant=merchant, is_active=False))
    deleted = variant_create(product=product_create(merchant=merchant))
    deleted_id = deleted.pk
    deleted.delete()
    ids = {
        "foreign": foreign.pk,
        "inactive": inactive.pk,
        "deleted": deleted_id,
        "hidden_product": hidden_product.pk,
        "small": small.pk,
        "out": out.pk,
    }

    [reply] = chat.postback(payload.format(**ids))

    assert reply["text"].startswith(answer)
    assert reply["quick_replies"]  # always a way forward
    assert _lines(chat) == {}


def test_buy_now_adds_one_and_starts_checkout(chat, tee):
    _product, small, _medium, _large = tee

    replies = chat.postback(f"BUY:variant={small.pk}", title="Buy now")
    assert replies
    assert _lines(chat) == {small.pk: 1}

    chat.postback(f"BUY:variant={small.pk}")
    assert _lines(chat) == {small.pk: 1}  # tapping Buy now again does not buy two


# -- search ---------------------------------------------------------------------------------------


@pytest.fixture
def catalog(merchant):
    def make(title, title_ar="", description="", **fields):
        product = product_create(
            merchant=merchant, title=title, title_ar=title_ar, description=description, **fields
        )
        variant_create(product=product, price_minor=2000)
        return product

    return {
        "linen": make("Linen shirt", "قميص كتان", "Cool summer linen"),
        "oxford": make("Oxford shirt", "قميص أكسفورد", "Cotton"),
        "shoes": make("Red running shoes", "حذاء جري أحمر", "Light"),
        "hidden": make("Linen trousers", "بنطال كتان", is_active=False),
    }


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("linen", ["Linen shirt"]),
        ("LINEN", ["Linen shirt"]),
        ("shirts", ["Linen shirt", "Oxford shirt"]),
        ("red shoes", ["Red running shoes"]),
        ("summer", ["Linen shirt"]),
        ("cotton shirt", ["Oxford shirt"]),
    ],
)
def test_free_text_searches_products(chat, catalog, query, titles):
    intro, carousel = chat.say(query)

    assert intro["text"] == f"Here is what I found for “{query}”:"
    assert [e["title"] for e in Chat.elements(carousel)] == titles
    assert Chat.quick_reply_payloads(carousel) == ["SHOP", "CART"]


@pytest.mark.parametrize(("query", "titles"), [("قميص", 2), ("القميص", 2), ("كتان", 1)])
def test_arabic_search(chat_ar, catalog, query, titles):
    intro, carousel = chat_ar.say(query)

    assert intro["text"] == f"إليك ما وجدته عن «{query}»:"
    assert len(Chat.elements(carousel)) == titles
    assert Chat.elements(carousel)[0]["title"].startswith("قميص")


@pytest.mark.parametrize(
    ("query", "title"),
    [("حقيبه", "حقيبة جلد"), ("ابيض", "قميص أبيض"), ("إبريق", "ابريق شاي"), ("مقهي", "كوب مقهى")],
)
def test_arabic_search_forgives_hamza_ta_marbuta_and_alef_maqsura(chat_ar, merchant, query, title):
    for arabic in ("حقيبة جلد", "قميص أبيض", "ابريق شاي", "كوب مقهى"):
        variant_create(product=product_create(merchant=merchant, title="x", title_ar=arabic))

    _intro, carousel = chat_ar.say(query)

    assert [e["title"] for e in Chat.elements(carousel)] == [title]


def test_details_opens_the_product_page_in_the_shoppers_language(chat_ar, merchant):
    product = product_create(merchant=merchant, title="Tee", title_ar="تيشيرت")
    variant_create(product=product)

    [card] = chat_ar.postback(f"PRODUCT:{product.pk}")

    [details] = [b for b in Chat.elements(card)[0]["buttons"] if b["type"] == "web_url"]
    assert details == {
        "type": "web_url",
        "title": "التفاصيل",
        "url": f"{BASE}/shop/{merchant.slug}/{product.handle}/?lang=ar",
        "webview_height_ratio": "tall",
    }


def test_search_without_results_offers_categories(chat, merchant, catalog, shirts):
    catalog["linen"].category = shirts
    catalog["linen"].save()

    [reply] = chat.say("umbrella")

    assert reply["text"] == "Sorry, I found nothing for “umbrella”. Try another word, or browse:"
    assert Chat.quick_reply_payloads(reply) == [f"CATEGORY:{shirts.pk}", "CART"]


def test_search_pages_with_more(chat, merchant):
    for i in range(13):
        variant_create(product=product_create(merchant=merchant, title=f"Scarf {i:02d}"))

    _intro, page1 = chat.say("scarf")
    assert len(Chat.elements(page1)) == 10
    assert Chat.quick_reply_payloads(page1) == ["SEARCH_MORE:page=2", "SHOP", "CART"]
    assert chat.customer.conversation_context["search_query"] == "scarf"

    [page2] = chat.tap("SEARCH_MORE:page=2", text="More")
    assert [e["title"] for e in Chat.elements(page2)] == ["Scarf 10", "Scarf 11", "Scarf 12"]


def test_search_more_without_a_search(chat):
    [reply] = chat.tap("SEARCH_MORE:page=2")

    assert reply["text"].startswith("Sorry, I didn't get that.")


def test_search_never_shows_another_merchants_products(chat, merchant):
    variant_create(product=product_create(merchant=merchant_create(), title="Secret linen"))

    [reply] = chat.say("secret")

    assert reply["text"].startswith("Sorry, I found nothing")


# -- queries per turn -----------------------------------------------------------------------------


def _catalog_of(merchant, size: int) -> Category:
    """``size`` products in 20 categories, each with two variants and an image (bulk inserts)."""
    categories = Category.objects.bulk_create(
        Category(merchant=merchant, name=f"Cat {i}", slug=f"cat-{i}", position=i) for i in range(20)
    )
    products = Product.objects.bulk_create(
        Product(
            merchant=merchant,
            category=categories[i % 20],
            title=f"Wool scarf {i}" if i % 2 else f"Silk tie {i}",
            title_ar=f"وشاح صوف {i}",
            handle=f"item-{i}",
            position=i,
        )
        for i in range(size)
    )
    Variant.objects.bulk_create(
        Variant(
            product=product,
            merchant=merchant,
            name=name,
            sku=f"SKU-{product.pk}-{name}",
            price_minor=1000 + i,
            currency="USD",
            stock_on_hand=1 + i % 9,
        )
        for i, product in enumerate(products)
        for name in ("S", "M")
    )
    ProductImage.objects.bulk_create(
        ProductImage(product=product, image=f"products/{product.pk}.jpg", width=600, height=600)
        for product in products
    )
    _analyze()
    return categories[0]


def _analyze() -> None:
    """Give PostgreSQL's planner the statistics autovacuum would have gathered by now.

    The rows above are still uncommitted (the test's transaction), so autovacuum never sees
    them: with tables it believes empty, the planner nests loops over 5000 products and 10000
    variants and one turn takes minutes. A shop's real tables are analyzed.
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        tables = ("category", "product", "variant", "productimage")
        cursor.execute("ANALYZE " + ", ".join(f"commerce_{table}" for table in tables))


def _turns(chat: Chat, category: Category) -> dict[str, dict]:
    product = Product.objects.filter(merchant=category.merchant).order_by("id").first()
    variant = product.variants.order_by("id").first()
    return {
        "welcome": chat.postback_item("GET_STARTED"),
        "shop": chat.quick_reply_item("SHOP"),
        "category": chat.quick_reply_item(f"CATEGORY:{category.pk}"),
        "category page 2": chat.quick_reply_item(f"CATEGORY:id={category.pk},page=2"),
        "product": chat.postback_item(f"PRODUCT:{product.pk}"),
        "variants": chat.postback_item(f"VARIANTS:{product.pk}"),
        "search": chat.text_item("wool scarf"),
        "search more": chat.quick_reply_item("SEARCH_MORE:page=2"),
        "referral": chat.referral_item(f"product-{variant.sku}"),
        "add": chat.postback_item(f"ADD:variant={variant.pk},qty=1"),
        "cart": chat.postback_item("CART"),
        "cart +1": chat.postback_item(f"CART_INC:variant={variant.pk}"),
    }


# The most queries a turn may run, in either catalog. Counted in a test, where the turn's
# transaction is a savepoint (so it counts too), with the test's refresh of the customer. They
# cover the engine's own statements (savepoints, the customer saved when its context changes,
# per reply a dedupe check, a savepoint and an insert) and the flow's reads and writes.
QUERY_BUDGET = {
    "welcome": 17,  # the greeting and the featured carousel
    "shop": 11,
    "category": 14,
    "category page 2": 14,
    "product": 17,
    "variants": 13,
    "search": 18,
    "search more": 13,
    "referral": 14,
    "add": 22,
    "cart": 17,
    "cart +1": 19,
}
# Pages past the end of the small catalog are empty there, so these differ in shape.
SHAPE_DEPENDS_ON_SIZE = {"category page 2", "search more"}


def test_queries_per_turn_do_not_grow_with_the_catalog(graph_stub, django_assert_max_num_queries):
    counts: dict[int, dict[str, int]] = {}
    for size in (10, 5000):
        merchant = merchant_create(name=f"Shop of {size}")
        shopper = chat_for(stub=graph_stub, merchant=merchant)
        turns = _turns(shopper, _catalog_of(merchant, size))
        counts[size] = {}
        for name, item in turns.items():
            budget = django_assert_max_num_queries(QUERY_BUDGET[name], info=f"{name} ({size})")
            with CaptureQueriesContext(connection) as queries, budget:
                rows = shopper.handle(item)
            assert rows, name
            counts[size][name] = len(queries)
    for name in QUERY_BUDGET.keys() - SHAPE_DEPENDS_ON_SIZE:
        assert counts[10][name] == counts[5000][name], name
