"""Checks of the values DAG files give to public constructors: each failure names the argument, the value and
the fix, at parse time. No Airflow import."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from airflow_mlpipe.exceptions import ConfigError


def check_bool(owner: str, argument: str, value: object) -> bool:
    """``True`` or ``False`` only: ``"no"`` is truthy, and taking it as yes would be a silent surprise."""
    if not isinstance(value, bool):
        raise ConfigError(
            f"{owner}: {argument} {value!r} must be True or False, not {type(value).__name__}; write "
            f"{argument}=True or {argument}=False"
        )
    return value


def check_positive_number(owner: str, argument: str, value: object, *, unit: str = "seconds") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{owner}: {argument} {value!r} must be a positive number of {unit}, e.g. {argument}=30")
    return float(value)


def check_str_list(owner: str, argument: str, value: object, *, example: str) -> tuple[str, ...]:
    """A list (or tuple) of non-empty strings; None for none. A single string is refused: it would be taken as
    a list of its characters."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise ConfigError(f"{owner}: {argument} {value!r} must be a list of strings; write {argument}=[{value!r}]")
    if not isinstance(value, Iterable) or isinstance(value, (bytes, dict)):
        raise ConfigError(f"{owner}: {argument} {value!r} must be a list of strings, e.g. {argument}=[{example!r}]")
    items: list[Any] = list(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"{owner}: {argument} entry {item!r} must be a non-empty string, e.g. {argument}=[{example!r}]"
            )
    return tuple(items)


def check_instance(owner: str, argument: str, value: object, kind: type, *, fix: str) -> Any:
    """``value`` if it is a ``kind`` (or None); otherwise an error naming what was given and how to fix it."""
    if value is not None and not isinstance(value, kind):
        raise ConfigError(
            f"{owner}: {argument} {value!r} must be {'an' if kind.__name__[0] in 'AEIOU' else 'a'} "
            f"{kind.__name__}, not {type(value).__name__}; {fix}"
        )
    return value
