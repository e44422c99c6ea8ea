"""What ``PythonScriptOperator.execute`` does, step by step (kept apart so the operator reads in one sitting)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_mlpipe.compute.base import StepLaunch
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.datasets.dataset import AbstractDataset
from airflow_mlpipe.exceptions import MlpipeError, step_failed_error
from airflow_mlpipe.fingerprint.hash_paths import scan_hash_paths
from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.operators.links import RECORD_URI_KEY, REUSED_FROM_KEY
from airflow_mlpipe.operators.step_dedup import compute_once
from airflow_mlpipe.operators.step_reuse import (
    environment_component,
    read_earlier_record,
    register_reused_outputs,
    reuse_block,
    reuse_policy,
    reused_record,
)
from airflow_mlpipe.reuse.decide import ReuseDecision, ReusePolicy, decide
from airflow_mlpipe.reuse.history import HistoryEntry, StepHistory
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.indexing import index_run
from airflow_mlpipe.reuse.lease import LeaseRecord
from airflow_mlpipe.reuse.step_key import StepFingerprint, fingerprint_step
from airflow_mlpipe.reuse.wait import lease_from_event
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import Snapshot, git_info, scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlpipe.operators.python_script import PythonScriptOperator

XCOM_METRICS_LIMIT = 50
_T = TypeVar("_T")


@dataclass(frozen=True)
class StepPlan:
    """What a step run would do, worked out before deciding whether it runs: the source tree, the arguments with
    this run's parameter values, the inputs and outputs as the spec names them, and the reuse fingerprint."""

    source_directory: str
    tree: Tree
    params: dict[str, Any]
    arguments: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    fingerprint: StepFingerprint


class StepExecution:
    def __init__(self, operator: PythonScriptOperator, context: Context) -> None:
        self.op = operator
        self.context = context
        self.log = operator.log
        self.store = Datastore.get_default()
        self.srid = operator.step_run_id(context)
        self.started_at = records.now_iso()

    def run(self, *, take_over: LeaseRecord | None = None) -> dict[str, Any]:
        """Check the reuse index: on a hit, publish the earlier outputs; on a miss, run the step, then index its
        outputs so that later runs may reuse them. A miss whose key another run is computing right now waits for
        it (deferred) instead; ``take_over``: the lease record a wait ended on, its holder gone."""
        plan = self._or_fail(self.plan)
        decision = self.decide(plan)
        if decision.hit:
            return self.reuse(plan, decision)
        if decision.reason == "disabled":  # allow_reuse=False: nothing to share, no lease
            return self.compute(plan, decision)
        return compute_once(self, plan, decision, take_over=take_over)

    def resume_after_reuse_wait(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """After ``ReuseTrigger``: decide again (a "ready" key is a hit now), taking over a lease that went
        stale. Needs nothing but the event: the operator is re-created from the DAG file to resume."""
        self.log.info("Resumed after waiting for reuse key %s: %s", event.get("key"), dict(event))
        return self.run(take_over=lease_from_event(event))

    def _or_fail(self, step: Callable[[], _T]) -> _T:
        try:
            return step()
        except MlpipeError as exc:
            raise step_failed_error(f"step {self.op.task_id!r} cannot run: {exc}") from None

    # -- the plan and the reuse decision ------------------------------------------------------------------------
    def plan(self) -> StepPlan:
        op = self.op
        source = op.resolve_source_directory()
        self._check_source(source)
        tree = scan_source(source)
        hash_tree = scan_hash_paths(source, op.hash_paths) if op.hash_paths else None
        params = dict(self.context.get("params") or {})
        arguments = op.argument_specs(params)
        inputs = op.input_specs(self.context, self.srid)
        outputs = op.output_specs(self.srid)
        fingerprint = fingerprint_step(
            script_name=op.script_name,
            source=tree,
            hash_paths=hash_tree,
            arguments=arguments,
            inputs=inputs,
            outputs=outputs,
            environment=environment_component(op),
        )
        return StepPlan(source, tree, params, arguments, inputs, outputs, fingerprint)

    def decide(self, plan: StepPlan) -> ReuseDecision:
        """Decide, keep the decision in the step's history, and say it in the task log."""
        policy = reuse_policy(self.op, self.context)
        return decide_and_record(plan.fingerprint, self.context, self.srid, self.store, policy, self.log)

    # -- a hit ----------------------------------------------------------------------------------------------
    def reuse(self, plan: StepPlan, decision: ReuseDecision) -> dict[str, Any]:
        """Finish without compute: this step run's outputs are the earlier run's folders."""
        assert decision.entry is not None
        ti, earlier_id = self.context["ti"], decision.entry.step_run_id
        outputs = [dict(o) for o in decision.entry.outputs]
        lineage = {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "step_run_id": self.srid,
            "reused_from": earlier_id,
        }
        self._or_fail(lambda: register_reused_outputs(self.op, outputs, lineage))
        record = reused_record(
            base=self.record_base(plan, Snapshot(plan.tree, 0)),
            earlier=read_earlier_record(earlier_id, self.store),
            outputs=outputs,
            reused_from=earlier_id,
            reuse=reuse_block(plan.fingerprint, decision),
        )
        records.write_record(record, self.store)
        ti.xcom_push(key=RECORD_URI_KEY, value=self.store.uri(records.record_path(self.srid)))
        ti.xcom_push(key=REUSED_FROM_KEY, value=self.store.uri(records.record_path(earlier_id)))
        return publish(self.context, self.op, record, reused=True)

    def record_base(self, plan: StepPlan, snapshot: Snapshot) -> dict[str, Any]:
        """This step run's identity and what it was asked to do, as the run record and the spec's extra keep it."""
        ti = self.context["ti"]
        return {
            "step_run_id": self.srid,
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "try_number": int(ti.try_number or 1),
            "started_at": self.started_at,
            "script_name": self.op.script_name,
            "snapshot": snapshot.digest,
            "snapshot_info": snapshot.describe(),
            "source_directory": plan.source_directory,
            "parameters": {name: plan.params.get(name) for name in self.op.step_io.parameters},
            "compute": self.op.compute_target.describe(),
            "environment": self.op.environment.to_dict() if self.op.environment else {},
        }

    # -- a miss ---------------------------------------------------------------------------------------------
    def compute(self, plan: StepPlan, decision: ReuseDecision) -> dict[str, Any]:
        spec = self._or_fail(lambda: self.prepare(plan, decision))
        code = self.launch(spec)
        record = self.finish(code)
        result = publish(self.context, self.op, record, reused=False)
        self._index(plan, record)
        return result

    def _index(self, plan: StepPlan, record: dict[str, Any]) -> None:
        try:
            entry = index_run(ReuseIndex(self.store), plan.fingerprint, record)
        except (MlpipeError, OSError) as exc:  # the step succeeded; only later reuse of it is lost
            self.log.warning("Could not index step run %s for reuse: %s", self.srid, exc)
            return
        if entry is not None:
            self.log.info("Indexed the outputs of step run %s under reuse key %s", self.srid, entry.key)

    def prepare(self, plan: StepPlan, decision: ReuseDecision) -> StepSpec:
        op, ti = self.op, self.context["ti"]
        snapshot = store_snapshot(plan.source_directory, plan.tree, self.store)
        self.log.info(
            "Source snapshot %s: %d files, %d bytes (%d uploaded) from %s",
            snapshot.digest,
            len(plan.tree),
            plan.tree.size,
            snapshot.uploaded_files,
            plan.source_directory,
        )
        self.datastores = self._datastores(plan.inputs, plan.outputs)
        base = self.record_base(plan, snapshot)
        spec = StepSpec(
            step_run_id=self.srid,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=base["try_number"],
            script_name=op.script_name,
            snapshot=snapshot.digest,
            arguments=tuple(plan.arguments),
            inputs=tuple(plan.inputs),
            outputs=tuple(plan.outputs),
            environment=base["environment"],
            python=self._script_python(),
            compute=base["compute"],
            extra={
                "snapshot_info": base["snapshot_info"],
                "source_directory": plan.source_directory,
                "git": git_info(plan.source_directory),
                "parameters": base["parameters"],
                "reuse": reuse_block(plan.fingerprint, decision),
            },
        )
        self.store.write_json(records.spec_path(self.srid), spec.to_dict())
        return spec

    def _check_source(self, source: str) -> None:
        if not os.path.isdir(source):
            raise step_failed_error(
                f"step {self.op.task_id!r}: source_directory {self.op.source_directory!r} ({source}) does not exist"
            )
        script = os.path.join(source, self.op.script_name)
        if not os.path.isfile(script):
            raise step_failed_error(
                f"step {self.op.task_id!r}: script {self.op.script_name!r} is not in source_directory {source!r}"
            )

    def _datastores(self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> dict[str, Any]:
        names = set(self.op.datastore_names(inputs, outputs))
        for spec in inputs:
            if spec["source"]["type"] == "dataset":
                dataset = AbstractDataset.from_dict(spec["source"]["dataset"])
                names.update(p.datastore for p in dataset.data_paths)
                if dataset.record is not None:
                    names.update(e.datastore for e in dataset.record.manifest.entries)
        return {name: Datastore.get(name).config for name in sorted(names)}

    def _script_python(self) -> str | None:
        if isinstance(self.op.compute_target, LocalCompute):
            from airflow_mlpipe.compute.venv import python_for_environment

            return python_for_environment(self.op.environment)
        return self.op.environment.python if self.op.environment else None

    # -- the runner -----------------------------------------------------------------------------------------
    def step_launch(self) -> StepLaunch:
        return StepLaunch(
            step_name=self.op.task_id,
            args=("-m", "airflow_mlpipe.runner", "--spec", records.spec_path(self.srid)),
            env={"PYTHONUNBUFFERED": "1"},
            datastores=tuple(self.datastores),
        )

    def launch(self, spec: StepSpec) -> int:
        compute = self.op.compute_target
        if isinstance(compute, LocalCompute):
            import sys

            from airflow_mlpipe.compute.launch_local import LocalLauncher

            launcher = LocalLauncher()
            self.op._launcher = launcher  # for on_kill
            self.log.info("Running step %s on the Airflow worker (LocalCompute)", self.srid)
            return launcher.run(sys.executable, self.step_launch(), self.datastores, self._log_line)
        return self._launch_container()

    def _launch_container(self) -> int:
        from airflow_mlpipe.compute.delegate import execute_delegated

        delegate = self.container_operator()
        self.op._delegate = delegate  # for on_kill: the provider's operator deletes its pod or container
        self.log.info("Running step %s on %s", self.srid, self.op.compute_target.kind)
        return self._delegated(lambda: execute_delegated(delegate, self.context))

    def _delegated(self, call: Callable[[], Any]) -> int:
        try:
            call()
        except Exception as exc:  # the runner's record tells what failed; the provider's error says how
            if type(exc).__name__ == "TaskDeferred":
                raise
            self.log.error("The %s step failed: %s", self.op.compute_target.kind, exc)
            return 1
        return 0

    def resume_container(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """After the pod operator's own trigger (``KubernetesCompute(deferrable=True)``): let the provider finish
        the pod, then finish the step from its run record. Only the spec written before deferring is needed."""
        spec = StepSpec.from_dict(self.store.read_json(records.spec_path(self.srid)))
        self.datastores = self._datastores([dict(i) for i in spec.inputs], [dict(o) for o in spec.outputs])
        delegate = self.container_operator()
        self.op._delegate = delegate
        code = self._delegated(lambda: delegate.trigger_reentry(self.context, event))
        record = self.finish(code)
        result = publish(self.context, self.op, record, reused=False)
        self._index(self._or_fail(self.plan), record)
        return result

    def container_operator(self) -> Any:
        from airflow_mlpipe.compute.docker import DockerCompute, build_docker_operator
        from airflow_mlpipe.compute.kubernetes import KubernetesCompute, build_pod_operator

        compute = self.op.compute_target
        common: dict[str, Any] = {
            "task_id": self.op.task_id,
            "launch": self.step_launch(),
            "datastores": self.datastores,
            "environment": self.op.environment,
            "dag_id": self.op.dag_id,
        }
        if isinstance(compute, KubernetesCompute):
            return build_pod_operator(compute, **common)
        if isinstance(compute, DockerCompute):
            return build_docker_operator(compute, **common)
        raise step_failed_error(f"step {self.op.task_id!r}: no launcher for compute target {compute!r}")

    def _log_line(self, line: str) -> None:
        self.log.info("%s", line)

    # -- after the runner -----------------------------------------------------------------------------------
    def finish(self, code: int) -> dict[str, Any]:
        """The run record of a step run that completed; a task failure otherwise."""
        try:
            record = records.read_record(self.srid, self.store)
        except FileNotFoundError:
            raise step_failed_error(
                f"step {self.op.task_id!r}: the step runner exited with code {code} before writing its run record "
                f"({records.record_path(self.srid)}); see the log above"
            ) from None
        ti = self.context["ti"]
        ti.xcom_push(key=RECORD_URI_KEY, value=self.store.uri(records.record_path(self.srid)))
        if record.get("status") != "Completed" or code != 0:
            tail = (record.get("log_tail") or "")[-1500:]
            raise step_failed_error(
                f"step {self.op.task_id!r} failed: {record.get('error') or f'exit code {code}'}; nothing was "
                f"committed or registered. Run record: {records.record_path(self.srid)}\n--- last lines ---\n{tail}"
            )
        return record


def decide_and_record(
    fingerprint: StepFingerprint, context: Context, srid: str, store: Datastore, policy: ReusePolicy, log: Any
) -> ReuseDecision:
    """The reuse decision for a step run, kept in the step's history and said in the task log (script steps
    and data transfers alike)."""
    ti = context["ti"]
    history = StepHistory(ti.dag_id, ti.task_id, store)
    decision = decide(fingerprint, step_run_id=srid, index=ReuseIndex(store), policy=policy, history=history)
    history.add(
        HistoryEntry(
            step_run_id=srid,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            decided_at=decision.decided_at,
            key=decision.key,
            components=fingerprint.key.components(),
            details=fingerprint.details,
            decision=decision.to_dict(),
        )
    )
    verdict = "hit" if decision.hit else "miss"
    log.info("Reuse %s (key %s): %s", verdict, decision.key, "; ".join(decision.explanation))
    for name, detail in fingerprint.details["inputs"].items():
        if detail.get("read_to_hash"):
            log.warning(
                "Input %s: its store keeps no hash for %d files; they were read to fingerprint them",
                name,
                detail["read_to_hash"],
            )
    return decision


def publish(context: Context, op: Any, record: dict[str, Any], *, reused: bool) -> dict[str, Any]:
    """XComs (outputs' locations, a metrics summary), asset events for new dataset versions, the task result."""
    from airflow_mlpipe.assets import dataset_asset, datasets_alias
    from airflow_mlpipe.operators.python_script import METRICS_KEY, OUTPUTS_KEY

    ti = context["ti"]
    outputs = {
        o["name"]: {"datastore": o["datastore"], "path": o["path"], "uri": o.get("uri")}
        for o in record.get("outputs", [])
    }
    metrics = summarize_metrics(record.get("metrics") or {})
    ti.xcom_push(key=OUTPUTS_KEY, value=outputs)
    ti.xcom_push(key=METRICS_KEY, value=metrics)
    for out in record.get("outputs", []):
        reg = out.get("registered")
        if reg and reg.get("created"):  # a reused output may still add a version: the latest had other content
            extra = {
                "dataset": reg["name"],
                "version": reg["version"],
                "manifest": out.get("manifest"),
                "producer": {
                    "dag_id": ti.dag_id,
                    "run_id": ti.run_id,
                    "task_id": ti.task_id,
                    "step_run_id": record["step_run_id"],
                },
            }
            if reused:
                extra["reused_from"] = record.get("reused_from")
            context["outlet_events"][datasets_alias()].add(dataset_asset(reg["name"]), extra=extra)
    return {
        "step_run_id": record["step_run_id"],
        "status": record["status"],
        "reused": reused,
        "reused_from": record.get("reused_from") if reused else None,
        "outputs": outputs,
        "metrics": metrics,
        "registered": [o["registered"] for o in record.get("outputs", []) if o.get("registered")],
    }


def summarize_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """Scalars (and the last value of series) only, at most a few dozen: XCom is not a metrics store."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            value = value[-1]
        if isinstance(value, (int, float, str, bool)):
            out[name] = value
        if len(out) >= XCOM_METRICS_LIMIT:
            break
    return out
