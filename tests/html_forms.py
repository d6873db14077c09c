"""What a browser would submit from a form of a rendered page: ``form_values(html, form_id)``.

Reads ``<input>``, ``<select>`` and ``<textarea>`` inside ``<form id=form_id>`` the way a browser
builds the request body: checked boxes only, the selected option (else the first), hidden inputs
included, buttons and file inputs left out. Tests then change a value or two and post it back,
so they exercise the page as rendered (hidden inputs included), not a hand-made body.
"""

from __future__ import annotations

from html.parser import HTMLParser

_NOT_SENT = {"submit", "button", "reset", "image", "file"}


class _FormReader(HTMLParser):
    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id = form_id
        self.inside = False
        self.found = False
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._select_first: str | None = None
        self._select_chosen = False
        self._option_value: str | None = None
        self._option_selected = False
        self._option_text = ""
        self._textarea: str | None = None
        self._textarea_text = ""

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and attributes.get("id") == self.form_id:
            self.inside = self.found = True
            return
        if not self.inside:
            return
        name = attributes.get("name")
        if tag == "input" and name:
            kind = (attributes.get("type") or "text").lower()
            if kind in _NOT_SENT:
                return
            if kind in {"checkbox", "radio"}:
                if "checked" in attributes:
                    self.values[name] = attributes.get("value") or "on"
                return
            self.values[name] = attributes.get("value") or ""
        elif tag == "select" and name:
            self._select, self._select_first, self._select_chosen = name, None, False
        elif tag == "option" and self._select is not None:
            self._option_value = attributes.get("value")
            self._option_selected = "selected" in attributes
            self._option_text = ""
        elif tag == "textarea" and name:
            self._textarea, self._textarea_text = name, ""

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea_text += data
        elif self._option_value is None and self._select is not None:
            self._option_text += data

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "option" and self._select is not None:
            value = self._option_value if self._option_value is not None else self._option_text
            if self._select_first is None:
                self._select_first = value
            if self._option_selected and not self._select_chosen:
                self.values[self._select] = value
                self._select_chosen = True
            self._option_value = None
        elif tag == "select" and self._select is not None:
            if not self._select_chosen and self._select_first is not None:
                self.values[self._select] = self._select_first
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values[self._textarea] = self._textarea_text.removeprefix("\n")
            self._textarea = None


def form_values(html: str | bytes, form_id: str) -> dict[str, str]:
    """The fields ``<form id=form_id>`` would send, as ``{name: value}``."""
    if isinstance(html, bytes):
        html = html.decode()
    reader = _FormReader(form_id)
    reader.feed(html)
    assert reader.found, f"no <form id={form_id!r}> on the page"
    return reader.values
