"""Write many rows, each with its own values, in a few statements.

Django's ``bulk_update`` builds a ``CASE WHEN pk = ...`` expression per row and field, which
takes it about a millisecond each: 12 s for 10,000 changed prices. Joining the table to a list
of ``VALUES`` does the same in one statement per thousand rows, in well under a second
(PostgreSQL, and SQLite from 3.33; other databases get one ``UPDATE`` per row).

This is a statement builder, like ``QuerySet.update``: it writes exactly the columns it is
given. Callers that write back attributes read into instances check them first with
``core.models.service_owned_fields_refuse``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connections, router

BATCH_SIZE = 1000


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _values_update_supported(connection) -> bool:
    """``WITH data AS (VALUES ...) UPDATE ... FROM data``: PostgreSQL, and SQLite from 3.33."""
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and connection.Database.sqlite_version_info >= (3, 33)


def values_update(
    model,
    rows: Sequence[Sequence[Any]],
    *,
    fields: Sequence[str],
    constants: dict[str, Any] | None = None,
) -> None:
    """Write ``fields`` of each row: ``rows`` are ``(pk, value of fields[0], ...)`` tuples.

    ``constants`` (e.g. ``{"updated_at": now}``) are set on every written row.
    """
    if not rows:
        return
    constants = constants or {}
    connection = connections[router.db_for_write(model)]
    meta = model._meta
    targets = [meta.get_field(name) for name in fields]
    if not _values_update_supported(connection):
        for pk, *values in rows:
            model._base_manager.filter(pk=pk).update(
                **{field.attname: value for field, value in zip(targets, values, strict=True)},
                **constants,
            )
        return

    quote = connection.ops.quote_name
    table, data, pk = quote(meta.db_table), quote("data"), quote(meta.pk.column)
    columns = [meta.pk, *targets]
    # One CAST per value: VALUES has no column types, and PostgreSQL would guess text.
    row_sql = "({})".format(
        ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in columns)
    )
    column_list = ", ".join(quote(field.column) for field in columns)
    assignments = [f"{quote(field.column)} = {data}.{quote(field.column)}" for field in targets]
    constant_params = []
    for name, value in constants.items():
        field = meta.get_field(name)
        assignments.append(f"{quote(field.column)} = %s")
        constant_params.append(field.get_db_prep_save(value, connection))
    max_params = connection.features.max_query_params or 65_000
    batch_size = min(BATCH_SIZE, (max_params - len(constant_params)) // len(columns))
    with connection.cursor() as cursor:
        for batch in _chunks(rows, batch_size):
            params: list[Any] = []
            for row in batch:
                params.extend(
                    field.get_db_prep_save(value, connection)
                    for field, value in zip(columns, row, strict=True)
                )
            params.extend(constant_params)
            # Only model metadata is interpolated (quoted); every value is a parameter.
            values = ", ".join([row_sql] * len(batch))
            sql = (
                f"WITH {data} ({column_list}) AS (VALUES {values}) "  # noqa: S608
                f"UPDATE {table} SET {', '.join(assignments)} "
                f"FROM {data} WHERE {table}.{pk} = {data}.{pk}"
            )
            cursor.execute(sql, params)
