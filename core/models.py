"""Abstract base models shared by the apps."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from django.db import models


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True, editable=False)

    class Meta:
        abstract = True


class ServiceOwnedFieldError(ValueError):
    """Code asked a generic write (``save``, ``bulk_update``) to write a service-owned column."""


def service_owned_fields_refuse(model: type[models.Model], names: Iterable[str]) -> None:
    """Raise when ``names`` (field names or attnames) include a column services own.

    For helpers that write a list of attributes read into instances (bulk writes, imports).

    :raises ServiceOwnedFieldError: naming the columns and where they are changed instead.
    """
    owned = set(getattr(model, "service_owned_fields", ()))
    asked = sorted(owned & set(names))
    if asked:
        raise ServiceOwnedFieldError(
            f"{model.__name__}.{', '.join(asked)} is changed only by its services, with single "
            "UPDATE statements (QuerySet.update with F() or a condition), never by writing "
            "back a value read earlier."
        )


class ServiceOwnedQuerySet(models.QuerySet):
    def bulk_update(self, objs, fields, batch_size=None):
        service_owned_fields_refuse(self.model, fields)
        return super().bulk_update(objs, fields, batch_size=batch_size)


class ServiceOwnedColumns(models.Model):
    """A model with columns (counters, flags) that services change while the row is open elsewhere.

    A generic save (an admin form, an inline, ``list_editable``, a REST serializer, any
    ``obj.save()`` of a row loaded earlier) writes back every column as it was read at the start
    of the request; a reservation, sale or use counted in between by a service would be lost.
    So, for the columns named in ``service_owned_fields``:

    - ``save()`` of an existing row writes every *other* column and reads the owned ones back
      afterwards (the instance then shows the truth), whatever was assigned to them;
    - naming one in ``save(update_fields=...)`` or ``bulk_update`` raises
      :class:`ServiceOwnedFieldError`;
    - inserting a row writes them (nothing can have changed a row that did not exist).

    Services change them with ``QuerySet.update()``: an ``F()`` expression or a condition in one
    statement, which PostgreSQL re-checks against the newest row version. That is the one path.
    """

    service_owned_fields: ClassVar[tuple[str, ...]] = ()

    objects = ServiceOwnedQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *, force_insert=False, force_update=False, using=None, update_fields=None):
        owned = set(self.service_owned_fields)
        if self._state.adding or force_insert:
            return super().save(
                force_insert=force_insert,
                force_update=force_update,
                using=using,
                update_fields=update_fields,
            )
        if update_fields is not None:
            service_owned_fields_refuse(type(self), update_fields)
            return super().save(force_update=force_update, using=using, update_fields=update_fields)
        deferred = self.get_deferred_fields()
        fields = [
            field.name
            for field in self._meta.concrete_fields
            if not field.primary_key
            and not field.generated
            and field.attname not in deferred
            and field.name not in owned
        ]
        super().save(force_update=force_update, using=using, update_fields=fields)
        self.refresh_from_db(using=using, fields=sorted(owned))
