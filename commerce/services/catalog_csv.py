"""Product catalog CSV import and export: one row per variant, all or nothing.

File format (what :func:`catalog_csv_export` writes and :func:`catalog_csv_import` reads)

- UTF-8 (a BOM, as Excel writes it, is fine), comma-separated (a header with semicolons and no
  commas is read as semicolon-separated), a header row naming the columns in any order.
- Required columns: ``handle``, ``title``, ``sku``, ``price``. Optional: ``title_ar``,
  ``description``, ``description_ar``, ``category``, ``category_name``, ``category_name_ar``,
  ``product_active``, ``variant_name``, ``variant_name_ar``, ``options``, ``currency``, ``stock``,
  ``stock_at_export``, ``variant_active``. Any other column is an error.
- Rows sharing a ``handle`` are the variants of one product; the product columns (``title``...
  ``product_active``) and a category's names must agree across its rows.
- A variant is matched by ``sku`` within the product; a SKU of *another* product is an error.

What a cell means

- A column left out of the file leaves that field of existing rows alone (new rows get the model
  default): a file of ``handle,title,sku,price,stock`` only updates titles, prices and stock.
- A column present in the file is the truth, empty cells included: empty text clears the text,
  an empty ``category`` removes the category, an empty boolean is ``true``, an empty ``stock``
  is 0, an empty ``currency`` is the merchant's default currency.
- ``stock`` of an existing variant is a count over what the file showed (ADR 0004): the export
  writes the stock twice, in ``stock`` and ``stock_at_export``. A row whose ``stock`` still equals
  its ``stock_at_export`` leaves the stock alone, whatever sales happened since the export; a
  changed one applies only if the shop's stock is still ``stock_at_export`` (or already the new
  number), else the row is refused with the current stock and nothing is imported. Without that
  column (or with an empty cell) ``stock`` is the count as of the import.
- ``price`` is in major units with a dot ("12.50" USD, "500" JPY, "1.250" KWD) and may not have
  more decimals than the currency allows; it is converted exactly with ``Money.from_major``.
- ``options`` is ``size=M;colour=Red`` (``\\;``, ``\\=`` and ``\\\\`` escape the separators) or a
  JSON object.
- An empty ``variant_name`` is made from the option values ("M / Red"), else the product title.
- ``category_name``/``category_name_ar`` name a category the import creates (default: the slug
  made readable) and rename an existing one when given.
- Existing variants keep their position; new ones go after them in file order. Products and
  variants missing from the file are left alone: the import never deletes.

Cells starting with ``= + - @`` (which spreadsheets run as formulas) are exported with a leading
apostrophe, which the import removes again, so the round trip stays exact.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import IO, Any

from django.conf import settings
from django.core.validators import slug_unicode_re
from django.db import IntegrityError, connection, transaction
from django.db.models import Prefetch, QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from commerce.exceptions import CatalogImportError, StockChangedError
from commerce.models import Category, Merchant, Product, Variant
from commerce.services.stock import StockCount, stock_on_hand_set
from core.bulk import values_update
from core.currencies import UnknownCurrencyError, normalize_currency
from core.models import service_owned_fields_refuse
from core.money import Money

__all__ = [
    "COLUMNS",
    "ImportResult",
    "RowError",
    "ValidationReport",
    "catalog_csv_export",
    "catalog_csv_import",
    "catalog_csv_validate",
]

COLUMNS: tuple[str, ...] = (
    "handle",
    "title",
    "title_ar",
    "description",
    "description_ar",
    "category",
    "category_name",
    "category_name_ar",
    "product_active",
    "sku",
    "variant_name",
    "variant_name_ar",
    "options",
    "price",
    "currency",
    "stock",
    "stock_at_export",
    "variant_active",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("handle", "title", "sku", "price")
CATEGORY_NAME_COLUMNS: tuple[str, ...] = ("category_name", "category_name_ar")

DEFAULT_MAX_ROWS = 50_000
# Rows per INSERT/UPDATE statement (backends with a lower parameter limit use smaller batches)
# and ids per ``pk__in`` lookup (below SQLite's historical 999-parameter limit).
WRITE_BATCH_SIZE = 1000
READ_BATCH_SIZE = 900

_MAX_STOCK = 2**31 - 1  # IntegerField
_MAX_PRICE_MINOR = 2**63 - 1  # BigIntegerField
_PRICE_RE = re.compile(r"-?\d+(\.\d+)?")
_STOCK_RE = re.compile(r"-?\d+")
_TRUE = frozenset({"", "true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# Spreadsheets treat cells starting with these as formulas (CSV injection).
_FORMULA_RE = re.compile(r"'*[=+\-@\t\r]")
_ESCAPED_FORMULA_RE = re.compile(r"'+[=+\-@\t\r]")

# Column -> model field whose max_length bounds it.
_MAX_LENGTHS: dict[str, int] = {
    "handle": Product._meta.get_field("handle").max_length,
    "title": Product._meta.get_field("title").max_length,
    "title_ar": Product._meta.get_field("title_ar").max_length,
    "description": Product._meta.get_field("description").max_length,
    "description_ar": Product._meta.get_field("description_ar").max_length,
    "category": Category._meta.get_field("slug").max_length,
    "category_name": Category._meta.get_field("name").max_length,
    "category_name_ar": Category._meta.get_field("name_ar").max_length,
    "sku": Variant._meta.get_field("sku").max_length,
    "variant_name": Variant._meta.get_field("name").max_length,
    "variant_name_ar": Variant._meta.get_field("name_ar").max_length,
}

# Product columns (with ``category``) -> attribute: they must agree across the product's rows.
_PRODUCT_FIELDS = {
    "title": "title",
    "title_ar": "title_ar",
    "description": "description",
    "description_ar": "description_ar",
    "product_active": "is_active",
}


# -- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowError:
    """Everything wrong with one row; ``line`` is 1-based as in the file (the header is 1)."""

    line: int
    errors: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "errors": list(self.errors)}


@dataclass
class _Row:
    """One valid row, parsed. Keys of ``product``/``variant`` are the columns present."""

    line: int
    handle: str
    sku: str
    product: dict[str, Any]
    category_slug: str | None  # None: no category column; "": no category
    category_names: dict[str, str]
    variant: dict[str, Any]
    stock_seen: int | None = None  # the ``stock_at_export`` cell


@dataclass
class ValidationReport:
    """The outcome of :func:`catalog_csv_validate`.

    ``file_errors`` are problems with the file as a whole (encoding, size, header); when there are
    any, rows were not checked. ``row_errors`` lists every bad row in file order.
    """

    row_count: int = 0
    file_errors: list[str] = field(default_factory=list)
    row_errors: list[RowError] = field(default_factory=list)
    _rows: list[_Row] = field(default_factory=list, repr=False)
    _product_ids: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def is_valid(self) -> bool:
        return not self.file_errors and not self.row_errors

    def error_rows(self) -> list[dict[str, Any]]:
        """``[{"line": n, "errors": [...]}, ...]``, the shape of ``CatalogImportError.extra``."""
        return [row.as_dict() for row in self.row_errors]


@dataclass(frozen=True)
class ImportResult:
    """What :func:`catalog_csv_import` wrote. "Unchanged" rows matched the file already."""

    rows: int
    products_created: int
    products_updated: int
    products_unchanged: int
    variants_created: int
    variants_updated: int
    variants_unchanged: int
    categories_created: int
    categories_updated: int


# -- reading the file -------------------------------------------------------------------------


def _max_rows() -> int:
    return getattr(settings, "CATALOG_IMPORT_MAX_ROWS", DEFAULT_MAX_ROWS)


def _read_text(file: IO[bytes] | bytes) -> tuple[str | None, str | None]:
    """The decoded text of the upload, or an error message (size, encoding, emptiness)."""
    limit = settings.CATALOG_IMPORT_MAX_BYTES
    too_big = _("The file is larger than %(limit)s, the most one import accepts.") % {
        "limit": filesizeformat(limit)
    }
    if isinstance(file, bytes | bytearray):
        data = bytes(file)
    else:
        size = getattr(file, "size", None)
        if size is not None and size > limit:
            return None, too_big
        if hasattr(file, "seek"):
            file.seek(0)
        data = file.read(limit + 1)
    if len(data) > limit:
        return None, too_big
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, _(
            "The file is not UTF-8 text (the first bad byte is on line %(line)d). In Excel, "
            "save it with “CSV UTF-8 (Comma delimited)”."
        ) % {"line": line}
    if "\x00" in text:
        return None, _("The file contains NUL bytes: it is not a CSV text file.")
    if not text.strip():
        return None, _("The file is empty.")
    return text, None


def _delimiter(text: str) -> str:
    """Comma, unless the header uses semicolons and no commas (Excel in many locales)."""
    header = text.split("\n", 1)[0]
    return ";" if ";" in header and "," not in header else ","


def _unescape_formula(value: str) -> str:
    return value[1:] if _ESCAPED_FORMULA_RE.match(value) else value


def _escape_formula(value: str) -> str:
    return "'" + value if _FORMULA_RE.match(value) else value


# -- parsing cells ----------------------------------------------------------------------------


def _parse_bool(value: str) -> bool | None:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    return None


def _split_unescaped(text: str, separator: str) -> list[str] | None:
    """Split on each ``separator`` not escaped by a backslash; None if a backslash ends the text.

    Escapes are kept (``_unescape`` removes them) so that the parts can be split again.
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped is None:
                return None
            current.append("\\" + escaped)  # kept escaped until the last split
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text, flags=re.DOTALL)


def _parse_options(value: str) -> tuple[dict[str, Any] | None, str | None]:
    """``size=M;colour=Red`` or a JSON object -> dict, or an error message."""
    if not value:
        return {}, None
    if value.startswith("{"):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None, _("options: not valid JSON.")
        if not isinstance(parsed, dict) or not all(
            isinstance(v, str | int | float | bool) for v in parsed.values()
        ):
            return None, _("options: JSON options must be an object of plain values.")
        return parsed, None
    pairs = _split_unescaped(value, ";")
    if pairs is None:
        return None, _("options: a backslash must be followed by the character it escapes.")
    options: dict[str, str] = {}
    for pair in pairs:
        if not pair.strip():
            continue
        key_value = _split_unescaped(pair, "=")
        if key_value is None or len(key_value) != 2:
            return None, _(
                "options: “%(pair)s” is not name=value; write options as size=M;colour=Red."
            ) % {"pair": _unescape(pair)}
        key, option_value = (_unescape(part).strip() for part in key_value)
        if not key or not option_value:
            return None, _("options: “%(pair)s” needs both a name and a value.") % {
                "pair": _unescape(pair)
            }
        if key in options:
            return None, _("options: “%(key)s” is given twice.") % {"key": key}
        options[key] = option_value
    return options, None


def _format_options(options: Any) -> str:
    if not options:
        return ""
    if isinstance(options, dict) and all(isinstance(v, str) for v in options.values()):

        def escape(text: str) -> str:
            return text.replace("\\", "\\\\").replace(";", "\\;").replace("=", "\\=")

        text = ";".join(f"{escape(key)}={escape(value)}" for key, value in options.items())
        if _parse_options(text) == (options, None):  # else (empty values...) JSON round-trips
            return text
    return json.dumps(options, ensure_ascii=False, sort_keys=True)


def _prettify_slug(slug: str) -> str:
    words = re.sub(r"[-_]+", " ", slug).strip()
    return (words[:1].upper() + words[1:])[: _MAX_LENGTHS["category_name"]] or slug


@dataclass
class _Existing:
    """What the database already holds for the merchant, read in a fixed number of queries."""

    product_ids: dict[str, int]  # handle -> product id
    variants: dict[str, tuple[int, str]]  # sku -> (product id, currency)
    handles_by_id: dict[int, str]


def _load_existing(merchant: Merchant) -> _Existing:
    product_ids = dict(Product.objects.filter(merchant=merchant).values_list("handle", "pk"))
    variants = {
        sku: (product_id, currency)
        for sku, product_id, currency in Variant.objects.filter(merchant=merchant).values_list(
            "sku", "product_id", "currency"
        )
    }
    return _Existing(
        product_ids=product_ids,
        variants=variants,
        handles_by_id={pk: handle for handle, pk in product_ids.items()},
    )


def _parse_row(
    cells: dict[str, str], *, merchant: Merchant, existing: _Existing
) -> tuple[_Row | None, list[str]]:
    """Check one row on its own (no other rows); return the parsed row or its errors."""
    errors: list[str] = []

    for column in REQUIRED_COLUMNS:
        if not cells.get(column):
            errors.append(_("%(column)s: required.") % {"column": column})
    for column, limit in _MAX_LENGTHS.items():
        value = cells.get(column)
        if value and len(value) > limit:
            errors.append(
                _("%(column)s: %(length)d characters; at most %(limit)d allowed.")
                % {"column": column, "length": len(value), "limit": limit}
            )

    handle = cells["handle"]
    if handle and not slug_unicode_re.match(handle):
        errors.append(
            _("handle: “%(value)s” is not a valid handle; use letters, digits, - and _ only.")
            % {"value": handle}
        )
    category_slug = cells.get("category")
    if category_slug and not slug_unicode_re.match(category_slug):
        errors.append(
            _("category: “%(value)s” is not a valid slug; use letters, digits, - and _ only.")
            % {"value": category_slug}
        )

    product: dict[str, Any] = {}
    variant: dict[str, Any] = {}
    for column, attribute in _PRODUCT_FIELDS.items():
        if column in cells and column != "product_active":
            product[attribute] = cells[column]
    for column, target in (("product_active", product), ("variant_active", variant)):
        if column in cells:
            parsed = _parse_bool(cells[column])
            if parsed is None:
                errors.append(
                    _("%(column)s: “%(value)s” is not one of true, false, yes, no, 1, 0.")
                    % {"column": column, "value": cells[column]}
                )
            target["is_active"] = parsed

    sku = cells["sku"]
    for column, attribute in (("variant_name", "name"), ("variant_name_ar", "name_ar")):
        if column in cells:
            variant[attribute] = cells[column]
    if sku in existing.variants:
        owner_id = existing.variants[sku][0]
        if existing.product_ids.get(handle) != owner_id:
            errors.append(
                _("sku: “%(sku)s” already belongs to the product “%(other)s”.")
                % {"sku": sku, "other": existing.handles_by_id.get(owner_id, "?")}
            )

    if "options" in cells:
        options, error = _parse_options(cells["options"])
        if error:
            errors.append(error)
        variant["options"] = options

    if "stock" in cells:
        stock = _parse_stock("stock", cells["stock"] or "0", errors)
        if stock is not None:
            variant["stock_on_hand"] = stock
    stock_seen = None
    if cells.get("stock_at_export"):
        stock_seen = _parse_stock("stock_at_export", cells["stock_at_export"], errors)

    # Currency: the cell, else (column absent) the existing variant's, else the merchant's.
    currency: str | None = None
    if cells.get("currency"):
        try:
            currency = normalize_currency(cells["currency"])
        except UnknownCurrencyError:
            errors.append(
                _("currency: “%(value)s” is not a known currency code.")
                % {"value": cells["currency"]}
            )
    elif "currency" not in cells and sku in existing.variants:
        currency = existing.variants[sku][1]
    else:
        currency = merchant.default_currency
    if currency:
        variant["currency"] = currency

    raw_price = cells["price"]
    if raw_price and currency:
        if not _PRICE_RE.fullmatch(raw_price):
            errors.append(
                _("price: “%(value)s” is not an amount such as 12.50 (use a dot for decimals).")
                % {"value": raw_price}
            )
        elif Decimal(raw_price) < 0:
            errors.append(_("price: cannot be negative."))
        else:
            try:
                minor = Money.from_major(raw_price, currency).amount_minor
            except ValueError:
                errors.append(
                    _("price: %(value)s has more decimal places than %(currency)s allows (%(n)d).")
                    % {"value": raw_price, "currency": currency, "n": Money(0, currency).exponent}
                )
            else:
                if minor > _MAX_PRICE_MINOR:
                    errors.append(_("price: too large."))
                variant["price_minor"] = minor

    if errors:
        return None, errors
    return (
        _Row(
            line=0,
            handle=handle,
            sku=sku,
            product=product,
            category_slug=category_slug if "category" in cells else None,
            category_names={
                column: cells[column] for column in CATEGORY_NAME_COLUMNS if column in cells
            },
            variant=variant,
            stock_seen=stock_seen,
        ),
        [],
    )


def _parse_stock(column: str, raw: str, errors: list[str]) -> int | None:
    if not _STOCK_RE.fullmatch(raw):
        errors.append(
            _("%(column)s: “%(value)s” is not a whole number.") % {"column": column, "value": raw}
        )
    elif int(raw) < 0:
        errors.append(_("%(column)s: cannot be negative.") % {"column": column})
    elif int(raw) > _MAX_STOCK:
        errors.append(_("%(column)s: too large.") % {"column": column})
    else:
        return int(raw)
    return None


def catalog_csv_validate(*, merchant: Merchant, file: IO[bytes] | bytes) -> ValidationReport:
    """Check a catalog CSV for ``merchant`` without writing anything.

    Reads the merchant's existing handles and SKUs in a fixed number of queries, whatever the
    number of rows. Never raises for bad content: the report lists every problem.
    """
    report = ValidationReport()
    text, error = _read_text(file)
    if error:
        report.file_errors.append(error)
        return report
    assert text is not None

    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    try:
        header_cells = next(reader)
    except csv.Error as exc:
        report.file_errors.append(_("The header row cannot be read: %(error)s") % {"error": exc})
        return report

    header = [cell.strip().lower().replace(" ", "_") for cell in header_cells]
    named = [name for name in header if name]
    unknown = [name for name in dict.fromkeys(named) if name not in COLUMNS]
    duplicated = [name for name in dict.fromkeys(named) if named.count(name) > 1]
    missing = [name for name in REQUIRED_COLUMNS if name not in named]
    if unknown:
        report.file_errors.append(
            _("Unknown columns: %(unknown)s. The columns are: %(columns)s.")
            % {"unknown": ", ".join(unknown), "columns": ", ".join(COLUMNS)}
        )
    if duplicated:
        report.file_errors.append(
            _("These columns appear more than once: %(columns)s.")
            % {"columns": ", ".join(duplicated)}
        )
    if missing:
        report.file_errors.append(
            _("Missing required columns: %(columns)s.") % {"columns": ", ".join(missing)}
        )
    if report.file_errors:
        return report
    # Columns with an empty name (a trailing comma in the header, often) are ignored.
    positions = [(index, name) for index, name in enumerate(header) if name]

    existing = _load_existing(merchant)
    max_rows = _max_rows()
    errors_by_line: dict[int, list[str]] = {}
    rows: list[_Row] = []
    sku_lines: dict[str, int] = {}
    while True:
        start = reader.line_num + 1
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            report.file_errors.append(
                _("Line %(line)d cannot be read as CSV: %(error)s") % {"line": start, "error": exc}
            )
            return report
        line = start
        if not any(cell.strip() for cell in raw):  # blank lines and rows of empty cells
            continue
        report.row_count += 1
        if report.row_count > max_rows:
            report.file_errors.append(
                _("The file has more than %(max)s rows; split it into several files.")
                % {"max": f"{max_rows:,}"}
            )
            return report
        if len(raw) > len(header) and any(cell.strip() for cell in raw[len(header) :]):
            errors_by_line[line] = [
                _("The row has %(cells)d cells but the header has %(columns)d columns.")
                % {"cells": len(raw), "columns": len(header)}
            ]
            continue
        cells = {
            name: _unescape_formula(raw[index].strip()) if index < len(raw) else ""
            for index, name in positions
        }
        row, errors = _parse_row(cells, merchant=merchant, existing=existing)
        sku = cells["sku"]
        if sku in sku_lines:
            errors.append(
                _("sku: “%(sku)s” is already on line %(line)d.")
                % {"sku": sku, "line": sku_lines[sku]}
            )
        elif sku:
            sku_lines[sku] = line
        if errors:
            errors_by_line[line] = errors
        else:
            assert row is not None
            row.line = line
            rows.append(row)

    if report.row_count == 0:
        report.file_errors.append(_("The file has a header but no rows."))
        return report

    _check_products_agree(rows, errors_by_line=errors_by_line)
    report.row_errors = [
        RowError(line=line, errors=tuple(errors)) for line, errors in sorted(errors_by_line.items())
    ]
    report._rows = [row for row in rows if row.line not in errors_by_line]
    report._product_ids = existing.product_ids
    return report


def _check_products_agree(rows: list[_Row], *, errors_by_line: dict[int, list[str]]) -> None:
    """Flag rows whose product fields, or category names, differ from the first such row."""
    first_product_row: dict[str, _Row] = {}
    first_category_row: dict[str, _Row] = {}
    for row in rows:
        errors: list[str] = []
        first = first_product_row.setdefault(row.handle, row)
        if first is not row:
            for column, attribute in [*_PRODUCT_FIELDS.items(), ("category", None)]:
                mine = row.category_slug if attribute is None else row.product.get(attribute)
                theirs = first.category_slug if attribute is None else first.product.get(attribute)
                if mine != theirs:
                    errors.append(
                        _(
                            "%(column)s: differs from line %(line)d, another row of the product "
                            "“%(handle)s”."
                        )
                        % {"column": column, "line": first.line, "handle": row.handle}
                    )
        if row.category_slug:
            # An empty name agrees with any name: it may be given on one row only.
            first_category = first_category_row.setdefault(row.category_slug, row)
            for column in CATEGORY_NAME_COLUMNS:
                mine = row.category_names.get(column)
                theirs = first_category.category_names.get(column)
                if mine and theirs and mine != theirs:
                    errors.append(
                        _("%(column)s: differs from line %(line)d for the category “%(category)s”.")
                        % {
                            "column": column,
                            "line": first_category.line,
                            "category": row.category_slug,
                        }
                    )
        if errors:
            errors_by_line.setdefault(row.line, []).extend(errors)


# -- writing ----------------------------------------------------------------------------------


def catalog_csv_import(*, merchant: Merchant, file: IO[bytes] | bytes) -> ImportResult:
    """Validate the file and write it to ``merchant``'s catalog in one transaction, or nothing.

    Categories, products and variants are created and updated with bulk queries: a few per
    thousand rows, never one per row. Imports for the same merchant run one after the other.
    The caller has checked that the user may edit ``merchant``'s catalog.

    :raises CatalogImportError: the file or a row is bad (nothing is written);
        ``extra["rows"]`` lists every bad row as ``{"line": n, "errors": [...]}`` and
        ``extra["file_errors"]`` the problems with the file as a whole.
    """
    try:
        with transaction.atomic():
            # Serialize imports per merchant (NO KEY: inserts referencing the merchant go on).
            no_key = connection.features.has_select_for_no_key_update
            list(Merchant.objects.select_for_update(no_key=no_key).filter(pk=merchant.pk))
            report = catalog_csv_validate(merchant=merchant, file=file)
            if not report.is_valid:
                raise _invalid(report)
            return _write(merchant=merchant, report=report)
    except IntegrityError:
        # Something else changed the catalog between our checks and our writes.
        raise CatalogImportError(
            _("The catalog changed while importing. Try again."),
            code="catalog_import_conflict",
            extra={"rows": [], "file_errors": []},
        ) from None


def _invalid(report: ValidationReport) -> CatalogImportError:
    if report.file_errors:
        message = " ".join(report.file_errors)
    else:
        count = len(report.row_errors)
        message = ngettext("%(count)d row has errors.", "%(count)d rows have errors.", count) % {
            "count": count
        }
    return CatalogImportError(
        message, extra={"rows": report.error_rows(), "file_errors": list(report.file_errors)}
    )


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _apply(obj, values: dict[str, Any]) -> set[str]:
    """Set ``values`` on ``obj``; return the attributes that changed."""
    changed = set()
    for attribute, value in values.items():
        if getattr(obj, attribute) != value:
            setattr(obj, attribute, value)
            changed.add(attribute)
    return changed


def _bulk_update(model, objs: list, attributes: set[str], *, now) -> None:
    """Write ``attributes`` of ``objs`` (each row its own values) and stamp ``updated_at``.

    Never a service-owned column (stock on hand goes through ``stock_on_hand_set``).
    """
    if not objs:
        return
    service_owned_fields_refuse(model, attributes)
    names = sorted(attributes)
    for obj in objs:
        obj.updated_at = now
    rows = [(obj.pk, *(getattr(obj, name) for name in names)) for obj in objs]
    values_update(model, rows, fields=names, constants={"updated_at": now})


def _write(*, merchant: Merchant, report: ValidationReport) -> ImportResult:
    """Write a valid report. Call inside the transaction that validated it."""
    now = timezone.now()
    rows = report._rows
    rows_by_handle: dict[str, list[_Row]] = {}
    for row in rows:
        rows_by_handle.setdefault(row.handle, []).append(row)

    category_ids, categories_created, categories_updated = _write_categories(
        merchant=merchant, rows=rows, now=now
    )

    # Products: the first row of each handle carries the product's fields (all rows agree).
    existing_ids = [report._product_ids[h] for h in rows_by_handle if h in report._product_ids]
    existing_products: dict[str, Product] = {}
    for chunk in _chunks(existing_ids, READ_BATCH_SIZE):
        for product in Product.objects.filter(pk__in=chunk):
            existing_products[product.handle] = product
    new_products: list[Product] = []
    changed_products: list[Product] = []
    product_fields: set[str] = set()
    for handle, product_rows in rows_by_handle.items():
        first = product_rows[0]
        values = dict(first.product)
        if first.category_slug is not None:
            values["category_id"] = category_ids.get(first.category_slug)
        product = existing_products.get(handle)
        if product is None:
            new_products.append(Product(merchant=merchant, handle=handle, **values))
        elif changed := _apply(product, values):
            product_fields |= changed
            changed_products.append(product)
    Product.objects.bulk_create(new_products, batch_size=WRITE_BATCH_SIZE)
    _bulk_update(Product, changed_products, product_fields, now=now)
    product_ids = {product.handle: product.pk for product in new_products}
    if any(pk is None for pk in product_ids.values()):  # backends that return no ids
        product_ids = dict(Product.objects.filter(merchant=merchant).values_list("handle", "pk"))
    product_ids.update({handle: product.pk for handle, product in existing_products.items()})

    # Variants of the products in the file, matched by SKU.
    variants_by_sku: dict[str, Variant] = {}
    next_position: dict[int, int] = {}
    for chunk in _chunks([product.pk for product in existing_products.values()], READ_BATCH_SIZE):
        for variant in Variant.objects.filter(product_id__in=chunk):
            variants_by_sku[variant.sku] = variant
            next_position[variant.product_id] = max(
                next_position.get(variant.product_id, 0), variant.position + 1
            )
    new_variants: list[Variant] = []
    changed_variants: list[Variant] = []
    variant_fields: set[str] = set()
    counts: dict[int, tuple[StockCount, _Row]] = {}
    for row in rows:
        product_id = product_ids[row.handle]
        values = dict(row.variant)
        # An empty name cell, or a new variant without the column: make up a name.
        if not values.get("name") and ("name" in values or row.sku not in variants_by_sku):
            values["name"] = _default_variant_name(row, rows_by_handle[row.handle][0])
        variant = variants_by_sku.get(row.sku)
        if variant is None:
            position = next_position.get(product_id, 0)
            next_position[product_id] = position + 1
            values.setdefault("currency", merchant.default_currency)
            new_variants.append(
                Variant(
                    product_id=product_id,
                    merchant=merchant,
                    sku=row.sku,
                    position=position,
                    **values,
                )
            )
        else:
            if "stock_on_hand" in values:
                # Read in this transaction, but not locked: stock_on_hand_set checks it again.
                seen = variant.stock_on_hand if row.stock_seen is None else row.stock_seen
                value = values.pop("stock_on_hand")
                if value != seen:
                    counts[variant.pk] = (StockCount(variant.pk, value=value, seen=seen), row)
            if changed := _apply(variant, values):
                variant_fields |= changed
                changed_variants.append(variant)
    Variant.objects.bulk_create(new_variants, batch_size=WRITE_BATCH_SIZE)
    _bulk_update(Variant, changed_variants, variant_fields, now=now)
    restocked = _write_stock_counts(counts)
    updated_variants = len({variant.pk for variant in changed_variants} | restocked)

    return ImportResult(
        rows=len(rows),
        products_created=len(new_products),
        products_updated=len(changed_products),
        products_unchanged=len(existing_products) - len(changed_products),
        variants_created=len(new_variants),
        variants_updated=updated_variants,
        variants_unchanged=len(rows) - len(new_variants) - updated_variants,
        categories_created=categories_created,
        categories_updated=categories_updated,
    )


def _write_stock_counts(counts: dict[int, tuple[StockCount, _Row]]) -> set[int]:
    """Apply the stock cells that changed; the ids of the variants whose stock changed.

    :raises CatalogImportError: a variant's stock moved since the export (or while importing).
    """
    try:
        return stock_on_hand_set(counts=[count for count, _row in counts.values()])
    except StockChangedError as exc:
        errors = []
        for moved in exc.extra["variants"]:
            row = counts[moved["variant_id"]][1]
            if row.stock_seen is None:
                message = _(
                    "stock: the stock of %(sku)s changed while importing (it is now "
                    "%(current)d). Import the file again."
                )
            else:
                message = _(
                    "stock: the stock of %(sku)s is now %(current)d, not %(seen)d as in "
                    "stock_at_export (a sale or another edit since the export). Check the stock "
                    "cell, set stock_at_export to %(current)d and import again, or export again."
                )
            errors.append(RowError(line=row.line, errors=(message % moved,)))
        errors.sort(key=lambda error: error.line)
        message = ngettext(
            "The stock of %(count)d variant changed since the file was read; nothing was imported.",
            "The stock of %(count)d variants changed since the file was read; nothing was "
            "imported.",
            len(errors),
        ) % {"count": len(errors)}
        raise CatalogImportError(
            message,
            code="catalog_stock_changed",
            extra={"rows": [error.as_dict() for error in errors], "file_errors": []},
        ) from None


def _default_variant_name(row: _Row, first: _Row) -> str:
    limit = _MAX_LENGTHS["variant_name"]
    options = row.variant.get("options") or {}
    if options:
        return " / ".join(str(value) for value in options.values())[:limit]
    return (first.product.get("title") or row.sku)[:limit]


def _write_categories(
    *, merchant: Merchant, rows: list[_Row], now
) -> tuple[dict[str, int], int, int]:
    """Create missing categories and rename named ones; return ``{slug: id}`` and the counts."""
    wanted: dict[str, dict[str, str]] = {}
    for row in rows:
        if row.category_slug:
            names = wanted.setdefault(row.category_slug, {})
            for column, value in row.category_names.items():
                if value:
                    names.setdefault(column, value)
    if not wanted:
        return {}, 0, 0
    existing = {category.slug: category for category in Category.objects.filter(merchant=merchant)}
    created: list[Category] = []
    changed: list[Category] = []
    for slug, names in wanted.items():
        values = {"name": names.get("category_name"), "name_ar": names.get("category_name_ar")}
        values = {attribute: value for attribute, value in values.items() if value}
        category = existing.get(slug)
        if category is None:
            values.setdefault("name", _prettify_slug(slug))
            created.append(Category(merchant=merchant, slug=slug, **values))
        elif _apply(category, values):
            changed.append(category)
    Category.objects.bulk_create(created, batch_size=WRITE_BATCH_SIZE)
    _bulk_update(Category, changed, {"name", "name_ar"}, now=now)
    ids = {slug: category.pk for slug, category in existing.items()}
    ids.update({category.slug: category.pk for category in created})
    if any(pk is None for pk in ids.values()):
        ids = dict(Category.objects.filter(merchant=merchant).values_list("slug", "pk"))
    return ids, len(created), len(changed)


# -- export -----------------------------------------------------------------------------------


class _Echo:
    """A write-only file whose ``write`` returns the text, for streaming ``csv.writer`` output."""

    def write(self, value: str) -> str:
        return value


def catalog_csv_export(*, queryset_of_products: QuerySet[Product]) -> Iterator[str]:
    """Yield the products of ``queryset_of_products`` as CSV text, in the import format.

    One row per variant, ordered by merchant, handle and variant position; importing the output
    into the same merchant changes nothing. Starts with a BOM so that Excel reads it as UTF-8.
    Reads in chunks of a thousand products, two queries per chunk (products with their
    categories, then their variants). The caller has scoped the queryset to what the user may see.
    """
    products = (
        Product.objects.filter(pk__in=queryset_of_products.values("pk"))
        .select_related("category")
        .order_by("merchant_id", "handle")
    )
    writer = csv.writer(_Echo())

    def generate() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(COLUMNS)
        variants = Variant.objects.order_by("position", "pk")
        with_variants = products.prefetch_related(Prefetch("variants", queryset=variants))
        for product in with_variants.iterator(chunk_size=1000):
            for variant in product.variants.all():
                yield writer.writerow(_export_row(product, variant))

    return generate()


def _export_row(product: Product, variant: Variant) -> list[str]:
    category = product.category

    def flag(value: bool) -> str:
        return "true" if value else "false"

    values: Iterable[str] = (
        product.handle,
        product.title,
        product.title_ar,
        product.description,
        product.description_ar,
        category.slug if category else "",
        category.name if category else "",
        category.name_ar if category else "",
        flag(product.is_active),
        variant.sku,
        variant.name,
        variant.name_ar,
        _format_options(variant.options),
        f"{Money(variant.price_minor, variant.currency).to_major():f}",
        variant.currency,
        str(variant.stock_on_hand),
        str(variant.stock_on_hand),  # stock_at_export
        flag(variant.is_active),
    )
    return [_escape_formula(value) for value in values]
