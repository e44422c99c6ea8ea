"""The mirror rule: which destination files the source lacks are this transfer's own to remove.

A transfer removes a file the source lacks only when an earlier transfer of the same source into the same folder
wrote it: the folder's completion marker lists it (and the file is still the one written, same change token), or
the journal of an unfinished run lists it. A file in a sub-folder that holds a marker or journal of its own is
never the transfer's: another transfer, step or registration filled that folder, even where the earlier copy once
wrote a file of that name there.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.storage.listing import FileMeta

# The journal's key for the files a run of the transfer owns: what it copies or keeps, and what it removes.
JOURNAL_OWN_FILES = "own_files"


@dataclass(frozen=True)
class Foreign:
    """Destination files the source lacks that the transfer did not write; ``folders``: sub-folders among their
    parents that hold a marker or journal of their own."""

    files: tuple[str, ...]
    folders: tuple[str, ...]


def journal_own_files(journal: Mapping[str, Any] | None) -> frozenset[str]:
    """The files an unfinished run's journal lists as its own (none for a journal that lists none)."""
    listed = (journal or {}).get(JOURNAL_OWN_FILES)
    if not isinstance(listed, list):
        return frozenset()
    return frozenset(rel for rel in listed if isinstance(rel, str))


def foreign_files(
    extra: Sequence[str],
    dst_files: Mapping[str, FileMeta],
    *,
    recorded: Mapping[str, Any],
    journal_own: Collection[str],
    controls: Collection[str],
) -> Foreign:
    """The files of ``extra`` that are not the transfer's own. ``recorded``: the marker's per-file entries of an
    earlier transfer of this source (``[size, source token, destination token, md5]``); ``controls``: the markers
    and journals found below the destination folder, relative to it."""
    claimed = {rel.rpartition("/")[0] for rel in controls if "/" in rel}
    foreign: list[str] = []
    folders: set[str] = set()
    for rel in extra:
        nested = [folder for folder in _parents(rel) if folder in claimed]
        if nested:
            folders.add(nested[0])
            foreign.append(rel)
        elif not (rel in journal_own or _written(recorded.get(rel), dst_files[rel])):
            foreign.append(rel)
    return Foreign(tuple(foreign), tuple(sorted(folders)))


def _parents(rel: str) -> list[str]:
    parts = rel.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _written(entry: Any, now: FileMeta) -> bool:
    """The marker lists the file, and it is still the one the transfer wrote (same destination token)."""
    if not isinstance(entry, Sequence) or isinstance(entry, str) or len(entry) < 3:
        return False
    return entry[2] is None or entry[2] == now.token
