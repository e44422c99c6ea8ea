"""Walk a local folder as a snapshot sees it: ignore rules applied, one stat per file, symlinks handled safely.

Symlinks: a link to a regular file counts as that file (its target's bytes, size and executable bit), because that
is what the step reads; the walk records where each such link leads (``Walk.followed``), so that a snapshot can
refuse one that leaves the tree and leave out one to a secret file. A link to a folder is not followed (it could
leave the tree or loop back into it), and neither is a dangling link: each is recorded by its link text, as git
records links, so re-pointing it is still a change. Ignore rules see a link as a file, as git does.

Folders are listed through a file descriptor (``os.scandir(fd)``), so each stat resolves one name instead of the
whole path: about 20% less time on a large tree.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from airflow_mlpipe.exceptions import UnreadableFileError
from airflow_mlpipe.fingerprint.batch import OPEN_FLAGS, Reader
from airflow_mlpipe.fingerprint.ignore import (
    ALWAYS_SKIPPED_FOLDERS,
    ALWAYS_SKIPPED_SUFFIXES,
    DEFAULT_IGNORE_FILE_NAMES,
    IgnoreRules,
)
from airflow_mlpipe.fingerprint.statcache import StatKey, stat_key

_DANGLING = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP)
_S_IFMT, _S_IFREG, _S_IXUSR = 0o170000, stat.S_IFREG, stat.S_IXUSR
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)

# A folder still to visit: (absolute path, path relative to the root, the ignore rules in force there).
Pending = tuple[str, str, IgnoreRules]


@dataclass
class FolderFiles:
    """The regular files (and links to them) directly in one folder."""

    rel: str  # POSIX, relative to the walked root; "" for the root
    names: list[str] = field(default_factory=list)
    keys: list[StatKey] = field(default_factory=list)  # from a stat taken before anything is read
    executable: list[bool] = field(default_factory=list)
    digests: list[str] | None = None  # when hashed while walked
    unstable: list[int] = field(default_factory=list)  # files hashed while walked whose size changed meanwhile


@dataclass
class Walk:
    root: str  # absolute
    folders: dict[str, FolderFiles] = field(default_factory=dict)  # by absolute folder path
    links: dict[str, str] = field(default_factory=dict)  # relative path -> link text (links not followed)
    followed: dict[str, str] = field(default_factory=dict)  # relative path -> real path of the file it leads to
    files: int = 0


class Walker:
    """A depth-first walk that can stop part-way, so the folders left can be handed to other processes."""

    def __init__(
        self,
        root: str,
        *,
        ignore_file_names: Sequence[str] = DEFAULT_IGNORE_FILE_NAMES,
        shown: str = "",
        pending: Sequence[Pending] | None = None,
        hash_while_walking: Callable[[str], bool] | None = None,
    ) -> None:
        self.walk = Walk(root)
        self.ignore_file_names = tuple(ignore_file_names)
        self.shown = shown or root
        self.pending: list[Pending] = list(pending) if pending is not None else [(root, "", IgnoreRules())]
        # folders for which this says yes have their files read as they are met (see ``_read_file``)
        self.hash_while_walking = hash_while_walking
        self._reader: Reader | None = None

    def run(self, *, until_files: int | None = None) -> Walk:
        """Visit folders until none is left, or until ``until_files`` files have been seen."""
        while self.pending and (until_files is None or self.walk.files < until_files):
            self._visit(*self.pending.pop())
        return self.walk

    def _visit(self, folder: str, rel_dir: str, rules: IgnoreRules) -> None:
        try:
            fd = os.open(folder, _DIR_FLAGS)
        except OSError as exc:
            raise self._unreadable(rel_dir or ".", exc) from exc
        try:
            try:
                with os.scandir(fd) as it:
                    entries = list(it)
            except OSError as exc:
                raise self._unreadable(rel_dir or ".", exc) from exc
            try:
                rules = rules.entering(rel_dir, folder, {e.name for e in entries}, self.ignore_file_names)
            except OSError as exc:
                where = os.path.relpath(exc.filename or folder, self.walk.root).replace(os.sep, "/")
                raise self._unreadable(where, exc) from exc
            here = self.walk.folders[folder] = FolderFiles(rel_dir)
            if self.hash_while_walking is not None and self.hash_while_walking(folder):
                here.digests = []
            self._add_entries(fd, folder, here, entries, rules)
            self.walk.files += len(here.names)
        finally:
            os.close(fd)

    def _add_entries(
        self, fd: int, folder: str, here: FolderFiles, entries: list[os.DirEntry[str]], rules: IgnoreRules
    ) -> None:
        # the hot loop of a large tree: one stat per file; ignore rules consulted only where a folder has some
        # (names bound to locals: this loop runs once per file of the tree)
        prefix = f"{here.rel}/" if here.rel else ""
        base = folder.rstrip("/") + "/"
        add_name, add_key, add_executable = here.names.append, here.keys.append, here.executable.append
        pending, skipped_suffixes, read_while_walked = self.pending, ALWAYS_SKIPPED_SUFFIXES, here.digests is not None
        excludes = rules.excludes if rules.stack else None
        for entry in entries:
            name = entry.name
            try:
                if entry.is_file(follow_symlinks=False):  # a regular file, from the listing alone: most entries
                    if name.endswith(skipped_suffixes) or name == ".git":
                        continue
                    if excludes and excludes(prefix + name, is_dir=False):
                        continue
                    if read_while_walked:  # the key comes from the open file
                        self._read_file(fd, here, name, prefix + name)
                        continue
                    st = entry.stat(follow_symlinks=False)
                elif entry.is_dir(follow_symlinks=False):
                    if name not in ALWAYS_SKIPPED_FOLDERS and not (excludes and excludes(prefix + name, is_dir=True)):
                        pending.append((base + name, prefix + name, rules))
                    continue
                else:
                    if name == ".git" or (excludes and excludes(prefix + name, is_dir=False)):
                        continue
                    link_target = self._link_target(fd, entry, prefix + name, base + name)
                    if link_target is None:
                        continue  # kept by its link text
                    if read_while_walked:
                        self._read_file(fd, here, name, prefix + name)
                        continue
                    st = link_target
            except UnreadableFileError:
                raise
            except OSError as exc:
                raise self._unreadable(prefix + name, exc) from exc
            mode = st.st_mode
            if mode & _S_IFMT != _S_IFREG:
                raise self._not_regular(prefix + name)
            add_name(name)
            add_key((st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns))
            add_executable(mode & _S_IXUSR != 0)

    def _link_target(self, fd: int, entry: os.DirEntry[str], rel: str, full: str) -> os.stat_result | None:
        """What a symlink points to, when that is a regular file (its real path recorded in ``followed``);
        otherwise the link is kept by its link text. Anything else (a FIFO, socket or device, or a link to one)
        cannot be fingerprinted."""
        if not entry.is_symlink():
            raise self._not_regular(rel)
        try:
            st = os.stat(entry.name, dir_fd=fd)
        except OSError as exc:
            if exc.errno not in _DANGLING:
                raise
            st = None
        if st is None or stat.S_ISDIR(st.st_mode):
            self.walk.links[rel] = os.readlink(entry.name, dir_fd=fd)
            return None
        if not stat.S_ISREG(st.st_mode):
            raise self._not_regular(rel)
        self.walk.followed[rel] = os.path.realpath(full)
        return st

    def _read_file(self, dir_fd: int, here: FolderFiles, name: str, rel: str) -> None:
        """Read a file as it is met: opened by name in its folder (through a link too), its key from ``fstat`` of
        the open file, so the key describes exactly what is read; saves the stat by path of a look-up."""
        assert here.digests is not None
        fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):  # replaced since it was listed
                raise self._not_regular(rel)
            digest, total = self.reader.digest(fd, st.st_size)
        finally:
            os.close(fd)
        if total != st.st_size:
            here.unstable.append(len(here.names))
        here.names.append(name)
        here.keys.append(stat_key(st))
        here.executable.append(st.st_mode & stat.S_IXUSR != 0)
        here.digests.append(digest)

    @property
    def reader(self) -> Reader:
        if self._reader is None:
            self._reader = Reader()
        return self._reader

    def _not_regular(self, rel: str) -> UnreadableFileError:
        return UnreadableFileError(
            f"cannot fingerprint {rel!r} in {self.shown!r}: it is not a regular file (a FIFO, socket or device); "
            "remove it or exclude it in .amlignore"
        )

    def _unreadable(self, rel: str, exc: OSError) -> UnreadableFileError:
        return unreadable_error(self.shown, rel, exc)


def unreadable_error(shown: str, rel: str, exc: OSError) -> UnreadableFileError:
    reason = (exc.strerror or str(exc)).lower()
    return UnreadableFileError(
        f"cannot read {rel!r} in {shown!r}: {reason}; make it readable or exclude it in .amlignore"
    )
