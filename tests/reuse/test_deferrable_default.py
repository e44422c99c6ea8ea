"""``deferrable`` follows Airflow's ``[operators] default_deferrable`` on the step operator and ``ReuseSensor``; a
step that does not defer waits for another run's reuse key in the worker, with the trigger's own logic."""

from __future__ import annotations

import inspect
import threading
from pathlib import Path
from typing import Any

import pytest
from airflow.configuration import conf

from airflow_mlpipe.compute import KubernetesCompute
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.data_transfer import DataTransferOperator
from airflow_mlpipe.operators.python_script import PythonScriptOperator
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import Leases
from airflow_mlpipe.sensors.reuse import ReuseSensor
from airflow_mlpipe.triggers.reuse import ReuseTrigger
from tests.compute.helpers import LAUNCH, s3_config
from tests.reuse.lease_helpers import entry_for, use_local_default

KEY = "ab" * 16


@pytest.mark.parametrize(
    "operator", [PythonScriptOperator, DataTransferOperator, ReuseSensor], ids=["step", "transfer", "sensor"]
)
def test_the_default_is_airflows_default_deferrable(operator: type) -> None:
    default = inspect.signature(operator.__init__).parameters["deferrable"].default
    assert default is conf.getboolean("operators", "default_deferrable", fallback=False)


def test_the_step_operator_checks_and_keeps_its_choice(tmp_path: Path) -> None:
    step = PythonScriptOperator(task_id="train", script_name="train.py", source_directory=tmp_path, deferrable=True)
    assert step.deferrable is True
    with pytest.raises(ConfigError, match="deferrable 'yes' must be True or False"):
        PythonScriptOperator(task_id="t", script_name="t.py", source_directory=tmp_path, deferrable="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("on_compute", "on_step", "expected"),
    [
        pytest.param(None, True, True, id="follows-the-step"),
        pytest.param(None, False, False, id="follows-the-step-off"),
        pytest.param(False, True, False, id="compute-wins"),
    ],
)
def test_the_pod_waits_as_the_step_operator_says(on_compute: bool | None, on_step: bool, expected: bool) -> None:
    from airflow_mlpipe.compute.kubernetes import build_pod_operator

    target = KubernetesCompute(
        image="python:3.11-slim",
        secrets=["mlpipe-datastores"],
        datastore_secrets="mlpipe-datastores",
        deferrable=on_compute,
    )
    pod = build_pod_operator(
        target, task_id="train", launch=LAUNCH, datastores={"mlpipe_default": s3_config()}, deferrable=on_step
    )
    assert pod.deferrable is expected


def test_waiting_in_the_worker_ends_when_the_holder_indexes_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    leases = Leases(use_local_default(monkeypatch, tmp_path))
    lease = leases.acquire(KEY, "d.run1.t", ttl=30)
    assert lease is not None

    def finish() -> None:
        ReuseIndex(leases.store).put(entry_for(KEY, "d.run1.t", leases.store))
        lease.release()

    timer = threading.Timer(0.2, finish)
    timer.start()
    event: dict[str, Any] = ReuseTrigger(KEY, poll_interval=0.05, timeout=20).wait_in_worker()
    timer.join()
    assert event["status"] == "ready" and event["step_run_id"] == "d.run1.t"


def test_waiting_in_the_worker_reports_a_free_key_and_a_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    leases = Leases(use_local_default(monkeypatch, tmp_path))
    assert ReuseTrigger(KEY, poll_interval=0.05).wait_in_worker()["status"] == "lease_expired"
    assert leases.acquire(KEY, "d.run1.t", ttl=30) is not None
    assert ReuseTrigger(KEY, poll_interval=0.05, timeout=0.2).wait_in_worker()["status"] == "timeout"
