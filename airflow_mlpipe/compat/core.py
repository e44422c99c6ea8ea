"""What ``azureml.core`` offers step scripts, over airflow-mlpipe's public API: ``Run``, ``Dataset``,
``Datastore``, ``Workspace``, ``Experiment``, ``Model``. The signatures are SDK v1's; ``workspace`` arguments are
accepted and stand for the Airflow deployment."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_mlpipe.compat.data import V1Datastore
from airflow_mlpipe.compat.models import Model, register_model
from airflow_mlpipe.compat.tabular import Dataset
from airflow_mlpipe.compat.workspace import Experiment, Workspace
from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.run import ParentRun as _ParentRun
from airflow_mlpipe.run import Run as _Run
from airflow_mlpipe.storage.datastore import Datastore as _Datastore

__all__ = ["Dataset", "Datastore", "Environment", "Experiment", "Model", "PipelineRun", "Run", "Workspace"]

PIPELINE_RUNS_ROOT = "_mlpipe/pipeline_runs"


class Datastore:
    """v1's entry point: ``Datastore.get(ws, name)``, ``Datastore.get_default(ws)``."""

    @staticmethod
    def get(workspace: Any, datastore_name: str) -> V1Datastore:
        return V1Datastore.of(_Datastore.get(datastore_name))

    @staticmethod
    def get_default(workspace: Any = None) -> V1Datastore:
        return V1Datastore.of(_Datastore.get_default())

    @staticmethod
    def register_azure_blob_container(*args: Any, **kwargs: Any) -> V1Datastore:
        return _refuse_registration()

    register_azure_data_lake_gen2 = register_azure_blob_container
    register_azure_file_share = register_azure_blob_container


def _refuse_registration() -> V1Datastore:
    raise ConfigError(
        "registering a datastore from code is not supported: create an Airflow connection of type "
        '\'mlpipe_datastore\' (its id is the datastore\'s name, its extra {"url": "az://container/prefix", ...}), '
        "then Datastore.get(ws, 'NAME')"
    )


class PipelineRun(_ParentRun):
    """The pipeline run (the DAG run) of a step: what a step logs here lands in the DAG run's metrics, in
    ``_mlpipe/pipeline_runs/<dag_id>/<run_id>/metrics/<step run>.jsonl`` of the default datastore."""

    def __init__(self, dag_id: str, run_id: str, step_run_id: str) -> None:
        super().__init__(dag_id, run_id)
        self._step_run_id = step_run_id
        self._entries: list[dict[str, Any]] = []

    @property
    def folder(self) -> str:
        return f"{PIPELINE_RUNS_ROOT}/{self.dag_id}/{self.id}/metrics"

    def _write(self, name: str, kind: str, value: Any) -> None:
        self._entries.append({"name": name, "kind": kind, "value": value, "time": time.time()})
        lines = "".join(json.dumps(e, default=str) + "\n" for e in self._entries)
        _Datastore.get_default().write_text(f"{self.folder}/{self._step_run_id}.jsonl", lines)

    def log(self, name: str, value: Any, description: str = "") -> None:
        self._write(name, "scalar", value)

    def log_list(self, name: str, value: list[Any], description: str = "") -> None:
        self._write(name, "list", list(value))

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        self._write(name, "row", kwargs)

    def log_table(self, name: str, value: Mapping[str, list[Any]], description: str = "") -> None:
        self._write(name, "table", table_columns(name, value))

    def get_metrics(self) -> dict[str, Any]:
        """Every step's metrics logged to this pipeline run (a name logged more than once: the list of values)."""
        store = _Datastore.get_default()
        metrics: dict[str, list[Any]] = {}
        if store.exists(self.folder):
            for path in sorted(store.list(self.folder)):
                for line in store.read_text(path).splitlines():
                    entry = json.loads(line)
                    metrics.setdefault(entry["name"], []).append(entry["value"])
        return {name: values[0] if len(values) == 1 else values for name, values in metrics.items()}


class Run(_Run):
    """``azureml.core.Run`` in a step script: ``Run.get_context()``; also works outside any pipeline (offline)."""

    def __init__(self, context: Mapping[str, Any], *, offline: bool = False) -> None:
        super().__init__(context, offline=offline)
        if offline:  # as v1 names them: scripts test ``run.id.startswith("OfflineRun")``
            self.id = "OfflineRun_" + self.id.removeprefix("offline_")
        if self.parent is not None:
            self.parent = PipelineRun(self.parent.dag_id, self.parent.id, self.id)
        self.experiment = Experiment(Workspace.from_config(), self.dag_id or "offline")

    @classmethod
    def get_context(cls, allow_offline: bool = True, used_for_context_manager: bool = False, **kwargs: Any) -> Run:
        import airflow_mlpipe.run as base

        run = _Run.get_context(allow_offline=allow_offline)
        if not isinstance(run, Run):
            run = (_OfflineRun if run.offline else Run)(run._context, offline=run.offline)
            base._current = run
        return run

    @property
    def name(self) -> str | None:
        return self.task_id

    display_name = name

    def log_table(self, name: str, value: Mapping[str, Sequence[Any]], description: str = "") -> None:
        super().log_table(name, table_columns(name, value), description)

    def register_model(
        self,
        model_name: str,
        model_path: str | None = None,
        tags: Mapping[str, str] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Model:
        """Register a file or folder of this run (``outputs/model.pkl``: relative to the script's working
        folder, where ``./outputs`` is) as the next version of ``model_name``."""
        path = model_path or "outputs"
        if not os.path.isabs(path) and not os.path.exists(path):
            uploaded = os.path.join(self._artifacts, path)
            path = uploaded if os.path.exists(uploaded) else path
        lineage = {"step_run_id": self.id, "dag_id": self.dag_id, "run_id": self.run_id, "task_id": self.task_id}
        return register_model(
            path, model_name, tags=tags, properties=properties, description=description, lineage=lineage
        )

    def get_details(self) -> dict[str, Any]:
        return {"runId": self.id, "status": "Running", "target": "airflow", "properties": {}}

    def get_status(self) -> str:
        return "Running"

    def fail(self, error_details: Any = None, **kwargs: Any) -> None:
        raise SystemExit(f"run.fail(): {error_details or 'the script marked its run as failed'}")


def table_columns(name: str, value: object) -> dict[str, list[Any]]:
    """``log_table``'s value, a dict of column names to lists of values, checked before anything is logged."""
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, Iterable) and not isinstance(v, (str, bytes, Mapping))
        for k, v in value.items()
    ):
        return {k: list(v) for k, v in value.items()}
    raise ConfigError(
        f"log_table({name!r}): value {shown(value)} must be a dict of column names to lists of values, e.g. "
        "log_table('loss', {'epoch': [1, 2], 'loss': [0.9, 0.5]})"
    )


class _OfflineRun(Run):
    """A run outside any pipeline (v1 scripts test ``isinstance(run, _OfflineRun)``)."""
