"""Which copier serves a pair of datastores, and whether two datastores are the same store."""

from __future__ import annotations

from typing import Any

from airflow_mlpipe.storage.copy_library import LibraryCopier
from airflow_mlpipe.storage.datastore import Datastore

# Files in flight by default. Local copies are kernel work: a second thread keeps the disk busy while one waits on
# a directory lock or on writeback, more threads mostly hand the GIL around; object stores want a few dozen
# requests in flight, and more only queue up (measured: docs/bench-transfer.md).
DEFAULT_WORKERS = {"local": 2, "upload": 32, "download": 16, "stream": 16, "server-side": 32}


def same_filesystem(a: Datastore, b: Datastore) -> bool:
    """One filesystem object serves both (so a server-side copy can run)."""
    if a.protocol != b.protocol:
        return False
    return a.protocol in ("file", "memory") or a.fs is b.fs


def _namespace(store: Datastore) -> Any:
    """What identifies the storage account or endpoint behind a datastore (for the overlap check)."""
    fs = store.fs
    if store.protocol == "abfs":
        return getattr(getattr(fs, "service_client", None), "url", None) or getattr(fs, "account_name", None)
    if store.protocol == "s3":
        return getattr(fs, "endpoint_url", None) or (getattr(fs, "client_kwargs", None) or {}).get("endpoint_url")
    return store.config.public_options()


def same_namespace(a: Datastore, b: Datastore) -> bool:
    """Both datastores reach the same paths (same account, endpoint or machine), whatever their credentials."""
    if a.protocol != b.protocol:
        return False
    return same_filesystem(a, b) or _namespace(a) == _namespace(b)


def _is_async(store: Datastore) -> bool:
    return bool(getattr(store.fs, "async_impl", False))


def choose_copier(src: Datastore, dst: Datastore) -> LibraryCopier:
    if src.protocol == "file" and dst.protocol == "file":
        return LibraryCopier(src, dst, "local")
    if same_filesystem(src, dst):
        return LibraryCopier(src, dst, "server-side")
    if src.protocol == "file" and _is_async(dst):
        return LibraryCopier(src, dst, "upload")
    if dst.protocol == "file" and _is_async(src):
        return LibraryCopier(src, dst, "download")
    return LibraryCopier(src, dst, "stream")
