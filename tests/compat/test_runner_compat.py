"""The step runner honours the step's ``azureml_compat``: an SDK v1 script imports ``azureml.core``, or fails."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.runner.execute import run_step
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore

SCRIPT = "from azureml.core import Run\nRun.get_context().log('imported', 1)\n"


@pytest.mark.parametrize(("compat", "code"), [pytest.param(True, 0, id="on"), pytest.param(False, 1, id="off")])
def test_runner_puts_the_package_in_reach_only_when_asked(
    local_default: Datastore, tmp_path: Path, compat: bool, code: int
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "v1_step.py").write_text(SCRIPT)
    tree = scan_source(str(source))
    store_snapshot(str(source), tree, local_default)
    spec = StepSpec(
        attempt=AttemptId("d", f"compat_{compat}", "t"),
        script_name="v1_step.py",
        snapshot=tree.digest,
        extra={"azureml_compat": compat},
    )
    assert records.write_spec(spec, local_default)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert run_step(records.spec_path(spec.step_run_id)) == code
    finally:  # the runner installs its own (it is a process of its own in real life)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    record = records.read_record(spec.step_run_id, local_default)
    if compat:
        assert record["metrics"] == {"imported": 1}
    else:
        assert "No module named 'azureml'" in record["log_tail"]
