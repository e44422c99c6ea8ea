"""The copy engine: fast, verified, resumable copies between any two datastores. No Airflow import.

``transfer(src, "in/data", dst, "team/data")`` copies a folder (or with ``kind="file"`` one file) and returns a
``TransferResult``. The steps, in order, so that nothing half-copied ever looks complete:

1. check the request: the source exists and is what ``kind`` says, source and destination do not overlap;
2. list both sides and decide per file what to copy (``transfer_plan``); a file that differs at the destination
   is an error unless ``overwrite`` (or it was left by an unfinished run of this same transfer); files the
   source lacks are removed when an earlier transfer of this source wrote them there (``transfer_mirror``), and
   an error otherwise; a link in the destination (local stores), or a source file whose destination path a user
   could not give (below a ``_mlpipe/`` folder, a reserved name, a backslash), is an error. Nothing is written
   before all of these checks pass;
3. withdraw the destination folder's completion marker, leave a journal naming the source, remove the files the
   source lacks, then copy (``copiers`` picks local, upload, download, stream or server-side), each file with
   retries;
4. list the destination again and compare sizes and, where both stores keep one, MD5s;
5. mark the folder complete with a manifest of both sides' identities, which lets the next run skip every
   unchanged file without reading it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import os
import posixpath
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.paths import is_reserved, is_reserved_name
from airflow_mlpipe.exceptions import (
    ConfigError,
    DatastoreAccessError,
    PathOutsideDatastoreError,
    ReservedPathError,
)
from airflow_mlpipe.storage.committed import refuse_committed_around
from airflow_mlpipe.storage.confine import confined_path
from airflow_mlpipe.storage.copiers import DEFAULT_WORKERS, choose_copier, same_namespace
from airflow_mlpipe.storage.copy_common import CopyContext, CopyFailure
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.errors import translate_errors
from airflow_mlpipe.storage.listing import JOURNAL_NAME, FileMeta, content_md5, list_tree, path_kind
from airflow_mlpipe.storage.progress import ProgressCallback, ProgressTracker
from airflow_mlpipe.storage.retry import RetryPolicy, call_with_retry
from airflow_mlpipe.storage.transfer_checks import (
    check_arguments,
    check_marker_extra,
    check_path,
    refused_paths,
    store_of,
)
from airflow_mlpipe.storage.transfer_errors import (
    TransferDestinationExistsError,
    TransferError,
    TransferExtraFilesError,
    TransferFailedError,
    TransferKindError,
    TransferOverlapError,
    TransferSourceNotFoundError,
    TransferVerificationError,
    some_files,
)
from airflow_mlpipe.storage.transfer_links import refuse_links_on_the_way
from airflow_mlpipe.storage.transfer_manifest import (
    file_records,
    manifest_section,
    marker_unchanged,
    mismatches,
    recorded_files,
)
from airflow_mlpipe.storage.transfer_mirror import JOURNAL_OWN_FILES, foreign_files, journal_own_files
from airflow_mlpipe.storage.transfer_plan import Plan, plan_transfer
from airflow_mlpipe.storage.transfer_types import TransferKind, TransferProgress, TransferredFile, TransferResult

__all__ = [
    "RetryPolicy",
    "TransferDestinationExistsError",
    "TransferError",
    "TransferExtraFilesError",
    "TransferFailedError",
    "TransferKindError",
    "TransferOverlapError",
    "TransferProgress",
    "TransferResult",
    "TransferSourceNotFoundError",
    "TransferVerificationError",
    "TransferredFile",
    "transfer",
]

_MiB = 1024 * 1024
# How a caller of ``transfer()`` asks for each choice, as error messages tell its user to (the command line and
# the operator pass their own words).
DEFAULT_OPTION_WORDS: Mapping[str, str] = {
    "file": "pass kind='file'",
    "directory": "pass kind='directory'",
    "overwrite": "pass overwrite=True",
}


def transfer(
    source: Datastore | str,
    source_path: str,
    destination: Datastore | str,
    destination_path: str,
    *,
    kind: TransferKind = "directory",
    overwrite: bool = False,
    verify: bool = True,
    files: Collection[str] | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 10.0,
    max_workers: int | None = None,
    retry: RetryPolicy | None = None,
    chunk_size: int = 8 * _MiB,
    block_parallel: int = 4,
    memory_limit: int = 256 * _MiB,
    marker_extra: Mapping[str, Any] | None = None,
    mark_complete: bool = True,
    mirror: bool = True,
    option_words: Mapping[str, str] | None = None,
) -> TransferResult:
    """Copy ``source_path`` of ``source`` to ``destination_path`` of ``destination`` (each a ``Datastore`` or a
    datastore name). Every argument is checked before the first storage call: a wrong one writes nothing.

    :param kind: ``"directory"`` copies every file below ``source_path`` into the folder ``destination_path`` and
        marks it complete; ``"file"`` copies one file to the file path ``destination_path``, or into the folder
        it names when it ends in ``/`` (keeping the file's name, as ``cp`` and ``rsync`` do).
    :param overwrite: replace destination files that differ from the source; off, such files are an error
        (raised before anything is written). Files that match are skipped either way.
    :param verify: compare sizes and (where both stores keep one) MD5s after copying; fail on a mismatch.
    :param files: copy only these paths, relative to ``source_path`` (a dataset version's manifest).
    :param progress: called with a ``TransferProgress`` at most every ``progress_interval`` seconds, and at the end.
        It runs on a copy thread: keep it quick (log a line).
    :param max_workers: files in flight; the default suits the pair of stores (2 local threads, dozens of
        requests to object stores).
    :param retry: how failed files are retried (transient errors only); default 4 tries with backoff from 0.5 s.
    :param chunk_size: files larger than this are large; the S3 part and ranged-read size (at least 5 MiB).
    :param block_parallel: blocks of one large file in flight at once (the libraries' ``max_concurrency``).
    :param memory_limit: bytes that large files in flight may hold in blocks together: at most
        ``memory_limit // (chunk_size * block_parallel)`` large files are copied at once.
    :param marker_extra: further keys for the destination's completion marker (``kind="directory"``): JSON values,
        and none of the keys mlpipe writes there itself (``transfer_checks.RESERVED_MARKER_KEYS``).
    :param mark_complete: False to leave the folder without a completion marker (a step's output staged at its
        destination, which its attempt's commit and finish path mark later).
    :param mirror: remove destination files the source lacks when an earlier transfer of this source wrote them
        there (its marker lists them, unchanged, or its unfinished run's journal does; never in a sub-folder with
        a marker or journal of its own). Any other file the source lacks, or any with ``mirror=False``, is an
        error (raised before anything is written): the folder would not be a copy of the source.
    :param option_words: how the caller's user asks for ``"file"``, ``"directory"`` and ``"overwrite"``, for the
        fixes error messages suggest (default ``DEFAULT_OPTION_WORDS``).
    """
    files = check_arguments(
        kind=kind,
        overwrite=overwrite,
        verify=verify,
        files=files,
        progress=progress,
        progress_interval=progress_interval,
        max_workers=max_workers,
        retry=retry,
        chunk_size=chunk_size,
        block_parallel=block_parallel,
        memory_limit=memory_limit,
        marker_extra=marker_extra,
        mark_complete=mark_complete,
        mirror=mirror,
        option_words=option_words,
    )
    source_path = check_path("source_path", source_path)
    destination_path = check_path("destination_path", destination_path)
    job = _Transfer(
        store_of("source", source),
        source_path,
        store_of("destination", destination),
        destination_path,
        kind=kind,
        overwrite=overwrite,
        verify=verify,
        files=files,
        retry=retry or RetryPolicy(),
        mirror=mirror,
        option_words={**DEFAULT_OPTION_WORDS, **(option_words or {})},
    )
    settings = _CopySettings(progress, progress_interval, max_workers, chunk_size, block_parallel, memory_limit)
    return job.run(settings, check_marker_extra(marker_extra), mark_complete=mark_complete)


@dataclass(frozen=True)
class _CopySettings:
    progress: ProgressCallback | None
    interval: float
    workers: int | None
    chunk_size: int
    block_parallel: int
    memory_limit: int

    def __post_init__(self) -> None:
        for name in ("chunk_size", "block_parallel", "memory_limit"):
            value = getattr(self, name)
            if value < 1:
                raise ConfigError(f"transfer({name}={value!r}): give a positive number")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(
                f"transfer(max_workers={self.workers!r}): give a positive number, or None for the default"
            )


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _join(base: str, rel: str) -> str:
    return f"{base.rstrip('/')}/{rel}" if rel else base


def _under(folder: str, rel: str) -> str:
    """``rel`` below a datastore-relative folder ("" is the root)."""
    return "/".join(p for p in (folder.strip("/"), rel) if p)


class _Transfer:
    def __init__(
        self,
        src: Datastore,
        src_path: str,
        dst: Datastore,
        dst_path: str,
        *,
        kind: TransferKind,
        overwrite: bool,
        verify: bool,
        files: Collection[str] | None,
        retry: RetryPolicy,
        mirror: bool,
        option_words: Mapping[str, str],
    ) -> None:
        if kind not in ("file", "directory"):
            raise ConfigError(f"transfer(kind={kind!r}): use 'file' (one file) or 'directory' (a folder of files)")
        if files is not None and kind != "directory":
            raise ConfigError("transfer(files=...): a list of files needs kind='directory'")
        self.src, self.dst = src, dst
        self.src_path = _confined(src, src_path, argument="transfer source")
        if kind == "file" and dst_path.endswith("/") and self.src_path:
            dst_path += posixpath.basename(self.src_path)  # "out/" names a folder: the file goes into it
        self.dst_path = _confined(dst, dst_path, argument="transfer destination")
        self.src_full, self.dst_full = src.full_path(self.src_path), dst.full_path(self.dst_path)
        self.kind, self.overwrite, self.verify, self.files, self.retry = kind, overwrite, verify, files, retry
        self.mirror, self.words = mirror, option_words
        self.started = time.monotonic()
        self.journal_found = False
        self.own = False  # the destination's marker or journal names this transfer's source
        self.dst_controls: set[str] = set()  # markers and journals below the destination folder
        self.marker_withdrawn = False
        self.registered: dict[str, Any] | None = None  # the version registered from the destination, if any
        self.left_out: dict[str, int] = {}  # source folders named as mlpipe's reserved one -> files below them
        self.prepared = False

    # -- labels and guarded storage calls -----------------------------------------------------------------------
    def _where(self, side: str) -> str:
        store, path = (self.src, self.src_path) if side == "source" else (self.dst, self.dst_path)
        return f"datastore {store.name!r} path {path!r} ({store.uri(path)})"

    def _call(self, store: Datastore, action: str, path: str, fn: Callable[[], Any]) -> Any:
        """A storage call with retries on transient errors, its final error naming store, path and fix."""
        with translate_errors(store.config, action, path):
            return call_with_retry(fn, self.retry)

    @property
    def journal_path(self) -> str:
        return f"{self.dst_path.rstrip('/')}/{JOURNAL_NAME}" if self.dst_path.strip("/") else JOURNAL_NAME

    def _read_json(self, path: str) -> dict[str, Any] | None:
        try:
            value = self._call(self.dst, "read", path, lambda: self.dst.read_json(path))
        except (FileNotFoundError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    # -- step 1: check the request --------------------------------------------------------------------------------
    def _check_overlap(self) -> None:
        if not same_namespace(self.src, self.dst):
            return
        a, b = self.src_full.rstrip("/"), self.dst_full.rstrip("/")
        if self.src.protocol == "file":
            a, b = os.path.realpath(a), os.path.realpath(b)
        inside = b.startswith(a + "/") or a.startswith(b + "/")
        if a == b or (self.kind == "directory" and inside):
            raise TransferOverlapError(
                f"transfer source {self._where('source')} and destination {self._where('destination')} overlap "
                f"({'the same path' if a == b else 'one folder lies inside the other'}): a copy would read what "
                "it writes; choose a destination outside the source (and not a folder that contains it)"
            )

    def _source_files(self) -> dict[str, FileMeta]:
        found, meta = self._call(self.src, "check", self.src_path, lambda: path_kind(self.src, self.src_full))
        if found is None:
            raise TransferSourceNotFoundError(
                f"transfer source: {self._where('source')} does not exist; check the path and the datastore, or "
                "write the data there before the transfer runs"
            )
        if self.kind == "file":
            if found == "directory":
                raise TransferKindError(
                    f"transfer source: {self._where('source')} is a folder; {self.words['directory']} to copy a folder"
                )
            return {posixpath.basename(self.src_full.rstrip("/")): meta}
        if found == "file":
            raise TransferKindError(
                f"transfer source: {self._where('source')} is a file; {self.words['file']} to copy one file"
            )
        wanted = None if self.files is None else {f.strip("/") for f in self.files}
        if wanted is not None:
            self._refuse_reserved_wanted(wanted)
        listed: dict[str, FileMeta] = self._call(self.src, "list", self.src_path, self._list_source)
        if wanted is None:
            return self._checked_names(listed)
        missing = sorted(wanted - listed.keys())
        if missing:
            raise TransferSourceNotFoundError(
                f"transfer source: {self._where('source')} lacks {len(missing)} of the {len(wanted)} files asked "
                f"for ({', '.join(map(repr, missing[:5]))}{', ...' if len(missing) > 5 else ''}); the data changed "
                "since the list was made: register a new dataset version, or correct the list"
            )
        return self._checked_names({rel: listed[rel] for rel in sorted(wanted)})

    def _list_source(self) -> dict[str, FileMeta]:
        """The source folder's files; the files below folders named as mlpipe's own are left out and, when the
        whole folder is copied (a list of files names what it wants), counted for the result."""
        left_out: dict[str, int] = {}
        listed = list_tree(
            self.src,
            self.src_full,
            argument="transfer source",
            shown=self.src_path,
            reserved=left_out if self.files is None else None,
        )
        self.left_out = left_out
        return listed

    def _refuse_reserved_wanted(self, wanted: Collection[str]) -> None:
        """A list made before mlpipe reserved these names (a dataset version an older release registered from a
        folder holding ``_MLPIPE./x.csv``) names files that no listing shows: say so, not that the data changed."""
        reserved = sorted(rel for rel in wanted if is_reserved(rel) or is_reserved_name(rel.rsplit("/", 1)[-1]))
        if reserved:
            raise ReservedPathError(
                f"transfer source: {self._where('source')}: the {len(wanted)} files asked for include "
                f"{len(reserved)} that mlpipe reserves and never copies ({some_files(reserved)}): each lies below a "
                "folder named '_mlpipe' (at any depth, in any case, trailing dots and spaces dropped), which holds a "
                "datastore's records, or is named as a completion marker or transfer journal (a dataset version "
                "registered by an older release may name such files): register the data again without them "
                "(rename those folders or files first), or leave them out of the list; nothing was copied"
            )

    def _checked_names(self, listed: dict[str, FileMeta]) -> dict[str, FileMeta]:
        """Every file's destination path passes the user-path check (not below a ``_mlpipe/`` folder, no reserved
        name such as ``_MLPIPE_COMPLETE.``, no backslash), before anything is written."""
        refused = refused_paths(self.dst_path, listed, argument="transfer destination", datastore=self.dst.name)
        if refused:
            rel, exc = refused[0]
            raise type(exc)(
                f"{exc}. It would be the copy of source file {rel!r} of {self._where('source')}: rename or "
                "remove that file, or choose another destination folder; nothing was copied"
            ) from None
        return listed

    def _destination_files(self, names: Iterable[str]) -> dict[str, FileMeta]:
        refuse_links_on_the_way(self.dst, [self.dst_path], argument="transfer destination")
        source = self.src.uri(self.src_path)

        def own(folder: str, marker: dict[str, Any]) -> bool:
            """Markers this transfer's own rules judge: its earlier copy of this source (mirrored, or kept by the
            operator when registered), and plain copies that no step run committed and no version names."""
            if folder == self.dst_path.strip("/") and _marker_source(marker) == source:
                return True
            return "transfer" in marker and not marker.get("step_run_id") and not marker.get("registered")

        self._call(
            self.dst,
            "check",
            self.dst_path,
            lambda: refuse_committed_around(
                self.dst, self.dst_path, argument="transfer destination", own=own, below=self.kind == "directory"
            ),
        )
        found, meta = self._call(self.dst, "check", self.dst_path, lambda: path_kind(self.dst, self.dst_full))
        if self.kind == "file":
            if found == "directory":
                raise TransferKindError(
                    f"transfer destination: {self._where('destination')} is a folder; to copy one file, give the "
                    "path of the file to write (for example 'folder/name.csv')"
                )
            return {name: meta for name in names if meta is not None}
        if found == "file":
            raise TransferKindError(
                f"transfer destination: {self._where('destination')} is a file; to copy a folder, give a folder path"
            )
        if found is None:
            return {}
        return self._list_destination(self.dst_controls)

    def _list_destination(self, controls: set[str] | None = None) -> dict[str, FileMeta]:
        """The destination folder's files; on a local store any link below it is an error (it is written).
        ``controls`` collects the markers and journals below it."""
        listed: dict[str, FileMeta] = self._call(
            self.dst,
            "list",
            self.dst_path,
            lambda: list_tree(
                self.dst,
                self.dst_full,
                argument="transfer destination",
                shown=self.dst_path,
                refuse_links=True,
                controls=controls,
            ),
        )
        return listed

    # -- step 2: plan -----------------------------------------------------------------------------------------------
    def _same_content(self, src_files: Mapping[str, FileMeta], dst_files: Mapping[str, FileMeta]) -> Any:
        def md5_of(store: Datastore, full: str, meta: FileMeta) -> str:
            return meta.md5 or self._call(store, "read", full, lambda: content_md5(store, full))

        def same(rel: str) -> bool:
            src_md5 = md5_of(self.src, self._src_file(rel), src_files[rel])
            return src_md5 == md5_of(self.dst, self._dst_file(rel), dst_files[rel])

        def check(rels: Iterable[str]) -> set[str]:
            rels = list(rels)
            with ThreadPoolExecutor(max_workers=4, thread_name_prefix="mlpipe-hash") as pool:
                return {rel for rel, equal in zip(rels, pool.map(same, rels), strict=True) if equal}

        return check

    def _src_file(self, rel: str) -> str:
        return self.src_full if self.kind == "file" else _join(self.src_full, rel)

    def _dst_file(self, rel: str) -> str:
        return self.dst_full if self.kind == "file" else _join(self.dst_full, rel)

    def _plan(
        self, src_files: Mapping[str, FileMeta], dst_files: Mapping[str, FileMeta], marker: Mapping[str, Any] | None
    ) -> Plan:
        journal = self._read_json(self.journal_path) if self.kind == "directory" and dst_files else None
        self.journal_found = journal is not None
        source = self.src.uri(self.src_path)
        unfinished_run_of_ours = bool(journal and journal.get("source") == source)
        self.own = unfinished_run_of_ours or _marker_source(marker) == source
        # Its own earlier copy, registered since as a dataset version: that version names these files, so they
        # are never replaced or removed, whatever overwrite says (files the source added are still copied).
        # (an unfinished run into such a copy withdrew its marker: its journal carries the registration instead)
        journal_registered = _registered_section(journal) if unfinished_run_of_ours else None
        self.registered = _registered_section(marker) or journal_registered
        registered = _registered_as(self.registered)
        plan = plan_transfer(
            src_files,
            dst_files,
            src_path=self._src_file,
            dst_path=self._dst_file,
            manifest=recorded_files(marker, self.src.uri(self.src_path)),
            replace_different=(self.overwrite or unfinished_run_of_ours) and registered is None,
            same_content=self._same_content(src_files, dst_files),
        )
        where = self._where("destination")
        if plan.conflicts:
            fix = (
                f"it holds {registered}, whose bytes never change, so they are never replaced, whatever "
                f"{self.words['overwrite'].removeprefix('pass ')} says: copy into a folder of its own"
                if registered
                else f"{_sentence(self.words['overwrite'])} to replace them, or choose another destination path"
            )
            raise TransferDestinationExistsError(
                f"transfer destination: {where} already holds {len(plan.conflicts)} file(s) that differ from the "
                f"source ({some_files(plan.conflicts)}); nothing was copied. {fix[0].upper() + fix[1:]}",
                files=plan.conflicts,
                where=where,
            )
        if plan.extra and not (self.mirror and self.own and registered is None):
            whose = (
                f"the folder holds {registered}, which names them: they are never removed"
                if registered
                else "this folder's files are kept (mirror=False)"
                if self.own
                else f"no transfer of {source} wrote this folder (its marker and journal do not name that source), "
                "so they belong to something else and are not removed"
            )
            raise TransferExtraFilesError(
                f"transfer destination: {where} holds {len(plan.extra)} file(s) that the source does not have "
                f"({some_files(plan.extra)}): a transfer's destination holds exactly the source's files, and "
                f"{whose}. "
                + (
                    "Copy into a folder of its own"
                    if registered
                    else "Copy into an empty folder (or one this transfer wrote), or remove those files first"
                )
                + "; nothing was copied",
                files=plan.extra,
                where=where,
            )
        if plan.extra:
            self._refuse_foreign(plan, dst_files, marker, journal if unfinished_run_of_ours else None)
        return plan

    def _refuse_foreign(
        self,
        plan: Plan,
        dst_files: Mapping[str, FileMeta],
        marker: Mapping[str, Any] | None,
        journal: Mapping[str, Any] | None,
    ) -> None:
        """The mirror removes only files an earlier transfer of this source wrote here (``transfer_mirror``)."""
        source = self.src.uri(self.src_path)
        foreign = foreign_files(
            plan.extra,
            dst_files,
            recorded=recorded_files(marker, source),
            journal_own=journal_own_files(journal),
            controls=self.dst_controls,
        )
        if not foreign.files:
            return
        nested = (
            f"; {some_files(foreign.folders)} hold(s) a completion marker or journal of its own (another "
            "transfer's, step's or dataset's folder)"
            if foreign.folders
            else ""
        )
        where = self._where("destination")
        raise TransferExtraFilesError(
            f"transfer destination: {where} holds {len(foreign.files)} file(s) that the source does not have and "
            f"that no earlier transfer of {source} wrote there ({some_files(foreign.files)}){nested}: a mirror "
            "removes only the files its own earlier transfers wrote (as their marker or journal lists them, "
            "unchanged since), so these belong to something else and are not removed. Move or remove them first, "
            "or copy into a folder of its own; nothing was copied",
            files=foreign.files,
            where=where,
        )

    # -- steps 3 to 5 -----------------------------------------------------------------------------------------------
    def run(self, settings: _CopySettings, marker_extra: Mapping[str, Any], *, mark_complete: bool) -> TransferResult:
        # Every check comes before the first write: the stores' settings (their clients are built now), the
        # overlap, both listings (links), the plan (conflicts, files the source lacks).
        for store in (self.src, self.dst):
            _ = store.fs
        self._check_overlap()
        src_files = self._source_files()
        dst_files = self._destination_files(src_files)
        marker = self._read_json(self.dst.marker_path(self.dst_path)) if self.kind == "directory" else None
        plan = self._plan(src_files, dst_files, marker)
        copier = choose_copier(self.src, self.dst)
        tracker = ProgressTracker(
            files_total=len(plan.copy),
            bytes_total=plan.bytes_to_copy,
            files_skipped=len(plan.same),
            callback=settings.progress,
            interval=settings.interval,
        )
        ctx = CopyContext(
            tracker=tracker,
            retry=self.retry,
            workers=settings.workers or DEFAULT_WORKERS.get(copier.method, 8),
            chunk_size=settings.chunk_size,
            block_parallel=settings.block_parallel,
            memory_limit=settings.memory_limit,
            atomic=self.kind == "file",
        )
        if plan.copy or plan.extra:
            self._prepare_destination(marker is not None, plan)
        if plan.copy:
            tracker.start()
            self._copy(copier, plan, ctx)
            after = self._destination_after_copy(src_files)
        else:
            after = {rel: meta for rel, meta in dst_files.items() if rel not in plan.extra}
        if self.verify:
            self._verify(src_files, after, ctx)
        records = file_records(plan, src_files, after, ctx.md5s)
        section = None
        if self.kind == "directory":
            section = {**manifest_section(self.src.uri(self.src_path), records), "finished": _now()}
        if self.kind == "directory" and mark_complete:
            self._finish_folder(None if self.marker_withdrawn else marker, records, marker_extra)
        elif self.kind == "directory" and (self.prepared or self.journal_found):
            self._call(self.dst, "delete", self.journal_path, lambda: self.dst.delete(self.journal_path))
        tracker.finish()
        return TransferResult(
            source=self.src.uri(self.src_path),
            destination=self.dst.uri(self.dst_path),
            kind=self.kind,
            method=copier.method if plan.copy else "none",
            files_copied=len(plan.copy),
            files_skipped=len(plan.same),
            bytes_copied=plan.bytes_to_copy,
            bytes_total=sum(m.size for m in src_files.values()),
            seconds=time.monotonic() - self.started,
            verified=self.verify,
            complete=True,
            retries=tracker.retries,
            extra_files=len(plan.extra),
            files_removed=len(plan.extra),
            left_out=dict(sorted(self.left_out.items())),
            files=tuple(records[rel] for rel in sorted(records)),
            marker_section=section,
        )

    def _prepare_destination(self, has_marker: bool, plan: Plan) -> None:
        """Withdraw the marker, write the journal, then remove the files the source lacks (the folder is ours)."""
        if self.kind != "directory":
            return
        if has_marker:
            self._call(
                self.dst, "withdraw the marker of", self.dst_path, lambda: self.dst.clear_complete(self.dst_path)
            )
            self.marker_withdrawn = True
        own = sorted({*(t.rel for t in plan.copy), *plan.same, *plan.extra})
        journal = {
            "source": self.src.uri(self.src_path),
            "started": _now(),
            "files": len(plan.copy),
            JOURNAL_OWN_FILES: own,
            **({"registered": self.registered} if self.registered else {}),
        }
        self._call(self.dst, "write", self.journal_path, lambda: self.dst.write_json(self.journal_path, journal))
        self.prepared = True
        if plan.extra:
            self._remove(plan.extra)

    def _remove(self, rels: Iterable[str]) -> None:
        """Delete these destination files (a mirror's stale files), and local folders they leave empty."""
        fulls = [self._dst_file(rel) for rel in rels]
        if self.dst.protocol != "file":
            self._call(self.dst, "delete files in", self.dst_path, lambda: self.dst.fs.rm(fulls))
            return
        top = self.dst_full.rstrip("/")
        for full in fulls:
            self._call(self.dst, "delete", self.dst.relpath(full), functools.partial(_unlink, full))
        for folder in sorted({os.path.dirname(f) for f in fulls}, key=len, reverse=True):
            while folder.startswith(top + "/") and os.path.isdir(folder) and not os.listdir(folder):
                os.rmdir(folder)
                folder = os.path.dirname(folder)

    def _copy(self, copier: Any, plan: Plan, ctx: CopyContext) -> None:
        try:
            copier.run(plan.copy, ctx)
        except CopyFailure as failure:
            store = self.src if failure.side == "source" else self.dst
            rel = failure.task.rel
            path = self.src_path if failure.side == "source" else self.dst_path
            path = _join(path, rel) if self.kind == "directory" else path
            reason = _describe(store, "read" if failure.side == "source" else "write", path, failure.cause)
            done = ctx.tracker.files_done
            raise TransferFailedError(
                f"transfer {self._where('source')} -> {self._where('destination')} stopped after {done} of "
                f"{len(plan.copy)} files: {reason}. Nothing was marked complete; the files copied so far are kept, "
                "and running the transfer again copies only what is missing",
                files_copied=done,
                failed_path=rel,
            ) from failure.cause

    def _destination_after_copy(self, src_files: Mapping[str, FileMeta]) -> dict[str, FileMeta]:
        if self.kind == "file":
            _, meta = self._call(self.dst, "check", self.dst_path, lambda: path_kind(self.dst, self.dst_full))
            return {name: meta for name in src_files if meta is not None}
        return self._list_destination()

    def _verify(self, src_files: Mapping[str, FileMeta], after: Mapping[str, FileMeta], ctx: CopyContext) -> None:
        problems = mismatches(src_files, after, ctx.md5s)
        if problems:
            raise TransferVerificationError(
                f"transfer {self._where('source')} -> {self._where('destination')}: {len(problems)} file(s) at the "
                f"destination do not match the source after copying: {'; '.join(problems[:5])}"
                f"{'; ...' if len(problems) > 5 else ''}. The destination was not marked complete; if the source "
                "changed during the copy, run the transfer again"
            )

    def _finish_folder(
        self,
        marker: Mapping[str, Any] | None,
        records: Mapping[str, TransferredFile],
        marker_extra: Mapping[str, Any],
    ) -> None:
        section = manifest_section(self.src.uri(self.src_path), records)
        if marker_unchanged(marker, section, marker_extra):
            if self.journal_found:  # left by a run that died between marking complete and cleaning up
                self._call(self.dst, "delete", self.journal_path, lambda: self.dst.delete(self.journal_path))
            return  # up to date: the folder is complete as it stands, nothing is written
        manifest = {
            **marker_extra,
            **({"registered": self.registered} if self.registered else {}),  # still names the files it named
            "transfer": {**section, "finished": _now()},
        }
        self._call(self.dst, "mark complete", self.dst_path, lambda: self.dst.mark_complete(self.dst_path, manifest))
        self._call(self.dst, "delete", self.journal_path, lambda: self.dst.delete(self.journal_path))


def _confined(store: Datastore, path: str, *, argument: str) -> str:
    """``confined_path``, its errors always starting with ``argument`` (the path checks below it name none)."""
    try:
        return confined_path(store, path, argument=argument)
    except PathOutsideDatastoreError as exc:
        if str(exc).startswith(f"{argument}:"):
            raise
        raise type(exc)(f"{argument}: {exc}") from None


def _sentence(words: str) -> str:
    return words[:1].upper() + words[1:]


def _registered_section(control: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The ``registered`` section of a marker or journal: the dataset version registered from the folder."""
    registered = (control or {}).get("registered")
    return dict(registered) if isinstance(registered, Mapping) and registered.get("name") else None


def _registered_as(registered: Mapping[str, Any] | None) -> str | None:
    """The words for a ``registered`` section: "the files of dataset 'x' version 3"."""
    if registered:
        return f"the files of dataset {registered['name']!r} version {registered.get('version')}"
    return None


def _marker_source(marker: Mapping[str, Any] | None) -> Any:
    section = (marker or {}).get("transfer")
    return section.get("source") if isinstance(section, Mapping) else None


def _unlink(full: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(full)


def _describe(store: Datastore, action: str, path: str, cause: BaseException) -> str:
    """The storage error in our words (datastore, path, fix; no secret), via the datastore's error translation."""
    try:
        with translate_errors(store.config, action, path):
            raise cause
    except (DatastoreAccessError, OSError) as translated:
        return str(translated)
    except Exception as other:
        return f"{type(other).__name__}: {other}"
