"""The step runner on its own (as a pod would run it): a killed step commits nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore

SCRIPTS = Path(__file__).resolve().parent.parent / "dags" / "step_scripts"


def _spec(store: Datastore, script: str, run: str, **more: Any) -> str:
    """A spec as an operator writes it (no reuse key: the runner does not need one); returns its path."""
    tree = scan_source(str(SCRIPTS))
    store_snapshot(str(SCRIPTS), tree, store)
    spec = StepSpec(
        attempt=AttemptId("d", run, "t"), script_name=script,
        snapshot=tree.digest, arguments=({"t": "str", "v": "--out"}, {"t": "output", "name": "o"}),
        outputs=({"name": "o", "datastore": "mlpipe_default", "path": f"out/{run}", "path_template": "out/{run-id}",
                  "mode": "mount", "registration": {"name": "killed_ds", "description": "", "tags": {}}},),
        **more,
    )  # fmt: skip
    assert records.write_spec(spec, store)
    return records.spec_path(spec.step_run_id)


def srid(run: str) -> str:
    return AttemptId("d", run, "t").step_run_id


def test_killed_step_commits_and_registers_nothing(local_default: Datastore) -> None:
    path = _spec(local_default, "sleepy.py", "killed")
    proc = subprocess.Popen(
        [sys.executable, "-m", "airflow_mlpipe.runner", "--spec", path],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    seen = b""
    while b"now sleeping" not in seen and time.monotonic() < deadline:
        seen += proc.stdout.readline()
    assert b"now sleeping" in seen
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) != 0
    record = records.read_record(srid("killed"), local_default)
    assert record["status"] == "Failed" and "stopped by signal 15" in record["error"]
    assert not local_default.exists("out/killed")  # the staging folder is gone, nothing was moved into place
    assert not [p for p in local_default.list("", recursive=True) if p.endswith(("_MLPIPE_COMPLETE", "partial.bin"))]
    assert not local_default.exists("_mlpipe/registry/datasets/killed_ds")
    assert records.read_commit(srid("killed"), local_default) is None


def test_missing_script_is_a_clear_failure(local_default: Datastore) -> None:
    path = _spec(local_default, "no_such_script.py", "missing")
    proc = subprocess.run([sys.executable, "-m", "airflow_mlpipe.runner", "--spec", path], capture_output=True,
                          text=True, env=os.environ.copy(), check=False)  # fmt: skip
    assert proc.returncode == 1
    assert "script 'no_such_script.py' is not in the source snapshot" in proc.stdout
    assert records.read_record(srid("missing"), local_default)["status"] == "Failed"


def test_snapshot_honours_amlignore_and_is_content_addressed(local_default: Datastore, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "ignored").mkdir(parents=True)
    (src / "main.py").write_text("print(1)\n")
    (src / "ignored" / "big.bin").write_bytes(b"x" * 100)
    (src / ".amlignore").write_text("ignored/\n")
    tree = scan_source(str(src))
    assert sorted(tree.entries) == [".amlignore", "main.py"]
    first = store_snapshot(str(src), tree, local_default)
    again = store_snapshot(str(src), scan_source(str(src)), local_default)
    assert first.uploaded_files == 2 and again.uploaded_files == 0 and first.digest == again.digest


def test_snapshot_limit_names_biggest_files(
    local_default: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_mlpipe.exceptions import ConfigError

    src = tmp_path / "src"
    src.mkdir()
    (src / "train.py").write_text("pass\n")
    (src / "data.csv").write_bytes(b"1" * 300_000)
    monkeypatch.setenv("MLPIPE_SNAPSHOT_LIMIT_MB", "0.1")
    with pytest.raises(ConfigError, match=r"over the snapshot limit.*biggest files: data.csv \(0.3 MiB\)"):
        scan_source(str(src))


def test_offline_run_takes_inputs_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    script = tmp_path / "script.py"
    script.write_text(
        "import argparse\n"
        "from airflow_mlpipe import Run\n"
        "run = Run.get_context()\n"
        "p = argparse.ArgumentParser(); p.add_argument('--alpha', type=float); args = p.parse_args()\n"
        "frame = run.input_datasets['iris'].to_pandas_dataframe()\n"
        "run.log('rows', len(frame)); run.log('alpha', args.alpha)\n"
        "print('offline', run.offline, run.id.startswith('offline_'))\n"
    )
    proc = subprocess.run([sys.executable, str(script), "--input", f"iris={data}", "--alpha", "0.3"], cwd=tmp_path,
                          capture_output=True, text=True, env=os.environ.copy(), check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "offline True True" in proc.stdout
    (metrics_file,) = list((tmp_path / "mlpipe_offline_run").glob("*/metrics.jsonl"))
    logged = {e["name"]: e["value"] for e in map(json.loads, metrics_file.read_text().splitlines())}
    assert logged == {"rows": 2, "alpha": 0.3}
