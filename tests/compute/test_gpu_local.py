"""Opt-in: on a machine with an NVIDIA GPU, a script step on LocalCompute sees it and records it in its metrics.

Skipped, with the reason, where ``nvidia-smi`` is missing or finds no GPU (as on the usual CI machines)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from airflow_mlpipe.steps.records import read_record
from airflow_mlpipe.storage import resolve
from tests.airflow_utils import airflow_dags_test, last_run_states, last_run_xcom

# Decided at collection, before the Airflow fixtures start (seconds): the usual machine has no GPU.
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(
        shutil.which("nvidia-smi") is None,
        reason="no GPU here: nvidia-smi is not installed (this test runs where an NVIDIA GPU and driver are)",
    ),
]


def gpu_names() -> list[str]:
    """The GPUs ``nvidia-smi`` lists here; skips the test when there is none."""
    proc = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=60
    )
    names = [line.strip() for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not names:
        pytest.skip(f"no GPU here: nvidia-smi found none ({(proc.stderr or proc.stdout).strip()[:200]})")
    return names


def test_a_local_step_records_the_gpu_it_saw(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = gpu_names()
    env = {"MLPIPE_HOME": str(tmp_path / "mlpipe")}
    monkeypatch.setenv("MLPIPE_HOME", env["MLPIPE_HOME"])
    resolve.clear_cache()
    airflow_dags_test("step_gpu_local", env=env)
    state, tasks = last_run_states("step_gpu_local")
    assert state == "success" and tasks == {"see_gpu": "success"}
    record = read_record(last_run_xcom("step_gpu_local", "see_gpu")["step_run_id"])
    metrics = record["metrics"]
    assert metrics["gpu_count"] == len(names)
    assert metrics["gpu_name"] == names[0]
    assert metrics["gpu_memory_mib"] > 0
