"""Hand-written statements that give what a queryset gives.

Table and column names come from the models, values go as parameters,
results are converted by the fields' and the backend's converters and
instances built by ``Model.from_db``, the ORM's own steps; fields not
selected are deferred (read from the database if something asks for them).
For the few statements where Django's query compiler costs more than the
database (studies.services.rating_sql).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import connection, models

from studies.models import (
    Condition,
    ConditionIssueCount,
    PairIssueCount,
    PlannerRefresh,
    Rater,
    RaterSession,
    SourceImage,
    Stimulus,
    Study,
    Trial,
    Vote,
)

TABLES = {
    "condition": Condition,
    "condition_count": ConditionIssueCount,
    "pair_count": PairIssueCount,
    "rater": Rater,
    "refresh": PlannerRefresh,
    "session": RaterSession,
    "source_image": SourceImage,
    "stimulus": Stimulus,
    "study": Study,
    "trial": Trial,
    "vote": Vote,
}


def sql(template: str, **parts: str) -> str:
    """The statement with ``{trial}``, ``{vote}``, ... replaced by the models' tables.

    ``parts`` fills other placeholders with text built here (column lists,
    placeholders), never with values.
    """
    tables = {name: table(model) for name, model in TABLES.items()}
    return template.format(**tables, **parts)


def table(model: type[models.Model]) -> str:
    """The model's table, quoted."""
    return connection.ops.quote_name(model._meta.db_table)


def columns(model: type[models.Model], alias: str, names: Sequence[str] | None = None) -> str:
    """``alias.column, ...`` for the model's fields (all concrete fields by default)."""
    return ", ".join(
        f"{alias}.{connection.ops.quote_name(f.column)}" for f in model_fields(model, names)
    )


@functools.cache
def _fields_cached(model: type[models.Model], names: tuple[str, ...] | None) -> list[Any]:
    concrete = model._meta.concrete_fields
    if names is None:
        return list(concrete)
    # In the model's order, which Model.from_db expects.
    return [f for f in concrete if f.attname in names]


def model_fields(model: type[models.Model], names: Sequence[str] | None) -> list[Any]:
    """The model's concrete fields with these attnames (all by default), in model order."""
    return _fields_cached(model, tuple(names) if names is not None else None)


@functools.cache
def _loader(
    vendor: str, model: type[models.Model], names: tuple[str, ...] | None
) -> tuple[list[str], list[tuple[Any, list[Any]]]]:
    """The attnames of the selected fields and, per field, its column and converters.

    Cached per database vendor: the converters only read settings and the
    backend's configuration, which a vendor's connections share.
    """
    fields = _fields_cached(model, names)
    columns = []
    for field in fields:
        column = field.get_col(model._meta.db_table)
        converters = [
            *connection.ops.get_db_converters(column),
            *column.get_db_converters(connection),
        ]
        columns.append((column, converters))
    return [f.attname for f in fields], columns


def instance[ModelT: models.Model](
    model: type[ModelT], values: Sequence[Any], names: Sequence[str] | None = None
) -> ModelT:
    """A model instance from selected columns, converted as a queryset converts them."""
    attnames, columns = _loader(
        connection.vendor, model, tuple(names) if names is not None else None
    )
    converted = []
    for value, (column, converters) in zip(values, columns, strict=True):
        for convert in converters:
            value = convert(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


def db_value(model: type[models.Model], name: str, value: Any) -> Any:
    """A parameter as the ORM would send it for this field (a UUID is text on SQLite)."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)  # noqa: S101 - a concrete field, for mypy
    return field.get_db_prep_value(value, connection)
