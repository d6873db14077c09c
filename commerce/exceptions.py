"""Anticipated commerce errors: each carries a message fit to show the merchant or shopper."""

from core.exceptions import ApplicationError


class CatalogImportError(ApplicationError):
    """A catalog file could not be imported; ``extra["rows"]`` lists every bad row."""

    default_code = "catalog_import_invalid"
