"""What ``PythonScriptOperator.execute`` does, step by step (kept apart so the operator reads in one sitting)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.compute.base import StepLaunch
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.datasets.dataset import AbstractDataset
from airflow_mlpipe.exceptions import MlpipeError, step_failed_error
from airflow_mlpipe.operators.links import RECORD_URI_KEY
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import git_info, scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlpipe.operators.python_script import PythonScriptOperator

XCOM_METRICS_LIMIT = 50


class StepExecution:
    def __init__(self, operator: PythonScriptOperator, context: Context) -> None:
        self.op = operator
        self.context = context
        self.log = operator.log
        self.store = Datastore.get_default()
        self.srid = operator.step_run_id(context)

    def run(self) -> dict[str, Any]:
        try:
            spec = self.prepare()
        except MlpipeError as exc:
            raise step_failed_error(f"step {self.op.task_id!r} cannot run: {exc}") from None
        code = self.launch(spec)
        return self.finish(code)

    # -- before the runner ----------------------------------------------------------------------------------
    def prepare(self) -> StepSpec:
        op, ti = self.op, self.context["ti"]
        source = op.resolve_source_directory()
        self._check_source(source)
        tree = scan_source(source)
        snapshot = store_snapshot(source, tree, self.store)
        self.log.info(
            "Source snapshot %s: %d files, %d bytes (%d uploaded) from %s",
            snapshot.digest,
            len(tree),
            tree.size,
            snapshot.uploaded_files,
            source,
        )
        params = dict(self.context.get("params") or {})
        inputs = op.input_specs(self.context, self.srid)
        outputs = op.output_specs(self.srid)
        self.datastores = self._datastores(inputs, outputs)
        spec = StepSpec(
            step_run_id=self.srid,
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=int(ti.try_number or 1),
            script_name=op.script_name,
            snapshot=snapshot.digest,
            arguments=tuple(op.argument_specs(params)),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            environment=op.environment.to_dict() if op.environment else {},
            python=self._script_python(),
            compute=op.compute_target.describe(),
            extra={
                "snapshot_info": snapshot.describe(),
                "source_directory": source,
                "git": git_info(source),
                "parameters": {name: params.get(name) for name in op.step_io.parameters},
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
        self.log.info("Running step %s on %s", self.srid, self.op.compute_target.kind)
        try:
            execute_delegated(delegate, self.context)
        except Exception as exc:  # the runner's record tells what failed; the provider's error says how
            if type(exc).__name__ == "TaskDeferred":
                raise
            self.log.error("The %s step failed: %s", self.op.compute_target.kind, exc)
            return 1
        return 0

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
        return publish(self.context, self.op, record, reused=False)


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
        if reg and reg.get("created") and not reused:
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
            context["outlet_events"][datasets_alias()].add(dataset_asset(reg["name"]), extra=extra)
    return {
        "step_run_id": record["step_run_id"],
        "status": record["status"],
        "reused": reused,
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
