"""Tree fingerprints of source snapshots: every kept file's relative path, size, XXH3 digest and executable bit.

As dvc-data's tree: a frozen value with ``to_dict``/``from_dict`` whose digest is the hash of a canonical
serialisation over the sorted relative paths, so the same files give the same digest on any machine, whatever
their mtimes or the order the filesystem lists them in. ``diff`` names what changed, for the reuse explainer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, NamedTuple

import xxhash

from airflow_mlpipe.exceptions import FingerprintError, FingerprintPathNotFoundError
from airflow_mlpipe.fingerprint.hashing import HASH_NAME
from airflow_mlpipe.fingerprint.ignore import DEFAULT_IGNORE_FILE_NAMES
from airflow_mlpipe.fingerprint.scan import ScanResult, paused_gc, scan_folder
from airflow_mlpipe.fingerprint.secret_files import SecretFileFilter
from airflow_mlpipe.fingerprint.statcache import StatCache, resolve_cache

# A tree as parallel columns: relative paths, sizes, digests and flags ("-" file, "x" executable, "l" link).
Columns = tuple[Sequence[str], Sequence[int], Sequence[str], Sequence[str]]

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


def _flag(entry: TreeEntry) -> str:
    return "l" if entry[3] else "x" if entry[2] else "-"


_FILE_FLAG = {True: "x", False: "-"}  # by the executable bit


def link_entry(target: str) -> TreeEntry:
    raw = os.fsencode(target)
    return TreeEntry(len(raw), xxhash.xxh3_128_hexdigest(raw), False, True)


class Tree:
    """Files by relative POSIX path, sorted; immutable. Equal trees have equal digests and vice versa.

    Kept as parallel columns (paths, sizes, digests, flags), sorted only when first read: a warm scan of a large
    tree, whose digest comes from the stat cache, makes no per-file objects and sorts nothing.
    """

    __slots__ = ("_build", "_columns", "_digest", "_entries", "_sorted")
    _build: Callable[[], Columns] | None  # makes the columns, on first need
    _columns: Columns | None
    _sorted: bool
    _entries: Mapping[str, TreeEntry] | None
    _digest: str | None

    def __init__(self, entries: Mapping[str, TreeEntry] | None = None) -> None:
        items = sorted((entries or {}).items())
        columns = ([p for p, _ in items], [e.size for _, e in items], [e.digest for _, e in items])
        self._fill((*columns, [_flag(e) for _, e in items]), is_sorted=True, digest=None)

    @classmethod
    def from_columns(
        cls,
        paths: Sequence[str],
        sizes: Sequence[int],
        digests: Sequence[str],
        flags: Sequence[str],
        *,
        digest: str | None = None,
    ) -> Tree:
        """A tree from parallel columns in any order (``flags``: ``-`` file, ``x`` executable, ``l`` link).

        ``digest``: the tree's digest when already known (from the stat cache), trusted as given.
        """
        tree = cls.__new__(cls)
        tree._fill((paths, sizes, digests, flags), is_sorted=False, digest=digest)
        return tree

    @classmethod
    def later(cls, build: Callable[[], Columns], *, digest: str) -> Tree:
        """A tree whose digest is known and whose columns ``build`` makes only if they are asked for (a reuse
        check of an unchanged source folder needs the digest alone)."""
        tree = cls.__new__(cls)
        tree._fill(None, is_sorted=False, digest=digest)
        object.__setattr__(tree, "_build", build)
        return tree

    def _fill(self, columns: Columns | None, *, is_sorted: bool, digest: str | None) -> None:
        object.__setattr__(self, "_build", None)
        object.__setattr__(self, "_columns", columns)
        object.__setattr__(self, "_sorted", is_sorted)
        object.__setattr__(self, "_entries", None)
        object.__setattr__(self, "_digest", digest)

    def _raw_columns(self) -> Columns:
        if self._columns is None:
            assert self._build is not None
            object.__setattr__(self, "_columns", self._build())
            object.__setattr__(self, "_build", None)
        assert self._columns is not None
        return self._columns

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Tree is immutable: cannot set {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle, (*self._raw_columns(), self._digest))

    def _sorted_columns(self) -> Columns:
        columns = self._raw_columns()
        if not self._sorted:
            paths, sizes, digests, flags = columns
            order = sorted(range(len(paths)), key=paths.__getitem__)
            columns = (
                [paths[i] for i in order],
                [sizes[i] for i in order],
                [digests[i] for i in order],
                [flags[i] for i in order],
            )
            object.__setattr__(self, "_columns", columns)
            object.__setattr__(self, "_sorted", True)
        return columns

    @property
    def entries(self) -> Mapping[str, TreeEntry]:
        """Every file by relative path, in path order (read-only)."""
        if self._entries is None:
            paths, sizes, digests, flags = self._sorted_columns()
            new = tuple.__new__  # TreeEntry(...) runs Python code per call; a large tree makes this the hot loop
            values = [new(TreeEntry, (s, d, f == "x", f == "l")) for s, d, f in zip(sizes, digests, flags, strict=True)]
            object.__setattr__(self, "_entries", MappingProxyType(dict(zip(paths, values, strict=True))))
        assert self._entries is not None
        return self._entries

    @property
    def digest(self) -> str:
        """XXH3-128 of ``TREE_FORMAT`` and, per path in order, ``path, size, digest, flag``, NUL-separated."""
        if self._digest is None:
            rows = zip(*self._sorted_columns(), strict=True)
            body = TREE_FORMAT + "\0" + "".join([f"{p}\0{s}\0{d}\0{f}\0" for p, s, d, f in rows])
            object.__setattr__(self, "_digest", xxhash.xxh3_128_hexdigest(body.encode("utf-8", "surrogateescape")))
        assert self._digest is not None
        return self._digest

    @property
    def size(self) -> int:
        return sum(self._raw_columns()[1])

    def __len__(self) -> int:
        return len(self._raw_columns()[0])

    def __iter__(self) -> Iterator[str]:
        return iter(self._sorted_columns()[0])

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

    def describe(self, noun: str = "file", *, limit: int = 10, changed: str = "changed") -> list[str]:
        """Lines such as ``source file train.py changed``; at most ``limit`` of them, then a count of the rest.
        ``changed``: the words for a path in both trees (``"content changed"`` for data files)."""
        lines = [f"{noun} {p} {changed}" for p in self.changed]
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
    secret_files: SecretFileFilter | None = None,
    confined: bool = False,
) -> Tree:
    """The tree of the local ``folder`` as a snapshot keeps it (see ``ignore`` for the rules, ``walk`` for links).

    ``secret_files``: leaves well-known secret files out (see ``secret_files``), recording which; a link counts as
    secret when the file it leads to does. ``confined``: refuse a link to a file outside ``folder`` (a snapshot
    holds only what is inside its folder), as a snapshot refuses a link to a folder outside it.

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
    root = os.path.realpath(shown)
    with paused_gc():
        scanned = scan_folder(
            root,
            shown=shown,
            ignore_file_names=ignore_file_names,
            cache=store,
            started_ns=started_ns,
            workers=workers,
        )
        config = [TREE_FORMAT, *ignore_file_names]
        if secret_files is not None:
            scanned = without_secret_files(scanned, secret_files, root)
            config.append(secret_files.salt)
        if confined:
            _refuse_links_out(scanned, root, shown)
        tree = tree_of(scanned, cache=store, root=root, config="\0".join(config))
        tree.digest  # noqa: B018 -- computed here, where the collector is paused
    return tree


def without_secret_files(scanned: ScanResult, secret_files: SecretFileFilter, root: str = "") -> ScanResult:
    """The scan less the files ``secret_files`` does not keep, a followed link judged by its target's path too
    (relative to ``root`` when inside it). A folder's stat-cache signature stays valid: the filter's settings are
    part of the cached tree's config."""
    followed = scanned.followed
    targets = {rel: _shown_target(target, root) for rel, target in followed.items()}
    folders = []
    for part in scanned.folders:
        prefix = f"{part.rel}/" if part.rel else ""
        kept = [i for i, name in enumerate(part.names) if secret_files.keeps(prefix + name, targets.get(prefix + name))]
        if len(kept) == len(part.names):
            folders.append(part)
            continue
        folders.append(
            part._replace(
                names=[part.names[i] for i in kept],
                sizes=[part.sizes[i] for i in kept],
                digests=[part.digests[i] for i in kept],
                executable=[part.executable[i] for i in kept],
            )
        )
    links = {rel: target for rel, target in scanned.links.items() if secret_files.keeps(rel)}
    kept_names = {f"{p.rel}/{n}" if p.rel else n for p in folders for n in p.names} if followed else set()
    return ScanResult(folders, links, {rel: t for rel, t in followed.items() if rel in kept_names})


def _shown_target(target: str, root: str) -> str:
    """A followed link's target: ``/``-separated and relative to ``root`` when inside it, else as it is."""
    if root and target.startswith(root.rstrip(os.sep) + os.sep):
        return os.path.relpath(target, root).replace(os.sep, "/")
    return target


def _refuse_links_out(scanned: ScanResult, root: str, shown: str) -> None:
    """Refuse a kept link whose target (all links resolved) lies outside ``root``."""
    inside = root.rstrip(os.sep) + os.sep
    for rel, target in sorted(scanned.followed.items()):
        if target.startswith(inside):
            continue
        link = os.readlink(os.path.join(root, *rel.split("/")))
        resolved = "" if link == target else f" (which resolves to {target!r})"
        raise FingerprintError(
            f"source file {rel!r} in {shown!r} is a link to {link!r}{resolved}, outside the source folder: a step's "
            "snapshot holds only what is inside source_directory; copy the file in (or point the link inside), "
            "read it as a dataset, or exclude the link in .amlignore"
        )


def tree_of(scanned: ScanResult, *, cache: StatCache | None = None, root: str = "", config: str = "") -> Tree:
    """The tree of a scanned folder; its digest from ``cache`` when the whole tree is unchanged since it was kept."""
    signature = scanned.signature() if cache is not None else None
    known = cache.tree_digest(root, config, signature) if cache is not None and signature is not None else None
    if known is not None:
        return Tree.later(partial(_columns_of, scanned), digest=known)
    tree = Tree.from_columns(*_columns_of(scanned))
    if cache is not None and signature is not None:
        cache.remember_tree(root, config, signature, tree.digest)
    return tree


def _columns_of(scanned: ScanResult) -> Columns:
    paths: list[str] = []
    sizes: list[int] = []
    digests: list[str] = []
    flags: list[str] = []
    for part in scanned.folders:
        paths += map(f"{part.rel}/".__add__, part.names) if part.rel else part.names
        sizes += part.sizes
        digests += part.digests
        flags += map(_FILE_FLAG.__getitem__, part.executable)
    for rel, target in scanned.links.items():
        entry = link_entry(target)
        paths.append(rel)
        sizes.append(entry.size)
        digests.append(entry.digest)
        flags.append("l")
    return paths, sizes, digests, flags


def _unpickle(
    paths: Sequence[str], sizes: Sequence[int], digests: Sequence[str], flags: Sequence[str], digest: str | None
) -> Tree:
    return Tree.from_columns(paths, sizes, digests, flags, digest=digest)
