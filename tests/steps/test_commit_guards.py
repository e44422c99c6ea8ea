"""What an attempt commits when something goes wrong at its end: an empty output to register commits nothing, a
failed registration leaves every output without its completion marker, and the script never sees the registry key.
The runner runs in this process (its script in a subprocess), on the local store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.registry import REGISTRY_ROOT, DatasetRegistry
from airflow_mlpipe.datasets.seal import SEAL_KEY_ENV
from airflow_mlpipe.exceptions import DatastoreAccessError
from airflow_mlpipe.runner import execute
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.finish import RegistrationFailedError, finish_committed
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore

SCRIPT = """
import os, sys
model, extra = sys.argv[1], sys.argv[2]
if sys.argv[3] == "write":
    with open(os.path.join(model, "weights.txt"), "w") as fh:
        fh.write(os.environ.get("MLPIPE_REGISTRY_KEY", "no key"))
    with open(os.path.join(extra, "notes.txt"), "w") as fh:
        fh.write("notes")
"""


@pytest.fixture(autouse=True)
def _runner_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's SIGTERM/SIGINT handlers would outlive it here: pytest keeps its own."""
    monkeypatch.setattr(execute, "install_signal_handlers", lambda process: None)


def _spec(store: Datastore, tmp_path: Path, run: str) -> StepSpec:
    """A step with two outputs, ``model`` registered as dataset ``guarded``, ``extra`` not."""
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "step.py").write_text(SCRIPT)
    tree = scan_source(str(source))
    store_snapshot(str(source), tree, store)
    outputs = tuple(
        {"name": name, "datastore": store.name, "path": f"out/{run}/{name}", "path_template": "out/{run-id}",
         "mode": "mount", "registration": {"name": "guarded", "description": "", "tags": {}} if name == "model"
         else None}
        for name in ("model", "extra")
    )  # fmt: skip
    spec = StepSpec(
        attempt=AttemptId("d", run, "t"), script_name="step.py", snapshot=tree.digest, outputs=outputs,
        arguments=({"t": "output", "name": "model"}, {"t": "output", "name": "extra"}, {"t": "str", "v": run}),
    )  # fmt: skip
    assert records.write_spec(spec, store)
    return spec


def _run(store: Datastore, spec: StepSpec) -> tuple[int, dict[str, Any]]:
    code = execute.run_step(records.spec_path(spec.step_run_id))
    return code, records.read_record(spec.step_run_id, store)


def _markers(store: Datastore) -> list[str]:
    return [p for p in store.list("", recursive=True) if p.endswith("_MLPIPE_COMPLETE")]


def test_an_empty_output_to_register_commits_nothing(local_default: Datastore, tmp_path: Path) -> None:
    spec = _spec(local_default, tmp_path, "empty")
    code, record = _run(local_default, spec)
    assert code == 1 and record["status"] == records.FAILED
    assert (
        "output 'model' is empty" in record["error"] and "nothing to register as dataset 'guarded'" in record["error"]
    )
    assert "nothing was committed" in record["error"] and "Traceback" not in record.get("log_tail", "")
    assert records.read_commit(spec.step_run_id, local_default) is None
    assert not _markers(local_default) and not local_default.exists(f"{REGISTRY_ROOT}/guarded")


def test_a_failed_registration_leaves_every_output_unmarked(
    local_default: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(local_default, tmp_path, "write")
    code, record = _run(local_default, spec)
    assert code == 0 and record["status"] == records.COMMITTED

    def unreachable(self: DatasetRegistry, **kwargs: Any) -> Any:
        raise DatastoreAccessError("datastore 'mlpipe_default': cannot create '...': the store could not be reached")

    with monkeypatch.context() as patched:
        patched.setattr(DatasetRegistry, "register", unreachable)
        with pytest.raises(RegistrationFailedError) as caught:
            finish_committed(spec, local_default)
    message = str(caught.value)
    assert "output 'model'" in message and "dataset 'guarded' failed" in message and "could not be reached" in message
    assert "nothing was committed" in message
    assert not _markers(local_default)  # neither the registered output nor the other one
    assert not local_default.exists(f"{REGISTRY_ROOT}/guarded")

    finished = finish_committed(spec, local_default)  # the next try finishes the same commit
    assert finished["status"] == records.COMPLETED
    assert sorted(_markers(local_default)) == ["out/write/extra/_MLPIPE_COMPLETE", "out/write/model/_MLPIPE_COMPLETE"]
    assert DatasetRegistry().get("guarded").version == 1


def test_the_script_never_sees_the_registry_key(
    local_default: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    spec = _spec(local_default, tmp_path, "write")
    assert _run(local_default, spec)[0] == 0
    assert local_default.read_text("out/write/model/weights.txt") == "no key"
    finish_committed(spec, local_default)
    assert local_default.read_json(f"{REGISTRY_ROOT}/guarded/1.json")["seal"]["alg"] == "hmac-sha256"
