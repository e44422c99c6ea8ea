"""Paths inside a datastore: relative, POSIX, and never escaping the datastore's root."""

from __future__ import annotations

import posixpath
import re

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import PathOutsideDatastoreError, ReservedPathError

# mlpipe's own records (registry, reuse index, runs, snapshots, leases) live below this folder of every datastore.
RESERVED_ROOT = "_mlpipe"
# The files mlpipe writes into a folder it filled: its completion marker and a transfer's journal.
RESERVED_NAMES = ("_MLPIPE_COMPLETE", "_MLPIPE_TRANSFER")
# The longest name of one folder or file, and of a whole path, that a user path may have: what local file systems
# allow for a name (255), and the longest key of S3 (1024 bytes), which every store takes.
MAX_SEGMENT = 255
MAX_PATH = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_RESERVED_KEYS = frozenset(name.casefold() for name in RESERVED_NAMES)


def normalize_relpath(path: str, *, datastore: str = "?") -> str:
    """Return ``path`` as a clean relative POSIX path ("" for the root), refusing anything that escapes.

    >>> normalize_relpath("a/./b//c/")
    'a/b/c'
    """
    if not isinstance(path, str):
        raise PathOutsideDatastoreError(
            f"datastore {datastore!r}: path {path!r} is not a string; give a path relative to the datastore root"
        )
    if path.startswith("/"):
        raise PathOutsideDatastoreError(
            f"datastore {datastore!r}: path {path!r} is absolute; give a path relative to the datastore root"
        )
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise PathOutsideDatastoreError(
            f"datastore {datastore!r}: path {path!r} contains '..' and could leave the datastore root; "
            "give a path inside the datastore"
        )
    if any("\x00" in p for p in parts):
        raise PathOutsideDatastoreError(f"datastore {datastore!r}: path {path!r} contains a NUL character")
    return "/".join(parts)


def join_under(root: str, relpath: str) -> str:
    """Join a normalised relative path under a backend root ("" relpath gives the root itself)."""
    if not relpath:
        return root
    if not root:
        return relpath
    if root.endswith("/"):
        return root + relpath
    return posixpath.join(root, relpath)


def relative_to(root: str, full: str) -> str:
    """The part of backend path ``full`` below ``root`` ("" for the root itself)."""
    root_s = root.rstrip("/")
    full_s = full.rstrip("/")
    if full_s == root_s:
        return ""
    prefix = root_s + "/" if root_s else ""
    if prefix and not full_s.startswith(prefix):
        raise PathOutsideDatastoreError(f"{full!r} is not under the datastore root {root!r}")
    return full_s[len(prefix) :]


def stored_name(name: str) -> str:
    """A folder or file name as a store may keep it, for comparing with the reserved names: trailing dots and spaces
    dropped (Azure Blob trims them from every path segment: ``_mlpipe./x`` is stored as ``_mlpipe/x``), case
    folded (some stores fold case)."""
    return name.rstrip(". ").casefold()


def is_reserved(relpath: str) -> bool:
    """A relative path with mlpipe's own folder among its segments, at any depth: a datastore may lie inside
    another (``s3://b/team`` inside ``s3://b``), its records then in the outer one's ``team/_mlpipe/``."""
    return any(stored_name(part) == RESERVED_ROOT for part in relpath.split("/"))


def is_reserved_name(name: str) -> bool:
    """A file name a store may keep as a completion marker's or a transfer journal's (``_MLPIPE_COMPLETE.`` too)."""
    return stored_name(name) in _RESERVED_KEYS


def check_user_path(path: str, *, argument: str, datastore: str = "?") -> str:
    """``normalize_relpath`` for a path a user gives (an output destination, a transfer path, a dataset path):
    it may not name mlpipe's own folder ``_mlpipe/``, where a write would corrupt the registry or the reuse index.

    >>> check_user_path("data/x.csv", argument="path")
    'data/x.csv'
    """
    if isinstance(path, str) and "\\" in path:
        raise PathOutsideDatastoreError(
            f"{argument}: datastore {datastore!r}: path {path!r} contains a backslash, which some stores take as a "
            "folder separator and others as part of a name; separate folders with '/'"
        )
    if isinstance(path, str):
        _check_text_of_path(path, argument=argument, datastore=datastore)
    rel = normalize_relpath(path, datastore=datastore)
    where = f"{argument}: datastore {datastore!r}: path {shown(path)}"
    folder = next((part for part in rel.split("/") if stored_name(part) == RESERVED_ROOT), None)
    if folder is not None:
        raise ReservedPathError(
            f"{where} is inside {folder + '/'!r}{_read_as(folder, RESERVED_ROOT)}, which mlpipe reserves for its "
            "registry, reuse index and run records at any depth, since a datastore may lie inside another (its "
            "records then in a '_mlpipe/' below the outer one's root); choose a path outside it, e.g. 'data/...'"
        )
    named = next((part for part in rel.split("/") if is_reserved_name(part)), None)
    if named is not None:
        kept = next(name for name in RESERVED_NAMES if name.casefold() == stored_name(named))
        raise ReservedPathError(
            f"{where} names {named!r}{_read_as(named, kept)}, a file mlpipe writes to mark a folder complete or to "
            "journal a transfer; choose another name"
        )
    return rel


def _read_as(name: str, reserved: str) -> str:
    """How a store may read a name that differs from the reserved one only in case or trailing dots and spaces."""
    if name == reserved:
        return ""
    return f" (which stores may keep as {reserved!r}: some fold case, and Azure Blob drops trailing dots and spaces)"


def _check_text_of_path(path: str, *, argument: str, datastore: str) -> None:
    """No blank path or name, no control character (a newline or tab is invisible in a listing and breaks log lines
    and manifests), no name longer than ``MAX_SEGMENT`` and no path longer than ``MAX_PATH`` characters."""
    where = f"{argument}: datastore {datastore!r}: path {shown(path)}"
    control = _CONTROL.search(path)
    if control:
        raise PathOutsideDatastoreError(
            f"{where} contains the control character {control[0]!r}; a path holds printable characters only: "
            "remove it (a pasted newline or tab, often)"
        )
    if path and not path.strip():
        raise PathOutsideDatastoreError(
            f"{where} is blank; give a folder or file path such as 'data/train', or '' for the datastore root"
        )
    if any(part and not part.strip() for part in path.split("/")):
        raise PathOutsideDatastoreError(f"{where} has a blank folder or file name; remove it, e.g. 'data/train'")
    long_part = next((part for part in path.split("/") if len(part) > MAX_SEGMENT), None)
    if long_part is not None:
        raise PathOutsideDatastoreError(
            f"{where} has a folder or file name of {len(long_part)} characters; names may have at most "
            f"{MAX_SEGMENT}: shorten it"
        )
    if len(path) > MAX_PATH:
        raise PathOutsideDatastoreError(
            f"{where} has {len(path)} characters; a path may have at most {MAX_PATH}: choose a shorter one"
        )
