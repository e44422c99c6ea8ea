"""A file's content identity: a hash the store already keeps (MD5, ETag) or our own content hash.

As dvc-data's ``HashInfo``: prefer what the storage keeps over reading bytes, so remote data is never downloaded
just to be identified.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.fingerprint.hashing import HASH_NAME, hash_bytes, hash_files
from airflow_mlpipe.fingerprint.statcache import StatCache

if TYPE_CHECKING:
    from airflow_mlpipe.storage.datastore import Datastore


@dataclass(frozen=True)
class FileIdentity:
    """``kind`` is ``md5`` (content MD5 kept by the store), ``etag`` (the store's version tag) or ``xxh3``."""

    path: str
    size: int
    kind: str
    value: str

    @property
    def token(self) -> str:
        return f"{self.kind}:{self.value}"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "size": self.size, "kind": self.kind, "value": self.value}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FileIdentity:
        return cls(path=str(data["path"]), size=int(data["size"]), kind=str(data["kind"]), value=str(data["value"]))


def store_kept_identity(info: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, value) from what an fsspec ``info`` dict carries, or None when the store keeps nothing usable."""
    settings = info.get("content_settings")
    md5 = None
    if settings is not None:
        md5 = settings.get("content_md5") if isinstance(settings, Mapping) else getattr(settings, "content_md5", None)
    if md5:
        raw = bytes(md5) if not isinstance(md5, str) else base64.b64decode(md5)
        return "md5", raw.hex()
    for key in ("ETag", "etag"):
        etag = info.get(key)
        if etag:
            return "etag", str(etag).strip('"')
    return None


def identities(
    store: Datastore,
    infos: Mapping[str, Mapping[str, Any]],
    *,
    cache: StatCache | bool = True,
) -> dict[str, FileIdentity]:
    """Identities of files in ``store`` given their relative paths and fsspec ``info`` dicts.

    Files of a local datastore are hashed, through the stat cache (``cache``: ``True`` for the default one,
    ``False`` for none) so unchanged files are not read again.
    """
    out: dict[str, FileIdentity] = {}
    to_hash: list[str] = []
    for rel, info in infos.items():
        kept = None if store.protocol in ("file", "memory") else store_kept_identity(info)
        if kept is None:
            to_hash.append(rel)
        else:
            out[rel] = FileIdentity(rel, int(info.get("size") or 0), *kept)
    if to_hash:
        if store.protocol == "file":
            digests = hash_files([store.full_path(rel) for rel in to_hash], cache=cache)
        else:
            digests = [hash_bytes(store.read_bytes(rel)) for rel in to_hash]
        for rel, digest in zip(to_hash, digests, strict=True):
            out[rel] = FileIdentity(rel, int(infos[rel].get("size") or 0), HASH_NAME, digest)
    return {rel: out[rel] for rel in sorted(out)}
