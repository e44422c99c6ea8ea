"""A transfer from or into a datastore root never reads, writes, mirrors or deletes that datastore's ``_mlpipe/``,
and never writes a file whose name a user could not give as a destination path."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlpipe.exceptions import PathOutsideDatastoreError
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.transfer import transfer
from tests.storage.conftest import MakeStore

BACKENDS = ["local", "memory", "azurite", "moto"]


def _all(store: Datastore) -> set[str]:
    return set(store.list("", recursive=True))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_source_folders_mlpipe_is_left_out_at_any_depth(make_store: MakeStore, backend: str) -> None:
    """``bsrc/_mlpipe/`` holds the records of a datastore whose root is ``bsrc``: never data, at any depth."""
    lake, lake2 = make_store(backend, "lake"), make_store(backend, "lake2")
    lake.write_bytes("bsrc/a.txt", b"a")
    lake.write_bytes("bsrc/_mlpipe/registry/evil.json", b"{}")
    lake.write_bytes("bsrc/sub/_MLPIPE./runs/r.json", b"{}")

    assert transfer(lake, "bsrc", lake2, "").files_copied == 1
    assert transfer(lake, "bsrc", lake2, "x").files_copied == 1

    assert _all(lake2) == {"a.txt", COMPLETE_MARKER, "x/a.txt", f"x/{COMPLETE_MARKER}"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_root_source_leaves_out_its_own_records(make_store: MakeStore, backend: str) -> None:
    lake4, lake3 = make_store(backend, "lake4"), make_store(backend, "lake3")
    lake4.write_bytes("d/a.txt", b"a")
    lake4.write_bytes("_mlpipe/registry/ds.json", b"{}")
    lake4.write_bytes("_MLPIPE/runs/r.json", b"{}")

    result = transfer(lake4, "", lake3, "y")

    assert result.files_copied == 1
    assert _all(lake3) == {"y/d/a.txt", f"y/{COMPLETE_MARKER}"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_root_destination_never_mirrors_its_own_records(make_store: MakeStore, backend: str) -> None:
    lake, lake3 = make_store(backend, "lake"), make_store(backend, "lake3")
    lake.write_bytes("src/a.txt", b"a")
    transfer(lake, "src", lake3, "")
    lake3.write_bytes("_mlpipe/registry/ds.json", b"{}")

    result = transfer(lake, "src", lake3, "")

    assert result.files_removed == 0
    assert lake3.read_bytes("_mlpipe/registry/ds.json") == b"{}"


@pytest.mark.parametrize(
    "name", [pytest.param("_mlpipe\\y.json", id="backslash"), pytest.param("sub/_mlpipe_complete", id="marker")]
)
def test_a_source_file_whose_name_is_not_a_destination_path_is_refused(make_store: MakeStore, name: str) -> None:
    lake = make_store("local", "lake")
    lake.write_bytes(f"src/{name}", b"x")
    lake.write_bytes("src/a.txt", b"a")

    with pytest.raises(PathOutsideDatastoreError, match=r"^transfer destination: .*source file") as info:
        transfer(lake, "src", lake, "out")

    assert repr(name) in str(info.value)
    assert not lake.exists("out")


def test_the_operators_check_after_copying_into_a_root_leaves_mlpipes_records_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``DataTransferOperator``'s check after copying lists its destination: at a datastore root, mlpipe's own
    ``_mlpipe/`` is not part of the copy (it would read as files the source does not have)."""
    import json as _json

    from airflow_mlpipe.core.attempt import AttemptId
    from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
    from airflow_mlpipe.fingerprint.identity import identities
    from airflow_mlpipe.operators.transfer_work import TransferWork
    from airflow_mlpipe.steps.spec import StepSpec
    from airflow_mlpipe.storage import resolve

    for name in ("src", "dst"):
        url = (tmp_path / name).as_uri()
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{name.upper()}", _json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": url}})
        )
    resolve.clear_cache()
    src, dst = Datastore.get("src"), Datastore.get("dst")
    src.write_text("in/a.txt", "a\n")
    dst.write_text("a.txt", "a\n")  # the copy
    dst.write_text("_mlpipe/registry/datasets/x/1.json", "{}")  # mlpipe's own records at the root
    infos = src.list("in", recursive=True, detail=True)
    pinned = Manifest.of(ManifestEntry(src.name, i) for i in identities(src, infos).values())
    spec = StepSpec(
        attempt=AttemptId("d", "r", "t"),
        kind="transfer",
        inputs=({"name": "source", "pin": {"manifest": pinned.to_dict()}},),
        extra={"transfer": {"source_path": "in"}},
    )
    manifest = TransferWork.__new__(TransferWork)._sealed(spec, src, dst, "")
    assert [e.path for e in manifest.entries] == ["a.txt"]
