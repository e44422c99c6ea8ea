"""mlpipe's marker files and backslashes are refused in user paths, on the local store and on Azurite (where a
backslash is a folder separator: ``_mlpipe\\x`` would be ``_mlpipe/x``); nothing is written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, OutputFileDatasetConfig
from airflow_mlpipe.exceptions import PathOutsideDatastoreError, ReservedPathError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer import transfer
from tests.conftest import make_azurite_datastore

Attempt = Callable[[Datastore], object]


@pytest.fixture(params=["local", "azurite"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    if request.param == "azurite":
        found = make_azurite_datastore(request.getfixturevalue("azurite"), "lake")
    else:
        extra = {"url": (tmp_path / "lake").as_uri()}
        monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
        resolve.clear_cache()
        found = Datastore.get("lake")
    found.write_text("in/a.txt", "a\n")
    return found


def _everything(store: Datastore) -> list[str]:
    return sorted(store.list("", recursive=True))


@pytest.mark.parametrize(
    ("attempt", "argument", "error", "match"),
    [
        pytest.param(
            lambda s: transfer(s, "in", s, "out/_MLPIPE_COMPLETE"), "transfer destination", ReservedPathError,
            "names '_MLPIPE_COMPLETE', a file mlpipe writes", id="transfer-onto-a-marker",
        ),
        pytest.param(
            lambda s: OutputFileDatasetConfig("o", (s, "x/_mlpipe_transfer")), "output destination",
            ReservedPathError, "names '_mlpipe_transfer'", id="output-named-as-a-journal",
        ),
        pytest.param(
            lambda s: Dataset.File.from_files((s, "out/_MLPIPE_COMPLETE")), "dataset path", ReservedPathError,
            "names '_MLPIPE_COMPLETE'", id="dataset-of-a-marker",
        ),
        pytest.param(
            lambda s: transfer(s, "in", s, "_mlpipe\\x"), "transfer destination", PathOutsideDatastoreError,
            "contains a backslash", id="transfer-backslash-into-reserved",
        ),
        pytest.param(
            lambda s: transfer(s, "in", s, "..\\escaped"), "transfer destination", PathOutsideDatastoreError,
            "contains a backslash", id="transfer-backslash-up",
        ),
        pytest.param(
            lambda s: Dataset.File.from_files((s, "_mlpipe\\x\\a.txt")), "dataset path", PathOutsideDatastoreError,
            "separate folders with '/'", id="dataset-backslash",
        ),
        pytest.param(
            lambda s: OutputFileDatasetConfig("o", (s, "_mlpipe\\runs\\{run-id}")), "output destination",
            PathOutsideDatastoreError, "contains a backslash", id="output-backslash",
        ),
    ],
)  # fmt: skip
def test_marker_names_and_backslashes_are_refused_and_nothing_is_written(
    store: Datastore, attempt: Attempt, argument: str, error: type[Exception], match: str
) -> None:
    before = _everything(store)
    with pytest.raises(error, match=match) as caught:
        attempt(store)
    assert str(caught.value).startswith(argument) and "datastore 'lake': path " in str(caught.value)
    assert _everything(store) == before


@pytest.mark.parametrize("mode", ["mount", "upload"])
def test_an_output_never_goes_through_a_link_inside_the_store(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``lo/`` links to a committed folder of the same datastore: a step's output below it would write into that
    folder (mount mode stages next to the destination)."""
    from airflow_mlpipe.runner.outputs import prepare_outputs
    from airflow_mlpipe.storage.transfer_links import DestinationLinkError

    root = tmp_path / "lake"
    (root / "committed").mkdir(parents=True)
    (root / "committed" / "_MLPIPE_COMPLETE").write_text("{}")
    (root / "lo").symlink_to(root / "committed")
    extra = {"url": root.as_uri()}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    spec = {"name": "o", "datastore": "lake", "path": "lo/new", "mode": mode}
    with pytest.raises(DestinationLinkError, match="output 'o' destination: datastore 'lake': path 'lo' is a symbolic"):
        prepare_outputs((spec,), str(tmp_path / "work"))
    assert sorted(p.name for p in (root / "committed").iterdir()) == ["_MLPIPE_COMPLETE"]
