"""What a transfer never copies because mlpipe reserves the name: the files below a source folder named
``_MLPIPE/`` or ``_mlpipe./`` (as stores keep names, mlpipe's own folder) are left out, and the result, its
summary and ``mlpipe transfer`` say how many and why; a list of files (a dataset version registered by an older
release) that names such files is refused for what it is, not as data that changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlpipe.exceptions import ReservedPathError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer import transfer
from tests.reuse.reuse_helpers import mlpipe_in_process
from tests.storage.conftest import MakeStore

FILES = {
    "src/a.csv": b"a\n",
    "src/_MLPIPE/b.csv": b"b\n",
    "src/_MLPIPE/deep/b2.csv": b"b2\n",
    "src/x/_mlpipe./c.csv": b"c\n",
    "src/my_mlpipe/d.csv": b"d\n",
    "src/team/_mlpipe/runs/r/record.json": b"{}",  # a nested datastore's records: left out, never counted
}
NOTE = (
    "left out 3 files below '_MLPIPE/', 'x/_mlpipe./' (mlpipe's reserved folder name '_mlpipe', at any depth, in "
    "any case, trailing dots and spaces dropped: a datastore's records, never copied)"
)


def _store(make_store: MakeStore, backend: str) -> Datastore:
    store = make_store(backend, "lake")
    for path, data in FILES.items():  # below the checks of user paths: data another tool or an older release wrote
        store.write_bytes(path, data)
    return store


@pytest.mark.parametrize("backend", ["local", "moto"])
def test_files_below_reserved_folders_are_left_out_and_counted(make_store: MakeStore, backend: str) -> None:
    store = _store(make_store, backend)

    result = transfer(store, "src", store, "dst")

    assert (result.files_copied, result.files_left_out) == (2, 3)
    assert result.left_out == {"_MLPIPE/": 2, "x/_mlpipe./": 1}
    assert result.summary().endswith(f", verified; {NOTE}"), result.summary()
    assert result.to_dict(include_files=False)["files_left_out"] == 3
    assert sorted(store.list("dst", recursive=True)) == ["dst/_MLPIPE_COMPLETE", "dst/a.csv", "dst/my_mlpipe/d.csv"]
    again = transfer(store, "src", store, "dst")
    assert again.up_to_date and again.left_out == result.left_out


def test_a_transfer_with_nothing_left_out_says_nothing_of_it(make_store: MakeStore) -> None:
    store = make_store("local", "lake")
    store.write_bytes("src/a.csv", b"a\n")
    result = transfer(store, "src", store, "dst")
    assert result.left_out == {} and "left out" not in result.summary()
    assert result.to_dict()["files_left_out"] == 0


def test_cli_transfer_says_what_it_left_out(make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(make_store, "local")
    extra = {"url": store.config.url}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()

    code, out = mlpipe_in_process("transfer", "lake:src", "lake:dst")
    assert code == 0 and f"; {NOTE}" in out, out

    code, out = mlpipe_in_process("transfer", "lake:src", "lake:dst2", "--json")
    shown = json.loads(out)
    assert code == 0 and shown["files_left_out"] == 3 and shown["left_out"] == {"_MLPIPE/": 2, "x/_mlpipe./": 1}


def test_a_list_naming_reserved_files_is_refused_for_what_it_is(make_store: MakeStore, tmp_path: Path) -> None:
    """A dataset version registered from ``src`` before the names were reserved lists its files: a transfer of it
    (what a DataTransferOperator does with such a dataset) names them as reserved, not the data as changed."""
    store = _store(make_store, "local")
    files = ["a.csv", "_MLPIPE/b.csv", "x/_mlpipe./c.csv", "my_mlpipe/d.csv"]

    with pytest.raises(ReservedPathError) as caught:
        transfer(store, "src", store, "copyold", files=files)

    message = str(caught.value)
    assert message.startswith("transfer source: datastore 'lake' path 'src' ("), message
    assert (
        "the 4 files asked for include 2 that mlpipe reserves and never copies ('_MLPIPE/b.csv', 'x/_mlpipe./c.csv')"
        in message
    )
    assert "changed" not in message and "register the data again without them" in message
    assert message.endswith("nothing was copied")
    assert not store.exists("copyold")
    assert transfer(store, "src", store, "copyok", files=["a.csv", "my_mlpipe/d.csv"]).left_out == {}
