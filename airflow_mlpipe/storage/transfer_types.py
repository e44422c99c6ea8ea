"""Frozen value objects of the copy engine: one file's record, progress snapshots, and the result."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

TransferKind = Literal["file", "directory"]
FileAction = Literal["copied", "skipped"]


@dataclass(frozen=True, slots=True)
class TransferredFile:
    """One source file and what became of it.

    ``source`` and ``destination`` are identity tokens (``etag:…``, ``mtime:…``) as each store reported them;
    ``md5`` is the content MD5 where a store keeps one or the engine computed it while streaming.
    """

    path: str
    size: int
    action: FileAction
    source: str
    destination: str | None
    md5: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "action": self.action,
            "source": self.source,
            "destination": self.destination,
            "md5": self.md5,
        }


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """A snapshot handed to the ``progress`` callback. Counts cover the files that need copying."""

    phase: Literal["copying", "done"]
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    files_skipped: int
    elapsed_s: float
    retries: int

    @property
    def rate_bytes_per_s(self) -> float:
        return self.bytes_done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None before any byte is copied."""
        rate = self.rate_bytes_per_s
        if self.bytes_done >= self.bytes_total:
            return 0.0
        return (self.bytes_total - self.bytes_done) / rate if rate > 0 else None

    def __str__(self) -> str:
        eta = self.eta_s
        return (
            f"{self.files_done}/{self.files_total} files, {_human_bytes(self.bytes_done)}/"
            f"{_human_bytes(self.bytes_total)}, {_human_bytes(self.rate_bytes_per_s)}/s, "
            f"ETA {'?' if eta is None else f'{eta:.0f} s'}"
            + (f", {self.files_skipped} up to date" if self.files_skipped else "")
            + (f", {self.retries} retries" if self.retries else "")
        )


@dataclass(frozen=True)
class TransferResult:
    """What a transfer did. ``complete`` is True once every file is at the destination (and verified)."""

    source: str
    destination: str
    kind: TransferKind
    method: str
    files_copied: int
    files_skipped: int
    bytes_copied: int
    bytes_total: int
    seconds: float
    verified: bool
    complete: bool
    retries: int
    extra_files: int  # destination files the source lacks: removed (a mirror), else the transfer was refused
    files: tuple[TransferredFile, ...]
    # The destination marker's ``transfer`` section (a folder copy): what a later copy into the folder compares
    # with to skip unchanged files. Written by the copy itself unless ``mark_complete=False`` left it to the caller.
    marker_section: Mapping[str, Any] | None = None
    files_removed: int = 0
    # Source folders named as mlpipe's reserved ``_mlpipe/`` (``_MLPIPE/``, ``x/_mlpipe./``: any depth, any case,
    # trailing dots and spaces dropped) -> the files below each, never copied.
    left_out: Mapping[str, int] = field(default_factory=dict)

    @property
    def files_total(self) -> int:
        return self.files_copied + self.files_skipped

    @property
    def up_to_date(self) -> bool:
        """Nothing needed copying: the destination already held every file."""
        return self.files_copied == 0

    def summary(self) -> str:
        rate = self.bytes_copied / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.source} -> {self.destination}: {self.files_copied} copied, {self.files_skipped} up to date, "
            f"{_human_bytes(self.bytes_copied)} in {self.seconds:.1f} s ({_human_bytes(rate)}/s, {self.method})"
            + (f", {self.files_removed} the source lacks removed" if self.files_removed else "")
            + (", verified" if self.verified else "")
            + (f"; {self.left_out_note()}" if self.left_out else "")
        )

    @property
    def files_left_out(self) -> int:
        return sum(self.left_out.values())

    def left_out_note(self) -> str:
        """The files left out below folders named as mlpipe's reserved one, and why, in one line ("" if none)."""
        if not self.left_out:
            return ""
        folders = list(self.left_out)
        shown = ", ".join(map(repr, folders[:3])) + (f" and {len(folders) - 3} more" if len(folders) > 3 else "")
        count = self.files_left_out
        return (
            f"left out {count} file{'s' if count != 1 else ''} below {shown} (mlpipe's reserved folder name "
            "'_mlpipe', at any depth, in any case, trailing dots and spaces dropped: a datastore's records, "
            "never copied)"
        )

    def to_dict(self, *, include_files: bool = True) -> dict[str, Any]:
        """JSON-ready; ``include_files=False`` keeps it small (XCom) for folders of many files."""
        out: dict[str, Any] = {
            "source": self.source,
            "destination": self.destination,
            "kind": self.kind,
            "method": self.method,
            "files_total": self.files_total,
            "files_copied": self.files_copied,
            "files_skipped": self.files_skipped,
            "bytes_copied": self.bytes_copied,
            "bytes_total": self.bytes_total,
            "seconds": round(self.seconds, 3),
            "verified": self.verified,
            "complete": self.complete,
            "retries": self.retries,
            "extra_files": self.extra_files,
            "files_removed": self.files_removed,
            "files_left_out": self.files_left_out,
            "left_out": dict(self.left_out),
        }
        if include_files:
            out["files"] = [f.to_dict() for f in self.files]
        return out


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
