"""Fast content hashes (XXH3-128): one file, many files, bytes.

XXH3 is not a cryptographic hash; it identifies content, it does not defend against an adversary who can write
to your datastore (who could change the data anyway).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import xxhash

HASH_NAME = "xxh3"
_CHUNK = 8 * 1024 * 1024


def hash_bytes(data: bytes) -> str:
    return xxhash.xxh3_128_hexdigest(data)


def hash_file(path: str | os.PathLike[str]) -> str:
    """The XXH3-128 hex digest of a file's bytes, read in chunks (bounded memory)."""
    h = xxhash.xxh3_128()
    with open(path, "rb", buffering=0) as fh:
        buf = bytearray(_CHUNK)
        view = memoryview(buf)
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
    return h.hexdigest()


def hash_files(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Digests of many local files, in the order given."""
    return [hash_file(p) for p in paths]
