"""The runner reads exactly what an attempt's spec pinned and writes nothing it did not commit: inputs changed
after planning, files added next to an input, a consumer scribbling over a mounted input, and source snapshots
checked byte for byte when stored and when fetched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.reuse.inputs import pin_input
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import fetch_snapshot, pack_path, scan_source, store_snapshot, tree_path
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.reuse_helpers import committed_output

SCRIPTS = Path(__file__).resolve().parent.parent / "dags" / "step_scripts"


@pytest.fixture
def store(local_default: Datastore) -> Datastore:
    return local_default


def _run(store: Datastore, run: str, script: str, inputs: list[dict[str, Any]]) -> tuple[int, str, str]:
    """Plan (pin the inputs), write the spec, run the runner as a pod would; returns (exit code, output, id)."""
    tree = scan_source(str(SCRIPTS))
    store_snapshot(str(SCRIPTS), tree, store)
    spec = StepSpec(
        attempt=AttemptId("d", run, "t"),
        script_name=script,
        snapshot=tree.digest,
        arguments=({"t": "str", "v": "--out"}, {"t": "output", "name": "o"}),
        inputs=tuple(inputs),
        outputs=({"name": "o", "datastore": store.name, "path": f"out/{run}", "path_template": "out/{run-id}",
                  "mode": "upload", "registration": None},),
    )  # fmt: skip
    assert records.write_spec(spec, store)
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_mlpipe.runner", "--spec", records.spec_path(spec.step_run_id)],
        capture_output=True, text=True, env=os.environ.copy(), check=False,
    )  # fmt: skip
    return proc.returncode, proc.stdout + proc.stderr, spec.step_run_id


def _dataset_input(store: Datastore, mode: str = "download") -> dict[str, Any]:
    dataset = Dataset.File.from_files(path=(store, "raw/*.csv"))
    return pin_input({"name": "data", "mode": mode, "source": {"type": "dataset", "dataset": dataset.to_dict()}})


def test_an_input_changed_after_planning_fails_the_attempt_naming_the_file(store: Datastore) -> None:
    store.write_text("raw/a.csv", "x\n1\n")
    store.write_text("raw/b.csv", "x\n2\n")
    pinned = _dataset_input(store)
    store.write_text("raw/b.csv", "x\n3\n")  # same size, other bytes: after the key was derived
    code, output, srid = _run(store, "changed", "touch_input.py", [pinned])
    assert code == 1 and "input files changed since the step was planned: raw/b.csv" in output
    assert records.read_record(srid, store)["status"] == "Failed" and records.read_commit(srid, store) is None
    assert not store.is_complete("out/changed")


def test_a_file_added_after_planning_is_not_read(store: Datastore) -> None:
    store.write_text("raw/a.csv", "x\n1\n")
    pinned = _dataset_input(store)
    store.write_text("raw/late.csv", "x\n9\n")  # matches the glob now, but was not there when planned
    code, output, srid = _run(store, "late", "touch_input.py", [pinned])
    assert code == 0, output
    assert store.read_text("out/late/read.txt") == "a.csv=x\n1\n"
    commit = records.read_commit(srid, store)
    assert commit is not None and commit["outputs"][0]["path"] == "out/late"


def test_an_upstream_folder_is_read_as_committed_and_a_mounted_copy_protects_it(
    store: Datastore, tmp_path: Path
) -> None:
    upstream = committed_output(store, "prepped", "dataset/up/prepped", {"a.txt": "A", "b.txt": "B"}, tmp_path)
    store.write_text("dataset/up/prepped/extra.txt", "written after the commit")
    source = {"type": "folder", "datastore": store.name, "path": upstream["path"], "producer": "prep"}
    pinned = pin_input({"name": "data", "mode": "mount", "source": source})
    code, output, _ = _run(store, "mounted", "touch_input.py", [pinned])
    assert code == 0, output
    assert store.read_text("out/mounted/read.txt") == "a.txt=Ab.txt=B"  # exactly the committed files
    assert (store.read_text("dataset/up/prepped/a.txt"), store.read_text("dataset/up/prepped/b.txt")) == ("A", "B")
    assert store.read_marker(upstream["path"])["digest"] == upstream["manifest"]["digest"]


def test_a_source_file_changed_while_snapshotting_is_refused(store: Datastore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('v1')\n")
    tree = scan_source(str(src))
    (src / "train.py").write_text("print('v2')\n")
    with pytest.raises(ConfigError, match="'train.py' .* changed while the step's snapshot was being taken"):
        store_snapshot(str(src), tree, store)
    assert not store.exists(pack_path(tree.digest)) and not store.exists(tree_path(tree.digest))


def test_a_stored_snapshot_is_checked_when_fetched(store: Datastore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("print('v1')\n")
    tree = scan_source(str(src))
    store_snapshot(str(src), tree, store)
    store.write_text(pack_path(tree.digest), "print('v9')\n")  # the same length: only the digest can tell
    with pytest.raises(ConfigError, match="stored copy of 'train.py' .* does not match its digest"):
        fetch_snapshot(tree.digest, store, str(tmp_path / "fetched"))


def test_a_link_out_of_the_source_folder_is_refused(store: Datastore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("pass\n")
    (src / "secrets").symlink_to("/etc")
    (src / "lib").mkdir()
    (src / "lib" / "util.py").write_text("X = 1\n")
    (src / "here").symlink_to("lib")  # inside: fine
    tree = scan_source(str(src))
    with pytest.raises(ConfigError, match="'secrets' is a link to '/etc', outside the source folder"):
        store_snapshot(str(src), tree, store)
    os.unlink(src / "secrets")
    inside = scan_source(str(src))
    store_snapshot(str(src), inside, store)
    fetch_snapshot(inside.digest, store, str(tmp_path / "fetched"))
    fetched = tmp_path / "fetched" / "here"
    assert (fetched / "util.py").read_text() == "X = 1\n"
