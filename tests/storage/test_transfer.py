"""The copy engine against real stores: local folders, Azurite (adlfs) and moto (s3fs).

Outcomes only (bytes, markers, counts of copied and skipped files), never wall time.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage import copy_library
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.listing import JOURNAL_NAME
from airflow_mlpipe.storage.retry import RetryPolicy, is_transient
from airflow_mlpipe.storage.transfer import (
    TransferDestinationExistsError,
    TransferFailedError,
    TransferKindError,
    TransferOverlapError,
    TransferProgress,
    TransferSourceNotFoundError,
    TransferVerificationError,
    transfer,
)
from tests.emulators import MotoS3
from tests.storage.conftest import MakeStore, fragile_s3_datastore, random_tree, read_tree, write_tree

KiB = 1024
MiB = 1024 * KiB
FAST_RETRY = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)


# -- every backend pair that matters -----------------------------------------------------------------------------------
PAIRS = [
    pytest.param("local", "local", "local", id="local-local"),
    pytest.param("local", "azurite", "upload", id="local-azurite"),
    pytest.param("azurite", "moto", "stream", id="azurite-moto"),
    pytest.param("moto", "local", "download", id="moto-local"),
    pytest.param("azurite", "azurite", "server-side", id="azurite-same-store"),
    pytest.param("moto", "moto", "server-side", id="moto-same-store"),
    pytest.param("memory", "local", "stream", id="memory-local"),
]


def _pair(make_store: MakeStore, src_kind: str, dst_kind: str) -> tuple[Datastore, Datastore]:
    src = make_store(src_kind, "src")
    dst = src if src_kind == dst_kind and src_kind != "local" else make_store(dst_kind, "dst")
    return src, dst


@pytest.mark.parametrize(("src_kind", "dst_kind", "method"), PAIRS)
def test_folder_copy_is_exact_verified_complete_and_rerun_copies_nothing(
    make_store: MakeStore, src_kind: str, dst_kind: str, method: str
) -> None:
    src, dst = _pair(make_store, src_kind, dst_kind)
    # A 6 MiB file with 1 MiB blocks goes block-parallel (Azure blocks, S3 multipart, ranged downloads).
    files = random_tree(10, large=6 * MiB)
    write_tree(src, "in", files)

    result = transfer(src, "in", dst, "out/data", chunk_size=1 * MiB)

    assert result.method == method
    assert (result.files_copied, result.files_skipped) == (len(files), 0)
    assert result.bytes_copied == sum(map(len, files.values()))
    assert result.complete and result.verified
    assert read_tree(dst, "out/data") == files
    assert dst.is_complete("out/data")
    assert not dst.exists(f"out/data/{JOURNAL_NAME}")
    manifest = dst.read_marker("out/data")["transfer"]
    assert manifest["count"] == len(files)
    assert set(manifest["files"]) == set(files)
    assert {f.path for f in result.files} == set(files)
    json.dumps(result.to_dict())

    marker_before = dst.read_bytes(dst.marker_path("out/data"))
    again = transfer(src, "in", dst, "out/data", chunk_size=1 * MiB)
    assert (again.files_copied, again.files_skipped) == (0, len(files))
    assert again.up_to_date and again.method == "none"
    assert dst.read_bytes(dst.marker_path("out/data")) == marker_before


def test_large_upload_to_azure_keeps_content_md5(make_store: MakeStore, monkeypatch: Any) -> None:
    src, dst = make_store("local", "src"), make_store("azurite", "dst")
    data = os.urandom(5 * MiB + 123)
    src.write_bytes("big.bin", data)
    # The SDK uploads files above this size in blocks (64 MiB by default), and such a blob has no MD5 of its own.
    monkeypatch.setattr(dst.fs.service_client._config, "max_single_put_size", 1 * MiB)
    result = transfer(src, "big.bin", dst, "copy/big.bin", kind="file", chunk_size=1 * MiB)
    assert result.files[0].md5 == hashlib.md5(data).hexdigest()
    settings = dst.info("copy/big.bin")["content_settings"]
    assert bytes(settings["content_md5"]).hex() == hashlib.md5(data).hexdigest()


@pytest.mark.parametrize(
    ("src_kind", "dst_kind"),
    [pytest.param("local", "local", id="local-local"), pytest.param("moto", "azurite", id="moto-azurite")],
)
def test_single_file_copy_and_rerun(make_store: MakeStore, src_kind: str, dst_kind: str) -> None:
    src, dst = make_store(src_kind, "src"), make_store(dst_kind, "dst")
    src.write_bytes("a/model.pt", b"weights" * 1000)
    result = transfer(src, "a/model.pt", dst, "models/m.pt", kind="file")
    assert (result.files_copied, result.files_skipped) == (1, 0)
    assert dst.read_bytes("models/m.pt") == b"weights" * 1000
    assert not dst.exists(dst.marker_path("models"))
    assert transfer(src, "a/model.pt", dst, "models/m.pt", kind="file").up_to_date


def test_local_single_file_is_written_under_a_temporary_name(make_store: MakeStore, tmp_path: Path) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    src.write_bytes("f.bin", b"x" * 100)
    seen: list[str] = []
    original = copy_library.shutil.copy2

    def spy(source: str, target: str) -> Any:
        seen.append(target)
        return original(source, target)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(copy_library.shutil, "copy2", spy)
        transfer(src, "f.bin", dst, "g.bin", kind="file")
    assert seen and os.path.basename(seen[0]) != "g.bin"
    assert os.listdir(dst.root) == ["g.bin"]


# -- incremental -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dst_kind", ["local", "azurite"])
def test_rerun_after_losing_files_copies_only_what_is_missing(make_store: MakeStore, dst_kind: str) -> None:
    src, dst = make_store("local", "src"), make_store(dst_kind, "dst")
    files = random_tree(12)
    write_tree(src, "in", files)
    transfer(src, "in", dst, "out")
    lost = sorted(files)[:3]
    for rel in lost:
        dst.delete(f"out/{rel}")
    dst.clear_complete("out")

    result = transfer(src, "in", dst, "out")

    assert sorted(f.path for f in result.files if f.action == "copied") == lost
    assert result.files_skipped == len(files) - 3
    assert read_tree(dst, "out") == files
    assert dst.is_complete("out")


def test_rerun_calls_the_library_only_for_the_changed_file(make_store: MakeStore, monkeypatch: Any) -> None:
    """Skipping is the engine's, not the library's: unchanged files never reach a library copy call."""
    src, dst = make_store("local", "src"), make_store("azurite", "dst")
    files = random_tree(8)
    write_tree(src, "in", files)
    transfer(src, "in", dst, "out")
    uploaded: list[str] = []
    put_file = dst.fs.put_file

    def counting_put(lpath: str, rpath: str, **kwargs: Any) -> None:
        uploaded.append(rpath)
        put_file(lpath, rpath, **kwargs)

    monkeypatch.setattr(dst.fs, "put_file", counting_put)

    assert transfer(src, "in", dst, "out").up_to_date
    assert uploaded == []

    src.write_bytes("in/part-1/f001.bin", b"changed")
    result = transfer(src, "in", dst, "out", overwrite=True)
    assert [f.path for f in result.files if f.action == "copied"] == ["part-1/f001.bin"]
    assert uploaded == [dst.full_path("out/part-1/f001.bin")]
    assert dst.read_bytes("out/part-1/f001.bin") == b"changed" and dst.is_complete("out")


def test_overwrite_replaces_a_hard_linked_local_file_without_changing_its_other_name(
    make_store: MakeStore, tmp_path: Path
) -> None:
    """A destination file may be a hard link into another copy: it is replaced, never written through."""
    src, dst = make_store("local", "src"), make_store("local", "dst")
    src.write_bytes("in/a.bin", b"new")
    dst.write_bytes("out/a.bin", b"old")
    other = tmp_path / "elsewhere.bin"
    os.link(dst.full_path("out/a.bin"), other)

    transfer(src, "in", dst, "out", overwrite=True)

    assert dst.read_bytes("out/a.bin") == b"new"
    assert other.read_bytes() == b"old"


def test_without_a_marker_same_files_are_recognised_by_content(make_store: MakeStore) -> None:
    """A destination filled by other means (no marker, other mtimes): equal bytes are skipped, not copied."""
    src, dst = make_store("local", "src"), make_store("local", "dst")
    files = random_tree(5)
    write_tree(src, "in", files)
    write_tree(dst, "out", files)
    result = transfer(src, "in", dst, "out")
    assert (result.files_copied, result.files_skipped) == (0, len(files))
    assert dst.is_complete("out")


def test_changed_source_file_needs_overwrite(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("moto", "dst")
    files = random_tree(6)
    write_tree(src, "in", files)
    transfer(src, "in", dst, "out")
    src.write_bytes("in/part-0/f000.bin", b"new content")
    before = read_tree(dst, "out")

    with pytest.raises(TransferDestinationExistsError) as err:
        transfer(src, "in", dst, "out")
    message = str(err.value)
    assert "'part-0/f000.bin'" in message and "overwrite=True" in message and "'dst'" in message
    assert read_tree(dst, "out") == before, "nothing may be written before the conflict is reported"
    assert dst.is_complete("out")

    result = transfer(src, "in", dst, "out", overwrite=True)
    assert [f.path for f in result.files if f.action == "copied"] == ["part-0/f000.bin"]
    assert dst.read_bytes("out/part-0/f000.bin") == b"new content"
    assert dst.is_complete("out")


def test_marker_is_withdrawn_while_files_are_rewritten(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    write_tree(src, "in", random_tree(8))
    transfer(src, "in", dst, "out")
    src.write_bytes("in/part-1/f001.bin", b"changed")
    complete_during_copy: list[bool] = []

    def watch(progress: TransferProgress) -> None:
        if progress.phase == "copying":
            complete_during_copy.append(dst.is_complete("out"))

    transfer(src, "in", dst, "out", overwrite=True, progress=watch, progress_interval=0)
    assert complete_during_copy and not any(complete_during_copy)
    assert dst.is_complete("out")


def test_files_subset_copies_exactly_the_list(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("azurite", "dst")
    files = random_tree(6)
    write_tree(src, "in", files)
    wanted = sorted(files)[:2]
    result = transfer(src, "in", dst, "out", files=wanted)
    assert sorted(read_tree(dst, "out")) == wanted
    assert result.files_total == 2
    with pytest.raises(TransferSourceNotFoundError, match=r"lacks 1 of the 2 files.*'nope.csv'"):
        transfer(src, "in", dst, "out2", files=[wanted[0], "nope.csv"])


def test_unfinished_run_of_the_same_transfer_resumes_without_overwrite(make_store: MakeStore) -> None:
    """A run that died mid-copy leaves its journal: its partial files are replaced on the re-run, no conflict."""
    src, dst = make_store("local", "src"), make_store("local", "dst")
    files = random_tree(20)
    write_tree(src, "in", files)

    class Crash(Exception):
        pass

    def crash_midway(progress: TransferProgress) -> None:
        if progress.files_done >= 5:
            raise Crash

    with pytest.raises(Crash):
        transfer(src, "in", dst, "out", progress=crash_midway, progress_interval=0, max_workers=1)
    assert dst.exists(f"out/{JOURNAL_NAME}") and not dst.is_complete("out")
    copied = read_tree(dst, "out")
    assert 5 <= len(copied) < len(files)
    victim = sorted(copied)[0]
    Path(dst.full_path(f"out/{victim}")).write_bytes(b"half")  # as a write cut short by a kill

    result = transfer(src, "in", dst, "out")
    assert result.files_copied == len(files) - len(copied) + 1
    assert read_tree(dst, "out") == files
    assert dst.is_complete("out") and not dst.exists(f"out/{JOURNAL_NAME}")


# -- bad input ---------------------------------------------------------------------------------------------------------
def test_missing_source_names_store_path_and_fix(make_store: MakeStore) -> None:
    src, dst = make_store("moto", "landing"), make_store("local", "dst")
    with pytest.raises(TransferSourceNotFoundError, match=r"datastore 'landing' path 'no/such/folder'.*does not exist"):
        transfer(src, "no/such/folder", dst, "out")
    assert not dst.exists("out")


def test_kind_mismatch_is_explained(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    src.write_bytes("folder/a.csv", b"a")
    with pytest.raises(TransferKindError, match="is a file; pass kind='file'"):
        transfer(src, "folder/a.csv", dst, "out")
    with pytest.raises(TransferKindError, match="is a folder; pass kind='directory'"):
        transfer(src, "folder", dst, "out", kind="file")
    dst.write_bytes("taken/x", b"x")
    with pytest.raises(TransferKindError, match="destination: .* is a folder"):
        transfer(src, "folder/a.csv", dst, "taken", kind="file")


@pytest.mark.parametrize(
    ("src_path", "dst_path", "kind"),
    [
        pytest.param("data", "data/copy", "directory", id="destination-inside-source"),
        pytest.param("data/sub", "data", "directory", id="source-inside-destination"),
        pytest.param("data", "data", "directory", id="same-folder"),
        pytest.param("data/sub/a.bin", "data/sub/a.bin", "file", id="same-file"),
    ],
)
@pytest.mark.parametrize("backend", ["local", "azurite"])
def test_overlapping_source_and_destination_are_refused(
    make_store: MakeStore, backend: str, src_path: str, dst_path: str, kind: Any
) -> None:
    store = make_store(backend, "store")
    store.write_bytes("data/sub/a.bin", b"a")
    with pytest.raises(TransferOverlapError, match="overlap"):
        transfer(store, src_path, store, dst_path, kind=kind)
    assert store.list("data", recursive=True) == ["data/sub/a.bin"]


def test_overlap_is_seen_across_two_datastores_on_one_folder(tmp_path: Path) -> None:
    outer = Datastore("outer", (tmp_path / "share").as_uri())
    inner = Datastore("inner", (tmp_path / "share" / "team").as_uri())
    outer.write_bytes("team/x.bin", b"x")
    with pytest.raises(TransferOverlapError):
        transfer(outer, "", inner, "mirror")


def test_bad_arguments_are_config_errors(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    src.write_bytes("in/a", b"a")
    with pytest.raises(ConfigError, match="kind 'folder' must be one of 'directory', 'file'"):
        transfer(src, "in", dst, "out", kind="folder")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_workers 0 must be a whole number of at least 1"):
        transfer(src, "in", dst, "out", max_workers=0)
    with pytest.raises(ConfigError, match="attempts 0 must be a whole number of at least 1"):
        RetryPolicy(attempts=0)


# -- faults ------------------------------------------------------------------------------------------------------------
def test_verification_failure_leaves_the_folder_incomplete(make_store: MakeStore, monkeypatch: Any) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    write_tree(src, "in", random_tree(4))

    def short_copy(source: str, target: str) -> None:
        Path(target).write_bytes(Path(source).read_bytes()[:-1])

    monkeypatch.setattr(copy_library.shutil, "copy2", short_copy)
    with pytest.raises(TransferVerificationError, match="bytes, the source"):
        transfer(src, "in", dst, "out")
    assert not dst.is_complete("out")


def test_verification_catches_a_file_the_library_copy_corrupted(make_store: MakeStore, monkeypatch: Any) -> None:
    """Azure -> S3: both stores keep an MD5, so a destination file of the right size but wrong bytes is caught."""
    src, dst = make_store("azurite", "src"), make_store("moto", "dst")
    files = random_tree(4)
    write_tree(src, "in", files)
    put_file = dst.fs.put_file

    def corrupting_put(lpath: str, rpath: str, **kwargs: Any) -> None:
        if rpath.endswith("f002.bin"):
            data = bytearray(Path(lpath).read_bytes())
            data[0] ^= 0xFF
            dst.fs.pipe_file(rpath, bytes(data))
            return
        put_file(lpath, rpath, **kwargs)

    monkeypatch.setattr(dst.fs, "put_file", corrupting_put)
    with pytest.raises(TransferVerificationError, match=r"'part-2/f002.bin' has MD5"):
        transfer(src, "in", dst, "out")
    assert not dst.is_complete("out")


class _Flaky:
    """Wraps a filesystem write method: its first ``failures`` calls for data files raise ``error``."""

    def __init__(self, fn: Any, failures: int, error: Exception) -> None:
        self.fn, self.failures, self.error, self.calls = fn, failures, error, 0

    def __call__(self, path: str, *args: Any, **kwargs: Any) -> Any:
        if not os.path.basename(path).startswith("_MLPIPE_"):
            self.calls += 1
            if self.calls <= self.failures:
                raise self.error
        return self.fn(path, *args, **kwargs)


def test_transient_errors_are_retried(make_store: MakeStore, monkeypatch: Any) -> None:
    src, dst = make_store("local", "src"), make_store("memory", "dst")
    files = random_tree(3)
    write_tree(src, "in", files)
    flaky = _Flaky(dst.fs.put_file, 2, ConnectionResetError("connection reset by peer"))
    monkeypatch.setattr(dst.fs, "put_file", flaky)
    result = transfer(src, "in", dst, "out", retry=FAST_RETRY, max_workers=1)
    assert result.retries == 2
    assert read_tree(dst, "out") == files


def test_a_server_side_batch_on_s3_finishes_its_failed_files_alone(make_store: MakeStore, monkeypatch: Any) -> None:
    """Runs of small files are copied as coroutines on s3fs's loop; a file that fails there is copied again alone,
    with retries, and counted once."""
    store = make_store("moto", "one")
    files = random_tree(6)
    write_tree(store, "in", files)
    real = store.fs._cp_file
    failures: list[str] = []

    async def flaky(src: str, dst: str, **kwargs: Any) -> Any:
        if src.endswith(sorted(files)[0]) and len(failures) < 2:
            failures.append(src)  # fails in the batch, then once more when copied alone
            raise ConnectionResetError("connection reset by peer")
        return await real(src, dst, **kwargs)

    from fsspec.asyn import sync

    monkeypatch.setattr(store.fs, "_cp_file", flaky)  # the batch's call
    monkeypatch.setattr(store.fs, "cp_file", lambda *a, **k: sync(store.fs.loop, flaky, *a, **k))  # alone
    result = transfer(store, "in", store, "out", retry=FAST_RETRY)
    assert len(failures) == 2 and result.retries == 1
    assert result.files_copied == len(files)
    assert read_tree(store, "out") == files


def test_permanent_errors_are_not_retried(make_store: MakeStore, monkeypatch: Any) -> None:
    src, dst = make_store("local", "src"), make_store("memory", "dst")
    write_tree(src, "in", random_tree(3))
    flaky = _Flaky(dst.fs.put_file, 100, PermissionError("AuthorizationFailure: not allowed"))
    monkeypatch.setattr(dst.fs, "put_file", flaky)
    with pytest.raises(TransferFailedError, match=r"datastore 'dst'.*access denied") as err:
        transfer(src, "in", dst, "out", retry=FAST_RETRY, max_workers=1)
    assert flaky.calls == 1
    assert err.value.files_copied == 0
    assert not dst.is_complete("out")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(ConnectionRefusedError(111, "refused"), True, id="connection-refused"),
        pytest.param(TimeoutError("timed out"), True, id="timeout"),
        pytest.param(FileNotFoundError("gone"), False, id="not-found"),
        pytest.param(PermissionError("denied"), False, id="permission"),
        pytest.param(ValueError("bad"), False, id="value-error"),
    ],
)
def test_transient_error_rule(error: Exception, transient: bool) -> None:
    assert is_transient(error) is transient


def test_transient_error_rule_reads_status_codes_through_wrappers() -> None:
    class HttpResponseError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"status {status}")
            self.status_code = status

    for status, expected in [(503, True), (500, True), (429, True), (404, False), (403, False)]:
        wrapper = OSError(5, "wrapped")
        wrapper.__cause__ = HttpResponseError(status)
        assert is_transient(wrapper) is expected, status


def _transfer_while_stopping(server: MotoS3, src: Datastore, dst: Datastore) -> TransferFailedError:
    """Run a transfer of ``in`` to ``out`` on a thread and stop ``server`` once 20 files are done.

    The progress callback holds the copy at that point until the server is down, so the stop always lands
    mid-copy, whatever the machine's speed.
    """
    reached, stopped = threading.Event(), threading.Event()
    outcome: dict[str, BaseException] = {}

    def hold(progress: TransferProgress) -> None:
        if progress.files_done >= 20 and not reached.is_set():
            reached.set()
            stopped.wait(timeout=30)

    def run() -> None:
        try:
            transfer(src, "in", dst, "out", progress=hold, progress_interval=0, retry=FAST_RETRY, max_workers=4)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    assert reached.wait(timeout=30), "the copy never got going"
    server.stop()
    stopped.set()
    thread.join(timeout=60)
    error = outcome.get("error")
    assert isinstance(error, TransferFailedError), outcome
    assert "could not be reached" in str(error) and "Nothing was marked complete" in str(error)
    return error


def test_source_store_going_away_mid_copy_then_rerun_resumes(make_store: MakeStore, private_moto: MotoS3) -> None:
    src = fragile_s3_datastore(private_moto, "landing")
    dst = make_store("local", "cache")
    files = random_tree(60, size=800)
    write_tree(src, "in", files)

    error = _transfer_while_stopping(private_moto, src, dst)

    assert "datastore 'landing'" in str(error)
    assert not dst.is_complete("out") and dst.exists(f"out/{JOURNAL_NAME}")
    kept = read_tree(dst, "out")
    assert 20 <= len(kept) < len(files)
    assert all(files[rel] == data for rel, data in kept.items()), "no partial file may stay behind"

    private_moto.start()  # in-memory: the bucket and its objects are gone, so put the same data back
    src.fs.mkdir(src.root.split("/", 1)[0])
    write_tree(src, "in", files)
    result = transfer(src, "in", dst, "out", retry=FAST_RETRY)

    assert (result.files_copied, result.files_skipped) == (len(files) - len(kept), len(kept))
    assert result.verified and result.complete
    assert read_tree(dst, "out") == files
    assert dst.is_complete("out") and not dst.exists(f"out/{JOURNAL_NAME}")


def test_destination_store_going_away_mid_copy_then_rerun_completes(
    make_store: MakeStore, private_moto: MotoS3, monkeypatch: Any
) -> None:
    src = make_store("local", "src")
    dst = fragile_s3_datastore(private_moto, "team")
    files = random_tree(60, size=800)
    write_tree(src, "in", files)
    marked: list[str] = []
    mark_complete = dst.mark_complete
    monkeypatch.setattr(dst, "mark_complete", lambda folder, manifest=None: marked.append(folder))

    error = _transfer_while_stopping(private_moto, src, dst)

    assert "datastore 'team'" in str(error)
    assert 20 <= error.files_copied < len(files)
    assert marked == [], "nothing may be marked complete by the failed run"

    private_moto.start()  # in-memory: everything written before the stop is gone, the re-run copies it all
    dst.fs.mkdir(dst.root.split("/", 1)[0])
    monkeypatch.setattr(dst, "mark_complete", mark_complete)
    result = transfer(src, "in", dst, "out", retry=FAST_RETRY)

    assert (result.files_copied, result.files_skipped) == (len(files), 0)
    assert result.verified and result.complete
    assert read_tree(dst, "out") == files
    assert dst.is_complete("out")


# -- progress ----------------------------------------------------------------------------------------------------------
def test_progress_reports_totals_and_ends_done(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    files = random_tree(7)
    write_tree(src, "in", files)
    transfer(src, "in", dst, "out", files=sorted(files)[:3])
    seen: list[TransferProgress] = []
    transfer(src, "in", dst, "out", progress=seen.append, progress_interval=0)
    first, last = seen[0], seen[-1]
    assert (first.files_total, first.files_skipped, first.files_done) == (len(files) - 3, 3, 0)
    assert last.phase == "done" and last.files_done == last.files_total
    assert last.bytes_done == last.bytes_total and last.eta_s == 0
    assert "files" in str(last) and "up to date" in str(last)


def test_datastore_names_are_resolved(make_store: MakeStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like the other public APIs, ``transfer()`` takes a datastore name (an Airflow connection id) for a store."""
    from airflow_mlpipe.storage import resolve

    src, dst = make_store("local", "src"), make_store("local", "dst")
    src.write_bytes("in/a.txt", b"a")
    extra = {"conn_type": "mlpipe_datastore", "extra": {"url": f"file://{src.root}"}}
    monkeypatch.setenv("AIRFLOW_CONN_NAMED_SRC", json.dumps(extra))
    resolve.clear_cache()
    try:
        transfer("named_src", "in", dst, "out")
    finally:
        resolve.clear_cache()
    assert dst.read_bytes("out/a.txt") == b"a"


def test_marker_extra_keys_are_kept(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    write_tree(src, "in", random_tree(2))
    transfer(src, "in", dst, "out", marker_extra={"dataset": "train", "version": 3})
    marker = dst.read_marker("out")
    assert (marker["dataset"], marker["version"]) == ("train", 3)
    assert COMPLETE_MARKER not in marker["transfer"]["files"]


def test_fast_azure_listing_matches_adlfs_find(make_store: MakeStore, monkeypatch: Any) -> None:
    from airflow_mlpipe.storage import listing

    store = make_store("azurite", "az")
    files = random_tree(5)
    write_tree(store, "a/b", files)
    fast = listing.list_tree(store, store.full_path("a/b"))
    monkeypatch.setattr(listing, "list_azure", lambda fs, full: None)
    assert listing.list_tree(store, store.full_path("a/b")) == fast
    assert set(fast) == set(files)
    assert fast["empty.txt"].md5 == hashlib.md5(b"").hexdigest()


def test_journal_left_after_marking_complete_is_cleaned_up(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    write_tree(src, "in", random_tree(3))
    transfer(src, "in", dst, "out")
    dst.write_json(f"out/{JOURNAL_NAME}", {"source": src.uri("in")})  # as if the run died right after the marker
    result = transfer(src, "in", dst, "out")
    assert result.up_to_date
    assert not dst.exists(f"out/{JOURNAL_NAME}") and dst.is_complete("out")


def test_links_to_nothing_in_a_local_source_are_skipped(make_store: MakeStore) -> None:
    src, dst = make_store("local", "src"), make_store("local", "dst")
    src.write_bytes("in/a.bin", b"a")
    os.symlink("/nonexistent/target", src.full_path("in/dangling"))
    result = transfer(src, "in", dst, "out")
    assert [f.path for f in result.files] == ["a.bin"]
