"""Checks of the values DAG files give to public constructors: each failure names the argument, the value and
the fix, at parse time. No Airflow import.

Values are shown with :func:`shown`: a 100,000-character name pasted by mistake is cut to its first characters
and its length, so the error stays one readable line (and a log line of sane size)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sized
from typing import Any, Literal, overload

from airflow_mlpipe.exceptions import ConfigError

SHOWN_CHARS = 80
# A quoted value in a message as ``repr`` writes it: single or double quotes, escapes inside; not an apostrophe
# ("the datastore's url"), which a letter precedes or follows.
_QUOTED = re.compile(r"(?<!\w)(?:'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\")(?!\w)")


def shown(value: object) -> str:
    """``repr(value)``; when that is longer than ``SHOWN_CHARS``, its start and the value's length:
    ``'aaaa...' (100000 characters)``."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    if isinstance(value, (str, bytes)):
        size = f"{len(value)} characters"
    elif isinstance(value, Sized):
        size = f"{len(value)} items"
    else:
        size = f"{len(text)} characters"
    return _cut(text, size)


def shorten_values(message: str) -> str:
    """``message`` with every quoted value longer than ``SHOWN_CHARS`` cut as :func:`shown` cuts it: for messages
    made elsewhere with ``{value!r}``, before they are printed."""
    return _QUOTED.sub(
        lambda m: m[0] if len(m[0]) <= SHOWN_CHARS else _cut(m[0], f"{len(m[0]) - 2} characters"), message
    )


def _cut(text: str, size: str) -> str:
    """The first characters of ``text`` within ``SHOWN_CHARS``, quotes kept (so cutting again changes nothing)."""
    quote = text[0] if text[:1] in ("'", '"') else ""
    return f"{text[: SHOWN_CHARS - 3 - len(quote)]}...{quote} ({size})"


def check_bool(owner: str, argument: str, value: object) -> bool:
    """``True`` or ``False`` only: ``"no"`` is truthy, and taking it as yes would be a silent surprise."""
    if not isinstance(value, bool):
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be True or False, not {type(value).__name__}; write "
            f"{argument}=True or {argument}=False"
        )
    return value


def check_positive_number(
    owner: str, argument: str, value: object, *, unit: str = "seconds", allow_zero: bool = False
) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not allow_zero)
    ):
        kind = "a number" if allow_zero else "a positive number"
        floor = " (0 or more)" if allow_zero else ""
        raise ConfigError(f"{owner}: {argument} {shown(value)} must be {kind} of {unit}{floor}, e.g. {argument}=30")
    return float(value)


def check_whole_number(owner: str, argument: str, value: object, *, minimum: int, example: int) -> int:
    """An ``int`` (not a bool, not ``"2"``) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be a whole number of at least {minimum}, e.g. "
            f"{argument}={example}"
        )
    return value


@overload
def check_text(owner: str, argument: str, value: object, *, example: str, optional: Literal[False] = False) -> str: ...


@overload
def check_text(owner: str, argument: str, value: object, *, example: str, optional: bool) -> str | None: ...


def check_text(owner: str, argument: str, value: object, *, example: str, optional: bool = False) -> str | None:
    """A non-empty string (or None when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be a non-empty string{' or None' if optional else ''}, e.g. "
            f"{argument}={example!r}"
        )
    return value


def check_choice(owner: str, argument: str, value: object, choices: Iterable[str]) -> str:
    """One of ``choices``."""
    allowed = tuple(choices)
    if not isinstance(value, str) or value not in allowed:
        raise ConfigError(f"{owner}: {argument} {shown(value)} must be one of {', '.join(map(repr, allowed))}")
    return value


def check_str_mapping(owner: str, argument: str, value: object, *, example: str) -> dict[str, str]:
    """A mapping of strings to strings; None for none."""
    if value is None:
        return {}
    # The values are never shown: environment variables may hold credentials, whatever their names say.
    if not isinstance(value, Mapping):
        what = f"of type {type(value).__name__}, its content not shown"
    else:
        bad_key = next((k for k, v in value.items() if not isinstance(k, str) or not isinstance(v, str)), None)
        if bad_key is None:
            return dict(value)
        if not isinstance(bad_key, str):
            what = f"key {shown(bad_key)} is of type {type(bad_key).__name__}"
        else:
            what = f"the value of {shown(bad_key)} is of type {type(value[bad_key]).__name__}, not shown"
    raise ConfigError(f"{owner}: {argument} ({what}) must map strings to strings, e.g. {argument}={example}")


def check_str_list(owner: str, argument: str, value: object, *, example: str) -> tuple[str, ...]:
    """A list (or tuple) of non-empty strings; None for none. A single string is refused: it would be taken as
    a list of its characters."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be a list of strings; write {argument}=[{shown(value)}]"
        )
    if not isinstance(value, Iterable) or isinstance(value, (bytes, dict)):
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be a list of strings, e.g. {argument}=[{example!r}]"
        )
    items: list[Any] = list(value)
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(
                f"{owner}: {argument} entry {shown(item)} must be a non-empty string, e.g. {argument}=[{example!r}]"
            )
    return tuple(items)


def check_instance(owner: str, argument: str, value: object, kind: type, *, fix: str) -> Any:
    """``value`` if it is a ``kind`` (or None); otherwise an error naming what was given and how to fix it."""
    if value is not None and not isinstance(value, kind):
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be {'an' if kind.__name__[0] in 'AEIOU' else 'a'} "
            f"{kind.__name__}, not {type(value).__name__}; {fix}"
        )
    return value


def check_list(owner: str, argument: str, value: object, *, example: str) -> list[Any]:
    """A list or tuple of anything; None for none. Anything else is refused: a string would be taken as a list of
    its characters, a mapping as its keys alone, a set in no fixed order."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be a list, e.g. {argument}={example}{not_a_list_note(value)}"
        )
    return list(value)


def not_a_list_note(value: object) -> str:
    """Why a value that can be iterated is still not taken as a list (empty for other values)."""
    if isinstance(value, Mapping):
        return "; a dict gives its keys alone and its values would be lost: write its items out in a list"
    if isinstance(value, (set, frozenset)):
        return "; a set keeps no order (and drops repeats): write a list"
    if isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
        return f"; a {type(value).__name__} is not taken as one: write a list (or a tuple)"
    return ""


def check_relative_file(owner: str, argument: str, value: object, *, inside: str, example: str) -> str:
    """A file's path relative to the folder ``inside`` names, that stays inside it: not absolute, no ``..``
    segment, folders separated by ``/`` (a backslash is a folder separator on Windows and part of a name on POSIX,
    so the same text names two files)."""
    if isinstance(value, str) and value.strip():
        parts = value.split("/")
        if not (value.startswith("/") or "\\" in value or ".." in parts or os.path.isabs(value) or "\0" in value):
            return value
    raise ConfigError(
        f"{owner}: {argument} {shown(value)} must be a path relative to {inside} and inside it (not absolute, no "
        f"'..', folders separated by '/'), e.g. {argument}={example!r}"
    )


_AIRFLOW_ID = re.compile(r"[\w.-]{1,250}")  # Airflow's KEY_REGEX and length limit for DAG and task ids


def check_airflow_id(argument: str, value: object, *, kind: str, example: str) -> str:
    """A DAG or task id (``kind``) as Airflow allows it; also not ``.`` or ``..``, which would name folders in
    the paths made from it. ``example``: the fix as the user writes it (``--dag train`` or ``dag_id='train'``)."""
    if isinstance(value, str) and _AIRFLOW_ID.fullmatch(value) and value.strip(".") != "":
        return value
    raise ConfigError(
        f"{argument} {shown(value)} is not a valid {kind}: Airflow allows letters, digits, '_', '.' and '-' (at "
        f"most 250 characters); write e.g. {example}"
    )
