"""After the copy: check the destination against the source, and the manifest the completion marker keeps.

The manifest records, per file, the size and both sides' change tokens (and the MD5 where known), so that the
next transfer of the same source recognises every unchanged file from the two listings alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.storage.listing import FileMeta
from airflow_mlpipe.storage.transfer_plan import Plan
from airflow_mlpipe.storage.transfer_types import TransferredFile

MANIFEST_VERSION = 1


def mismatches(
    src_files: Mapping[str, FileMeta], after: Mapping[str, FileMeta], computed_md5: Mapping[str, str]
) -> list[str]:
    """What differs at the destination: missing files, sizes, and MD5s where both sides have one."""
    problems: list[str] = []
    for rel, src in src_files.items():
        dst = after.get(rel)
        expected_md5 = src.md5 or computed_md5.get(rel)
        if dst is None:
            problems.append(f"{rel!r} is missing")
        elif dst.size != src.size:
            problems.append(f"{rel!r} has {dst.size} bytes, the source {src.size}")
        elif expected_md5 and dst.md5 and expected_md5 != dst.md5:
            problems.append(f"{rel!r} has MD5 {dst.md5}, the source {expected_md5}")
    return problems


def file_records(
    plan: Plan,
    src_files: Mapping[str, FileMeta],
    after: Mapping[str, FileMeta],
    computed_md5: Mapping[str, str],
) -> dict[str, TransferredFile]:
    copied = {t.rel for t in plan.copy}
    records: dict[str, TransferredFile] = {}
    for rel, src in src_files.items():
        dst = after.get(rel)
        records[rel] = TransferredFile(
            path=rel,
            size=src.size,
            action="copied" if rel in copied else "skipped",
            source=src.token,
            destination=dst.token if dst else None,
            md5=src.md5 or computed_md5.get(rel) or (dst.md5 if dst else None),
        )
    return records


def manifest_section(source_uri: str, records: Mapping[str, TransferredFile]) -> dict[str, Any]:
    """The marker's ``transfer`` section (without the time it finished, so that equal content compares equal)."""
    return {
        "version": MANIFEST_VERSION,
        "source": source_uri,
        "count": len(records),
        "bytes": sum(r.size for r in records.values()),
        "files": {rel: [r.size, r.source, r.destination, r.md5] for rel, r in sorted(records.items())},
    }


def recorded_files(marker: Mapping[str, Any] | None, source_uri: str) -> Mapping[str, Any]:
    """The per-file entries of an earlier transfer of ``source_uri`` into this folder, or nothing."""
    section = (marker or {}).get("transfer")
    if not isinstance(section, Mapping) or section.get("source") != source_uri:
        return {}
    files = section.get("files")
    return files if isinstance(files, Mapping) else {}


def marker_unchanged(marker: Mapping[str, Any] | None, section: Mapping[str, Any], extra: Mapping[str, Any]) -> bool:
    """Whether the folder's marker already says exactly this (then nothing needs writing)."""
    if not isinstance(marker, Mapping):
        return False
    recorded = marker.get("transfer")
    if not isinstance(recorded, Mapping) or any(recorded.get(k) != v for k, v in section.items()):
        return False
    return all(marker.get(k) == v for k, v in extra.items())
