"""DataTransferOperator and ``mlpipe transfer`` through a real Airflow and real storage servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, Datastore
from airflow_mlpipe.datasets.registry import DatasetRegistry
from tests.airflow_utils import EXAMPLES, airflow_dags_test, last_run_states, last_run_xcom
from tests.conftest import make_azurite_datastore, make_s3_datastore


def _conn(store: Datastore) -> str:
    return json.dumps(
        {"conn_type": "mlpipe_datastore", "extra": {"url": store.config.url, **store.config.storage_options}}
    )


def test_example_transfer_feeds_a_script_step(airflow_db: Path, local_home: dict[str, str]) -> None:
    airflow_dags_test("mlpipe_example_transfer", dags_folder=EXAMPLES, env=local_home)
    state, tasks = last_run_states("mlpipe_example_transfer")
    assert state == "success" and tasks["data_prep"] == "success"
    store = Datastore.get_default()
    assert store.is_complete("curated/iris")
    expected = {f"curated/iris/part-{i}.csv" for i in range(3)} | {"curated/iris/_MLPIPE_COMPLETE"}
    assert set(store.list("curated/iris")) == expected
    result = last_run_xcom("mlpipe_example_transfer", "copy_to_curated")
    assert (result["files_copied"], result["verified"], result["registered"]["version"]) == (3, True, 1)
    assert len(Dataset.get_by_name("iris_curated").to_path()) == 3
    assert last_run_xcom("mlpipe_example_transfer", "data_prep")["metrics"]["rows_raw"] == 90
    # again: the landed files are rewritten with the same bytes: a reuse hit, nothing copied, no new version
    airflow_dags_test("mlpipe_example_transfer", dags_folder=EXAMPLES, env=local_home)
    again = last_run_xcom("mlpipe_example_transfer", "copy_to_curated")
    assert (again["reused"], again["files_copied"], again["registered"]["created"]) == (True, 0, False)
    assert again["reused_from"] == result["step_run_id"]
    assert DatasetRegistry().versions("iris_curated") == [1]
    assert last_run_states("mlpipe_example_transfer")[1]["data_prep"] == "success"


def test_azure_to_s3_copy_is_verified_and_incremental(airflow_db: Path, azurite, moto_s3, local_home) -> None:
    src = make_azurite_datastore(azurite, name="az_src")
    dst = make_s3_datastore(moto_s3, name="s3_dst")
    for i in range(5):
        src.write_bytes(f"in/sub/f{i}.bin", bytes([i]) * (1000 + i))
    env = {
        **local_home,
        "AIRFLOW_CONN_AZ_SRC": _conn(src),
        "AIRFLOW_CONN_S3_DST": _conn(dst),
        "TRANSFER_REGISTER": "copied",
    }
    airflow_dags_test("transfer_cloud", env=env)
    first = last_run_xcom("transfer_cloud", "copy")
    assert (first["files_copied"], first["verified"], first["complete"]) == (5, True, True)
    assert dst.read_bytes("out/sub/f3.bin") == bytes([3]) * 1003 and dst.is_complete("out")
    airflow_dags_test("transfer_cloud", env=env)
    assert last_run_xcom("transfer_cloud", "copy")["reused"] is True  # unchanged source: a reuse hit
    src.write_bytes("in/sub/f9.bin", b"new")
    airflow_dags_test("transfer_cloud", env=env)
    second = last_run_xcom("transfer_cloud", "copy")
    assert (second["reused"], second["files_copied"], second["files_skipped"]) == (False, 1, 5)
    assert second["registered"]["version"] == 2
    explain = subprocess.run(
        [sys.executable, "-m", "airflow_mlpipe.cli.main", "reuse", "explain", "transfer_cloud", "copy", "--json"],
        capture_output=True, text=True, env={**os.environ, **env}, check=False,
    )  # fmt: skip
    assert explain.returncode == 0, explain.stderr
    assert "sub/f9.bin" in explain.stdout and "added" in explain.stdout
    # a file gone from the source: the destination would hold it still, so the copy is refused and registers nothing
    src.delete("in/sub/f4.bin")
    proc = airflow_dags_test("transfer_cloud", env=env, check=False)
    assert last_run_states("transfer_cloud")[1]["copy"] == "failed"
    assert "holds 1 file(s) that the source does not have ('sub/f4.bin')" in proc.stdout + proc.stderr
    assert DatasetRegistry().versions("copied") == [1, 2]
    assert dst.read_bytes("out/sub/f4.bin") == bytes([4]) * 1004  # what version 1 and 2 name is untouched


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param({"TRANSFER_SRC": "nothing-here"}, "matches no file in datastore 'az_src'", id="missing-source"),
        pytest.param({"TRANSFER_DST": "taken"}, "overwrite", id="destination-differs"),
    ],
)
def test_bad_transfers_fail_clearly_and_write_nothing(airflow_db, azurite, moto_s3, local_home, env, message) -> None:
    src = make_azurite_datastore(azurite, name="az_src")
    dst = make_s3_datastore(moto_s3, name="s3_dst")
    src.write_bytes("in/a.txt", b"source")
    dst.write_bytes("taken/a.txt", b"different bytes")
    full_env = {**local_home, "AIRFLOW_CONN_AZ_SRC": _conn(src), "AIRFLOW_CONN_S3_DST": _conn(dst), **env}
    proc = airflow_dags_test("transfer_cloud", env=full_env, check=False)
    assert last_run_states("transfer_cloud")[1]["copy"] == "failed"
    assert message in proc.stdout + proc.stderr
    assert dst.read_bytes("taken/a.txt") == b"different bytes"
    assert not dst.is_complete("taken") and not dst.exists("out")


def test_overlapping_source_and_destination_fail(airflow_db, azurite, local_home) -> None:
    src = make_azurite_datastore(azurite, name="az_src")
    src.write_bytes("in/a.txt", b"x")
    env = {
        **local_home,
        "AIRFLOW_CONN_AZ_SRC": _conn(src),
        "AIRFLOW_CONN_S3_DST": _conn(src),
        "TRANSFER_DST": "in/copy",
    }
    proc = airflow_dags_test("transfer_cloud", env=env, check=False)
    assert "overlap" in proc.stdout + proc.stderr
    assert not src.exists("in/copy")


def test_cli_transfer(tmp_path: Path, local_home: dict[str, str]) -> None:
    store = Datastore.get_default()
    for i in range(4):
        store.write_text(f"src/{i}.txt", str(i) * 100)
    cmd = [
        sys.executable,
        "-m",
        "airflow_mlpipe.cli.main",
        "transfer",
        "mlpipe_default:src",
        "mlpipe_default:dst",
        "--json",
    ]
    first = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["files_copied"] == 4
    second = json.loads(subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=True).stdout)
    assert (second["files_copied"], second["files_skipped"]) == (0, 4)
    bad_cmd = [*cmd[:4], "mlpipe_default:nope", "mlpipe_default:x", "--json"]
    bad = subprocess.run(bad_cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)
    assert bad.returncode == 1 and "does not exist" in json.loads(bad.stdout)["error"]


def _local_pair(tmp_path: Path, local_home: dict[str, str], **env: str) -> tuple[Datastore, dict[str, str]]:
    """The test DAG's two datastores as one local folder: fast, and links can be made in it."""
    root = tmp_path / "lake"
    root.mkdir(exist_ok=True)
    conn = json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": root.as_uri()}})
    return Datastore("s3_dst", root.as_uri()), {
        **local_home, "AIRFLOW_CONN_AZ_SRC": conn, "AIRFLOW_CONN_S3_DST": conn, **env
    }  # fmt: skip


def test_own_unregistered_destination_is_mirrored(airflow_db: Path, tmp_path: Path, local_home) -> None:
    store, env = _local_pair(tmp_path, local_home)
    store.write_bytes("in/a.txt", b"a")
    store.write_bytes("in/b.txt", b"b")
    airflow_dags_test("transfer_cloud", env=env)
    store.delete("in/b.txt")
    store.write_bytes("in/c.txt", b"c")
    airflow_dags_test("transfer_cloud", env=env)
    assert last_run_states("transfer_cloud")[1]["copy"] == "success"
    assert set(store.list("out", recursive=True)) == {"out/a.txt", "out/c.txt", "out/_MLPIPE_COMPLETE"}
    marker = store.read_marker("out")
    assert {e["path"] for e in marker["entries"]} == {"out/a.txt", "out/c.txt"}
    assert set(marker["transfer"]["files"]) == {"a.txt", "c.txt"}


def test_registered_destination_is_never_changed(airflow_db: Path, tmp_path: Path, local_home) -> None:
    store, env = _local_pair(tmp_path, local_home, TRANSFER_REGISTER="copied", TRANSFER_OVERWRITE="1")
    store.write_bytes("in/a.txt", b"a")
    store.write_bytes("in/b.txt", b"b")
    airflow_dags_test("transfer_cloud", env=env)
    store.write_bytes("in/a.txt", b"changed")
    proc = airflow_dags_test("transfer_cloud", env=env, check=False)
    out = proc.stdout + proc.stderr
    assert last_run_states("transfer_cloud")[1]["copy"] == "failed"
    assert "already holds 1 file(s) that differ from the source ('a.txt')" in out
    assert "registered as dataset 'copied' version 1: they are never replaced, and overwrite=True does not" in out
    assert "Pass overwrite=True" not in out
    store.write_bytes("in/a.txt", b"a")
    store.delete("in/b.txt")
    proc = airflow_dags_test("transfer_cloud", env=env, check=False)
    assert "holds 1 file(s) that the source does not have ('b.txt')" in proc.stdout + proc.stderr
    assert "they are never removed" in proc.stdout + proc.stderr
    assert store.read_bytes("out/b.txt") == b"b" and store.read_bytes("out/a.txt") == b"a"
    assert DatasetRegistry().versions("copied") == [1]


def test_operator_refuses_a_link_in_its_destination(airflow_db: Path, tmp_path: Path, local_home) -> None:
    store, env = _local_pair(tmp_path, local_home)
    store.write_bytes("in/a.txt", b"source bytes")
    Path(store.full_path("out")).mkdir()
    os.symlink(tmp_path / "w.txt", store.full_path("out/a.txt"))
    proc = airflow_dags_test("transfer_cloud", env=env, check=False)
    assert last_run_states("transfer_cloud")[1]["copy"] == "failed"
    assert "transfer destination: datastore 's3_dst': path 'out/a.txt'" in proc.stdout + proc.stderr
    assert not (tmp_path / "w.txt").exists() and os.listdir(store.full_path("out")) == ["a.txt"]
