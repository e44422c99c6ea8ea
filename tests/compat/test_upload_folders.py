"""v1 ``upload_files`` with a folder among its files checks every file below it as ``upload`` does (reserved paths,
links on the way, committed outputs), before the first write, on every backend; a symbolic link inside a source
folder is refused by both, never followed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_mlpipe.compat.data import V1Datastore
from airflow_mlpipe.exceptions import ConfigError, PathOutsideDatastoreError, ReservedPathError
from airflow_mlpipe.storage.committed import CommittedOutputError
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore, make_s3_datastore


def _local(request: pytest.FixtureRequest, tmp_path: Path) -> Datastore:
    return Datastore("lake", (tmp_path / "lake").as_uri())


def _azurite(request: pytest.FixtureRequest, tmp_path: Path) -> Datastore:
    return make_azurite_datastore(request.getfixturevalue("azurite"), name="lake")


def _moto(request: pytest.FixtureRequest, tmp_path: Path) -> Datastore:
    return make_s3_datastore(request.getfixturevalue("moto_s3"), name="lake")


MAKERS: dict[str, Callable[[pytest.FixtureRequest, Path], Datastore]] = {
    "local": _local,
    "azurite": _azurite,
    "moto": _moto,
}


@pytest.fixture(params=list(MAKERS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Datastore:
    return MAKERS[request.param](request, tmp_path)


def _tree(tmp_path: Path, name: str, files: dict[str, str]) -> str:
    for rel, text in files.items():
        (tmp_path / name / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name / rel).write_text(text)
    return str(tmp_path / name)


def _everything(store: Datastore) -> dict[str, bytes]:
    return {p: store.read_bytes(p) for p in store.list("", recursive=True)}


def _committed(store: Datastore) -> None:
    store.write_text("models/run1/model/w.bin", "weights")
    store.mark_complete("models/run1/model", {"step_run_id": "r1", "registered": {"name": "m", "version": 1}})


@pytest.mark.parametrize(
    ("files", "relative_root", "target", "error", "message"),
    [
        pytest.param(
            {"ok.txt": "ok", "_mlpipe/registry/x.json": "{}"},
            True,
            "",
            ReservedPathError,
            r"^upload destination: datastore 'lake': path '_mlpipe/registry/x.json' is inside '_mlpipe/'",
            id="reserved-root",
        ),
        pytest.param(
            {"ok.txt": "ok", "m/_MLPIPE_COMPLETE": "{}"},
            True,
            "",
            ReservedPathError,
            r"^upload destination: datastore 'lake': path 'm/_MLPIPE_COMPLETE' names '_MLPIPE_COMPLETE'",
            id="forged-marker",
        ),
        pytest.param(
            {"ok.txt": "ok", "sub/_MLPIPE_TRANSFER": "{}"},
            False,
            "up",
            ReservedPathError,
            r"^upload destination: datastore 'lake': path 'up/d/sub/_MLPIPE_TRANSFER' names",
            id="forged-journal",
        ),
        pytest.param(
            {"w.bin": "forged"},
            False,
            "models/run1",
            CommittedOutputError,
            r"^upload destination: 'models/run1/model/w.bin' in datastore 'lake' lies inside the committed output "
            r"of step run r1, registered as dataset 'm' version 1 \('models/run1/model'\)",
            id="committed-output",
        ),
    ],
)
def test_a_folder_in_upload_files_is_checked_file_by_file_before_any_write(
    store: Datastore,
    tmp_path: Path,
    files: dict[str, str],
    relative_root: bool,
    target: str,
    error: type[Exception],
    message: str,
) -> None:
    _committed(store)
    # a folder named like the committed output's, so that upload_files(["/src/model"]) aims at it
    folder = _tree(tmp_path, "model" if target == "models/run1" else "d", files)
    before = _everything(store)

    with pytest.raises(error, match=message):
        V1Datastore.of(store).upload_files(
            [folder], relative_root=folder if relative_root else None, target_path=target, overwrite=True
        )

    assert _everything(store) == before, "nothing may be written"


def test_a_folder_in_upload_files_uploads_every_file_below_it(store: Datastore, tmp_path: Path) -> None:
    folder = _tree(tmp_path, "d", {"a.txt": "a", "sub/b.txt": "b"})
    (tmp_path / "one.txt").write_text("1")
    v1 = V1Datastore.of(store)

    v1.upload_files([folder, str(tmp_path / "one.txt")], target_path="up", overwrite=False)
    v1.upload_files([folder], relative_root=folder, target_path="flat")

    assert _everything(store) == {
        "up/d/a.txt": b"a",
        "up/d/sub/b.txt": b"b",
        "up/one.txt": b"1",
        "flat/a.txt": b"a",
        "flat/sub/b.txt": b"b",
    }
    with pytest.raises(ConfigError, match=r"already holds 'flat/a.txt' \(and 1 more\); pass overwrite=True"):
        v1.upload_files([folder], relative_root=folder, target_path="flat")


def test_a_link_in_the_destination_below_a_folder_is_refused(tmp_path: Path) -> None:
    """The reproduction: ``lake/new2/model/sub`` is a link out of the datastore; uploading a folder ``model``
    holding ``sub/pwn.txt`` into ``new2`` created ``/outside/pwn.txt``."""
    store = Datastore("lake", (tmp_path / "lake").as_uri())
    (tmp_path / "outside").mkdir()
    (tmp_path / "lake/new2/model").mkdir(parents=True)
    os.symlink(tmp_path / "outside", tmp_path / "lake/new2/model/sub")
    folder = _tree(tmp_path, "src/model", {"sub/pwn.txt": "pwned", "a.txt": "a"})
    before = _entries(tmp_path / "lake")

    with pytest.raises(PathOutsideDatastoreError, match=r"^target_path: datastore 'lake': path 'new2/model/sub' "):
        V1Datastore.of(store).upload_files([folder], target_path="new2", overwrite=True)

    assert os.listdir(tmp_path / "outside") == [] and _entries(tmp_path / "lake") == before


def _entries(root: Path) -> dict[str, str | bytes]:
    """Every name below ``root``: a link as its target (never followed), a file as its bytes."""
    found: dict[str, str | bytes] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = Path(folder) / name
            found[str(path.relative_to(root))] = (
                f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes() if path.is_file() else "dir"
            )
    return found


@pytest.mark.parametrize("method", ["upload", "upload_files"])
@pytest.mark.parametrize("kind", ["file", "folder", "dangling"])
def test_a_link_inside_a_source_folder_is_refused_not_followed(tmp_path: Path, method: str, kind: str) -> None:
    store = Datastore("lake", (tmp_path / "lake").as_uri())
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret/passwd").write_text("root:x:0:0")
    folder = _tree(tmp_path, "src", {"a.txt": "a"})
    target = {"file": "secret/passwd", "folder": "secret", "dangling": "gone"}[kind]
    os.symlink(tmp_path / target, tmp_path / "src/sub" if kind == "folder" else tmp_path / "src/p.txt")
    name = "sub" if kind == "folder" else "p.txt"
    v1 = V1Datastore.of(store)

    with pytest.raises(ConfigError, match=rf"^upload source: '{name}' in folder '{folder}' is a symbolic link \(to "):
        if method == "upload":
            v1.upload(folder, target_path="up", overwrite=True)
        else:
            v1.upload_files([folder], target_path="up", overwrite=True)

    assert _everything(store) == {}
