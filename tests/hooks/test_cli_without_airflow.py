"""The CLI reads datastore connections from the metadata DB without importing Airflow, and finds what Airflow
finds: the same settings, decrypted with the same Fernet key; with a secrets backend it asks Airflow."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import unique

PROBE = """
import json, os, sys
os.environ["_AIRFLOW_PROCESS_CONTEXT"] = "server"
if sys.argv[2] == "airflow-first":
    import airflow  # noqa: F401 -- Airflow's own lookup
from airflow_mlpipe.storage.resolve import find_config, list_datastore_configs
config = find_config(sys.argv[1])
listed = sorted(c.name for c in list_datastore_configs())
print(json.dumps({
    "url": config.url if config else None,
    "options": dict(config.storage_options) if config else None,
    "listed": listed,
    "airflow_imported": "airflow" in sys.modules,
}))
"""


def _probe(conn_id: str, mode: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, conn_id, mode],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _add_connection(conn_id: str, extra: dict[str, Any]) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "connections",
            "add",
            conn_id,
            "--conn-type",
            "mlpipe_datastore",
            "--conn-extra",
            json.dumps(extra),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )


@pytest.fixture(scope="module")
def db_connection(airflow_db: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    conn_id = unique("fastcli_")
    folder = tmp_path_factory.mktemp("fastcli-store")
    _add_connection(conn_id, {"url": folder.as_uri(), "description": "for the CLI test", "auto_mkdir": True})
    return conn_id, folder.as_uri()


def test_a_db_connection_is_found_without_importing_airflow(db_connection: tuple[str, str], airflow_db: Path) -> None:
    conn_id, url = db_connection
    with sqlite3.connect(airflow_db / "airflow.db") as db:
        (encrypted,) = db.execute("SELECT is_extra_encrypted FROM connection WHERE conn_id = ?", (conn_id,)).fetchone()
    assert encrypted, "the test home should encrypt connections (a Fernet key), so that decryption is exercised"
    fast = _probe(conn_id, "fast")
    assert fast["airflow_imported"] is False
    assert fast["url"] == url and fast["options"] == {"auto_mkdir": True}
    assert conn_id in fast["listed"] and "mlpipe_default" in fast["listed"]
    slow = _probe(conn_id, "airflow-first")
    assert slow["airflow_imported"] is True
    assert {k: v for k, v in slow.items() if k != "airflow_imported"} == {
        k: v for k, v in fast.items() if k != "airflow_imported"
    }


def test_a_missing_connection_is_none_without_importing_airflow(airflow_db: Path) -> None:
    answer = _probe(unique("nosuch_"), "fast")
    assert answer["url"] is None and answer["airflow_imported"] is False


def test_with_a_secrets_backend_airflow_is_asked(db_connection: tuple[str, str]) -> None:
    conn_id, url = db_connection
    backend = "airflow.secrets.local_filesystem.LocalFilesystemBackend"
    answer = _probe(conn_id, "fast", {"AIRFLOW__SECRETS__BACKEND": backend})
    assert answer["airflow_imported"] is True and answer["url"] == url


def test_runs_show_and_list_answer_without_airflow(airflow_db: Path, tmp_path: Path) -> None:
    """The embedded default datastore (no connection named mlpipe_default): ``mlpipe runs list`` and ``runs show``
    never import Airflow."""
    from airflow_mlpipe.steps import records
    from airflow_mlpipe.storage.datastore import Datastore

    home = tmp_path / "mlpipe"
    env = {**os.environ, "MLPIPE_HOME": str(home)}
    store = Datastore("mlpipe_default", (home / "datastore").as_uri())
    records.write_record(
        {"step_run_id": "d.r.t", "dag_id": "d", "run_id": "r", "task_id": "t", "status": "Completed"}, store
    )
    wrapper = (
        "import atexit, sys\n"
        "atexit.register(lambda: sys.__stderr__.write('AIRFLOW_IMPORTED=%s\\n' % ('airflow' in sys.modules)))\n"
        "from airflow_mlpipe.cli.main import main\n"
        "main(sys.argv[1:])\n"
    )
    for argv in (["runs", "list", "--json"], ["runs", "show", "d.r.t", "--json"]):
        done = subprocess.run(
            [sys.executable, "-c", wrapper, *argv], capture_output=True, text=True, env=env, timeout=120, check=False
        )
        assert done.returncode == 0, done.stderr
        assert "AIRFLOW_IMPORTED=False" in done.stderr, done.stderr
        answer = json.loads(done.stdout)
        found = answer["runs"][0] if "runs" in answer else answer
        assert found["step_run_id"] == "d.r.t" and found["status"] == "Completed"
