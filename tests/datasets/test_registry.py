"""Registering datasets: versions, concurrency, immutability, lookups — on local, Azurite and moto."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, FileDataset, TabularDataset
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.exceptions import DatasetError, DatasetNotFoundError
from airflow_mlpipe.storage.datastore import Datastore


def test_register_and_get_by_name_roundtrip(default_store: Datastore) -> None:
    default_store.write_text("raw/iris/a.csv", "x,y\n1,2\n")
    default_store.write_text("raw/iris/b.csv", "x,y\n3,4\n")
    ds = Dataset.Tabular.from_delimited_files((default_store, "raw/iris/*.csv"))
    registered = ds.register("iris", description="raw iris", tags={"team": "ml"})
    assert (registered.name, registered.version, registered.is_new_version) == ("iris", 1, True)

    again = Dataset.get_by_name("iris")
    assert isinstance(again.pinned(), TabularDataset)
    assert again.version == 1 and again.description == "raw iris" and again.tags == {"team": "ml"}
    assert [(e.path, e.identity.size) for e in again.manifest().entries] == [
        ("raw/iris/a.csv", 8),
        ("raw/iris/b.csv", 8),
    ]
    assert again.to_pandas_dataframe()["x"].tolist() == [1, 3]
    by_number = Dataset.get_by_name("iris", version=1)
    assert by_number.manifest().digest == registered.manifest().digest


def test_unchanged_data_adds_no_version_and_changed_bytes_do(default_store: Datastore) -> None:
    default_store.write_text("raw/data.csv", "a\n1\n")
    ds = Dataset.File.from_files((default_store, "raw/data.csv"))
    first = ds.register("same_path")
    second = ds.register("same_path")
    assert (first.version, second.version, second.is_new_version) == (1, 1, False)
    default_store.write_text("raw/data.csv", "a\n2\n")  # same path, same size, other bytes
    third = ds.register("same_path")
    assert (third.version, third.is_new_version) == (2, True)
    assert third.manifest().digest != first.manifest().digest
    assert first.manifest().diff(third.manifest()) == {"added": [], "removed": [], "changed": ["raw/data.csv"]}


def test_equal_content_in_another_folder_adds_no_version(default_store: Datastore) -> None:
    """A step run that writes byte-identical outputs into its own folder (a rerun, a clear) adds no version."""
    for run in ("run1", "run2"):
        default_store.write_text(f"dataset/{run}/model/w.txt", "weights")
        default_store.write_text(f"dataset/{run}/model/sub/meta.json", "{}")
    first = Dataset.File.from_files((default_store, "dataset/run1/model")).register("same_bytes")
    again = Dataset.File.from_files((default_store, "dataset/run2/model")).register("same_bytes")
    assert (first.version, again.version, again.is_new_version) == (1, 1, False)
    default_store.write_text("dataset/run3/model/w.txt", "weights")  # the same bytes under another name
    default_store.write_text("dataset/run3/model/meta.json", "{}")
    moved = Dataset.File.from_files((default_store, "dataset/run3/model")).register("same_bytes")
    assert (moved.version, moved.is_new_version) == (2, True)


def test_a_version_registered_by_a_step_run_is_found_again(default_store: Datastore) -> None:
    from airflow_mlpipe.datasets.registry import DatasetRegistry

    registry = DatasetRegistry(default_store)
    for n in range(3):
        default_store.write_text(f"v/{n}.csv", str(n))
        Dataset.File.from_files((default_store, f"v/{n}.csv")).register("by_run", lineage={"step_run_id": f"s{n}"})
    assert registry.registered_by("by_run", "s1", since="2000-01-01").version == 2  # type: ignore[union-attr]
    assert registry.registered_by("by_run", "s0", since="2999-01-01") is None  # stops at versions made before


def test_registered_version_is_immutable(default_store: Datastore) -> None:
    default_store.write_text("raw/x.csv", "a\n1\n")
    Dataset.File.from_files((default_store, "raw/x.csv")).register("frozen")
    default_store.write_text("raw/x.csv", "a\n9\n")
    with pytest.raises(DatasetError, match=r"'frozen' version 1: files changed since it was registered: raw/x.csv"):
        Dataset.get_by_name("frozen", 1).download()


def test_twenty_concurrent_registrations_get_distinct_versions(default_store: Datastore) -> None:
    for i in range(20):
        default_store.write_text(f"many/{i}.csv", f"v\n{i}\n")
    barrier = threading.Barrier(20)
    results: list[int] = []
    errors: list[BaseException] = []

    def register(i: int) -> None:
        try:
            ds = Dataset.File.from_files((default_store, f"many/{i}.csv"))
            ds.current_manifest()
            barrier.wait()
            results.append(ds.register("contended").version or 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert sorted(results) == list(range(1, 21))
    assert DatasetRegistry().versions("contended") == list(range(1, 21))
    paths = {DatasetRegistry().get("contended", v).manifest.entries[0].path for v in range(1, 21)}
    assert len(paths) == 20  # every registration's own content is kept, none lost


def test_create_new_version_false_refuses_other_content(local_default: Datastore) -> None:
    local_default.write_text("a.csv", "1\n")
    local_default.write_text("b.csv", "2\n")
    Dataset.File.from_files((local_default, "a.csv")).register("once")
    with pytest.raises(DatasetError, match="already exists .version 1.*create_new_version=True"):
        Dataset.File.from_files((local_default, "b.csv")).register("once", create_new_version=False)
    assert DatasetRegistry().versions("once") == [1]


@pytest.mark.parametrize(
    ("name", "version", "error"),
    [
        pytest.param("nothing_here", "latest", "no dataset named 'nothing_here'", id="unknown-name"),
        pytest.param("known", 7, "has no version 7; versions: 1", id="unknown-version"),
    ],
)
def test_missing_names_and_versions(local_default: Datastore, name: str, version: int | str, error: str) -> None:
    local_default.write_text("k.csv", "1\n")
    Dataset.File.from_files((local_default, "k.csv")).register("known")
    ref = Dataset.get_by_name(name, version)  # no storage access yet: DAG files stay fast
    with pytest.raises(DatasetNotFoundError, match=error):
        ref.download()


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("has space", id="space"),
        pytest.param("../up", id="dotdot"),
        pytest.param("a/b", id="slash"),
        pytest.param("", id="empty"),
        pytest.param("x" * 200, id="too-long"),
    ],
)
def test_bad_dataset_names(local_default: Datastore, bad: str) -> None:
    local_default.write_text("f.csv", "1\n")
    with pytest.raises(DatasetError, match="cannot be used"):
        Dataset.File.from_files((local_default, "f.csv")).register(bad)
    assert not local_default.exists("_mlpipe/registry")


def test_paths_that_match_nothing(local_default: Datastore) -> None:
    ds = Dataset.File.from_files((local_default, "nowhere/*.csv"))
    with pytest.raises(DatasetError, match=r"matches no file in datastore 'mlpipe_default'"):
        ds.register("empty")
    with pytest.raises(DatasetError, match="matches no file"):
        Dataset.File.from_files((local_default, "missing.csv"), validate=True)
    assert not local_default.exists("_mlpipe/registry")


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(("mlpipe_default", "../etc"), id="escape"),
        pytest.param("s3://bucket/x", id="raw-url"),
        pytest.param(42, id="number"),
        pytest.param([], id="empty-list"),
    ],
)
def test_bad_paths(bad: object) -> None:
    with pytest.raises(ValueError):
        Dataset.File.from_files(bad)


def test_datastore_url_form(local_default: Datastore) -> None:
    local_default.write_text("u/1.txt", "one")
    ds = Dataset.File.from_files("mlpipe://datastores/mlpipe_default/paths/u")
    azureml = Dataset.File.from_files("azureml://datastores/mlpipe_default/paths/u/1.txt")
    assert ds.current_manifest().digest == azureml.current_manifest().digest


def test_file_dataset_download_to_path_and_mount(default_store: Datastore, tmp_path) -> None:
    default_store.write_text("imgs/train/a.txt", "A")
    default_store.write_text("imgs/train/sub/b.txt", "B")
    default_store.mark_complete("imgs/train")
    ds = Dataset.File.from_files((default_store, "imgs/train")).register("images")
    assert isinstance(ds, FileDataset)
    assert ds.to_path() == ["a.txt", "sub/b.txt"]  # the completion marker is not data
    files = ds.download(tmp_path / "dl")
    assert sorted(p.replace(str(tmp_path / "dl"), "") for p in files) == ["/a.txt", "/sub/b.txt"]
    assert (tmp_path / "dl" / "sub" / "b.txt").read_text() == "B"
    with pytest.raises(DatasetError, match="already holds"):
        ds.download(tmp_path / "dl")
    with ds.mount() as folder:
        import os

        assert Path(folder, "sub", "b.txt").read_text() == "B"
        mounted = folder
    assert not os.path.exists(mounted)
