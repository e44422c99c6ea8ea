"""A real Airflow deployment for tests of what only shows under the scheduler: retries, clears, mapped tasks,
deferral in the triggerer, killed task processes.

``AirflowServices`` starts the api-server, scheduler (LocalExecutor), dag-processor and triggerer on 127.0.0.1
with a private home and metadata database (PostgreSQL in the tests: SQLite refuses backfills while the scheduler
runs), and drives them through the REST API as a user would.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from tests.emulators import free_port, wait_for_port

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
FINISHED = ("success", "failed")


class AirflowServices:
    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        env: dict[str, str],
        *,
        database: str | None = None,
        components: tuple[str, ...] = COMPONENTS,
        migrated: bool = False,
    ) -> None:
        """:param database: the metadata DB's SQLAlchemy URL (default: SQLite in ``home``).
        :param components: the ``airflow`` commands to run (add ``"celery worker"`` for a CeleryExecutor).
        :param migrated: the database is migrated already (``tests.postgres.PostgresCluster.create_database``)."""
        self.home = home
        self.components = components
        self.migrated = migrated
        self.database = database or f"sqlite:///{home / 'airflow.db'}"
        self.dags_folder = dags_folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = self._environment(env)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.token = ""

    def _environment(self, extra: dict[str, str]) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "MLPIPE_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database,
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "6",
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "3",
                # A DAG file is parsed when it is new or changed (the default modified_time order re-parses a file
                # whose mtime moved); parsing every unchanged file every 5 s cost the suite about 170 CPU seconds.
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
                "MLPIPE_HOME": str(self.home / "mlpipe"),
                # One secret for every component (the executor signs task tokens, the api-server checks them);
                # left unset, components started at once could each generate their own.
                "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            }
        )
        env.update(extra)
        return env

    # -- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.migrated:
            migrate = [sys.executable, "-m", "airflow", "db", "migrate"]
            subprocess.run(migrate, env=self.env, check=True, capture_output=True)
        for name in self.components:
            log = open(self.home / f"{name.replace(' ', '-')}.log", "wb")  # noqa: SIM115 -- closed with the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *name.split()],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stopped with every process it starts (log servers, workers)
            )
        wait_for_port(self.port, self.procs["api-server"], "airflow api-server", timeout=120)
        self.token = self._token()

    def stop(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # what is left of its group: log servers, workers

    def log_tail(self, component: str, chars: int = 3000) -> str:
        path = self.home / f"{component.replace(' ', '-')}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def _token(self) -> str:
        passwords = self.home / "simple_auth_manager_passwords.json.generated"
        deadline = time.monotonic() + 60
        while not passwords.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        username, password = next(iter(json.loads(passwords.read_text()).items()))
        answer = self._request("POST", "/auth/token", {"username": username, "password": password}, auth=False)
        return str(answer["access_token"])

    # -- REST -----------------------------------------------------------------------------------------------------
    def _send(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> tuple[int, bytes]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    @staticmethod
    def _parse(raw: bytes) -> Any:
        return json.loads(raw) if raw and raw[:1] in (b"{", b"[") else raw.decode(errors="replace")

    def _request(self, method: str, path: str, body: Any = None, *, auth: bool = True) -> Any:
        status, raw = self._send(method, path, body, auth=auth)
        if status >= 400:
            raise AssertionError(f"{method} {path}: HTTP {status}: {raw.decode(errors='replace')}")
        return self._parse(raw)

    def api(self, method: str, path: str, body: Any = None) -> Any:
        return self._request(method, "/api/v2" + path, body)

    def api_status(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """The HTTP status and the parsed answer, errors included."""
        status, raw = self._send(method, "/api/v2" + path, body)
        return status, self._parse(raw)

    @property
    def admin_password(self) -> tuple[str, str]:
        """The simple auth manager's generated user and password, for a browser to sign in with."""
        passwords = json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())
        return next(iter(passwords.items()))

    def wait_for_dags(self, *dag_ids: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        missing = set(dag_ids)
        while missing and time.monotonic() < deadline:
            known = {d["dag_id"] for d in self.api("GET", "/dags?limit=100")["dags"]}
            errors = self.api("GET", "/importErrors")["import_errors"]
            if errors:
                raise AssertionError(f"DAG files failed to import: {errors}")
            missing -= known
            if missing:
                time.sleep(1)
        assert not missing, f"the dag-processor did not load {sorted(missing)}:\n{self.log_tail('dag-processor')}"

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any] | None = None) -> str:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        return str(self.api("POST", f"/dags/{dag_id}/dagRuns", body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.api("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}")["state"])

    def run_states(self, dag_id: str, run_ids: list[str]) -> dict[str, str]:
        """The states of ``run_ids``, in one request (a poll of 14 runs asked 14 times a second otherwise)."""
        found: dict[str, str] = {}
        offset = 0
        while True:
            page = self.api("GET", f"/dags/{dag_id}/dagRuns?limit=100&offset={offset}&order_by=id")["dag_runs"]
            found.update({r["dag_run_id"]: str(r["state"]) for r in page})
            if len(page) < 100:
                break
            offset += 100
        missing = [r for r in run_ids if r not in found]
        assert not missing, f"no DAG runs {missing} of {dag_id}"
        return {r: found[r] for r in run_ids}

    def wait_for_runs(self, dag_id: str, run_ids: list[str], timeout: float = 300) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        states: dict[str, str] = {}
        while time.monotonic() < deadline:
            states = self.run_states(dag_id, run_ids)
            if all(s in FINISHED for s in states.values()):
                return states
            time.sleep(1)
        raise AssertionError(
            f"DAG runs of {dag_id} did not finish in {timeout:.0f} s: {states}\n{self.log_tail('scheduler')}"
        )

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        return list(self.api("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances?limit=100")["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        for ti in self.task_instances(dag_id, run_id):
            if ti["task_id"] == task_id and ti["map_index"] == map_index:
                return ti
        raise AssertionError(f"no task instance {task_id}[{map_index}] in {dag_id}/{run_id}")

    def wait_for_task_state(
        self, dag_id: str, run_id: str, task_id: str, states: tuple[str, ...], timeout: float = 120
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        ti: dict[str, Any] = {}
        while time.monotonic() < deadline:
            ti = self.task_instance(dag_id, run_id, task_id)
            if ti["state"] in states:
                return ti
            time.sleep(0.5)
        raise AssertionError(f"{dag_id}/{run_id}/{task_id} never reached {states}: {ti.get('state')}")

    def clear(self, dag_id: str, run_id: str, task_ids: list[str]) -> None:
        body = {
            "dry_run": False,
            "task_ids": task_ids,
            "dag_run_id": run_id,
            "only_failed": False,
            "reset_dag_runs": True,
        }
        self.api("POST", f"/dags/{dag_id}/clearTaskInstances", body)

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1) -> str:
        path = (
            f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/{task_id}/logs/{try_number}"
            f"?full_content=true&map_index={map_index}"
        )
        answer = self.api("GET", path)
        if isinstance(answer, dict):
            content = answer.get("content")
            if isinstance(content, list):
                return "\n".join(str(c.get("event", c)) if isinstance(c, dict) else str(c) for c in content)
            return str(content)
        return str(answer)

    def kill_task_process(self, ti_id: str) -> bool:
        """SIGKILL the task process of task instance ``ti_id`` (its title names it), as a dying worker would."""
        found = subprocess.run(["pkill", "-9", "-f", f"airflow worker -- {ti_id}"], check=False)
        return found.returncode == 0


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")
