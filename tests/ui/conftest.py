"""The ML pages under test: Airflow's API server app with the plugin's pages mounted (as the api-server mounts
them), signed-in clients, and step run records: made up (every kind of metric, logs, artifacts), and the example
pipeline's, run twice by ``airflow dags test`` (the second run reuses ``data_prep``, trains anew with another
learning rate)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import EXAMPLES, airflow_dags_test

EXAMPLE = "mlpipe_example_pipeline"


def make_app() -> Any:
    """Airflow's app with the plugin, as the api-server builds it (the plugin builds its pages' app only there)."""
    from airflow.api_fastapi.app import create_app

    import airflow_mlpipe.plugins as plugin

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plugin.MlpipePlugin, "fastapi_apps", [plugin._pages_app()])
        return create_app(apps="core")


def token(username: str = "admin", role: str = "admin") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role)))


@pytest.fixture(scope="module")
def app(airflow_db: Path) -> Any:
    return make_app()


@pytest.fixture
def anonymous(app: Any) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    """Signed in as the UI is: the session cookie Airflow's login sets."""
    from fastapi.testclient import TestClient

    with TestClient(app) as signed_in:
        signed_in.cookies.set("_token", token())
        yield signed_in


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Datastore:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    return Datastore.get_default()


def metric_entries() -> list[dict[str, Any]]:
    """A metric log with every kind ``Run`` writes."""
    entries: list[dict[str, Any]] = [{"name": "accuracy", "kind": "scalar", "value": 0.93}]
    entries += [{"name": "loss", "kind": "scalar", "value": v} for v in (0.9, 0.5, 0.3, 0.2)]
    entries += [{"name": "curve", "kind": "row", "value": {"epoch": e, "loss": 1 / (e + 1)}} for e in range(6)]
    entries.append({"name": "lr_schedule", "kind": "list", "value": [0.1, 0.05, 0.01]})
    entries.append({"name": "confusion", "kind": "table", "value": {"label": ["a", "b"], "count": [7, 3]}})
    entries.append({"name": "roc", "kind": "image", "value": "images/roc.png"})
    return entries


def collected(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """``metrics`` as the runner collects them from ``entries``."""
    import tempfile

    from airflow_mlpipe.runner.execute import _collect_metrics

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries))
        metrics, _ = _collect_metrics(folder)
    return dict(metrics)


@dataclass
class Made:
    step_run_id: str
    record: dict[str, Any]


def make_run(
    store: Datastore,
    dag_id: str = "ui_dag",
    run_id: str = "run-1",
    task_id: str = "train",
    *,
    status: str = records.COMPLETED,
    created_at: str = "2026-11-01T10:00:00.000+00:00",
    reused_from: str | None = None,
    params: dict[str, Any] | None = None,
    with_files: bool = True,
) -> Made:
    """A step run as the runner and the finish path leave it: record, summaries, a log, artifacts."""
    step_run_id = AttemptId(dag_id, run_id, task_id).step_run_id
    entries = metric_entries()
    record: dict[str, Any] = {
        "step_run_id": step_run_id,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "map_index": -1,
        "try_number": 1,
        "created_at": created_at,
        "started_at": created_at,
        "finished_at": created_at,
        "status": status,
        "kind": "script",
        "script_name": "train.py",
        "arguments": ["--lr", {"kind": "param", "name": "learning_rate", "value": (params or {}).get("lr", 0.1)}],
        "airflow": {"params": params or {"lr": 0.1}},
        "inputs": [
            {
                "name": "data",
                "mode": "download",
                "dataset": {"kind": "file", "name": "ui_data", "version": 1},
                "content": {"files": 2, "bytes": 2048},
            }
        ],
        "outputs": [
            {
                "name": "model",
                "datastore": "mlpipe_default",
                "path": f"dataset/{step_run_id}/model",
                "uri": store.uri(f"dataset/{step_run_id}/model"),
                "manifest": {"files": 1, "bytes": 1234, "digest": "d"},
                "registered": {"name": "ui_model", "version": 1, "created": True},
            }
        ],
        "metrics": collected(entries),
        "metric_log": entries,
        "reuse": {
            "key": "k" * 32,
            "components": {"script": "train.py", "arguments": [params or {}]},
            "decision": {"hit": bool(reused_from), "reason": "hit" if reused_from else "no_entry"},
            "explanation": ["the same key as " + reused_from] if reused_from else ["no earlier run of this step"],
        },
        "reused_from": reused_from,
        "logs": [],
        "artifacts": [],
        "log_tail": "epoch 5 loss 0.17\n",
    }
    if with_files and not reused_from:
        store.write_text(records.log_path(step_run_id, 1), "the whole log\n")
        store.write_text(f"{records.artifacts_folder(step_run_id)}/outputs/summary.txt", "a summary\n")
        store.write_bytes(f"{records.artifacts_folder(step_run_id)}/images/roc.png", PNG)
        store.write_text(f"{records.run_folder(step_run_id)}/spec.json", "{}")
        record["logs"] = [records.log_path(step_run_id, 1)]
        record["artifacts"] = ["images/roc.png", "outputs/summary.txt"]
    if reused_from:
        record["status"] = records.REUSED
        record.pop("metric_log")
    records.write_record(record, store)
    return Made(step_run_id, record)


# A 1x1 PNG.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360f8cfc0f01f0005000201"
    "e5270bd10000000049454e44ae426082"
)


@dataclass
class Example:
    """The example pipeline run twice: ``first`` computed every step, ``second`` reused ``data_prep`` and trained
    again with learning rate 0.5."""

    store: Datastore
    mlpipe_home: Path
    first: dict[str, str]
    second: dict[str, str]

    def record(self, step_run_id: str) -> dict[str, Any]:
        return records.read_record(step_run_id, self.store)


def _example_run_ids() -> list[str]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == EXAMPLE).order_by(DagRun.id).all()
        return [str(r.run_id) for r in runs]


@pytest.fixture(scope="module")
def example(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Example]:
    home = tmp_path_factory.mktemp("ui-example") / "mlpipe"
    env = {"MLPIPE_HOME": str(home)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLPIPE_HOME", str(home))
        resolve.clear_cache()
        before = set(_example_run_ids())
        airflow_dags_test(EXAMPLE, dags_folder=EXAMPLES, env=env)
        airflow_dags_test(EXAMPLE, dags_folder=EXAMPLES, env=env, conf={"learning_rate": 0.5})
        first_run, second_run = [r for r in _example_run_ids() if r not in before]
        steps = ("data_prep", "train", "compare")
        yield Example(
            Datastore.get_default(),
            home,
            {t: AttemptId(EXAMPLE, first_run, t).step_run_id for t in steps},
            {t: AttemptId(EXAMPLE, second_run, t).step_run_id for t in steps},
        )
        resolve.clear_cache()
