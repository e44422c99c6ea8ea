"""Deleting on a local datastore without ever following a symbolic link.

A link below the datastore root names files that are not the datastore's (a folder outside it, or another folder
of it), so a delete never goes through one: the path is walked from the root one folder at a time, each opened with
``O_NOFOLLOW`` relative to the one above (no link made between a check and the delete is followed), a link that is
the path itself is removed as a link, and a folder is removed with ``shutil.rmtree``'s descriptor-based walk, which
unlinks the links inside it. A link among the folders leading to the path is removed as a link where the caller
owns that folder (``owned``: a step run's own folder), and refused anywhere above it.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from dataclasses import dataclass

from airflow_mlpipe.core.paths import normalize_relpath
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.datastore import Datastore

_FOLDER = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class LinkRemoved:
    """A link met on the way to a path, removed as a link (``link``, relative to the root) instead of followed."""

    link: str
    target: str


class LinkOnTheWayError(ConfigError):
    """A delete would go through a symbolic link among the folders above what the caller owns."""


def remove_without_following(store: Datastore, rel: str, *, recursive: bool, owned: str | None) -> LinkRemoved | None:
    """Delete ``rel`` (a file, a link, or with ``recursive`` a folder) below the local ``store``'s root, never
    through a link; nothing there (another delete came first) is fine. Returns the link removed in its place, if
    one of the folders leading to it was a link at or below ``owned``; ``LinkOnTheWayError`` for such a link above
    it, with nothing deleted."""
    parts = [p for p in normalize_relpath(rel, datastore=store.name).split("/") if p]  # no '..', not absolute
    if not parts:
        raise ConfigError(f"datastore {store.name!r}: refusing to delete the whole datastore root")
    fds = [os.open(store.full_path(""), _FOLDER)]
    try:
        for depth, name in enumerate(parts[:-1], start=1):
            try:
                fds.append(os.open(name, _FOLDER | os.O_NOFOLLOW, dir_fd=fds[-1]))
            except FileNotFoundError:
                return None  # gone (another gc came first): nothing below it to delete
            except OSError as exc:  # a link (Linux says ENOTDIR, others ELOOP), or a file where a folder was
                if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                    raise
                if not _is_link(fds[-1], name):
                    return None
                return _link_on_the_way(store, fds[-1], name, "/".join(parts[:depth]), rel, owned)
        _remove_entry(fds[-1], parts[-1], recursive=recursive, rel=rel)
        return None
    finally:
        for fd in fds:
            os.close(fd)


def link_on_the_way(store: Datastore, rel: str) -> str | None:
    """The first of ``rel`` and the folders leading to it (below the root) that is a symbolic link, or None."""
    parts = [p for p in normalize_relpath(rel, datastore=store.name).split("/") if p]
    for depth in range(1, len(parts) + 1):
        prefix = "/".join(parts[:depth])
        if os.path.islink(store.full_path(prefix)):
            return prefix
    return None


def _is_link(fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(name, dir_fd=fd).st_mode)
    except FileNotFoundError:
        return False


def _link_on_the_way(
    store: Datastore, fd: int, name: str, link: str, rel: str, owned: str | None
) -> LinkRemoved | None:
    try:
        target = os.readlink(name, dir_fd=fd)
    except FileNotFoundError:
        return None
    if owned is not None and (link == owned or link.startswith(owned.rstrip("/") + "/")):
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return None
        return LinkRemoved(link, target)
    raise LinkOnTheWayError(
        f"datastore {store.name!r}: {rel!r} was not deleted: {link!r} is a symbolic link (to {target}), and mlpipe "
        "never deletes through a link, whose files are not the datastore's: replace the link by the folder it "
        "stands for (or remove it), then run gc again"
    )


def _remove_entry(fd: int, name: str, *, recursive: bool, rel: str) -> None:
    try:
        mode = os.lstat(name, dir_fd=fd).st_mode
        if not stat.S_ISDIR(mode):  # a file, or a link (to anything), which goes as a link
            os.unlink(name, dir_fd=fd)
        elif recursive:
            shutil.rmtree(name, dir_fd=fd)
        else:
            raise IsADirectoryError(f"{rel!r} is a folder where a file was planned; not deleted")
    except FileNotFoundError:
        return
