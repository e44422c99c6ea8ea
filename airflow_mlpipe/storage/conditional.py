"""Conditional writes and paged child listings on every datastore backend: what keeps a small pointer object
(the latest version of a dataset) right under racing writers, without a database and without listing.

A read returns the object's bytes with a *tag*, and a conditional write replaces the object only while it still
carries that tag (compare-and-swap), or, with no tag, creates it only while it is absent:

- Azure Blob: the ETag; ``If-Match: <etag>`` to replace, ``If-None-Match: *`` to create (a 412 or 409 loses).
- S3: the ETag; ``PutObject`` with ``IfMatch`` / ``IfNoneMatch="*"`` (AWS since 2024, moto 5.1+; a
  ``PreconditionFailed`` or ``ConditionalRequestConflict`` loses).
- Local folder: a digest of the bytes; the compare and the atomic rename happen under an exclusive ``flock`` of
  the object's folder, so processes on one machine are serialised (creation is a hard link, as for
  ``create_if_absent``).
- memory (tests): a digest of the bytes under a process-wide lock.
- Another fsspec backend (e.g. GCS): a digest compared just before a plain write. That is not atomic: keep to
  uses where a lost update is only a delay, never wrong data (the dataset registry's pointer is such a use:
  readers probe past a pointer that is behind and repair it).

Each call is one request to an object store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.storage.datastore import Datastore, _local_atomic_write, _memory_lock
from airflow_mlpipe.storage.errors import translate_errors


@dataclass(frozen=True)
class Tagged:
    """An object's bytes and the tag a conditional write compares (an ETag, or a digest of the bytes)."""

    data: bytes
    tag: str


def read_tagged(store: Datastore, path: str) -> Tagged | None:
    """The object at ``path`` with its tag, or None when it does not exist (one GET)."""
    full = store.full_path(path)
    with translate_errors(store.config, "read", path):
        protocol = store.protocol
        if protocol in ("abfs", "az"):
            return _azure_read(store.fs, full)
        if protocol in ("s3", "s3a"):
            return _s3_read(store.fs, full)
        try:
            data = _local_read(full) if protocol == "file" else bytes(store.fs.cat_file(full))
        except FileNotFoundError:
            return None
        return Tagged(data, _digest(data))


def replace_if_unchanged(store: Datastore, path: str, data: bytes, tag: str | None) -> bool:
    """Write ``data`` at ``path`` only while the object there still carries ``tag`` (from :func:`read_tagged`),
    or, when ``tag`` is None, only while no object is there. True when written; False when another writer
    changed (or created, or removed) the object first."""
    full = store.full_path(path)
    with translate_errors(store.config, "write", path):
        protocol = store.protocol
        if protocol in ("abfs", "az"):
            return _azure_write(store.fs, full, data, tag)
        if protocol in ("s3", "s3a"):
            return _s3_write(store.fs, full, data, tag)
        if tag is None:
            return store.create_if_absent(path, data)
        if protocol == "file":
            return _local_replace(full, data, tag)
        with _memory_lock if protocol == "memory" else contextlib.nullcontext():
            try:
                current = bytes(store.fs.cat_file(full))
            except FileNotFoundError:
                return False
            if _digest(current) != tag:
                return False
            store.fs.pipe_file(full, data)
            return True


def list_children(store: Datastore, folder: str, *, limit: int, start_after: str = "") -> tuple[list[str], bool]:
    """Up to ``limit`` names of the entries directly in ``folder`` (files and subfolders, hidden ones skipped),
    in the stores' own order (that of ``name + "/"`` for folders), after ``start_after``; and whether more follow.
    One listing request on object stores, whatever the folder holds."""
    if limit < 1:
        raise ValueError(f"a page holds at least one entry, not {limit}")
    full = store.full_path(folder).rstrip("/")
    with translate_errors(store.config, "list", folder):
        protocol = store.protocol
        if protocol in ("s3", "s3a"):
            return _s3_children(store.fs, full, limit, start_after)
        if protocol in ("abfs", "az"):
            return _azure_children(store.fs, full, limit, start_after)
        try:
            if protocol == "file":
                every = [n for n in os.listdir(full) if not n.startswith(".")]
            else:
                every = [str(p).rstrip("/").rsplit("/", 1)[-1] for p in store.fs.ls(full, detail=False)]
        except (FileNotFoundError, NotADirectoryError):
            return [], False
    names = sorted((n for n in set(every) if _order(n) > _order(start_after)), key=_order)
    return names[:limit], len(names) > limit


def _order(name: str) -> str:
    """Object stores list a folder ``a/`` after a folder ``a-b/`` ('-' and '.' sort before '/'): page in that
    order everywhere, so that a page token means the same on every backend."""
    return name + "/"


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


# -- local folder ---------------------------------------------------------------------------------------------
def _local_read(full: str) -> bytes:
    try:
        with open(full, "rb") as fh:
            return fh.read()
    except NotADirectoryError:
        raise FileNotFoundError(full) from None


def _local_replace(full: str, data: bytes, tag: str) -> bool:
    folder = os.path.dirname(full)
    try:
        fd = os.open(folder, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # every conditional replace in this folder, in any process, waits here
        try:
            current = _local_read(full)
        except FileNotFoundError:
            return False
        if _digest(current) != tag:
            return False
        _local_atomic_write(full, data, replace=True)
        return True
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# -- Azure Blob -----------------------------------------------------------------------------------------------
def _azure_read(fs: Any, full: str) -> Tagged | None:
    from azure.core.exceptions import ResourceNotFoundError
    from fsspec.asyn import sync

    container, blob, _ = fs.split_path(full)

    async def read() -> Tagged | None:
        async with fs.service_client.get_blob_client(container=container, blob=blob) as client:
            try:
                stream = await client.download_blob()
                data = await stream.readall()
            except ResourceNotFoundError:
                return None
            return Tagged(bytes(data), str(stream.properties.etag))

    return sync(fs.loop, read)


def _azure_write(fs: Any, full: str, data: bytes, tag: str | None) -> bool:
    from azure.core import MatchConditions
    from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceModifiedError
    from fsspec.asyn import sync

    container, blob, _ = fs.split_path(full)
    condition: dict[str, Any] = {"overwrite": False}  # If-None-Match: *
    if tag is not None:
        condition = {"overwrite": True, "etag": tag, "match_condition": MatchConditions.IfNotModified}

    async def write() -> bool:
        async with fs.service_client.get_blob_client(container=container, blob=blob) as client:
            try:
                await client.upload_blob(data, metadata={"is_directory": "false"}, **condition)
            except (ResourceExistsError, ResourceModifiedError):
                return False
            except HttpResponseError as exc:
                if exc.status_code in (404, 409, 412):  # gone, or a conflicting write in flight
                    return False
                raise
            return True

    return sync(fs.loop, write)


def _azure_children(fs: Any, full: str, limit: int, start_after: str) -> tuple[list[str], bool]:
    from fsspec.asyn import sync

    container, prefix, _ = fs.split_path(full + "/")
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""

    async def page() -> tuple[list[str], bool]:
        # Azure's List Blobs has no "start after" (only an opaque continuation marker), so a later page is
        # found by walking 1,000-name pages from the start: one request for each 1,000 names before it.
        async with fs.service_client.get_container_client(container=container) as client:
            names: list[str] = []
            per_page = 1000 if start_after else min(limit + 1, 1000)
            pages = client.walk_blobs(name_starts_with=prefix, delimiter="/", results_per_page=per_page).by_page()
            async for items in pages:
                async for item in items:
                    name = item.name[len(prefix) :].rstrip("/")
                    if not name or name.startswith(".") or (start_after and _order(name) <= _order(start_after)):
                        continue
                    names.append(name)
                    if len(names) > limit:
                        return names[:limit], True
            return names, False

    return sync(fs.loop, page)


# -- S3 -------------------------------------------------------------------------------------------------------
def _s3_read(fs: Any, full: str) -> Tagged | None:
    from botocore.exceptions import ClientError
    from fsspec.asyn import sync

    bucket, key, _ = fs.split_path(full)

    async def read() -> Tagged | None:
        s3 = await _s3_client(fs, bucket)
        try:
            answer = await s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        async with answer["Body"] as body:
            data = await body.read()
        return Tagged(bytes(data), str(answer["ETag"]))

    return sync(fs.loop, read)


def _s3_write(fs: Any, full: str, data: bytes, tag: str | None) -> bool:
    from botocore.exceptions import ClientError
    from fsspec.asyn import sync

    bucket, key, _ = fs.split_path(full)
    condition = {"IfNoneMatch": "*"} if tag is None else {"IfMatch": tag}

    async def write() -> bool:
        s3 = await _s3_client(fs, bucket)
        try:
            await s3.put_object(Bucket=bucket, Key=key, Body=data, **condition)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "412", "409"):
                return False
            raise
        return True

    return sync(fs.loop, write)


async def _s3_client(fs: Any, bucket: str) -> Any:
    await fs.set_session()  # s3fs makes its client on first use
    return await fs.get_s3(bucket)


def _s3_children(fs: Any, full: str, limit: int, start_after: str) -> tuple[list[str], bool]:
    from fsspec.asyn import sync

    bucket, prefix, _ = fs.split_path(full + "/")
    prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
    args: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/", "MaxKeys": limit}
    if start_after:
        # Past every key below ``<start_after>/``: '0' is the character right after '/'.
        args["StartAfter"] = f"{prefix}{start_after}0"

    async def page() -> dict[str, Any]:
        s3 = await _s3_client(fs, bucket)
        return dict(await s3.list_objects_v2(**args))

    answer = sync(fs.loop, page)
    found = [p["Prefix"][len(prefix) :].rstrip("/") for p in answer.get("CommonPrefixes") or ()]
    found += [o["Key"][len(prefix) :] for o in answer.get("Contents") or ()]
    names = sorted((n for n in found if n and not n.startswith(".")), key=_order)
    return names, bool(answer.get("IsTruncated"))
