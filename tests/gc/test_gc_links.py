"""gc on a local datastore never deletes through a symbolic link: a link in a swept step run's own folder is removed
as a link, one above it is refused (naming it; the run stays on record for the next gc), and the files a link leads
to, outside the datastore root or not, keep every byte."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest

from airflow_mlpipe.exceptions import ConfigError, PathOutsideDatastoreError
from airflow_mlpipe.gc import GcSettings, collect_garbage
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.local_delete import LinkOnTheWayError, remove_without_following
from tests.gc.helpers import NOW, MadeRun, Runs, age_files, ago
from tests.reuse.reuse_helpers import mlpipe_in_process

OLD = GcSettings.of(older_than="30d")


def _bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _victim(tmp_path: Path, run: MadeRun, store: Datastore) -> Path:
    """A folder outside the datastore holding a copy of the run's output folder (so gc plans the same files) and
    a file of its own."""
    victim = tmp_path / "x/victim"
    shutil.copytree(store.full_path(f"dataset/{run.srid}"), victim)
    for path in victim.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)  # staged outputs are read-only; the victim's are not
    (victim / "model/own.txt").write_text("the victim's own bytes")
    return victim


def _old_run(store: Datastore, runs: Runs) -> MadeRun:
    run = runs.make("train", "fit", "r1", created=ago(days=60))
    age_files(store, days=60)
    return run


def _swap_for_link(full: str, target: Path) -> None:
    shutil.rmtree(full)
    os.symlink(target, full)


def test_gc_removes_a_run_folder_link_as_a_link_and_never_follows_it(
    store: Datastore, runs: Runs, tmp_path: Path
) -> None:
    """The reproduction: ``dataset/<run-id>`` replaced by a link to /tmp/x/victim; gc deleted the victim's files."""
    run = _old_run(store, runs)
    victim = _victim(tmp_path, run, store)
    _swap_for_link(store.full_path(f"dataset/{run.srid}"), victim)
    before = _bytes(victim)

    report = collect_garbage(OLD)

    assert _bytes(victim) == before and before, "the files the link leads to keep every byte"
    assert not os.path.lexists(store.full_path(f"dataset/{run.srid}")), "the link goes, as a link"
    assert report.errors == []
    link_note = f"{store.name}:dataset/{run.srid}: a symbolic link (to {victim}), removed as a link"
    assert any(line.startswith(link_note) for line in report.spared)
    # consistent: the run and its index entry are gone, and the victim's bytes were not counted as reclaimed
    assert not store.exists(records.record_path(run.srid)) and not store.exists(ReuseIndex.path(run.fp.digest))
    output = next(i for i in report.plan.items if i.kind == "output")
    assert report.bytes_reclaimed == report.plan.bytes - (output.bytes or 0)


def test_gc_refuses_a_link_above_the_run_folder_and_keeps_the_run_for_the_next_gc(
    store: Datastore, runs: Runs, tmp_path: Path
) -> None:
    """``dataset`` itself is a link: it is not the run's to remove, so nothing is deleted through it."""
    run = _old_run(store, runs)
    elsewhere = tmp_path / "x/elsewhere"
    shutil.copytree(store.full_path("dataset"), elsewhere)
    for path in elsewhere.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    _swap_for_link(store.full_path("dataset"), elsewhere)
    before = _bytes(elsewhere)

    report = collect_garbage(OLD)

    assert _bytes(elsewhere) == before
    assert os.path.islink(store.full_path("dataset"))
    marker = f"dataset/{run.srid}/model/_MLPIPE_COMPLETE"
    assert report.errors == [
        f"{store.name}:{marker}: datastore {store.name!r}: {marker!r} was not deleted: 'dataset' is a symbolic link "
        f"(to {elsewhere}), and mlpipe never deletes through a link, whose files are not the datastore's: replace "
        "the link by the folder it stands for (or remove it), then run gc again"
    ]
    # the run stays on record (its index entry is gone: nothing reuses it), so the next gc finishes it
    assert store.exists(records.record_path(run.srid)) and not store.exists(ReuseIndex.path(run.fp.digest))
    assert f"step run {run.srid}: an output of it was not deleted (see the errors); the next gc tries again" in (
        report.spared
    )

    os.unlink(store.full_path("dataset"))
    shutil.copytree(elsewhere, store.full_path("dataset"))
    again = collect_garbage(OLD)

    assert again.errors == [] and not store.exists(records.record_path(run.srid))
    assert not store.exists(f"dataset/{run.srid}") and _bytes(elsewhere) == before


def test_links_inside_what_gc_deletes_are_unlinked_never_followed(store: Datastore, runs: Runs, tmp_path: Path) -> None:
    """A link to a folder inside a swept output, and a failed run's staging leftover replaced by a link."""
    done = _old_run(store, runs)
    failed = runs.make("train", "fit", "r2", created=ago(days=55), status=records.FAILED)
    age_files(store, days=60)
    outside = tmp_path / "x/outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep/keep.txt").write_text("keep me")
    os.symlink(outside, store.full_path(f"dataset/{done.srid}/model/ext"))
    os.symlink(outside / "deep/keep.txt", store.full_path(f"dataset/{done.srid}/model/file-link"))
    staging = store.full_path(f"dataset/{failed.srid}/.model.staging-0a1b2c3d")
    _swap_for_link(staging, outside)
    moment = (NOW - dt.timedelta(days=60)).timestamp()  # as old as the rest: past the grace period
    for path in [outside, *outside.rglob("*")]:
        os.utime(path, (moment, moment))
    for link in (staging, store.full_path(f"dataset/{done.srid}/model/ext")):
        os.utime(link, (moment, moment), follow_symlinks=False)
    before = _bytes(outside)

    report = collect_garbage(OLD)

    assert _bytes(outside) == before
    assert report.errors == []
    assert not os.path.lexists(store.full_path(f"dataset/{done.srid}"))
    assert not os.path.lexists(staging)
    assert not store.exists(records.record_path(done.srid)) and not store.exists(records.record_path(failed.srid))


def test_the_cli_reproduction_deletes_nothing_outside_the_root(store: Datastore, runs: Runs, tmp_path: Path) -> None:
    """``mlpipe gc --older-than 1s --grace 1s`` with ``dataset/<run-id>`` a link to /tmp/x/victim."""
    run = _old_run(store, runs)
    victim = _victim(tmp_path, run, store)
    _swap_for_link(store.full_path(f"dataset/{run.srid}"), victim)
    before = _bytes(victim)

    code, text = mlpipe_in_process("gc", "--older-than", "1s", "--grace", "1s")

    assert code == 0, text
    assert f"spared: {store.name}:dataset/{run.srid}: a symbolic link (to {victim}), removed as a link" in text
    assert _bytes(victim) == before and not os.path.lexists(store.full_path(f"dataset/{run.srid}"))


@pytest.mark.parametrize(
    ("path", "recursive", "owned", "gone", "removed"),
    [
        pytest.param("d/link", False, None, "d/link", None, id="the-path-is-a-link"),
        pytest.param("d/tree", True, None, "d/tree", None, id="a-folder-holding-links"),
        pytest.param("d/run/f.txt", False, "d/run", "d/run", "d/run", id="link-in-the-owned-folder"),
        pytest.param("d/run/f.txt", False, "d", "d/run", "d/run", id="link-below-the-owned-folder"),
    ],
)
def test_remove_without_following(
    tmp_path: Path, path: str, recursive: bool, owned: str | None, gone: str, removed: str | None
) -> None:
    store = Datastore("lake", (tmp_path / "lake").as_uri())
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "f.txt").write_text("outside")
    (outside / "sub/g.txt").write_text("outside too")
    root = tmp_path / "lake"
    (root / "d/tree/inner").mkdir(parents=True)
    (root / "d/tree/a.txt").write_text("a")
    os.symlink(outside, root / "d/tree/inner/to-folder")
    os.symlink(outside / "f.txt", root / "d/tree/to-file")
    os.symlink(outside, root / "d/link")
    os.symlink(outside, root / "d/run")
    before = _bytes(outside)

    result = remove_without_following(store, path, recursive=recursive, owned=owned)

    assert _bytes(outside) == before
    assert not os.path.lexists(root / gone)
    assert (result.link if result else None) == removed


@pytest.mark.parametrize(
    ("path", "owned", "error", "message"),
    [
        pytest.param("d/run/f.txt", None, LinkOnTheWayError, r"'d/run' is a symbolic link \(to ", id="nothing-owned"),
        pytest.param("d/run/f.txt", "d/run/x", LinkOnTheWayError, r"'d/run' is a symbolic link", id="owned-below"),
        pytest.param("d/../../outside/f.txt", None, PathOutsideDatastoreError, r"contains '\.\.'", id="dot-dot"),
        pytest.param("", None, ConfigError, "the whole datastore root", id="root"),
    ],
)
def test_remove_without_following_refuses_and_deletes_nothing(
    tmp_path: Path, path: str, owned: str | None, error: type[Exception], message: str
) -> None:
    store = Datastore("lake", (tmp_path / "lake").as_uri())
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside/f.txt").write_text("outside")
    (tmp_path / "lake/d").mkdir(parents=True)
    os.symlink(tmp_path / "outside", tmp_path / "lake/d/run")

    with pytest.raises(error, match=message):
        remove_without_following(store, path, recursive=False, owned=owned)

    assert _bytes(tmp_path / "outside") == {"f.txt": b"outside"} and os.path.islink(tmp_path / "lake/d/run")
