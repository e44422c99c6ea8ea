"""Helpers for the fingerprint tests."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

LATER_NS = 60 * 1_000_000_000


class LaterClock:
    """A clock a minute ahead: files written by the test count as old, so the racy-entry guard lets them in.

    A class, not a lambda, so a cache holding it can be sent to worker processes.
    """

    def __call__(self) -> int:
        return time.time_ns() + LATER_NS


def write_tree(root: Path, files: Mapping[str, bytes | str]) -> Path:
    """Create ``files`` (relative POSIX path -> content) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    return root


def rewrite_keeping_mtime(path: Path, content: bytes) -> None:
    """New bytes of the same size with the old mtime put back: only the ctime (and maybe the inode) tells.

    Waits until the filesystem's clock has moved on, so the ctime does differ: what the racy-entry guard
    guarantees in real use, since it never caches a file changed within the last two seconds.
    """
    before = os.stat(path)
    assert len(content) == before.st_size
    for _ in range(200):
        path.write_bytes(content)
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
        if os.stat(path).st_ctime_ns != before.st_ctime_ns:
            return
        time.sleep(0.01)
    raise AssertionError("the ctime never changed")
