"""Decide, file by file, what a transfer copies and what is already at the destination (rsync-like).

A destination file is the same as its source file when, cheapest evidence first:
1. the destination's completion marker records this pair from an earlier transfer and neither side has changed
   since (same change tokens): no byte is read;
2. both stores keep a comparable MD5 and it matches (different sizes or MD5s: different);
3. size and modification time match (local files, whose mtime the engine preserves, as rsync's quick check);
4. otherwise, with equal sizes, the MD5 of the bytes on both sides matches (read only for these few files).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.storage.listing import FileMeta


@dataclass(frozen=True, slots=True)
class FileTask:
    """One file to copy: ``rel`` relative to the transfer's roots, ``src``/``dst`` backend paths."""

    rel: str
    src: str
    dst: str
    size: int
    replace: bool


@dataclass(frozen=True)
class Plan:
    copy: tuple[FileTask, ...]
    same: tuple[str, ...]
    conflicts: tuple[str, ...]
    extra: tuple[str, ...]

    @property
    def bytes_to_copy(self) -> int:
        return sum(t.size for t in self.copy)


# The destination marker keeps each file as [size, source token, destination token, md5 or None].
ManifestEntry = Sequence[Any]


def _recorded_same(entry: ManifestEntry | None, src: FileMeta, dst: FileMeta) -> bool:
    if not entry or len(entry) < 3:
        return False
    size, src_token, dst_token = entry[0], entry[1], entry[2]
    return bool(size == src.size == dst.size and src_token == src.token and dst_token == dst.token)


def _quick_verdict(src: FileMeta, dst: FileMeta, entry: ManifestEntry | None) -> bool | None:
    """True (same), False (different) or None (only the bytes can tell)."""
    if _recorded_same(entry, src, dst):
        return True
    if src.size != dst.size:
        return False
    if src.md5 and dst.md5:
        return src.md5 == dst.md5
    if src.token.startswith("mtime:") and src.token == dst.token:
        return True
    return None


def plan_transfer(
    src_files: Mapping[str, FileMeta],
    dst_files: Mapping[str, FileMeta],
    *,
    src_path: Callable[[str], str],
    dst_path: Callable[[str], str],
    manifest: Mapping[str, ManifestEntry],
    replace_different: bool,
    same_content: Callable[[Iterable[str]], set[str]],
) -> Plan:
    """Compare listings. ``replace_different``: overwrite is on, or the differing files are an unfinished run's.

    ``same_content`` reads the bytes of the given files on both sides and returns those that match.
    """
    verdicts: dict[str, bool | None] = {}
    for rel, src in src_files.items():
        dst = dst_files.get(rel)
        if dst is not None:
            verdicts[rel] = _quick_verdict(src, dst, manifest.get(rel))
    unknown = [rel for rel, verdict in verdicts.items() if verdict is None]
    if unknown:
        matched = same_content(unknown)
        verdicts.update({rel: rel in matched for rel in unknown})
    copy: list[FileTask] = []
    same: list[str] = []
    conflicts: list[str] = []
    for rel, src in src_files.items():
        verdict = verdicts.get(rel)
        if verdict:
            same.append(rel)
        elif verdict is False and not replace_different:
            conflicts.append(rel)
        else:
            copy.append(FileTask(rel, src_path(rel), dst_path(rel), src.size, replace=verdict is not None))
    extra = tuple(sorted(rel for rel in dst_files if rel not in src_files))
    return Plan(tuple(copy), tuple(same), tuple(conflicts), extra)
