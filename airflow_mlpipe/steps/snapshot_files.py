"""Writing a snapshot's files into a local folder, each checked against its digest first: shared by the fetch from
the datastore and by the local snapshot cache. Paths stay inside the folder and links may only point inside it."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from airflow_mlpipe.core.paths import normalize_relpath
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.hashing import hash_bytes, hash_file
from airflow_mlpipe.fingerprint.tree import TreeEntry

COPY_FROM = 256 * 1024  # local files this big are copied by the kernel and hashed after, not read and written here
WRITERS = 4  # threads writing files (see ``in_threads``)
_RUN = 64  # files per task handed to a thread
Buffer = bytes | memoryview
T = TypeVar("T")


class SnapshotWriter:
    """Writes entries of snapshot ``digest`` under ``target`` (made on first write). ``check=False`` only for a
    source whose every byte was checked moments ago by this process (a cache entry it has just filled)."""

    def __init__(self, digest: str, target: str, *, check: bool = True) -> None:
        self.digest = digest
        self.root = os.path.abspath(target)
        self.check = check
        self._folders: set[str] = set()

    def write_all(self, items: Sequence[tuple[str, TreeEntry, Buffer, str]]) -> None:
        """``write`` each ``(rel, entry, data, where)``, on a few threads."""

        def write_run(run: Sequence[tuple[str, TreeEntry, Buffer, str]]) -> None:
            for rel, entry, data, where in run:
                self.write(rel, entry, data, where=where)

        in_threads(write_run, items)

    def copy_all(self, items: Sequence[tuple[str, TreeEntry, str, str]]) -> None:
        """``copy`` each ``(rel, entry, source, where)``, on a few threads."""

        def copy_run(run: Sequence[tuple[str, TreeEntry, str, str]]) -> None:
            for rel, entry, source, where in run:
                self.copy(rel, entry, source, where=where)

        in_threads(copy_run, items)

    def temporary(self, rel: str) -> str:
        """A temporary name beside where ``rel`` goes (its folder made), for a file fetched there whole."""
        local = self._local(rel)
        return os.path.join(os.path.dirname(local), f".{os.path.basename(local)}.{uuid.uuid4().hex[:8]}.part")

    def adopt_all(self, items: Sequence[tuple[str, TreeEntry, str, str]]) -> None:
        """``adopt`` each ``(rel, entry, temporary, where)``, on a few threads."""

        def adopt_run(run: Sequence[tuple[str, TreeEntry, str, str]]) -> None:
            for rel, entry, temp, where in run:
                self.adopt(rel, entry, temp, where=where)

        in_threads(adopt_run, items)

    def adopt(self, rel: str, entry: TreeEntry, temp: str, *, where: str) -> None:
        """Rename the file fetched into ``temp`` (see :meth:`temporary`) into place once it matches its digest."""
        if self.check and hash_file(temp) != entry.digest:
            raise self.damaged(rel, where)
        if entry.executable:
            os.chmod(temp, 0o755)
        os.replace(temp, self._local(rel))

    def write(self, rel: str, entry: TreeEntry, data: Buffer, *, where: str) -> None:
        """Write one file (or link) after checking ``data`` against its digest; ``where`` names the copy read,
        for the error."""
        data = bytes(data)  # no copy for bytes; a slice of a pack becomes its own bytes only here
        if self.check and hash_bytes(data) != entry.digest:
            raise self.damaged(rel, where)
        local = self._local(rel)
        if entry.link:
            os.symlink(confined_link(data.decode(), local, self.root, rel), local)
            return
        with open(local, "wb") as fh:
            fh.write(data)
        if entry.executable:
            os.chmod(local, 0o755)

    def copy(self, rel: str, entry: TreeEntry, source: str, *, where: str) -> None:
        """Write one file (or link) from the local copy ``source``: a large file is copied by the kernel, then
        the copy is checked against its digest (faster than reading and writing its bytes here)."""
        if entry.link or entry.size < COPY_FROM:
            self.write(rel, entry, read_local(source, entry), where=where)
            return
        local = self._local(rel)
        shutil.copyfile(source, local)
        if self.check and hash_file(local) != entry.digest:
            os.unlink(local)
            raise self.damaged(rel, where)
        if entry.executable:
            os.chmod(local, 0o755)

    def _local(self, rel: str) -> str:
        """Where ``rel`` goes, its folder made and any link left there by an earlier try removed."""
        local = os.path.join(self.root, *confined(rel, self.digest).split("/"))
        folder = os.path.dirname(local)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        if os.path.islink(local):
            os.unlink(local)
        return local

    def damaged(self, rel: str, where: str) -> ConfigError:
        return ConfigError(
            f"source snapshot {self.digest}: the stored copy of {rel!r} ({where}) does not match its digest; "
            "delete that object and run the step again to upload it anew"
        )


def in_threads(work: Callable[[Sequence[T]], object], items: Sequence[T]) -> None:
    """``work`` over runs of ``items`` on ``WRITERS`` threads; the first error is raised once all have stopped.

    Creating a file mostly waits on the filesystem's journal, so a few threads overlap the waits: on the shared
    development disk, 5,000 small files were written 2-3x faster by 4 threads than by one."""
    runs = [items[i : i + _RUN] for i in range(0, len(items), _RUN)]
    if len(runs) < 2:
        for run in runs:
            work(run)
        return
    with ThreadPoolExecutor(min(WRITERS, len(runs))) as pool:
        for _ in pool.map(work, runs):
            pass


def confined(rel: str, digest: str) -> str:
    try:
        return normalize_relpath(rel, datastore=f"snapshot {digest}")
    except ConfigError:
        raise ConfigError(f"source snapshot {digest} holds the path {rel!r}, which leaves the snapshot") from None


def confined_link(link: str, local: str, root: str, rel: str) -> str:
    resolved = os.path.normpath(os.path.join(os.path.dirname(local), link))
    if os.path.isabs(link) or not (resolved == root or resolved.startswith(root + os.sep)):
        raise ConfigError(
            f"source file {rel!r} is a link to {link!r}, outside the source folder: a step's snapshot holds only "
            "what is inside source_directory (copy the file in, or read it as a dataset)"
        )
    return link


def read_entry(root: str, rel: str, entry: TreeEntry) -> bytes:
    """The bytes of a local file as its tree fingerprints them: a link's text, a file's content."""
    return read_local(os.path.join(root, *rel.split("/")), entry)


def read_local(full: str, entry: TreeEntry) -> bytes:
    """A link's text (from the link itself, or from a stored object holding it), or a file's content."""
    if entry.link and os.path.islink(full):
        return os.fsencode(os.readlink(full))
    with open(full, "rb") as fh:
        return fh.read()
