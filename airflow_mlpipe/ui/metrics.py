"""A step run's metrics as the step run page shows them: scalars in a table, series as line charts, tables, images.

The record keeps ``metrics`` (as Azure ML's ``run.get_metrics()``: a name logged once maps to its value, a scalar
logged again to the list of values, ``log_row`` rows to a table of columns) and ``metric_log``, every entry as
logged with its kind (``scalar``, ``list``, ``row``, ``table``, ``image``, ``tag``). The kind decides the view:

- ``run.log`` once: a row of the scalar table; logged again: a line chart over the logging order;
- ``log_list``: a line chart over the list's positions (a table when it is not numeric);
- ``log_row``: a table, and a line chart of its numeric columns over its x column (``step``, ``epoch``,
  ``iteration``, ``x`` or its first numeric column);
- ``log_table``: a table; ``log_image``: the image, an artifact of the run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

X_COLUMNS = ("step", "epoch", "iteration", "iter", "x")


@dataclass
class Chart:
    name: str
    x_label: str
    x: list[float]
    series: dict[str, list[float | None]]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "x_label": self.x_label,
            "x": self.x,
            "series": self.series,
            "description": self.description,
            "points": len(self.x),
        }


@dataclass
class Table:
    name: str
    columns: list[str]
    rows: list[list[Any]]
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "columns": self.columns, "rows": self.rows, "description": self.description}


@dataclass
class MetricsView:
    scalars: list[dict[str, Any]] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scalars": self.scalars,
            "charts": [c.to_dict() for c in self.charts],
            "tables": [t.to_dict() for t in self.tables],
            "images": self.images,
            "tags": self.tags,
        }


def metrics_view(metrics: Mapping[str, Any], metric_log: Sequence[Mapping[str, Any]] = ()) -> MetricsView:
    """What the page shows of ``metrics`` (and the kinds and descriptions ``metric_log`` holds, when it has them)."""
    kinds: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for entry in metric_log:
        if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
            kinds.setdefault(entry["name"], str(entry.get("kind")))
            if entry.get("description"):
                descriptions[entry["name"]] = str(entry["description"])
    view = MetricsView()
    for name, value in metrics.items():
        kind = kinds.get(name) or _guess_kind(value)
        about = descriptions.get(name, "")
        if name.startswith("tag:") or kind == "tag":
            view.tags[name.removeprefix("tag:")] = value
        elif kind == "image":
            view.images.append({"name": name, "path": str(value), "description": about})
        elif kind == "table" and isinstance(value, Mapping):
            view.tables.append(_columns_table(name, value, about))
        elif kind == "row" and isinstance(value, Mapping):
            view.tables.append(_columns_table(name, value, about))
            chart = _row_chart(name, value, about)
            if chart is not None:
                view.charts.append(chart)
        elif isinstance(value, list):
            numbers = [_number(v) for v in value]
            if value and all(n is not None for n in numbers):
                x_label = "logged" if kind == "scalar" else "index"
                start = 1 if kind == "scalar" else 0
                xs = [float(i) for i in range(start, start + len(value))]
                view.charts.append(Chart(name, x_label, xs, {name: numbers}, about))
            else:
                view.tables.append(Table(name, [name], [[v] for v in value], about))
        else:
            view.scalars.append({"name": name, "value": value, "description": about})
    return view


def _guess_kind(value: Any) -> str:
    if isinstance(value, Mapping):
        lengths = {len(v) for v in value.values() if isinstance(v, list)}
        return "row" if len(lengths) == 1 and all(isinstance(v, list) for v in value.values()) else "scalar"
    if isinstance(value, list):
        return "list"
    return "scalar"


def _columns_table(name: str, columns: Mapping[str, Any], about: str) -> Table:
    names = [str(c) for c in columns]
    cols = [v if isinstance(v, list) else [v] for v in columns.values()]
    height = max((len(c) for c in cols), default=0)
    rows = [[c[i] if i < len(c) else None for c in cols] for i in range(height)]
    return Table(name, names, rows, about)


def _row_chart(name: str, columns: Mapping[str, Any], about: str) -> Chart | None:
    numeric = {
        str(k): [_number(v) for v in vals]
        for k, vals in columns.items()
        if isinstance(vals, list) and vals and any(_number(v) is not None for v in vals)
    }
    if not numeric:
        return None
    x_name = next((c for c in X_COLUMNS if c in numeric and None not in numeric[c]), None)
    if x_name is None and len(numeric) > 1:
        first = next(iter(numeric))
        if None not in numeric[first] and _increasing(numeric[first]):
            x_name = first
    height = max(len(v) for v in numeric.values())
    if x_name is None:
        xs = [float(i) for i in range(1, height + 1)]
        x_label = "row"
    else:
        xs = [float(v) for v in numeric[x_name] if v is not None]
        x_label = x_name
    series = {k: (v + [None] * height)[: len(xs)] for k, v in numeric.items() if k != x_name}
    if not series:
        return None
    order = sorted(range(len(xs)), key=xs.__getitem__)  # uPlot draws x ascending
    return Chart(name, x_label, [xs[i] for i in order], {k: [v[i] for i in order] for k, v in series.items()}, about)


def _increasing(values: Sequence[float | None]) -> bool:
    return all(a is not None and b is not None and a < b for a, b in itertools.pairwise(values))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
