"""The files a step's script writes for an output get the paths a user could give at the destination, by the rule
a transfer applies to the files it writes: none below a folder named ``_mlpipe`` (a forged registry for a datastore
rooted there) and none named as a completion marker or journal (a forged marker), compared as stores keep names.
Otherwise the step fails before anything is staged: nothing is committed or registered, and no such file reaches
the destination. The runner runs in this process (its script in a subprocess), on the local store, in mount mode
(the folder renamed into place) and in upload mode (the copy engine, the path of every object store)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.registry import REGISTRY_ROOT
from airflow_mlpipe.runner import execute
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_s3_datastore
from tests.emulators import MotoS3

SCRIPT = """
import os, sys
out = sys.argv[1]
for rel in sys.argv[2:]:  # 'x/' is an empty folder
    os.makedirs(os.path.dirname(os.path.join(out, rel)) or out, exist_ok=True)
    if not rel.endswith("/"):
        with open(os.path.join(out, rel), "w") as fh:
            fh.write(rel)
"""


@pytest.fixture(autouse=True)
def _runner_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's SIGTERM/SIGINT handlers would outlive it here: pytest keeps its own."""
    monkeypatch.setattr(execute, "install_signal_handlers", lambda process: None)


def _run(
    store: Datastore, tmp_path: Path, run: str, mode: str, files: list[str], output_store: Datastore | None = None
) -> tuple[int, dict[str, Any], bool]:
    """Run a step whose script writes ``files`` into its output (on ``output_store``, else ``store``, the default
    datastore): (exit code, run record, whether it committed)."""
    source = tmp_path / f"src-{run}"
    source.mkdir()
    (source / "step.py").write_text(SCRIPT)
    tree = scan_source(str(source))
    store_snapshot(str(source), tree, store)
    output = {
        "name": "model", "datastore": (output_store or store).name, "path": f"team/{run}",
        "path_template": "team/{run-id}", "mode": mode,
        "registration": {"name": "forged_ds", "description": "", "tags": {}},
    }  # fmt: skip
    arguments = ({"t": "output", "name": "model"}, *({"t": "str", "v": rel} for rel in files))
    spec = StepSpec(
        attempt=AttemptId("d", run, "t"), script_name="step.py", snapshot=tree.digest, outputs=(output,),
        arguments=arguments,
    )  # fmt: skip
    assert records.write_spec(spec, store)
    code = execute.run_step(records.spec_path(spec.step_run_id))
    committed = records.read_commit(spec.step_run_id, store) is not None
    return code, records.read_record(spec.step_run_id, store), committed


@pytest.mark.parametrize("mode", ["mount", "upload"])
@pytest.mark.parametrize(
    ("files", "refused"),
    [
        pytest.param(
            ["data.csv", "_mlpipe/registry/datasets/victim/1.json", "Sub2/_MLPIPE_COMPLETE.", "Sub2/y.csv"],
            "2 file(s) into the folder given for the output whose paths mlpipe does not commit "
            "('Sub2/_MLPIPE_COMPLETE.', '_mlpipe/registry/datasets/victim/1.json')",
            id="registry-and-marker-with-a-dot",
        ),
        pytest.param(
            ["data.csv", "sub/_MLPIPE_COMPLETE"], "1 file(s) into the folder given for the output whose paths "
            "mlpipe does not commit ('sub/_MLPIPE_COMPLETE')", id="marker",
        ),
        pytest.param(
            ["data.csv", "a/_MLPIPE./b.csv", "_mlpipe_transfer"], "2 file(s) into the folder given for the output "
            "whose paths mlpipe does not commit ('_mlpipe_transfer', 'a/_MLPIPE./b.csv')", id="journal-and-case",
        ),
    ],
)  # fmt: skip
def test_reserved_names_in_an_output_fail_the_step_and_commit_nothing(
    local_default: Datastore, tmp_path: Path, mode: str, files: list[str], refused: str
) -> None:
    run = f"forge-{mode}"
    code, record, committed = _run(local_default, tmp_path, run, mode, files)

    assert code == 1 and record["status"] == records.FAILED and not committed
    error = record["error"]
    assert error.startswith(f"StagingError: output 'model': the script wrote {refused}; the first: "), error
    assert "datastore 'mlpipe_default': path 'team/" in error
    assert error.endswith("Rename those files or folders in the script; nothing was committed"), error
    root = Path(local_default.full_path(""))
    assert not (root / "team").exists() or not any((root / "team").iterdir())  # no staging folder left either
    assert not local_default.exists(f"{REGISTRY_ROOT}/forged_ds")
    assert not (root / "team" / run / "_mlpipe").exists()


def test_an_empty_folder_named_as_a_marker_fails_a_step_in_mount_mode(local_default: Datastore, tmp_path: Path) -> None:
    """Mount mode renames the output's folder into place as it is, empty folders too."""
    code, record, committed = _run(local_default, tmp_path, "emptydir", "mount", ["data.csv", "sub/_MLPIPE_COMPLETE/"])
    assert code == 1 and not committed
    assert (
        "the script wrote 1 file(s) into the folder given for the output whose paths mlpipe does not commit "
        in (record["error"])
    )
    assert "('sub/_MLPIPE_COMPLETE')" in record["error"] and not local_default.exists("team/emptydir")


def test_reserved_names_in_an_output_on_an_object_store_commit_nothing(
    local_default: Datastore, tmp_path: Path, moto_s3: MotoS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = make_s3_datastore(moto_s3, "s3lake")
    extra = {"url": lake.config.url, **dict(lake.config.storage_options)}
    monkeypatch.setenv("AIRFLOW_CONN_S3LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    files = ["data.csv", "_mlpipe/registry/datasets/victim/1.json", "sub/_MLPIPE_COMPLETE"]

    code, record, committed = _run(local_default, tmp_path, "s3", "upload", files, output_store=Datastore.get("s3lake"))

    assert code == 1 and not committed
    assert record["error"].startswith(
        "StagingError: output 'model': the script wrote 2 file(s) into the folder given for the output whose paths "
        "mlpipe does not commit ('_mlpipe/registry/datasets/victim/1.json', 'sub/_MLPIPE_COMPLETE'); the first: "
        "datastore 's3lake': path 'team/s3/_mlpipe/registry/datasets/victim/1.json' is inside '_mlpipe/'"
    ), record["error"]
    assert lake.fs.find(lake.root) == []


def test_names_that_only_look_alike_are_committed(local_default: Datastore, tmp_path: Path) -> None:
    files = ["my_mlpipe/a.csv", "_mlpipe_old/b.csv", "_MLPIPE_COMPLETE_old", "x._mlpipe"]
    code, record, committed = _run(local_default, tmp_path, "alike", "mount", files)
    assert code == 0 and committed, record.get("error")
    assert all(local_default.read_text(f"team/alike/{rel}") == rel for rel in files)
