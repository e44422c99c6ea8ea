"""Column types a tabular dataset may set (``set_column_types``): checked when the dataset is defined, so a typo
fails the DAG file, not a step run hours later. Names are pandas dtypes; pandas itself is not imported here."""

from __future__ import annotations

from collections.abc import Mapping

from airflow_mlpipe.exceptions import DatasetError

COLUMN_TYPES = frozenset(
    {
        "int",
        "int8",
        "int16",
        "int32",
        "int64",
        "Int8",
        "Int16",
        "Int32",
        "Int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "float",
        "float32",
        "float64",
        "Float32",
        "Float64",
        "bool",
        "boolean",
        "str",
        "string",
        "object",
        "category",
        "datetime64[ns]",
        "datetime64[ns, UTC]",
        "timedelta64[ns]",
    }
)


def check_column_types(owner: str, value: object) -> dict[str, str]:
    """``{"column": "type"}`` with known types; None for none."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise DatasetError(
            f"{owner}: set_column_types {value!r} must be a dict of column name to type, e.g. {{'age': 'int64'}}"
        )
    for column, kind in value.items():
        if not isinstance(column, str) or not isinstance(kind, str) or kind not in COLUMN_TYPES:
            raise DatasetError(
                f"{owner}: set_column_types {{{column!r}: {kind!r}}}: the type must be one of "
                f"{', '.join(sorted(COLUMN_TYPES))}"
            )
    return dict(value)
