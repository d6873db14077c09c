"""PostgreSQL-only indexes for the dashboard's order search; nothing on other databases.

- a trigram index on ``Order.number`` answers ``number LIKE '%-1042'`` (an order typed by its
  sequence number alone) without reading every order;
- ``upper(first_name)`` / ``upper(last_name)`` with ``text_pattern_ops`` answer the customer
  name search (``istartswith``, which Django writes as ``UPPER(col::text) LIKE UPPER('x%')``)
  whatever the database's collation.

``pg_trgm`` is a trusted extension (PostgreSQL 13+): the database owner may create it.
"""

from django.db import migrations

INDEXES = [
    (
        "order_number_trgm_idx",
        "commerce_order USING gin (number gin_trgm_ops)",
    ),
    (
        "customer_first_name_upper_idx",
        "commerce_customer (upper(first_name::text) text_pattern_ops)",
    ),
    (
        "customer_last_name_upper_idx",
        "commerce_customer (upper(last_name::text) text_pattern_ops)",
    ),
]


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for name, target in INDEXES:
        schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _target in INDEXES:
        schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("commerce", "0004_dashboard_figures_and_indexes")]

    operations = [migrations.RunPython(create, drop, elidable=False)]
