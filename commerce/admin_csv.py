"""Product CSV import and export in the admin (filled in by the CSV work)."""


class ProductCSVAdminMixin:
    pass
