"""An object store takes any key: a dataset whose files include ``data/../../x`` is refused when it is defined for
a registration or a step, naming the objects, since no download or mount could write them inside its folder."""

from __future__ import annotations

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_s3_datastore
from tests.datasets.conftest import use_as_default


@pytest.mark.parametrize("key", ["data/../../evil.txt", "data/./x.txt", "data//x.txt"])
def test_objects_with_dot_segments_are_refused(monkeypatch: pytest.MonkeyPatch, moto_s3, key: str) -> None:
    store = use_as_default(monkeypatch, make_s3_datastore(moto_s3))
    store.write_text("data/good.csv", "x\n1\n")
    store.fs.pipe_file(f"{store.root}/{key}", b"payload")
    with pytest.raises(DatasetError) as caught:
        Dataset.File.from_files(path=(store, "data")).register("odd")
    assert "holds 1 object(s) whose names have empty, '.' or '..' parts" in str(caught.value)
    assert "rename those objects, or narrow the path" in str(caught.value)
    assert DatasetRegistry().versions("odd") == []
    resolve.clear_cache()
    assert Dataset.File.from_files(path=(Datastore.get_default(), "data/*.csv")).register("good").version == 1


@pytest.mark.parametrize("key", ["data/team/_mlpipe/registry/datasets/x/1.json", "data/_MLPIPE./runs/r.json"])
def test_objects_below_an_mlpipe_folder_at_any_depth_are_never_data(
    monkeypatch: pytest.MonkeyPatch, moto_s3, key: str
) -> None:
    """The records of a datastore whose root lies inside this one (``s3://b/root/data/team``), or a folder that
    Azure would keep as ``_mlpipe``: a dataset of the folder above leaves them out."""
    store = use_as_default(monkeypatch, make_s3_datastore(moto_s3))
    store.write_text("data/good.csv", "x\n1\n")
    store.fs.pipe_file(f"{store.root}/{key}", b"{}")
    for path in ("data", "data/**", ""):
        registered = Dataset.File.from_files(path=(store, path)).register("clean")
        assert [e.path for e in registered.record.manifest.entries] == ["data/good.csv"]
