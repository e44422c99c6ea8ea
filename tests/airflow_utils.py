"""Running DAGs for real in tests: ``airflow dags test`` in a subprocess, then reading the metadata DB."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "dags_examples"
TEST_DAGS = REPO / "tests" / "dags"


def airflow_dags_test(
    dag_id: str,
    *,
    dags_folder: Path = TEST_DAGS,
    conf: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """``airflow dags test DAG_ID`` with ``dags_folder`` as the DAGs folder; returns the finished process."""
    cmd = [sys.executable, "-m", "airflow", "dags", "test", dag_id]
    if conf is not None:
        cmd += ["--conf", json.dumps(conf)]
    full_env = {**os.environ, "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder), **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=REPO, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"airflow dags test {dag_id} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def last_run_states(dag_id: str) -> tuple[str, dict[str, str]]:
    """(dag run state, {task_id: state}) of the newest run of ``dag_id``."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        assert run is not None, f"no run of {dag_id}"
        return str(run.state), {ti.task_id: str(ti.state) for ti in run.get_task_instances(session=session)}


def last_run_xcom(dag_id: str, task_id: str, key: str = "return_value") -> Any:
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        assert run is not None
        row = (
            session.query(XComModel)
            .filter(
                XComModel.dag_id == dag_id,
                XComModel.run_id == run.run_id,
                XComModel.task_id == task_id,
                XComModel.key == key,
            )
            .first()
        )
        return None if row is None else XComModel.deserialize_value(row)


def asset_events(uri: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
            .all()
        )
        return [dict(r.extra or {}) for r in rows]


def queued_for_assets(dag_id: str) -> int:
    """How many asset updates wait to trigger ``dag_id`` (asset-scheduled DAGs)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter(AssetDagRunQueue.target_dag_id == dag_id).count()
