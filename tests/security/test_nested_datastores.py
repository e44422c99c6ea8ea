"""``_mlpipe`` is reserved as any segment of a user path, compared as stores keep names (any case, trailing dots
and spaces dropped, as Azure Blob drops them): a datastore may lie inside another (``s3://b/team`` inside
``s3://b``), and no path of the outer one reaches the inner one's records; listings never include them. On the
local store, Azurite and moto; each refusal writes nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset, OutputFileDatasetConfig
from airflow_mlpipe.exceptions import ReservedPathError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.transfer import transfer
from tests.conftest import make_azurite_datastore, make_s3_datastore, unique

Attempt = Callable[[Datastore], object]
RECORD = "_mlpipe/registry/datasets/victim/1.json"


@pytest.fixture(params=["local", "azurite", "moto"])
def outer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Datastore]:
    """A datastore known by name (``outer``) whose folder ``team/`` is the root of another datastore (``inner``),
    which holds a registry record; the outer one holds data in ``src/``."""
    if request.param == "local":
        (tmp_path / "outer").mkdir()
        store = Datastore("outer", (tmp_path / "outer").as_uri())
    elif request.param == "azurite":
        store = make_azurite_datastore(request.getfixturevalue("azurite"), "outer")
    else:
        store = make_s3_datastore(request.getfixturevalue("moto_s3"), "outer")
    extra = {"url": store.config.url, **dict(store.config.storage_options)}
    monkeypatch.setenv("AIRFLOW_CONN_OUTER", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    inner = Datastore("inner", f"{store.config.url.rstrip('/')}/team", dict(store.config.storage_options))
    inner.write_text(RECORD, '{"real": 1}')
    store.write_text("src/1.json", '{"forged": 1}')
    store.write_text("team/data/a.csv", "a\n1\n")
    yield store


def _everything(store: Datastore) -> dict[str, bytes]:
    """Every object below the root, mlpipe's records included (``Datastore.list`` might leave them out)."""
    root = store.root.rstrip("/")
    return {p[len(root) + 1 :]: store.fs.cat_file(p) for p in store.fs.find(root)}


@pytest.mark.parametrize(
    ("attempt", "argument", "folder"),
    [
        pytest.param(
            lambda s: transfer(s, "src", s, "team/_mlpipe/registry/datasets/victim2"), "transfer destination",
            "_mlpipe/", id="transfer-into-nested",
        ),
        pytest.param(
            lambda s: transfer(s, "team/_mlpipe/registry", s, "copy"), "transfer source", "_mlpipe/",
            id="transfer-from-nested",
        ),
        pytest.param(
            lambda s: OutputFileDatasetConfig("o", (s, "team/_mlpipe/runs/{run-id}")), "output destination",
            "_mlpipe/", id="output-nested",
        ),
        pytest.param(
            lambda s: Dataset.File.from_files((s, "team/_mlpipe/**")), "dataset path", "_mlpipe/",
            id="dataset-nested",
        ),
        pytest.param(
            lambda s: transfer(s, "src", s, "_mlpipe./registry/datasets/victim"), "transfer destination",
            "_mlpipe./", id="transfer-trailing-dot",
        ),
        pytest.param(
            lambda s: transfer(s, "src", s, "team/_MLPIPE .. /registry"), "transfer destination",
            "_MLPIPE .. /", id="transfer-nested-dots-spaces-case",
        ),
        pytest.param(
            lambda s: OutputFileDatasetConfig("o", (s, "_mlpipe./registry/{run-id}")), "output destination",
            "_mlpipe./", id="output-trailing-dot",
        ),
        pytest.param(
            lambda s: Dataset.File.from_files((s, "team/_mlpipe./registry/**")), "dataset path", "_mlpipe./",
            id="dataset-trailing-dot",
        ),
    ],
)  # fmt: skip
def test_mlpipe_is_reserved_at_any_depth_and_as_stores_keep_it(
    outer: Datastore, attempt: Attempt, argument: str, folder: str
) -> None:
    before = _everything(outer)
    with pytest.raises(ReservedPathError) as caught:
        attempt(outer)
    message = str(caught.value)
    assert message.startswith(f"{argument}") and f"is inside {folder!r}" in message
    assert "at any depth, since a datastore may lie inside another" in message
    assert "choose a path outside it" in message
    if folder != "_mlpipe/":
        assert "which stores may keep as '_mlpipe'" in message and "drops trailing dots" in message
    assert _everything(outer) == before


@pytest.mark.parametrize(
    ("destination", "named"),
    [
        pytest.param("out/_MLPIPE_COMPLETE.", "_MLPIPE_COMPLETE.", id="marker-trailing-dot"),
        pytest.param("out/_mlpipe_transfer ", "_mlpipe_transfer ", id="journal-trailing-space"),
    ],
)
def test_marker_names_are_compared_as_stores_keep_them(outer: Datastore, destination: str, named: str) -> None:
    before = _everything(outer)
    with pytest.raises(ReservedPathError, match=r"^transfer destination: ") as caught:
        transfer(outer, "src", outer, destination)
    assert f"names {named!r} (which stores may keep as " in str(caught.value)
    assert _everything(outer) == before


def test_a_source_file_named_as_a_marker_with_a_trailing_dot_is_refused(outer: Datastore) -> None:
    """S3 and local files may end in '.'; copied to Azure Blob, ``_MLPIPE_COMPLETE.`` would be a forged marker."""
    outer.write_text("src/_MLPIPE_COMPLETE.", '{"transfer": {"forged": true}}')
    before = _everything(outer)
    with pytest.raises(ReservedPathError) as caught:
        transfer(outer, "src", outer, "copy")
    message = str(caught.value)
    assert message.startswith("transfer destination: datastore 'outer': path 'copy/_MLPIPE_COMPLETE.' names")
    assert "copy of source file '_MLPIPE_COMPLETE.'" in message and "nothing was copied" in message
    assert _everything(outer) == before


def test_a_transfer_of_the_outer_root_leaves_the_inner_records_out(outer: Datastore, tmp_path: Path) -> None:
    target = Datastore("target", (tmp_path / unique("target")).as_uri())
    result = transfer(outer, "", target, "copy")
    assert sorted(f.path for f in result.files) == ["src/1.json", "team/data/a.csv"]
    assert set(target.list("", recursive=True)) == {
        "copy/src/1.json",
        "copy/team/data/a.csv",
        f"copy/{COMPLETE_MARKER}",
    }
    assert transfer(outer, "", target, "copy").up_to_date


def test_a_transfer_into_the_inner_root_never_counts_or_removes_its_records(outer: Datastore) -> None:
    """Before, the inner records read as files the source lacks (the transfer was refused); a mirror removes only
    the files its own earlier transfer wrote, never them."""
    outer.delete("team/data/a.csv")
    outer.write_text("team2/b.csv", "b\n")
    assert transfer(outer, "team2", outer, "team").files_copied == 1
    outer.delete("team2/b.csv")
    outer.write_text("team2/c.csv", "c\n")

    result = transfer(outer, "team2", outer, "team")

    assert (result.files_copied, result.files_removed) == (1, 1)
    assert outer.fs.cat_file(outer.full_path(f"team/{RECORD}")) == b'{"real": 1}'


@pytest.mark.parametrize("path", ["", "**/*.json", "team"])
def test_a_dataset_of_the_outer_store_never_lists_the_inner_records(outer: Datastore, path: str) -> None:
    entries = [e.path for e in Dataset.File.from_files((outer, path)).current_manifest().entries]
    assert entries and not any("_mlpipe" in p for p in entries)
