"""A step run is an attempt: one try of one task instance (DAG, DAG run, task, map index, try number).

Every attempt has its own step run id, spec, record, output folders and commit; no later attempt writes them. The
id is readable for people (``train_iris.manual__2026-11-30T10_00_00_00_00.train.m3.t2.1f0c2b9a7d4e``) and ends
with a hash of the exact parts, so two attempts never share an id even where the readable part is cut or where
sanitising makes two parts look alike (dag ``a.b`` + run ``r`` against dag ``a`` + run ``b.r``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

import xxhash

from airflow_mlpipe.core.model import Record

# A step run id names a folder on every store: the readable part is cut so that the whole id stays well under
# the 255-byte limit of a local file name.
READABLE_LIMIT = 150
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


@dataclass(frozen=True)
class AttemptId(Record):
    """Which attempt of which step: Airflow's task instance key and try number."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1
    try_number: int = 1

    @classmethod
    def of(cls, ti: Any) -> AttemptId:
        """The attempt a task instance (``context["ti"]``) is running now."""
        map_index = getattr(ti, "map_index", -1)
        return cls(
            dag_id=str(ti.dag_id),
            run_id=str(ti.run_id),
            task_id=str(ti.task_id),
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(getattr(ti, "try_number", None) or 1),
        )

    @property
    def step_run_id(self) -> str:
        parts = [self.dag_id, self.run_id, self.task_id, self.map_index, self.try_number]
        digest = xxhash.xxh3_64_hexdigest(json.dumps(parts, separators=(",", ":")).encode("utf-8"))
        mapped = f".m{self.map_index}" if self.map_index >= 0 else ""
        return (
            f"{readable_prefix(self.dag_id, self.run_id, self.task_id)[:-1]}{mapped}.t{self.try_number}.{digest[:12]}"
        )

    @property
    def task_instance(self) -> tuple[str, str, str, int]:
        """The task instance this attempt belongs to (every try of it shares this)."""
        return (self.dag_id, self.run_id, self.task_id, self.map_index)

    def previous(self) -> AttemptId | None:
        """The try before this one of the same task instance (None for the first)."""
        return replace(self, try_number=self.try_number - 1) if self.try_number > 1 else None

    def describe(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{mapped} try {self.try_number}"


def readable_prefix(dag_id: str, run_id: str, task_id: str) -> str:
    """How the step run ids of every attempt of a task in a DAG run begin (to find them by DAG run)."""
    return _UNSAFE.sub("_", f"{dag_id}.{run_id}.{task_id}")[:READABLE_LIMIT] + "."
