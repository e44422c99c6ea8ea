"""Joining mini-batch results (in-process, on the default datastore)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airflow_mlpipe import Datastore
from airflow_mlpipe.exceptions import MlpipeError
from airflow_mlpipe.parallel.gather import (
    SUMMARY_OUTPUT_FILE,
    BatchFolder,
    TooManyFailuresError,
    batch_folders,
    check_threshold,
    read_summaries,
    write_output,
)
from tests.conftest import unique


def _batch(
    root: str, index: int, lines: list[str], failed: list[str], files: dict[str, str] | None = None
) -> BatchFolder:
    store = Datastore.get_default()
    path = f"{root}/b{index}"
    summary = {
        "items": len(lines) + len(failed),
        "succeeded": len(lines),
        "failed_items": len(failed),
        "failed": [{"item": item, "error": "run() raised: ValueError: bad\ntrace"} for item in failed],
        "seconds": 0.5,
    }
    store.write_text(f"{path}/summary.json", json.dumps(summary))
    store.write_text(f"{path}/results.txt", "".join(f"{line}\n" for line in lines))
    for name, text in (files or {}).items():
        store.write_text(f"{path}/files/{name}", text)
    return BatchFolder(index, store.name, path, reused=index == 0)


def test_results_in_mini_batch_order_with_files_and_summary(tmp_path: Path) -> None:
    root = unique("gather-")
    folders = [_batch(root, 0, ["a", "b"], [], {"a.png": "A"}), _batch(root, 1, ["c"], ["d.txt"], {"c.png": "C"})]
    gathered = read_summaries(folders)
    check_threshold("score", gathered, 1)
    write_output(str(tmp_path), folders, gathered, output_action="append_row", result_file="out.txt", limit=1)
    assert (tmp_path / "out.txt").read_text() == "a\nb\nc\n"
    assert sorted(os.listdir(tmp_path)) == ["a.png", "c.png", "out.txt", SUMMARY_OUTPUT_FILE]
    summary = json.loads((tmp_path / SUMMARY_OUTPUT_FILE).read_text())
    assert (summary["items"], summary["succeeded"], summary["failed"]) == (4, 3, 1)
    assert summary["failures"][0]["item"] == "d.txt" and summary["failures"][0]["mini_batch"] == 1
    assert gathered.metrics()["mini_batches_reused"] == 1


def test_failures_over_the_threshold_name_items_and_mini_batches() -> None:
    root = unique("gather-")
    gathered = read_summaries([_batch(root, 0, ["a"], []), _batch(root, 1, [], ["x.txt", "y.txt"])])
    check_threshold("score", gathered, None)  # error_threshold=-1: any number
    with pytest.raises(
        TooManyFailuresError, match=r"2 of 3 items failed, more than the 1 allowed .*x.txt \(mini-batch 1\)"
    ):
        check_threshold("score", gathered, 1)


def test_two_mini_batches_writing_one_file_name_is_an_error(tmp_path: Path) -> None:
    root = unique("gather-")
    folders = [_batch(root, 0, [], [], {"out.csv": "1"}), _batch(root, 1, [], [], {"out.csv": "2"})]
    with pytest.raises(MlpipeError, match="mini-batch 1 wrote 'out.csv' to output_dir, as an earlier mini-batch did"):
        write_output(
            str(tmp_path), folders, read_summaries(folders), output_action="summary_only", result_file="r", limit=0
        )


def test_a_mini_batch_without_results_is_named() -> None:
    with pytest.raises(MlpipeError, match="mini-batch 1 published no results"):
        batch_folders([{"index": 0, "outputs": {"r": {"datastore": "d", "path": "p"}}}, {"index": 1}], 2, "r")


def test_mini_batch_results_are_put_in_order_and_each_must_appear_once() -> None:
    def result(index: int, reused: bool = False) -> dict:
        return {"index": index, "reused": reused, "outputs": {"r": {"datastore": "d", "path": f"p{index}"}}}

    folders = batch_folders([result(2), result(0, reused=True), None, result(1)], 3, "r")
    assert [(f.index, f.path, f.reused) for f in folders] == [(0, "p0", True), (1, "p1", False), (2, "p2", False)]
    with pytest.raises(MlpipeError, match=r"1 of 3 mini-batches have no results in this DAG run \(mini-batch 1\)"):
        batch_folders([result(0), result(2)], 3, "r")
    with pytest.raises(MlpipeError, match="mini-batch 0 has two results"):
        batch_folders([result(0), result(0), result(1)], 2, "r")
