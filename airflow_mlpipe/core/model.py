"""One codec for the records we store as JSON: frozen dataclasses whose declared fields pydantic validates and
dumps, a format number written with them, and migrations that read what older versions wrote.

A record class derives from :class:`Record` and declares ``FORMAT`` (None for a value that only lives inside
another record) and, when its format changes, ``MIGRATIONS[n]``: a function from the dict of format ``n`` to the
dict of format ``n + 1``. Reading applies them in turn (read old, write new); a record of a newer format than this
code knows is refused with a message that says so. A class that keeps a compact form of its own (``Manifest``)
takes part through :func:`coded`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, ClassVar, Self

import pydantic
from pydantic_core import core_schema

Migration = Callable[[dict[str, Any]], dict[str, Any]]


class RecordFormatError(ValueError):
    """A stored record this code cannot read: another format, a missing or mistyped field."""


class Record:
    """Mixin for frozen dataclasses stored as JSON (see the module's doc)."""

    FORMAT: ClassVar[int | None] = None
    MIGRATIONS: ClassVar[Mapping[int, Migration]] = {}
    # Named in errors: "reuse history entry format 3 is not 1".
    LABEL: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = _adapter(type(self)).dump_python(self, mode="json")  # type: ignore[arg-type]
        return data if self.FORMAT is None else {"format": self.FORMAT, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if not isinstance(data, Mapping):
            raise RecordFormatError(f"{cls._label()}: expected a JSON object, got {type(data).__name__}")
        data = cls.migrate(dict(data))
        try:
            return _adapter(cls).validate_python(data)  # type: ignore[arg-type]
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(record)"
            raise RecordFormatError(f"{cls._label()}: field {where!r}: {first['msg']}") from None

    @classmethod
    def migrate(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``data`` brought to ``FORMAT`` (the ``format`` key removed)."""
        if cls.FORMAT is None:
            return data
        found = data.pop("format", None)
        if found == cls.FORMAT:
            return data
        if not isinstance(found, int) or found > cls.FORMAT or found not in cls.MIGRATIONS:
            newer = isinstance(found, int) and found > cls.FORMAT
            raise RecordFormatError(
                f"{cls._label()} format {found!r} is not {cls.FORMAT}"
                + ("; it was written by a newer airflow-mlpipe: upgrade this one" if newer else "")
            )
        while found != cls.FORMAT:
            data = cls.MIGRATIONS[found](data)
            found += 1
            if found not in cls.MIGRATIONS and found != cls.FORMAT:
                raise RecordFormatError(f"{cls._label()}: no migration from format {found}")
        return data

    @classmethod
    def _label(cls) -> str:
        return cls.LABEL or cls.__name__


@cache
def _adapter(cls: type) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(cls)


def coded(to_dict: Callable[[Any], Any], from_dict: Callable[[Any], Any]) -> Any:
    """The pydantic schema of a class with a codec of its own, for its ``__get_pydantic_core_schema__``."""
    return core_schema.no_info_plain_validator_function(
        lambda value: value if not isinstance(value, Mapping) else from_dict(value),
        serialization=core_schema.plain_serializer_function_ser_schema(to_dict),
    )
