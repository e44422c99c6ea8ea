"""Tree fingerprints of source snapshots: every kept file's relative path, size, XXH3 digest and executable bit.

As dvc-data's tree: a frozen value with ``to_dict``/``from_dict`` whose digest is the hash of a canonical
serialisation over the sorted relative paths, so the same files give the same digest on any machine, whatever
their mtimes or the order the filesystem lists them in. ``diff`` names what changed, for the reuse explainer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, repeat
from operator import itemgetter
from types import MappingProxyType
from typing import Any, NamedTuple

import xxhash

from airflow_mlpipe.exceptions import FingerprintError, FingerprintPathNotFoundError
from airflow_mlpipe.fingerprint.hashing import HASH_NAME
from airflow_mlpipe.fingerprint.ignore import DEFAULT_IGNORE_FILE_NAMES
from airflow_mlpipe.fingerprint.scan import ScanResult, paused_gc, scan_folder
from airflow_mlpipe.fingerprint.statcache import StatCache, resolve_cache

TREE_FORMAT = "mlpipe-tree/1"  # part of every digest: a new serialisation gets a new salt


class TreeEntry(NamedTuple):
    """One file of a tree. ``link``: a symlink that is not followed, fingerprinted by its link text."""

    size: int
    digest: str
    executable: bool = False
    link: bool = False

    @property
    def flag(self) -> str:
        """``l`` for a link, ``x`` for an executable file, ``-`` for another file."""
        return _flag(self)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"size": self.size, "digest": self.digest, "executable": self.executable}
        if self.link:
            out["link"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TreeEntry:
        return cls(int(data["size"]), str(data["digest"]), bool(data["executable"]), bool(data.get("link", False)))


_SIZE, _DIGEST = itemgetter(0), itemgetter(1)


def _flag(entry: TreeEntry) -> str:
    return "l" if entry[3] else "x" if entry[2] else "-"


def link_entry(target: str) -> TreeEntry:
    raw = os.fsencode(target)
    return TreeEntry(len(raw), xxhash.xxh3_128_hexdigest(raw), False, True)


@dataclass(frozen=True, eq=False)
class Tree:
    """Files by relative POSIX path, sorted. Equal trees have equal digests and vice versa."""

    entries: Mapping[str, TreeEntry]

    def __post_init__(self) -> None:
        object.__setattr__(self, "entries", MappingProxyType(dict(sorted(self.entries.items()))))

    @classmethod
    def _presorted(cls, entries: dict[str, TreeEntry]) -> Tree:
        """A tree from entries already in path order (skips a sort of a large tree)."""
        tree = cls.__new__(cls)
        object.__setattr__(tree, "entries", MappingProxyType(entries))
        return tree

    @cached_property
    def digest(self) -> str:
        """XXH3-128 of ``TREE_FORMAT`` and, per path in order, ``path, size, digest, flag``, NUL-separated."""
        values = self.entries.values()
        fields = zip(self.entries, map(str, map(_SIZE, values)), map(_DIGEST, values), map(_flag, values), strict=True)
        body = "\0".join([TREE_FORMAT, *chain.from_iterable(fields), ""])
        return xxhash.xxh3_128_hexdigest(body.encode("utf-8", "surrogateescape"))

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries)

    def __contains__(self, path: object) -> bool:
        return path in self.entries

    def __getitem__(self, path: str) -> TreeEntry:
        return self.entries[path]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tree) and self.digest == other.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Tree({len(self)} files, digest={self.digest!r})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": TREE_FORMAT,
            "hash": HASH_NAME,
            "digest": self.digest,
            "entries": {p: e.to_dict() for p, e in self.entries.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tree:
        """The tree ``to_dict`` wrote; ``ValueError`` for another format or a digest that does not match."""
        if data.get("format") != TREE_FORMAT or data.get("hash") != HASH_NAME:
            raise ValueError(
                f"not a {TREE_FORMAT} tree hashed with {HASH_NAME}: format {data.get('format')!r}, "
                f"hash {data.get('hash')!r}"
            )
        tree = cls({str(p): TreeEntry.from_dict(e) for p, e in data["entries"].items()})
        if "digest" in data and data["digest"] != tree.digest:
            raise ValueError(f"tree record is damaged: digest {data['digest']!r} does not match its entries")
        return tree


@dataclass(frozen=True)
class TreeDiff:
    """Paths only in the new tree, only in the old one, and in both with other bytes, size or kind."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self, noun: str = "file", *, limit: int = 10) -> list[str]:
        """Lines such as ``source file train.py changed``; at most ``limit`` of them, then a count of the rest."""
        lines = [f"{noun} {p} changed" for p in self.changed]
        lines += [f"{noun} {p} added" for p in self.added]
        lines += [f"{noun} {p} removed" for p in self.removed]
        if len(lines) > limit:
            lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
        return lines


def diff(old: Tree, new: Tree) -> TreeDiff:
    """What differs between two trees, each list sorted."""
    old_e, new_e = old.entries, new.entries
    return TreeDiff(
        added=tuple(p for p in new_e if p not in old_e),
        removed=tuple(p for p in old_e if p not in new_e),
        changed=tuple(p for p, e in new_e.items() if p in old_e and old_e[p] != e),
    )


def scan_tree(
    folder: str | os.PathLike[str],
    *,
    ignore_file_names: Sequence[str] = DEFAULT_IGNORE_FILE_NAMES,
    cache: StatCache | bool = True,
    workers: int | None = None,
) -> Tree:
    """The tree of the local ``folder`` as a snapshot keeps it (see ``ignore`` for the rules, ``walk`` for links).

    ``cache``: ``True`` for the default stat cache, ``False`` to read every file, or a ``StatCache``. Raises
    ``FingerprintPathNotFoundError`` when the folder does not exist and ``UnreadableFileError`` naming a file or
    folder in it that cannot be read.
    """
    shown = os.fspath(folder)
    if not os.path.isdir(shown):
        if os.path.lexists(shown):
            raise FingerprintError(f"{shown!r} is a file, not a folder; give the folder that holds it")
        raise FingerprintPathNotFoundError(f"folder {shown!r} does not exist; check the path (and the working folder)")
    store = resolve_cache(cache)
    started_ns = store.clock() if store is not None else 0  # before any stat: see StatCache on racy entries
    with paused_gc():
        scanned = scan_folder(
            os.path.realpath(shown),
            shown=shown,
            ignore_file_names=ignore_file_names,
            cache=store,
            started_ns=started_ns,
            workers=workers,
        )
        tree = tree_of(scanned)
        tree.digest  # noqa: B018 -- computed here, where the collector is paused
    return tree


def tree_of(scanned: ScanResult) -> Tree:
    """The tree of a scanned folder, in path order."""
    paths: list[str] = []
    values: list[TreeEntry] = []
    new = tuple.__new__  # TreeEntry(...) runs Python code per call; a large tree makes this the hot loop
    for part in scanned.folders:
        prefix = f"{part.rel}/" if part.rel else ""
        paths += [prefix + name for name in part.names]
        values += [
            new(TreeEntry, entry)
            for entry in zip(part.sizes, part.digests, part.executable, repeat(False, len(part.names)), strict=True)
        ]
    for rel, target in scanned.links.items():
        paths.append(rel)
        values.append(link_entry(target))
    return Tree._presorted(dict(sorted(zip(paths, values, strict=True), key=_first)))


def _first(pair: tuple[str, TreeEntry]) -> str:
    return pair[0]
