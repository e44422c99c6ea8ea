"""One mini-batch of a ``ParallelRunStep`` as a step attempt of its own, run inside another task instance.

A mini-batch has its own step run (spec, reuse key, decision, record, results folder, commit and index entry), named
as if it were map index ``<mini-batch number>`` of the ``<step>.mini_batch`` task: so ``mlpipe reuse explain DAG
<step>.mini_batch --map-index N`` explains mini-batch N. But it is not a task instance of its own: Airflow's cost
of a task instance (about 1.5 s here) would dwarf a mini-batch's scoring. Instead

- the planning task settles every mini-batch that can be reused now (``reuse_if_ready``): one index read for a
  miss, the usual verified decision and ``Reused`` record for a hit; and
- each ``<step>.mini_batch`` task instance (a "node", at most ``node_count`` of them) computes its share of the
  remaining mini-batches one after the other (``run_batches``), each under its own lease.

A mini-batch never defers: a node waits in place for another run computing the same mini-batch, and awaits its
pod in the worker.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import Context

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig
from airflow_mlpipe.operators.attempt import StepAttempt
from airflow_mlpipe.operators.script_work import ScriptWork
from airflow_mlpipe.parallel.planning import MINI_BATCH_INPUT
from airflow_mlpipe.reuse.decide import ReusePolicy
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.spec import StepSpec

BATCH_OUTPUT = "mini_batch_results"
DRIVER = "parallel_run"
_RESULTS = OutputFileDatasetConfig(name=BATCH_OUTPUT)


class BatchView:
    """The step as one mini-batch sees it: the parallel step's operator (the planning task's or a node's) with
    the mini-batch as its first input, the driver's arguments before the entry script's, and the mini-batch's
    results folder as its only output. Everything else (script, source, environment, compute) is the step's."""

    reuse_history_per_map_index = True  # each mini-batch's decisions are kept apart
    deferrable = False  # see the module's docstring

    def __init__(
        self,
        operator: Any,
        *,
        task_id: str,
        mini_batch: Mapping[str, Any],
        side_inputs: Sequence[Mapping[str, Any]],
        parallel: Mapping[str, Any],
    ) -> None:
        self._op = operator
        self.task_id = task_id
        self.mini_batch = dict(mini_batch)
        self.side_inputs = [dict(s) for s in side_inputs]
        self.parallel = dict(parallel)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._op, name)

    @property
    def index(self) -> int:
        return int(self.mini_batch["parallel"]["index"])

    def input_specs(self, context: Context) -> list[dict[str, Any]]:
        return [dict(self.mini_batch), *self.side_inputs]

    def argument_specs(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        pin = self.mini_batch["pin"]
        settings = {
            **self.parallel,
            "kind": pin.get("kind") or "file",
            "options": pin.get("options") or {},
            "input": self.mini_batch["parallel"]["input"],
        }
        driver = [
            {"t": "str", "v": "--mini-batch"},
            {"t": "input", "name": MINI_BATCH_INPUT},
            {"t": "str", "v": "--results"},
            {"t": "output", "name": BATCH_OUTPUT},
            {"t": "str", "v": "--settings"},
            {"t": "str", "v": json.dumps(settings, sort_keys=True, separators=(",", ":"))},
            {"t": "str", "v": "--"},
        ]
        return [*driver, *self._op.argument_specs(params)]

    def output_specs(self, step_run_id: str) -> list[dict[str, Any]]:
        resolved = _RESULTS.destination_for(step_run_id)
        return [{**_RESULTS.to_dict(), "path": resolved.path, "datastore": resolved.datastore}]


class BatchWork(ScriptWork):
    """A script step whose process is the parallel driver around the entry script."""

    def plan(self, attempt: Any, policy: Any) -> StepSpec:
        spec = super().plan(attempt, policy)
        view: Any = self.op
        batch = dict(view.mini_batch["parallel"])
        return dataclasses.replace(spec, extra={**spec.extra, "driver": DRIVER, "mini_batch": batch})


class BatchAttempt(StepAttempt):
    """The attempt of one mini-batch: map index = the mini-batch's number, try = the running task's try."""

    def __init__(self, view: BatchView, context: Context, *, rerun_of: str | None = None) -> None:
        super().__init__(view, context, BatchWork(view))  # type: ignore[arg-type]
        ti = self.attempt
        self.attempt = AttemptId(ti.dag_id, ti.run_id, view.task_id, view.index, ti.try_number)
        self.srid = self.attempt.step_run_id
        self.rerun_of = rerun_of

    def policy(self, *, rerun_of: str | None = None) -> ReusePolicy:
        # A mini-batch the planning task found cleared (a rerun) stays a rerun in the node that computes it.
        return super().policy(rerun_of=rerun_of or self.rerun_of)

    def reuse_if_ready(self) -> tuple[dict[str, Any] | None, str | None]:
        """In the planning task: ``(result, None)`` for a mini-batch reused now (its ``Reused`` record written),
        ``(None, rerun_of)`` for one a node must compute. A mini-batch without an index entry costs one read and
        writes nothing: the node computing it writes its spec and explains its miss."""
        spec = records.read_spec(self.srid, self.store)
        if spec is None:
            spec = self.plan_spec()
            if spec.policy.get("rerun_of") or spec.policy.get("regenerate") or not spec.policy.get("allow_reuse"):
                return None, spec.policy.get("rerun_of")
            if not spec.key or ReuseIndex(self.store).get(spec.key) is None:
                return None, None
            spec = self.write_spec(spec)
        self.spec = spec
        record = records.find_record(self.srid, self.store)
        if record is not None and record.get("status") in records.SUCCEEDED:
            return self.publish(record), None
        if not spec.key:
            return None, None
        decision = self.decide(spec)
        if not decision.hit:
            return None, spec.policy.get("rerun_of")
        return self.reuse(spec, decision), None

    def publish(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The mini-batch's result, for the gathering task (no XComs: many mini-batches share a task instance)."""
        reused = record.get("status") == records.REUSED
        outputs = {
            o["name"]: {"datastore": o["datastore"], "path": o["path"], "uri": o.get("uri")}
            for o in record.get("outputs", [])
        }
        return {
            "index": self.attempt.map_index,
            "step_run_id": self.srid,
            "status": record["status"],
            "reused": reused,
            "reused_from": record.get("reused_from") if reused else None,
            "outputs": outputs,
        }


def run_batches(
    operator: Any,
    context: Context,
    *,
    task_id: str,
    mini_batches: Sequence[Mapping[str, Any]],  # {"mini_batch": input spec, "rerun_of": step run id | None}
    side_inputs: Sequence[Mapping[str, Any]],
    parallel: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """A node: compute (or reuse, if another run finished it meanwhile) each mini-batch in turn."""
    results = []
    for entry in mini_batches:
        batch = entry["mini_batch"]
        view = BatchView(operator, task_id=task_id, mini_batch=batch, side_inputs=side_inputs, parallel=parallel)
        attempt = BatchAttempt(view, context, rerun_of=entry.get("rerun_of"))
        operator.log.info(
            "Mini-batch %d (%d items of input %s): step run %s",
            view.index,
            batch["parallel"]["items"],
            batch["parallel"]["input"],
            attempt.srid,
        )
        results.append(attempt.execute())
    return results


__all__ = ["BATCH_OUTPUT", "DRIVER", "BatchAttempt", "BatchView", "run_batches"]
