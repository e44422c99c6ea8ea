"""Running DAGs for real in tests: ``airflow dags test`` in a subprocess, then reading the metadata DB."""

from __future__ import annotations

import atexit
import json
import os
import subprocess
import sys
import tempfile
import threading
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
    logical_date: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """``airflow dags test DAG_ID [LOGICAL_DATE]`` with ``dags_folder`` as the DAGs folder; returns the finished
    process."""
    args = ["dags", "test", dag_id, *([logical_date] if logical_date else [])]
    if conf is not None:
        args += ["--conf", json.dumps(conf)]
    proc = airflow_cli(*args, env={"AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder), **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(
            f"airflow dags test {dag_id} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def airflow_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``airflow ARGS...`` in this process's environment plus ``env``, forked from the warm server where it can be."""
    full_env = {**os.environ, **(env or {})}
    proc = _WARM.run(list(args), full_env) if _WARM.usable(full_env) else None
    if proc is None:
        cmd = [sys.executable, "-m", "airflow", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=REPO, check=False)
    return proc


# Connections and variables from the environment are looked up when used, so a fork sees the command's own.
_LOOKED_UP = ("AIRFLOW_CONN_", "AIRFLOW_VAR_")


class _WarmServer:
    """This test process's ``tests/dagtest_server.py`` (see there): started at the first use, for the Airflow
    environment of that moment; a command whose environment changes Airflow's configuration otherwise (another
    home, an OpenLineage transport, ...) runs in a cold process instead, as do all where the server cannot start."""

    _SAME_BY_FORK = ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")  # re-read by the fork

    def __init__(self) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.airflow_env: dict[str, str] = {}
        self.broken = os.environ.get("MLPIPE_TEST_COLD_DAGS_TEST") == "1"
        self.lock = threading.Lock()

    @staticmethod
    def _airflow(env: dict[str, str]) -> dict[str, str]:
        return {
            k: v
            for k, v in env.items()
            if (k.startswith("AIRFLOW") and k not in _WarmServer._SAME_BY_FORK and not k.startswith(_LOOKED_UP))
            or k.startswith("PYTHON")
        }

    def usable(self, env: dict[str, str]) -> bool:
        if self.broken:
            return False
        served = self.airflow_env if self.proc is not None else self._airflow(dict(os.environ))
        return self._airflow(env) == served

    def start(self) -> None:
        self.airflow_env = self._airflow(dict(os.environ))
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests" / "dagtest_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
        )
        atexit.register(self.proc.kill)

    def run(self, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str] | None:
        with self.lock, tempfile.TemporaryDirectory(prefix="mlpipe-dags-test-") as tmp:
            if self.proc is None:
                self.start()
            assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
            out, err = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
            command = {"args": args, "env": env, "cwd": str(REPO), "stdout": out, "stderr": err}
            try:
                self.proc.stdin.write(json.dumps(command) + "\n")
                self.proc.stdin.flush()
                reply = self.proc.stdout.readline()
            except OSError:
                reply = ""
            if not reply:  # the server died (or never started): this and later commands run cold
                self.broken = True
                return None
            code = int(json.loads(reply)["returncode"])
            with (
                open(out, encoding="utf-8", errors="replace") as fo,
                open(err, encoding="utf-8", errors="replace") as fe,
            ):
                return subprocess.CompletedProcess(["airflow", *args], code, fo.read(), fe.read())


_WARM = _WarmServer()


def last_run_states(dag_id: str) -> tuple[str, dict[str, str]]:
    """(dag run state, {task_id: state}) of the newest run of ``dag_id``."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        if run is None:
            dags = sorted({r.dag_id for r in session.query(DagRun.dag_id)})
            raise AssertionError(f"no run of {dag_id} in {session.get_bind().url} (runs of: {dags})")
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


def last_run_rendered_fields(dag_id: str) -> dict[str, Any]:
    """``{task_id: rendered fields}`` as Airflow stored them (the Rendered Templates tab) for the newest run of
    ``dag_id``; a task whose fields were never stored is absent."""
    from airflow.models.dagrun import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.utils.session import create_session

    with create_session() as session:
        run = session.query(DagRun).filter(DagRun.dag_id == dag_id).order_by(DagRun.id.desc()).first()
        assert run is not None
        rows = session.query(RenderedTaskInstanceFields).filter(
            RenderedTaskInstanceFields.dag_id == dag_id, RenderedTaskInstanceFields.run_id == run.run_id
        )
        return {row.task_id: row.rendered_fields for row in rows}


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
