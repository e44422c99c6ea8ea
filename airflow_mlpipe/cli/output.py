"""Printing for the CLI: aligned tables for people, JSON (and nothing else) with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from airflow_mlpipe.core.jsonsafe import strict_json

# Captured before ``main`` points sys.stdout at stderr: only what we print here reaches stdout, so ``--json``
# output stays parseable whatever libraries log.
_STDOUT: TextIO = sys.stdout


def out() -> TextIO:
    return _STDOUT


def emit_json(value: Any) -> None:
    # Strict JSON: a NaN metric is null (``jq`` and browsers parse no NaN); the records keep what was logged.
    out().write(json.dumps(strict_json(value), indent=2, sort_keys=True, default=str, allow_nan=False) + "\n")


def emit_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str = "(none)") -> None:
    if not rows:
        out().write(empty + "\n")
        return
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    header = "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    lines = [header.rstrip()]
    for r in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    out().write("\n".join(lines) + "\n")


def error_text(message: str, known: Iterable[str] = ()) -> str:
    """An error as the CLI prints it: one line, credentials masked (``core.secrets``; ``known`` too), long values
    cut (``core.checks.shown``)."""
    from airflow_mlpipe.core.checks import shorten_values
    from airflow_mlpipe.core.secrets import scrub_text

    return shorten_values(scrub_text(" ".join(message.split()), known))


def emit_line(text: str = "") -> None:
    out().write(text + "\n")


def emit_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max(len(k) for k, _ in pairs)
    for key, value in pairs:
        out().write(f"{key.ljust(width)}  {_cell(value)}\n")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
