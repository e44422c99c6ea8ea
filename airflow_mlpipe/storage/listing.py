"""What a transfer needs to know about files: size, a change token and, where the store keeps one, an MD5.

Listing is the whole cost of an up-to-date re-run, so local folders are walked with ``os.scandir`` (one ``stat``
a file, no fsspec per-file overhead) and object stores are listed with one recursive ``find``, whose pages carry
size, ETag and (Azure) Content-MD5 for every blob at once.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from airflow_mlpipe.core.paths import RESERVED_ROOT, is_reserved, stored_name
from airflow_mlpipe.storage.confine import check_resolved
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.listing_azure import list_azure
from airflow_mlpipe.storage.transfer_links import link_refusal

# Written into a destination folder while a transfer fills it; removed once the folder is marked complete.
JOURNAL_NAME = "_MLPIPE_TRANSFER"
# Local files are written under a temporary name and renamed, where a reader must never see a part.
TEMP_SUFFIX = ".mlpipe-part"
_CONTROL_NAMES = frozenset({COMPLETE_MARKER, JOURNAL_NAME})
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")
_HASH_BLOCK = 8 * 1024 * 1024

PathKind = Literal["file", "directory"]


@dataclass(frozen=True, slots=True)
class FileMeta:
    """``token`` changes whenever the file is rewritten (mtime, ETag); ``md5`` is comparable across stores."""

    size: int
    token: str
    md5: str | None = None


def is_control_name(name: str) -> bool:
    """Markers, journals and temporary parts: never copied, never counted as data."""
    return name in _CONTROL_NAMES or (name.startswith(".") and name.endswith(TEMP_SUFFIX))


def kept_md5(info: Mapping[str, Any]) -> str | None:
    """The content MD5 (hex) an fsspec ``info`` dict carries, or None.

    Azure keeps Content-MD5 for blobs uploaded in one request (and for ours, which set it); GCS keeps md5Hash;
    an S3 ETag is the MD5 of objects uploaded in one part without SSE-KMS, and has a ``-N`` suffix otherwise.
    """
    settings = info.get("content_settings")
    raw: Any = None
    if settings is not None:
        raw = settings.get("content_md5") if isinstance(settings, Mapping) else getattr(settings, "content_md5", None)
    raw = raw or info.get("md5Hash")
    if raw:
        digest = bytes(raw) if isinstance(raw, (bytes, bytearray)) else base64.b64decode(str(raw))
        return digest.hex()
    etag = str(info.get("ETag") or "").strip('"').lower()
    return etag if _MD5_HEX.match(etag) else None


def meta_from_info(info: Mapping[str, Any]) -> FileMeta:
    size = int(info.get("size") or 0)
    etag = info.get("etag") or info.get("ETag")
    if etag:
        token = f"etag:{str(etag).strip(chr(34))}"
    else:
        changed = next((info[k] for k in ("mtime", "LastModified", "last_modified", "created") if info.get(k)), "")
        token = f"mtime:{changed}"
    return FileMeta(size, token, kept_md5(info))


def local_meta(st: os.stat_result) -> FileMeta:
    return FileMeta(st.st_size, f"mtime:{st.st_mtime_ns}")


def _walk_local(
    store: Datastore,
    top: str,
    *,
    argument: str,
    shown: str,
    refuse_links: bool,
    controls: set[str] | None,
    reserved: dict[str, int] | None,
) -> dict[str, FileMeta]:
    """``shown``: the walked folder as the user named it, for errors; ``refuse_links``: any link at all is an error
    (a destination, which is written), not only one leading out of the datastore (a source, which is read)."""
    out: dict[str, FileMeta] = {}
    base = f"{shown.strip('/')}/" if shown.strip("/") else ""
    pending = [("", top)]
    while pending:
        prefix, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                if is_reserved(entry.name):
                    # a datastore's own records, at any depth: never data. A folder spelled otherwise ('_MLPIPE',
                    # '_mlpipe.') may hold a user's files: walked to count them. Records ('_mlpipe') never are:
                    # a datastore holds hundreds of thousands of them.
                    if reserved is not None and entry.name != RESERVED_ROOT:
                        _note_reserved_local(reserved, prefix + entry.name, entry)
                    continue
                if entry.is_symlink():
                    named = base + prefix + entry.name
                    if refuse_links:
                        raise link_refusal(store, entry.path, argument=argument, shown=named)
                    if os.path.exists(entry.path):
                        # Never read through a link that leads out of the datastore (a link to nothing holds no
                        # data and is skipped below).
                        check_resolved(store, entry.path, argument=argument, shown=named)
                if entry.is_dir():
                    # Like os.walk: do not follow links to folders (a link cycle would never end).
                    if not entry.is_symlink():
                        pending.append((f"{prefix}{entry.name}/", entry.path))
                elif is_control_name(entry.name):
                    _note_control(controls, prefix + entry.name)
                else:
                    try:
                        out[prefix + entry.name] = local_meta(entry.stat())
                    except FileNotFoundError:
                        continue  # a link to nothing (or a file deleted meanwhile): no data to copy
    return out


def _note_reserved_local(reserved: dict[str, int], rel: str, entry: os.DirEntry[str]) -> None:
    """Count the files below a local folder named as mlpipe's reserved one (never following a link)."""
    if not entry.is_dir(follow_symlinks=False):
        reserved[rel] = reserved.get(rel, 0) + 1
        return
    count = 0
    for folder, dirs, files in os.walk(entry.path):  # a link to a folder is listed among dirs, never walked
        count += len(files) + sum(os.path.islink(os.path.join(folder, name)) for name in dirs)
    reserved[rel + "/"] = reserved.get(rel + "/", 0) + count


def _note_reserved(reserved: dict[str, int] | None, rel: str) -> None:
    """Count a listed file below a folder named as mlpipe's reserved one, under that folder's path (with '/')."""
    if reserved is None:
        return
    parts = rel.split("/")
    at = next(i for i, part in enumerate(parts) if stored_name(part) == RESERVED_ROOT)
    if parts[at] == RESERVED_ROOT:
        return  # a datastore's records, as mlpipe writes them: left out without a word (as on a local store)
    key = "/".join(parts[: at + 1]) + ("/" if at < len(parts) - 1 else "")
    reserved[key] = reserved.get(key, 0) + 1


def _note_control(controls: set[str] | None, rel: str) -> None:
    """Collect a marker's or journal's path (not a temporary part's): the folders something else filled."""
    if controls is not None and rel.rsplit("/", 1)[-1] in _CONTROL_NAMES:
        controls.add(rel)


def list_tree(
    store: Datastore,
    full: str,
    *,
    argument: str = "transfer",
    shown: str = "",
    refuse_links: bool = False,
    controls: set[str] | None = None,
    reserved: dict[str, int] | None = None,
) -> dict[str, FileMeta]:
    """Every data file below the backend folder ``full``, keyed by its path relative to ``full``.

    mlpipe's records (a ``_mlpipe/`` folder) are never listed, at any depth, as a glob never matches them:
    listing the datastore root leaves its own out, and listing a folder leaves out those of a datastore whose root
    lies below it (``s3://b/team`` below ``s3://b``). ``controls``, when given, collects the relative paths of the
    markers and journals met (which ``list_tree`` never counts as data); ``reserved``, when given, counts the files
    left out below each folder that stores keep as mlpipe's own but that is spelled otherwise (``_MLPIPE/``,
    ``x/_mlpipe./``: path with '/' -> files; a ``_mlpipe/`` holds records, never counted). On a
    local store, links are checked as
    they are met (see ``_walk_local``); errors name ``argument`` and the path below ``shown`` (the folder as the
    user named it)."""
    if store.protocol == "file":
        if not os.path.isdir(full):
            return {}
        return _walk_local(
            store,
            full,
            argument=argument,
            shown=shown,
            refuse_links=refuse_links,
            controls=controls,
            reserved=reserved,
        )
    base = full.rstrip("/") + "/"
    out: dict[str, FileMeta] = {}
    if store.protocol == "abfs":
        blobs = list_azure(store.fs, full)
        if blobs is not None:
            skip = len(base) - len(base.split("/", 1)[0]) - 1  # blob names start below the container
            for name, size, etag, md5 in blobs:
                rel = name[skip:]
                if not rel:
                    continue
                if is_reserved(rel):
                    _note_reserved(reserved, rel)
                    continue
                if is_control_name(rel.rsplit("/", 1)[-1]):
                    _note_control(controls, rel)
                else:
                    out[rel] = FileMeta(size, f"etag:{etag}", md5)
            return out
    store.fs.invalidate_cache(full)
    found = store.fs.find(full, detail=True, withdirs=False)
    for name, info in found.items():
        name = store.fs._strip_protocol(name)
        if info.get("type", "file") != "file" or not name.startswith(base) or name.endswith("/"):
            continue
        rel = name[len(base) :]
        if is_reserved(rel):
            _note_reserved(reserved, rel)
            continue
        if is_control_name(rel.rsplit("/", 1)[-1]):
            _note_control(controls, rel)
        else:
            out[rel] = meta_from_info(info)
    return out


def path_kind(store: Datastore, full: str) -> tuple[PathKind | None, FileMeta | None]:
    """Whether ``full`` is a file (with its meta), a folder, or absent."""
    if store.protocol == "file":
        try:
            st = os.stat(full)
        except FileNotFoundError:
            return None, None
        return ("directory", None) if stat.S_ISDIR(st.st_mode) else ("file", local_meta(st))
    store.fs.invalidate_cache(full)
    try:
        info = store.fs.info(full)
    except FileNotFoundError:
        return None, None
    if info.get("type") == "directory":
        return "directory", None
    return "file", meta_from_info(info)


def content_md5(store: Datastore, full: str) -> str:
    """MD5 of a file's bytes, read in blocks (bounded memory). Used only where no store keeps one."""
    if store.protocol == "file":
        with open(full, "rb") as fh:
            return hashlib.file_digest(fh, "md5").hexdigest()
    with store.fs.open(full, "rb", block_size=_HASH_BLOCK) as fh:
        return hashlib.file_digest(fh, "md5").hexdigest()
