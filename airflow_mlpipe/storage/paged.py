"""Newest-first keys and paged listings: what lets a listing of step runs or decisions read one page, never all.

A key made by :func:`newest_first_name` sorts before every key made earlier, so the first page of a listing of
its folder, in the stores' own (lexicographic) order, holds the newest entries. Keys sit in day folders, which
keeps a local folder small; object stores are listed flat under the prefix, one request a page, however the
entries are spread over days: an Azure ``List Blobs`` with ``maxresults`` (its continuation marker pages on), an
S3 ``ListObjectsV2`` with ``MaxKeys`` and ``StartAfter``, and locally a walk of the sorted day folders that stops
as soon as the page is full.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.errors import translate_errors

_EPOCH_MS_LIMIT = 10**13 - 1  # year 2286
_DAY_MS = 86_400_000


def newest_first_name(moment: str | dt.datetime, unique: str) -> str:
    """``<day>/<inverted ms>_<unique>.json``: a later moment sorts first (ties: by ``unique``)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment) if moment else dt.datetime.now(dt.UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    inverted = _EPOCH_MS_LIMIT - int(moment.timestamp() * 1000)
    return f"{inverted // _DAY_MS:06d}/{inverted:013d}_{unique}.json"


def unique_of(name: str) -> str:
    """The ``unique`` part of a key made by :func:`newest_first_name` (``""`` for another name)."""
    stem = name.rsplit("/", 1)[-1].removesuffix(".json")
    return stem.split("_", 1)[1] if "_" in stem else ""


@dataclass(frozen=True)
class Page:
    """Datastore-relative paths of one page, in key order, and the token of the next page (None: the last).
    ``inline``: the bodies the listing itself returned (Azure: objects written by :func:`write_listed`)."""

    paths: tuple[str, ...]
    next_token: str | None
    inline: Mapping[str, bytes] = field(default_factory=dict)


# Azure returns an object's metadata with the listing: a small object written with its body there too is read
# by the listing alone (one request a page instead of one a row). Metadata is ASCII, at most 8 KiB in all.
_AZURE_INLINE = "mlpipe_body"
_AZURE_INLINE_LIMIT = 6 * 1024


def write_listed(store: Datastore, objects: Mapping[str, bytes]) -> None:
    """Write small objects that listings read (on Azure, their bodies ride along with the listing)."""
    if store.protocol not in ("abfs", "az") or any(
        len(b) > _AZURE_INLINE_LIMIT or not b.isascii() for b in objects.values()
    ):
        store.write_many(objects)
        return
    from fsspec.asyn import sync

    fs = store.fs

    async def put(path: str, body: bytes) -> None:
        container, blob, _ = fs.split_path(store.full_path(path))
        async with fs.service_client.get_blob_client(container=container, blob=blob) as client:
            await client.upload_blob(
                data=body, overwrite=True, metadata={"is_directory": "false", _AZURE_INLINE: body.decode("ascii")}
            )

    async def put_all() -> None:
        import asyncio

        await asyncio.gather(*(put(path, body) for path, body in objects.items()))

    with translate_errors(store.config, "write", next(iter(objects))):
        sync(fs.loop, put_all)


def list_page(store: Datastore, folder: str, *, limit: int, token: str | None = None) -> Page:
    """Up to ``limit`` files below ``folder`` in key order, starting after ``token`` (from the previous page)."""
    if limit < 1:
        raise ValueError(f"a page holds at least one entry, not {limit}")
    problem = page_token_problem(store, folder, token) if token is not None else None
    if problem:
        raise ConfigError(f"page token {shown(token)} is not one a page of {folder!r} gave: {problem}")
    prefix = store.full_path(folder).rstrip("/") + "/"
    protocol = store.protocol
    if protocol == "file":
        paths, more = _local_page(prefix.rstrip("/"), limit, store.full_path(token) if token else None)
        rel = [store.relpath(p) for p in paths]
        return Page(tuple(rel), rel[-1] if more and rel else None)
    if protocol in ("abfs", "az"):  # the token is Azure's continuation marker
        listed, marker = _azure_page(store.fs, prefix, limit, token)
        found = {store.relpath(name): body for name, body in listed}
        inline = {path: body for path, body in found.items() if body is not None}
        return Page(tuple(found), marker if found else None, inline)
    if protocol in ("s3", "s3a"):
        names, more = _s3_page(store.fs, prefix, limit, store.full_path(token) if token else None)
        rel = [store.relpath(n) for n in names]
        return Page(tuple(rel), rel[-1] if more and rel else None)
    # Another fsspec store (memory, tests): one full listing of the folder, cut to the page.
    try:
        every = store.list(folder, recursive=True)
    except FileNotFoundError:
        every = []
    after = [p for p in every if token is None or p > token]
    return Page(tuple(after[:limit]), after[limit - 1] if len(after) > limit else None)


def page_token_problem(store: Datastore, folder: str, token: str) -> str | None:
    """Why ``token`` cannot be the next-page token of a listing of ``folder`` (None: it can be). Checked before
    listing: a made-up token would list from wherever it sorts, or from the start, and say nothing."""
    if store.protocol in ("abfs", "az"):  # Azure's continuation marker: opaque, printable, no spaces
        if token and len(token) <= 4096 and token.isascii() and token.isprintable() and " " not in token:
            return None
        return "an Azure continuation marker is printable text without spaces"
    prefix = folder.rstrip("/") + "/"
    rest = token.removeprefix(prefix)
    if rest == token or not rest:
        return f"a token is the path of the last entry listed, below {prefix!r}"
    if ".." in rest.split("/") or "\\" in rest or "\0" in rest or rest.startswith("/"):
        return "a token is a path below the listed folder, without '..' or backslashes"
    return None


def _local_page(folder: str, limit: int, after: str | None) -> tuple[list[str], bool]:
    """Walk sorted folders depth first, skipping whole folders that sort before ``after`` (a full path)."""
    found: list[str] = []

    def walk(current: str) -> bool:  # True once the page is full and one more entry is known to exist
        try:
            names = sorted(os.listdir(current))
        except (FileNotFoundError, NotADirectoryError):
            return False
        for name in names:
            full = os.path.join(current, name)
            if after is not None and full <= after and not after.startswith(full + os.sep):
                continue
            if os.path.isdir(full):
                if walk(full):
                    return True
            elif not name.startswith("."):
                if len(found) == limit:
                    return True
                found.append(full)
        return False

    return found, walk(folder)


Listed = list[tuple[str, bytes | None]]


def _azure_page(fs: Any, prefix: str, limit: int, marker: str | None) -> tuple[Listed, str | None]:
    from fsspec.asyn import sync

    container, path, _ = fs.split_path(prefix)

    async def page() -> tuple[Listed, str | None]:
        async with fs.service_client.get_container_client(container=container) as client:
            blobs = client.list_blobs(name_starts_with=path, results_per_page=limit, include=["metadata"])
            pages = blobs.by_page(continuation_token=marker)
            found: Listed = []
            async for items in pages:
                async for blob in items:
                    if not blob.name.endswith("/"):
                        body = (blob.metadata or {}).get(_AZURE_INLINE)
                        found.append((f"{container}/{blob.name}", body.encode("ascii") if body else None))
                break
            return found, pages.continuation_token or None

    return sync(fs.loop, page)


def _s3_page(fs: Any, prefix: str, limit: int, after: str | None) -> tuple[list[str], bool]:
    from fsspec.asyn import sync

    bucket, path, _ = fs.split_path(prefix)
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": path, "MaxKeys": limit}
    if after:
        args["StartAfter"] = fs.split_path(after)[1]

    async def page() -> dict[str, Any]:
        return await fs._call_s3("list_objects_v2", **args)

    answer = sync(fs.loop, page)
    names = [f"{bucket}/{o['Key']}" for o in answer.get("Contents") or () if not o["Key"].endswith("/")]
    return names, bool(answer.get("IsTruncated"))
