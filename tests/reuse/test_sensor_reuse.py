"""``ReuseSensor``: its pokes and policies, its deferral, and a real DAG run that waits in the trigger."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout, TaskDeferred

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import Leases
from airflow_mlpipe.sensors.reuse import ReuseSensor
from airflow_mlpipe.triggers.reuse import ReuseTrigger
from tests.airflow_utils import REPO, TEST_DAGS, last_run_states, last_run_xcom
from tests.reuse.lease_helpers import entry_for, use_local_default

KEY = "cd" * 16


@pytest.fixture
def leases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Leases:
    return Leases(use_local_default(monkeypatch, tmp_path))


def sensor(**kwargs: Any) -> ReuseSensor:
    return ReuseSensor(task_id="wait", **{"key": KEY, **kwargs})


def test_a_ready_key_returns_its_entry(leases: Leases) -> None:
    entry = entry_for(KEY, "producer", leases.store)
    ReuseIndex().put(entry)
    result = sensor().poke({})  # type: ignore[arg-type]
    assert isinstance(result, PokeReturnValue) and result.is_done and result.xcom_value == entry.to_dict()
    assert sensor().execute({}) == entry.to_dict()  # type: ignore[arg-type]  # poked first: no deferral


def test_a_held_key_is_not_done(leases: Leases) -> None:
    assert leases.acquire(KEY, "computing", ttl=60) is not None
    for on_missing in ("fail", "succeed", "wait"):
        assert sensor(on_missing=on_missing).poke({}) is False  # type: ignore[arg-type]


@pytest.mark.parametrize("released", [pytest.param(False, id="never-leased"), pytest.param(True, id="released")])
def test_on_missing_policies(leases: Leases, released: bool) -> None:
    if released:
        lease = leases.acquire(KEY, "failed-step", ttl=60)
        assert lease is not None
        lease.release()
    with pytest.raises(AirflowFailException, match="nothing will produce it"):
        sensor().poke({})  # type: ignore[arg-type]
    result = sensor(on_missing="succeed").poke({})  # type: ignore[arg-type]
    assert isinstance(result, PokeReturnValue) and result.is_done and result.xcom_value is None
    assert sensor(on_missing="wait").poke({}) is False  # type: ignore[arg-type]


def test_an_entry_whose_outputs_are_gone_is_not_ready(leases: Leases) -> None:
    """Verified as a step's hit is: a stale entry is dropped, and the sensor judges by the lease."""
    ReuseIndex().put(entry_for(KEY, "old-run", leases.store))
    leases.store.delete("dataset/old-run", recursive=True)
    lease = leases.acquire(KEY, "recomputing", ttl=60)
    assert lease is not None
    assert sensor().poke({}) is False  # type: ignore[arg-type]  # not failed: a run is computing it anew
    assert ReuseIndex().get(KEY) is None
    lease.release()  # that run failed too
    ReuseIndex().put(entry_for(KEY, "old-run"))
    with pytest.raises(AirflowFailException, match="no live holder"):
        sensor().execute_complete({}, {"status": "ready", "key": KEY})  # type: ignore[arg-type]


def test_a_bad_policy_is_refused() -> None:
    with pytest.raises(ConfigError, match="on_missing 'maybe'"):
        sensor(on_missing="maybe")


def test_a_held_key_defers_to_the_trigger(leases: Leases) -> None:
    assert leases.acquire(KEY, "computing", ttl=60) is not None
    with pytest.raises(TaskDeferred) as deferred:
        sensor(poke_interval=7, timeout=300, lease_ttl=30, on_missing="wait", deferrable=True).execute({})  # type: ignore[arg-type]
    trigger = deferred.value.trigger
    assert isinstance(trigger, ReuseTrigger) and deferred.value.method_name == "execute_complete"
    _, kwargs = trigger.serialize()
    assert kwargs["key"] == KEY and kwargs["poll_interval"] == 7 and kwargs["timeout"] == 300
    assert kwargs["lease_ttl"] == 30 and kwargs["wait_for_producer"] is True


def test_resuming_from_each_event(leases: Leases) -> None:
    """A re-created sensor resumes with the event alone."""
    entry = entry_for(KEY, "producer", leases.store)
    ReuseIndex().put(entry)
    assert sensor().execute_complete({}, {"status": "ready", "key": KEY}) == entry.to_dict()  # type: ignore[arg-type]
    ReuseIndex().drop(KEY)
    free = {"status": "lease_expired", "key": KEY, "reason": "stale"}
    with pytest.raises(AirflowFailException, match="stale"):
        sensor().execute_complete({}, free)  # type: ignore[arg-type]
    assert sensor(on_missing="succeed").execute_complete({}, free) is None  # type: ignore[arg-type]
    with pytest.raises(AirflowSensorTimeout):
        sensor(timeout=5).execute_complete({}, {"status": "timeout", "key": KEY, "waited": 5.0})  # type: ignore[arg-type]
    with pytest.raises(AirflowException, match="store away"):
        sensor().execute_complete({}, {"status": "error", "key": KEY, "message": "store away"})  # type: ignore[arg-type]


def test_poke_mode_without_deferral(leases: Leases) -> None:
    """deferrable=False pokes in the worker; a holder that stops beating is judged stale between pokes."""
    assert leases.acquire(KEY, "crashed", ttl=0.2) is not None
    with pytest.raises(AirflowFailException, match="stale"):
        sensor(deferrable=False, poke_interval=0.05, timeout=30).execute({})  # type: ignore[arg-type]


def test_a_dag_run_defers_while_another_run_computes_then_gets_the_entry(
    airflow_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``airflow dags test`` runs the deferred sensor's trigger in-process (Airflow 3.3). The lease is held here,
    with heartbeats, until the DAG run's log says the trigger runs; then the entry is written and the lease
    released, and the trigger's "ready" resumes the sensor."""
    store = use_local_default(monkeypatch, tmp_path)
    leases = Leases(store)
    lease = leases.acquire(KEY, "another-run", ttl=5)
    assert lease is not None
    entry = entry_for(KEY, "another-run", store)
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(TEST_DAGS),
        "PYTHONUNBUFFERED": "1",
    }
    cmd = [sys.executable, "-m", "airflow", "dags", "test", "reuse_sensor_wait", "--conf", f'{{"key": "{KEY}"}}']
    output: list[str] = []
    trigger_started = threading.Event()
    with lease.keep_alive():
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO)
        reader = threading.Thread(target=_read_lines, args=(proc, output, trigger_started))
        reader.start()
        assert trigger_started.wait(120), "".join(output)[-4000:]
        ReuseIndex(store).put(entry)
    proc.wait(timeout=120)
    reader.join()
    log = "".join(output)
    state, tasks = last_run_states("reuse_sensor_wait")
    assert state == "success", log[-4000:]
    assert tasks == {"nothing_to_wait_for": "success", "wait": "success"}
    assert "being computed by another-run" in log  # the first poke saw the holder
    assert last_run_xcom("reuse_sensor_wait", "wait") == entry.to_dict()
    assert last_run_xcom("reuse_sensor_wait", "nothing_to_wait_for") is None


def _read_lines(proc: subprocess.Popen[str], output: list[str], trigger_started: threading.Event) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        output.append(line)
        if "running trigger in line" in line:
            trigger_started.set()
    trigger_started.set()  # ended without deferring: let the test fail on the output, not hang
