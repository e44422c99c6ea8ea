"""Mini-batches from a pinned manifest, and ParallelRunConfig's checks (in-process, no Airflow)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
from airflow_mlpipe.exceptions import ConfigError, DatasetError
from airflow_mlpipe.fingerprint.identity import FileIdentity
from airflow_mlpipe.parallel.config import ParallelRunConfig, parse_size
from airflow_mlpipe.parallel.planning import MINI_BATCH_INPUT, mini_batch_input, plan_mini_batches
from airflow_mlpipe.reuse.inputs import input_identity


def _entry(n: int, content: str = "a", size: int = 1000) -> ManifestEntry:
    return ManifestEntry("workspaceblobstore", FileIdentity(f"data/part-{n:04d}.csv", size, "md5", f"{content}{n}"))


def _input(entries: list[ManifestEntry], kind: str = "file", name: str = "files") -> dict[str, Any]:
    manifest = Manifest.of(entries).to_dict()
    dataset = {"paths": [{"datastore": "workspaceblobstore", "path": "data/*.csv"}], "options": {}}
    return {
        "name": name,
        "mode": "download",
        "source": {"type": "dataset", "dataset": dataset},
        "pin": {"manifest": manifest, "kind": kind, "options": {}},
    }


def _paths(batches: list[Any]) -> list[list[str]]:
    return [[e.path.rsplit("-", 1)[-1] for e in b.entries] for b in batches]


SIZES = {"file": 3, "tabular": 2500}


def test_batches_are_consecutive_files_in_path_order() -> None:
    batches = plan_mini_batches("score", [_input([_entry(n) for n in reversed(range(7))])], SIZES)
    assert _paths(batches) == [["0000.csv", "0001.csv", "0002.csv"], ["0003.csv", "0004.csv", "0005.csv"], ["0006.csv"]]
    assert [b.index for b in batches] == [0, 1, 2]


def test_an_added_last_file_or_a_changed_file_touches_one_mini_batch_key() -> None:
    def keys(entries: list[ManifestEntry]) -> list[str]:
        spec = _input(entries)
        batches = plan_mini_batches("score", [spec], SIZES)
        return [input_identity(mini_batch_input(spec, b)).component["content"] for b in batches]

    before = keys([_entry(n) for n in range(7)])
    added = keys([_entry(n) for n in range(8)])
    changed = keys([_entry(n, "b" if n == 4 else "a") for n in range(7)])
    assert added[:2] == before[:2] and added[2] != before[2]
    assert [a == b for a, b in zip(changed, before, strict=True)] == [True, False, True]


def test_tabular_mini_batches_are_cut_by_size_and_inputs_never_mix() -> None:
    tabular = _input([_entry(n, size=1000) for n in range(5)], kind="tabular", name="table")
    files = _input([_entry(n) for n in range(2)], name="files")
    batches = plan_mini_batches("score", [tabular, files], SIZES)
    assert [(b.input_name, b.items) for b in batches] == [("table", 2), ("table", 2), ("table", 1), ("files", 2)]
    spec = mini_batch_input(tabular, batches[1])
    assert spec["name"] == MINI_BATCH_INPUT and len(spec["pin"]["manifest"]["entries"]) == 2
    assert spec["parallel"] == {"index": 1, "input": "table", "items": 2}


def test_an_empty_input_is_an_error_naming_it() -> None:
    with pytest.raises(DatasetError, match="'files' hold no files: there is nothing to score"):
        plan_mini_batches("score", [_input([])], SIZES)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        pytest.param(10, 10, id="count"),
        pytest.param("10MB", 10 * 1024**2, id="mb"),
        pytest.param("1.5 kb", 1536, id="kb"),
    ],
)
def test_mini_batch_size(value: Any, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"output_action": "append"}, "output_action 'append'", id="output-action"),
        pytest.param({"mini_batch_size": "ten"}, "mini_batch_size 'ten'", id="size"),
        pytest.param({"error_threshold": -2}, "error_threshold -2", id="threshold"),
        pytest.param({"node_count": 0}, "node_count 0", id="nodes"),
        pytest.param({"allowed_failed_percent": 120}, "allowed_failed_percent 120", id="percent"),
        pytest.param({"append_row_file_name": "a/b.txt"}, "append_row_file_name 'a/b.txt'", id="file-name"),
    ],
)
def test_bad_config_values_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ParallelRunConfig(entry_script="score.py", **kwargs)


def test_failure_limit() -> None:
    assert ParallelRunConfig(entry_script="s.py", error_threshold=-1).failure_limit(100) is None
    assert ParallelRunConfig(entry_script="s.py", error_threshold=5).failure_limit(100) == 5
    assert ParallelRunConfig(entry_script="s.py", allowed_failed_count=2).failure_limit(100) == 2
    assert ParallelRunConfig(entry_script="s.py", allowed_failed_percent=10).failure_limit(50) == 5
