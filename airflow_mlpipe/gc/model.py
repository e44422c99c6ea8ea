"""What garbage collection is asked to do (``GcSettings``), what it found (``GcItem``, ``GcPlan``) and what it did
(``GcReport``): plain values, JSON-able for ``mlpipe gc --json`` and the cleanup operator's XCom."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from airflow_mlpipe.core.checks import check_airflow_id, check_bool, check_whole_number, shown
from airflow_mlpipe.exceptions import ConfigError

DAY = 86_400.0
DEFAULT_OLDER_THAN = 30 * DAY
DEFAULT_GRACE = 3_600.0
DEFAULT_UNFINISHED_FOR = 7 * DAY

# The order of the sweep: what points at a step run goes before what it points at, and a run's own records go
# last, so a gc that stops anywhere leaves records the next gc finds and finishes from.
KINDS = (
    "reuse index entry",
    "history entry",
    "run summary",
    "lineage entry",
    "output",
    "staging leftover",
    "lease",
    "snapshot",
    "content object",
    "step run",
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT = {"s": 1.0, "m": 60.0, "h": 3_600.0, "d": DAY, "w": 7 * DAY}
DURATION_FORMS = "a number with a unit s, m, h, d or w (45s, 90m, 12h, 30d, 2w)"
# The longest duration taken: an age beyond it reaches before any datastore existed, and dates that far back (or
# forward) are out of Python's range.
MAX_DURATION_YEARS = 100
MAX_DURATION = MAX_DURATION_YEARS * 365.25 * DAY


class DurationTooLongError(ConfigError):
    """A duration longer than ``MAX_DURATION``."""


def parse_duration(value: str | float | int, *, option: str = "duration") -> float:
    """``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``, ``"2w"``, or a Python number of seconds, as seconds. A text
    without a unit (``"30"``) is refused: for an age it could mean seconds as well as days."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).lower())
        if match is None:
            raise ConfigError(f"{option} {shown(value)} is not a duration: give {DURATION_FORMS}, such as '30d'")
        if not match.group(2):
            raise ConfigError(
                f"{option} {shown(value)} has no unit, and a bare number could mean seconds as well as days: give "
                f"{DURATION_FORMS}, e.g. '{match.group(1)}d' or '{match.group(1)}s'"
            )
        seconds = float(match.group(1)) * _UNIT[match.group(2)]
    if seconds != seconds:  # NaN
        raise ConfigError(f"{option} {shown(value)} is not a duration: give {DURATION_FORMS}, such as '30d'")
    if seconds < 0:
        raise ConfigError(f"{option} {shown(value)} is negative: give a duration such as '30d'")
    if seconds > MAX_DURATION:  # also inf, and a text of many digits
        raise DurationTooLongError(
            f"{option} {shown(value)} is longer than {MAX_DURATION_YEARS} years, the longest duration taken: give "
            f"{DURATION_FORMS}, such as '30d' (at most '{int(MAX_DURATION // DAY)}d')"
        )
    return seconds


def describe_duration(seconds: float) -> str:
    for unit, size in (("w", 7 * DAY), ("d", DAY), ("h", 3_600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class GcSettings:
    """:param older_than: step runs made more recently than this are kept (seconds).
    :param keep_last: also keep the successful step runs of each task in its ``keep_last`` newest DAG runs.
    :param dag_id: collect only what the step runs of this DAG left (everything else is kept).
    :param grace: nothing made more recently than this is deleted, whatever the other rules say (seconds).
    :param unfinished_for: an attempt without a final status is taken as running for this long (seconds).
    :param batch_size: paths per delete request batch."""

    older_than: float = DEFAULT_OLDER_THAN
    keep_last: int = 0
    dag_id: str | None = None
    grace: float = DEFAULT_GRACE
    unfinished_for: float = DEFAULT_UNFINISHED_FOR
    dry_run: bool = False
    batch_size: int = 500

    def __post_init__(self) -> None:
        check_whole_number("GcSettings", "keep_last", self.keep_last, minimum=0, example=3)
        check_whole_number("GcSettings", "batch_size", self.batch_size, minimum=1, example=500)
        check_bool("GcSettings", "dry_run", self.dry_run)
        if self.dag_id is not None:
            check_airflow_id("dag_id", self.dag_id, kind="DAG id", example="'train'")
        for option in ("older_than", "grace", "unfinished_for"):
            parse_duration(getattr(self, option), option=option)  # seconds given directly: the same limits

    @classmethod
    def of(
        cls,
        *,
        older_than: str | float = DEFAULT_OLDER_THAN,
        keep_last: int = 0,
        dag_id: str | None = None,
        grace: str | float = DEFAULT_GRACE,
        unfinished_for: str | float = DEFAULT_UNFINISHED_FOR,
        dry_run: bool = False,
    ) -> GcSettings:
        """Settings from durations as people write them (``"30d"``, ``"1h"``)."""
        return cls(
            older_than=parse_duration(older_than, option="older_than"),
            keep_last=keep_last,
            dag_id=None if dag_id is None else check_airflow_id("dag_id", dag_id, kind="DAG id", example="'train'"),
            grace=parse_duration(grace, option="grace"),
            unfinished_for=parse_duration(unfinished_for, option="unfinished_for"),
            dry_run=dry_run,
        )

    def describe(self) -> str:
        parts = [f"older than {describe_duration(self.older_than)}"]
        if self.keep_last:
            parts.append(f"keep last {self.keep_last}")
        if self.dag_id:
            parts.append(f"dag {self.dag_id}")
        parts.append(f"grace {describe_duration(self.grace)}")
        return ", ".join(parts)


@dataclass(frozen=True)
class GcItem:
    """One thing to delete: ``paths`` in datastore ``datastore``, in this order (a folder as a whole when
    ``recursive``), chosen by ``rule``."""

    kind: str
    datastore: str
    paths: tuple[str, ...]
    rule: str
    dag_id: str | None = None
    step_run_id: str | None = None
    bytes: int | None = None
    recursive: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["paths"] = list(self.paths)
        return data


@dataclass
class GcPlan:
    """What a gc would delete (``items``, in sweep order) and why the rest stays (``kept``: rule → step runs)."""

    settings: GcSettings
    datastore: str
    started_at: str
    items: list[GcItem] = field(default_factory=list)
    kept: dict[str, int] = field(default_factory=dict)
    runs_scanned: int = 0
    notes: list[str] = field(default_factory=list)
    # step run → its snapshot, for runs the plan sweeps (a run spared at sweep time keeps its snapshot)
    swept_snapshots: dict[str, str] = field(default_factory=dict)
    plan_seconds: float = 0.0

    @property
    def bytes(self) -> int:
        return sum(item.bytes or 0 for item in self.items)

    @property
    def swept_runs(self) -> set[str]:
        return {item.step_run_id for item in self.items if item.kind == "step run" and item.step_run_id}

    def groups(self) -> list[dict[str, Any]]:
        """Items grouped by kind, DAG and rule, in sweep order: what a person reads."""
        grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
        for item in self.items:
            key = (item.kind, item.dag_id or "-", item.rule)
            group = grouped.setdefault(key, {"kind": key[0], "dag_id": key[1], "rule": key[2], "items": 0, "bytes": 0})
            group["items"] += 1
            group["bytes"] += item.bytes or 0
        return sorted(grouped.values(), key=lambda g: (KINDS.index(g["kind"]), g["dag_id"], g["rule"]))

    def to_dict(self) -> dict[str, Any]:
        return {
            "datastore": self.datastore,
            "started_at": self.started_at,
            "settings": asdict(self.settings),
            "runs_scanned": self.runs_scanned,
            "runs_swept": len(self.swept_runs),
            "kept": dict(sorted(self.kept.items())),
            "items": [item.to_dict() for item in self.items],
            "groups": self.groups(),
            "bytes": self.bytes,
            "notes": list(self.notes),
            "plan_seconds": round(self.plan_seconds, 3),
        }


@dataclass
class GcReport:
    """A gc run: its plan and, unless it was a dry run, what was deleted."""

    plan: GcPlan
    dry_run: bool
    deleted: int = 0
    bytes_reclaimed: int = 0
    spared: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sweep_seconds: float = 0.0

    def to_dict(self, *, items: bool = True) -> dict[str, Any]:
        plan = self.plan.to_dict()
        if not items:
            plan.pop("items")
        return {
            **plan,
            "dry_run": self.dry_run,
            "deleted": self.deleted,
            "bytes_reclaimed": self.bytes_reclaimed,
            "spared": list(self.spared),
            "errors": list(self.errors),
            "sweep_seconds": round(self.sweep_seconds, 3),
        }


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO time of a record (naive ones are UTC); None when there is none or it is unreadable."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def modified_at(info: Mapping[str, Any]) -> dt.datetime | None:
    """When a listed object was last written, as the store reports it (local ``mtime``, Azure ``last_modified``,
    S3 ``LastModified``)."""
    for key in ("mtime", "last_modified", "LastModified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, dt.datetime):
            return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        moment = parse_time(value)
        if moment is not None:
            return moment
    return None
