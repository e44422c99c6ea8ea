"""The step spec: one immutable description of one attempt, written before anything is launched.

It is the single source of truth of an attempt: the runner (a local subprocess, a container, a pod) reads it to
know what to do, and every way an attempt ends (a reuse hit, a local run, a pod resumed after deferral, a pod
that Kubernetes reattached, a retry finishing a predecessor) finishes from it and indexes the outputs under the
reuse key it holds: the key derived from exactly the pinned inputs, snapshot, environment and outputs written
next to it. Nothing is worked out again after launch.

Written once with create-if-absent at ``_mlpipe/runs/<step_run_id>/spec.json``; what the runner reads is named only
by datastore and path, never by a path on the Airflow worker (``extra`` keeps the source folder for people).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.core.model import Record
from airflow_mlpipe.exceptions import MlpipeError

SPEC_FORMAT = 2


class SpecError(MlpipeError, ValueError):
    """A spec that cannot be used: another format, or a key that does not match its components."""


@dataclass(frozen=True)
class StepSpec(Record):
    """:param kind: ``script`` (the runner executes ``script_name``) or ``transfer`` (a copy on the worker).
    :param arguments: items ``{"t": "str", "v"}``, ``{"t": "param", "name", "value"}``, ``{"t": "input" |
        "output", "name"}``.
    :param inputs: ``{"name", "mode", "path_on_compute"?, "source": {...}, "pin": {"manifest": {...}}}``: each
        input with the exact files (path, size, content identity) the runner may read.
    :param outputs: ``OutputFileDatasetConfig.to_dict()`` with the resolved ``datastore`` and ``path``.
    :param extra: for records and people: the source folder on the planning worker, git, parameter values.
    :param environment: what reaches the step's process, as keyed: image, pip packages, every plain environment
        variable (the compute target's and the environment's) and the interpreter.
    :param reuse: ``{"key", "components", "details", "policy"}``: the reuse key and what it was derived from.
    """

    FORMAT = SPEC_FORMAT
    LABEL = "step spec"

    attempt: AttemptId
    kind: str = "script"
    script_name: str = ""
    snapshot: str | None = None
    arguments: tuple[Mapping[str, Any], ...] = ()
    inputs: tuple[Mapping[str, Any], ...] = ()
    outputs: tuple[Mapping[str, Any], ...] = ()
    environment: Mapping[str, Any] = field(default_factory=dict)
    python: str | None = None
    compute: Mapping[str, Any] = field(default_factory=dict)
    reuse: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    created_at: str = ""

    @property
    def step_run_id(self) -> str:
        return self.attempt.step_run_id

    # Shorthands the runner and the records use.
    @property
    def dag_id(self) -> str:
        return self.attempt.dag_id

    @property
    def run_id(self) -> str:
        return self.attempt.run_id

    @property
    def task_id(self) -> str:
        return self.attempt.task_id

    @property
    def try_number(self) -> int:
        return self.attempt.try_number

    @property
    def key(self) -> str:
        return str(self.reuse.get("key") or "")

    @property
    def policy(self) -> Mapping[str, Any]:
        return dict(self.reuse.get("policy") or {})

    def output(self, name: str) -> Mapping[str, Any]:
        for out in self.outputs:
            if out["name"] == name:
                return out
        raise SpecError(f"step run {self.step_run_id}: its spec declares no output {name!r}")

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        return {"format": data.pop("format"), "step_run_id": self.step_run_id, **data}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepSpec:
        if data.get("format") != SPEC_FORMAT:
            raise SpecError(
                f"step spec format {data.get('format')!r} is not {SPEC_FORMAT}: the runner and the operator are "
                "different versions of airflow-mlpipe; install the same version in the image as on the workers"
            )
        named = data.get("step_run_id")
        try:
            spec = super().from_dict({k: v for k, v in data.items() if k != "step_run_id"})
        except ValueError as exc:
            raise SpecError(f"step spec of {named!r} is not readable ({exc})") from None
        if named != spec.step_run_id:
            raise SpecError(f"step spec names step run {named!r} but its attempt is {spec.step_run_id!r}")
        spec.check_key()
        return spec

    def check_key(self) -> None:
        """The key written in the spec must be the digest of the components written next to it, and those must
        describe what the spec pins: the snapshot, the environment, each input's files and each output."""
        if not self.reuse:
            return
        from airflow_mlpipe.datasets.manifest import Manifest
        from airflow_mlpipe.reuse.key import ReuseKey
        from airflow_mlpipe.reuse.step_key import output_component

        try:
            key = ReuseKey.from_components(self.reuse["components"])
            pinned = {str(i["name"]): Manifest.from_dict(i["pin"]["manifest"]).digest for i in self.inputs}
            keyed = {name: str(component.get("content")) for name, component in key.inputs.items()}
            outputs = {str(o["name"]): output_component(o) for o in self.outputs}
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"step run {self.step_run_id}: its spec holds no readable reuse key ({exc})") from None
        if key.digest != self.key:
            raise SpecError(
                f"step run {self.step_run_id}: its spec's reuse key {self.key} is not the digest of its components "
                f"({key.digest}); the spec was changed after it was written"
            )
        script = self.kind != "script" or (key.source == self.snapshot and key.environment == dict(self.environment))
        if not script or pinned != keyed or outputs != dict(key.outputs):
            raise SpecError(
                f"step run {self.step_run_id}: its spec's reuse key does not describe the snapshot, environment, "
                "inputs or outputs it pins; the spec was changed after it was written"
            )
