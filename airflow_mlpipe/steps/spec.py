"""The step spec: everything the step runner needs, as JSON in the default datastore.

The operator writes it; the runner (local subprocess, container or pod) reads it. It names data only by
datastore and path, never by a path on the Airflow worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SPEC_FORMAT = 1


@dataclass(frozen=True)
class StepSpec:
    """:param arguments: items ``{"t": "str", "v": ...}``, ``{"t": "param", "name", "value"}``,
        ``{"t": "input", "name"}``, ``{"t": "output", "name"}``.
    :param inputs: ``{"name", "mode", "source": {"type": "dataset", "dataset": {...}} |
        {"type": "folder", "datastore", "path"}}``.
    :param outputs: ``OutputFileDatasetConfig.to_dict()`` plus the resolved ``path``.
    """

    step_run_id: str
    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    script_name: str
    snapshot: str
    arguments: tuple[Mapping[str, Any], ...] = ()
    inputs: tuple[Mapping[str, Any], ...] = ()
    outputs: tuple[Mapping[str, Any], ...] = ()
    environment: Mapping[str, Any] = field(default_factory=dict)
    python: str | None = None
    compute: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": SPEC_FORMAT,
            "step_run_id": self.step_run_id,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "try_number": self.try_number,
            "script_name": self.script_name,
            "snapshot": self.snapshot,
            "arguments": [dict(a) for a in self.arguments],
            "inputs": [dict(i) for i in self.inputs],
            "outputs": [dict(o) for o in self.outputs],
            "environment": dict(self.environment),
            "python": self.python,
            "compute": dict(self.compute),
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepSpec:
        if data.get("format") != SPEC_FORMAT:
            raise ValueError(
                f"step spec format {data.get('format')!r} is not {SPEC_FORMAT}: runner and operator differ"
            )
        return cls(
            step_run_id=str(data["step_run_id"]),
            dag_id=str(data["dag_id"]),
            run_id=str(data["run_id"]),
            task_id=str(data["task_id"]),
            try_number=int(data["try_number"]),
            script_name=str(data["script_name"]),
            snapshot=str(data["snapshot"]),
            arguments=tuple(data.get("arguments") or ()),
            inputs=tuple(data.get("inputs") or ()),
            outputs=tuple(data.get("outputs") or ()),
            environment=dict(data.get("environment") or {}),
            python=data.get("python"),
            compute=dict(data.get("compute") or {}),
            extra=dict(data.get("extra") or {}),
        )
