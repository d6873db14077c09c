"""Hypothesis strategies that damage realistic webhook bodies the way hostile or buggy senders do.

Two levels:

- :func:`mutated_document`: the parsed fixture with one to four structural changes at random
  places: a key dropped, a value replaced by arbitrary JSON, retyped (wrapped in a list, turned
  into text), a huge or negative number, exotic Unicode, ``null``, or deep nesting.
- :data:`RAW_DAMAGE` and :func:`damaged_bytes`: byte-level damage of the serialized body that
  no ``json.dumps`` would produce: truncation, invalid UTF-8, ``NaN`` tokens, NUL and lone
  surrogate escapes, a nesting bomb, a byte-order mark, duplicate keys.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

TESTS = Path(__file__).resolve().parent.parent
MESSENGER_FIXTURES = sorted((TESTS / "messenger" / "fixtures").glob("*.json"))
STRIPE_FIXTURES = sorted((TESTS / "payments" / "fixtures").glob("*.json"))

HUGE_NUMBERS = [2**63, -(2**63) - 1, 2**64 + 7, 10**40, -1, 0, 2**53 + 1, 10**18]
NASTY_TEXT = [
    "",
    "\x00",
    "a\x00b",
    "\u202e\u0645\u0631\u062d\u0628\u0627",  # right-to-left override, Arabic
    "🙂" * 50,
    "x" * 3000,
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\ufeffBOM",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "ADD:variant=1,qty=-1",
    "%s%s%(x)s{0}",
]

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(HUGE_NUMBERS)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(NASTY_TEXT)
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)


def _nested(value: Any, depth: int) -> Any:
    for n in range(depth):
        value = [value] if n % 2 else {"x": value}
    return value


def _places(document: Any, path: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys / indexes) into ``document``, the root included."""
    places = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            places += _places(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            places += _places(value, (*path, index))
    return places


def _get(document: Any, path: tuple) -> Any:
    for step in path:
        document = document[step]
    return document


@st.composite
def _one_mutation(draw, document: Any) -> Any:
    places = _places(document)
    path = draw(st.sampled_from(places))
    old = _get(document, path)
    kind = draw(
        st.sampled_from(
            ["drop", "replace", "retype", "huge", "text", "null", "nest", "empty", "add_key"]
        )
    )
    if kind == "drop" and path:
        parent = _get(document, path[:-1])
        del parent[path[-1]]
        return document
    if kind == "add_key" and isinstance(old, dict):
        old[draw(st.text(max_size=10))] = draw(JSON_VALUES)
        return document
    new = {
        "replace": lambda: draw(JSON_VALUES),
        "retype": lambda: draw(st.sampled_from([[old], str(old), {"id": old}, True, 1.5])),
        "huge": lambda: draw(st.sampled_from(HUGE_NUMBERS)),
        "text": lambda: draw(st.sampled_from(NASTY_TEXT) | st.text(max_size=30)),
        "null": lambda: None,
        "nest": lambda: _nested(old, draw(st.integers(20, 200))),
        "empty": lambda: draw(st.sampled_from([{}, [], ""])),
        "drop": lambda: None,  # the root cannot be dropped: null it
        "add_key": lambda: draw(JSON_VALUES),
    }[kind]()
    if not path:
        return new
    _get(document, path[:-1])[path[-1]] = new
    return document


@st.composite
def mutated_document(draw, document: Any, *, max_mutations: int = 4) -> Any:
    """``document`` (not modified) with 1..``max_mutations`` structural mutations applied."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, max_mutations))):
        document = draw(_one_mutation(document))
    return document


def _truncate(body: bytes, n: int) -> bytes:
    return body[: n % max(len(body), 1)]


def _replace_first_string(body: bytes, replacement: bytes) -> bytes:
    start = body.find(b'": "') + 4 if b'": "' in body else body.find(b'":"') + 3
    if start < 4:
        return body
    end = body.find(b'"', start)
    return body[:start] + replacement + body[end:]


RAW_DAMAGE = {
    "truncate": lambda body, n: _truncate(body, n),
    "invalid_utf8": lambda body, n: body[: n % len(body)] + b"\xff\xfe\xc3" + body[n % len(body) :],
    "nan": lambda body, n: (
        body.replace(b'"timestamp": ', b'"timestamp": NaN, "t": ', 1)
        .replace(b'"timestamp":', b'"timestamp":NaN,"t":', 1)
        .replace(b'"created":', b'"created":Infinity,"c":', 1)
    ),
    "nul_escape": lambda body, n: _replace_first_string(body, b"\\u0000"),
    "lone_surrogate": lambda body, n: _replace_first_string(body, b"\\ud800x\\udfff"),
    "nesting_bomb": lambda body, n: _replace_first_string(body, b'"}' + b"[" * 50000),
    "deep_array_value": lambda body, n: body[:-1] + b', "d": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    "bom": lambda body, n: b"\xef\xbb\xbf" + body,
    "duplicate_keys": lambda body, n: b'{"object": "user", "entry": 1, ' + body.lstrip()[1:],
    "not_json": lambda body, n: b"object=page&entry=1",
    "empty": lambda body, n: b"",
}


@st.composite
def damaged_bytes(draw, body: bytes) -> bytes:
    """``body`` with one kind of byte-level damage from :data:`RAW_DAMAGE`."""
    name = draw(st.sampled_from(sorted(RAW_DAMAGE)))
    return RAW_DAMAGE[name](body, draw(st.integers(0, 10_000)))


def load(path: Path) -> Any:
    return json.loads(path.read_bytes())
