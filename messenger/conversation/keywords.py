"""Free-text keywords in English and Arabic, mapped to payloads. Pure: no database.

Only a whole message matches ("cart", "my cart", "سلة التسوق"), after normalizing case,
punctuation, Arabic diacritics and letter variants, so a search such as "cart toy" stays a search.
"""

from __future__ import annotations

import re
import unicodedata

# Arabic: tashkeel (harakat, shadda, sukun...), superscript alef and tatweel carry no meaning for
# matching; hamza-carrying alefs, alef maqsura and ta marbuta are often typed as their bare forms.
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه"})
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)
_SPACES = re.compile(r"\s+")


def text_normalize(text: str) -> str:
    """Lower-case, Arabic-normalized text without punctuation or repeated spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS)
    text = _PUNCTUATION.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


_PHRASES: dict[str, tuple[str, ...]] = {
    "GET_STARTED": (
        "hi",
        "hello",
        "hey",
        "hiya",
        "good morning",
        "good evening",
        "start",
        "get started",
        "مرحبا",
        "مرحبا بك",
        "اهلا",
        "اهلا وسهلا",
        "اهلين",
        "هلا",
        "السلام عليكم",
        "سلام عليكم",
        "سلام",
        "صباح الخير",
        "مساء الخير",
        "ابدا",
    ),
    "MENU": (
        "menu",
        "main menu",
        "home",
        "back",
        "cancel",
        "stop",
        "options",
        "القائمه",
        "القائمه الرئيسيه",
        "قائمه",
        "الرئيسيه",
        "رجوع",
        "الغاء",
    ),
    "SHOP": (
        "shop",
        "store",
        "browse",
        "products",
        "catalog",
        "catalogue",
        "categories",
        "shop now",
        "keep shopping",
        "تسوق",
        "تسوق الان",
        "المتجر",
        "متجر",
        "المنتجات",
        "منتجات",
        "الاقسام",
        "الفئات",
        "تصفح",
    ),
    "CART": (
        "cart",
        "my cart",
        "view cart",
        "show cart",
        "basket",
        "my basket",
        "bag",
        "my bag",
        "السله",
        "سله",
        "سلتي",
        "سله التسوق",
        "عربه التسوق",
        "عربتي",
    ),
    "CHECKOUT": (
        "checkout",
        "check out",
        "pay",
        "الدفع",
        "ادفع",
        "اتمام الشراء",
        "اتمام الطلب",
    ),
    "ORDERS": (
        "orders",
        "my orders",
        "order",
        "my order",
        "order status",
        "track",
        "track order",
        "tracking",
        "طلباتي",
        "الطلبات",
        "طلبي",
        "حاله الطلب",
        "تتبع",
        "تتبع الطلب",
    ),
    "HELP": (
        "help",
        "support",
        "contact",
        "agent",
        "human",
        "talk to a person",
        "مساعده",
        "المساعده",
        "ساعدني",
        "الدعم",
        "تواصل",
    ),
    "LANG:en": ("english", "in english", "انجليزي", "الانجليزيه", "انكليزي", "الانكليزيه"),
    "LANG:ar": ("عربي", "العربيه", "عربيه", "arabic", "in arabic"),
}

_KEYWORDS: dict[str, str] = {
    text_normalize(phrase): payload for payload, phrases in _PHRASES.items() for phrase in phrases
}


def keyword_payload(text: str) -> str | None:
    """The payload a whole message stands for (``"CART"``, ``"LANG:ar"``...), else ``None``."""
    return _KEYWORDS.get(text_normalize(text))
