"""Source snapshots: the ``source_directory`` minus ignored files, stored content-addressed in the default
datastore, with the git commit, branch and dirty state when the folder is in a git repository.

Layout: ``_mlpipe/snapshots/<tree digest>.json``, the snapshot record (the tree, plus where its pack is) and its
commit point; ``_mlpipe/snapshots/<tree digest>.pack``, the tree's small files in one object; and
``_mlpipe/objects/<xx>/<digest>``, one object per large file. Snapshots stored before packs existed have every
file as an object and no ``pack`` in their record; they are fetched the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.hashing import hash_bytes, hash_file, hash_files
from airflow_mlpipe.fingerprint.secret_files import SecretFileFilter
from airflow_mlpipe.fingerprint.tree import Tree, TreeEntry, scan_tree
from airflow_mlpipe.steps.snapshot_cache import SnapshotCache
from airflow_mlpipe.steps.snapshot_files import SnapshotWriter, confined_link, read_entry
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.errors import translate_errors

SNAPSHOTS_ROOT = "_mlpipe/snapshots"
OBJECTS_ROOT = "_mlpipe/objects"
DEFAULT_LIMIT_MB = 300  # Azure ML's snapshot limit; MLPIPE_SNAPSHOT_LIMIT_MB changes it
PACK_FORMAT = "mlpipe-pack/1"  # the packed files' bytes concatenated in path order; offsets come from the tree
# Files smaller than this travel in their tree's pack (one request for all of them); larger ones stay objects of
# their own, shared by every tree that holds them, so a changed script does not upload the model file again.
PACK_MAX_FILE = 1024 * 1024
_WORKERS = 8  # concurrent uploads of large files
_READ_BATCH = 32  # concurrent reads: on Azurite, 1,000 small objects read 1.5-3x faster than with adlfs's default
_GROUP_BYTES = 256 * 1024 * 1024  # the most bytes of large files read into memory at once when fetching
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    tree: Tree
    uploaded_files: int

    @property
    def digest(self) -> str:
        return self.tree.digest

    def describe(self) -> dict[str, Any]:
        return {"digest": self.digest, "files": len(self.tree), "bytes": self.tree.size, "path": tree_path(self.digest)}


def tree_path(digest: str) -> str:
    return f"{SNAPSHOTS_ROOT}/{digest}.json"


def object_path(digest: str) -> str:
    return f"{OBJECTS_ROOT}/{digest[:2]}/{digest}"


def pack_path(digest: str) -> str:
    return f"{SNAPSHOTS_ROOT}/{digest}.pack"


def snapshot_limit_bytes() -> int:
    raw = os.environ.get("MLPIPE_SNAPSHOT_LIMIT_MB", str(DEFAULT_LIMIT_MB))
    try:
        return int(float(raw) * 1024 * 1024)
    except ValueError:
        raise ConfigError(f"MLPIPE_SNAPSHOT_LIMIT_MB={raw!r} is not a number of megabytes") from None


def scan_source(source_directory: str, secret_files: SecretFileFilter | None = None) -> Tree:
    """The source tree, refusing one over the snapshot limit (naming the biggest files) or holding a link to a file
    outside ``source_directory``. Well-known secret files, and links to them, are left out (``secret_files``:
    which ones a step includes anyway; its ``skipped`` lists those left out)."""
    tree = scan_tree(source_directory, secret_files=secret_files or SecretFileFilter(), confined=True)
    limit = snapshot_limit_bytes()
    if tree.size > limit:
        biggest = sorted(tree.entries.items(), key=lambda kv: kv[1].size, reverse=True)[:5]
        listing = ", ".join(f"{p} ({e.size / 1048576:.1f} MiB)" for p, e in biggest)
        raise ConfigError(
            f"source_directory {source_directory!r} holds {tree.size / 1048576:.1f} MiB, over the snapshot limit of "
            f"{limit / 1048576:.0f} MiB; biggest files: {listing}. Keep data out of the source folder (list it in "
            ".amlignore or .gitignore, or read it as a dataset), or raise MLPIPE_SNAPSHOT_LIMIT_MB"
        )
    return tree


def store_snapshot(source_directory: str, tree: Tree, store: Datastore) -> Snapshot:
    """Upload the tree's pack and the large files the store lacks, then the snapshot record: last, and only once
    everything it names is stored, so a record implies its files. A snapshot already stored costs one check.

    Each file is read once for upload and its bytes are checked against the digest the tree holds: a file
    changed since the scan fails the snapshot (naming the file) instead of storing new bytes under an old digest.
    Racing stores of one tree are safe: every object is created only if absent, and a pack or object already
    there holds the same bytes (a pack is the tree's files in path order, so equal trees give equal packs).
    """
    if store.exists(tree_path(tree.digest)):
        return Snapshot(tree, 0)  # checked when first stored: the same tree is the same files and links
    root = os.path.abspath(source_directory)
    for rel, entry in tree.entries.items():
        if entry.link:  # refused now rather than when the runner fetches the snapshot
            full = os.path.join(root, *rel.split("/"))
            confined_link(os.readlink(full), full, root, rel)
    packed, loose = _split(tree, PACK_MAX_FILE)
    record: dict[str, Any] = tree.to_dict()
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        stored = [pool.submit(_store_object, store, source_directory, rel, entry) for rel, entry in loose]
        try:
            uploaded = 0
            if packed:
                pack = b"".join(_checked(source_directory, rel, entry) for rel, entry in packed)
                if store.create_if_absent(pack_path(tree.digest), pack):
                    uploaded += len(packed)
                record["pack"] = {
                    "format": PACK_FORMAT,
                    "path": pack_path(tree.digest),
                    "max_file": PACK_MAX_FILE,
                    "files": len(packed),
                    "bytes": len(pack),
                }
            uploaded += sum(done.result() for done in stored)
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    store.create_json_if_absent(tree_path(tree.digest), record)
    return Snapshot(tree, uploaded)


def fetch_snapshot(digest: str, store: Datastore, target: str, *, cache: bool = True) -> Tree:
    """Recreate snapshot ``digest`` under the local folder ``target``, checking every byte against the digests:
    the tree against ``digest``, each file against its entry. Paths stay inside ``target`` and links may only
    point inside it.

    From a datastore on another machine the snapshot goes through this machine's snapshot cache (see
    ``snapshot_cache``): a snapshot fetched before costs no request. ``cache=False`` reads the datastore."""
    if not cache or store.is_local:  # a local datastore is already on this machine
        return download_snapshot(digest, store, target)
    local = SnapshotCache.default()
    tree = local.materialise(digest, target)
    if tree is not None:
        return tree
    try:
        local.fill(digest, lambda folder: download_snapshot(digest, store, folder))
    except OSError as err:  # an unwritable cache folder: the step still runs
        log.warning("snapshot cache %s not used: %s", local.root, err)
        return download_snapshot(digest, store, target)
    # Just filled from checked bytes (ours, or another runner's that won the rename): copied without reading again.
    return local.materialise(digest, target, check=False) or download_snapshot(digest, store, target)


def download_snapshot(digest: str, store: Datastore, target: str) -> Tree:
    """Fetch snapshot ``digest`` from ``store`` into ``target``: its record, its pack in one read, and its other
    files (all of them for a snapshot stored before packs existed) in concurrent reads."""
    try:
        record = store.read_json(tree_path(digest))
    except FileNotFoundError:
        raise ConfigError(
            f"source snapshot {digest} is missing from datastore {store.name!r} ({tree_path(digest)}); it may have "
            "been cleaned up: run the step again so that it is uploaded anew"
        ) from None
    try:
        tree = Tree.from_dict(record)
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"source snapshot {digest}: its tree record {tree_path(digest)} is damaged: {err}") from None
    if tree.digest != digest:
        raise ConfigError(f"source snapshot {digest}: its tree record {tree_path(digest)} describes another tree")
    writer = SnapshotWriter(digest, target)
    pack = record.get("pack")
    packed, loose = _split(tree, int(pack["max_file"])) if pack else ([], list(tree.entries.items()))
    if packed:
        _unpack(store.read_bytes(str(pack["path"])), packed, writer, where=str(pack["path"]))
    if store.is_local:
        _copy_local(store, loose, writer)
        return tree
    small = [(rel, e) for rel, e in loose if e.link or e.size < PACK_MAX_FILE]
    large = [(rel, e) for rel, e in loose if not (e.link or e.size < PACK_MAX_FILE)]
    for group in _groups(small):  # (a snapshot stored before packs has all its files loose)
        paths = [object_path(entry.digest) for _, entry in group]
        found = _read_batch(store, paths)
        writer.write_all([(rel, e, data, path) for (rel, e), path, data in zip(group, paths, found, strict=True)])
    _get_large(store, large, writer)
    return tree


def _copy_local(store: Datastore, loose: list[tuple[str, TreeEntry]], writer: SnapshotWriter) -> None:
    """From a local datastore: each stored object checked against its digest (through the stat cache: an object
    fetched before, unchanged since, is not read again), then copied by the kernel without reading it back."""
    copies = [(rel, e, store.full_path(object_path(e.digest)), object_path(e.digest)) for rel, e in loose]
    try:
        digests = hash_files([source for _, _, source, _ in copies], cache=True)
    except FileNotFoundError as err:
        raise _missing_object(store, str(err.filename)) from None
    for (rel, entry, _, where), found in zip(copies, digests, strict=True):
        if found != entry.digest:
            raise writer.damaged(rel, where)
    checked = SnapshotWriter(writer.digest, writer.root, check=False)
    try:
        checked.copy_all(copies)
    except FileNotFoundError as err:
        raise _missing_object(store, str(err.filename)) from None


def _get_large(store: Datastore, large: list[tuple[str, TreeEntry]], writer: SnapshotWriter) -> None:
    """Large objects streamed to their files by the library's own batched ``get`` (as a plain download of the
    folder would be), under temporary names, then each checked against its digest and renamed into place."""
    if not large:
        return
    temps = [writer.temporary(rel) for rel, _ in large]
    remote = [store.full_path(object_path(entry.digest)) for _, entry in large]
    try:
        with translate_errors(store.config, "read", object_path(large[0][1].digest)):
            if getattr(store.fs, "async_impl", False):
                store.fs.get(remote, temps, batch_size=_WORKERS)
            else:  # one read each: fsspec's memory filesystem hands every reader of a file the same file object
                for path, temp in zip(remote, temps, strict=True):
                    with open(temp, "wb") as fh:
                        fh.write(store.fs.cat_file(path))
        writer.adopt_all([(rel, e, temp, object_path(e.digest)) for (rel, e), temp in zip(large, temps, strict=True)])
    except FileNotFoundError as err:
        missing = next(
            (object_path(e.digest) for _, e in large if e.digest in str(err)), object_path(large[0][1].digest)
        )
        raise _missing_object(store, missing) from None
    finally:
        for temp in temps:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)


def _split(tree: Tree, max_file: int) -> tuple[list[tuple[str, TreeEntry]], list[tuple[str, TreeEntry]]]:
    """Entries that go in the tree's pack (smaller than ``max_file``, in path order), and the others."""
    packed: list[tuple[str, TreeEntry]] = []
    loose: list[tuple[str, TreeEntry]] = []
    for item in tree.entries.items():
        (packed if item[1].size < max_file else loose).append(item)
    return packed, loose


def _unpack(pack: bytes, packed: list[tuple[str, TreeEntry]], writer: SnapshotWriter, *, where: str) -> None:
    if len(pack) != sum(entry.size for _, entry in packed):
        raise ConfigError(
            f"source snapshot {writer.digest}: its pack {where} holds {len(pack)} bytes, not the tree's; delete it "
            "and the snapshot record next to it, and run the step again to upload them anew"
        )
    view = memoryview(pack)
    items = []
    offset = 0
    for rel, entry in packed:
        items.append((rel, entry, view[offset : offset + entry.size], f"in {where}"))
        offset += entry.size
    writer.write_all(items)


def _groups(items: list[tuple[str, TreeEntry]]) -> list[list[tuple[str, TreeEntry]]]:
    """Runs of entries whose bytes together fit in memory (at least one entry each)."""
    groups: list[list[tuple[str, TreeEntry]]] = []
    size = 0
    for item in items:
        if not groups or size + item[1].size > _GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += item[1].size
    return groups


def _read_batch(store: Datastore, paths: list[str]) -> list[bytes]:
    if not paths:
        return []
    fulls = [store.full_path(p) for p in paths]
    with translate_errors(store.config, "read", paths[0]):
        batch = {"batch_size": _READ_BATCH} if getattr(store.fs, "async_impl", False) else {}
        found = store.fs.cat_ranges(fulls, None, None, on_error="return", **batch)
    out: list[bytes] = []
    for path, data in zip(paths, found, strict=True):
        if isinstance(data, FileNotFoundError):
            raise _missing_object(store, path)
        if isinstance(data, BaseException):
            with translate_errors(store.config, "read", path):
                raise data
        out.append(bytes(data))
    return out


def _missing_object(store: Datastore, path: str) -> ConfigError:
    return ConfigError(
        f"source snapshot object {path} is missing from datastore {store.name!r}; it may have been cleaned up: "
        "run the step again so that it is uploaded anew"
    )


def _store_object(store: Datastore, source_directory: str, rel: str, entry: TreeEntry) -> int:
    """Upload one large file as a content-addressed object unless the store has it (shared by every tree)."""
    target = object_path(entry.digest)
    if store.exists(target):
        return 0
    if store.is_local and not entry.link:
        return int(_copy_object(store.full_path(target), source_directory, rel, entry))
    return int(store.create_if_absent(target, _checked(source_directory, rel, entry)))


def _copy_object(full: str, source_directory: str, rel: str, entry: TreeEntry) -> bool:
    """Into a local datastore: the kernel copies the file beside ``full``, the copy is checked, made durable and
    linked into place (atomic, and exactly one of racing writers wins)."""
    os.makedirs(os.path.dirname(full), exist_ok=True)
    scratch = f"{full}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copyfile(os.path.join(source_directory, *rel.split("/")), scratch)
        if hash_file(scratch) != entry.digest:
            raise _changed(source_directory, rel)
        with open(scratch, "rb") as fh:
            os.fsync(fh.fileno())
        try:
            os.link(scratch, full)
        except FileExistsError:
            return False
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(scratch)


def _checked(source_directory: str, rel: str, entry: TreeEntry) -> bytes:
    data = read_entry(source_directory, rel, entry)
    if hash_bytes(data) != entry.digest:
        raise _changed(source_directory, rel)
    return data


def _changed(source_directory: str, rel: str) -> ConfigError:
    return ConfigError(
        f"source file {rel!r} in {source_directory!r} changed while the step's snapshot was being taken; "
        "run the step again once nothing writes to its source_directory"
    )


def git_info(folder: str) -> dict[str, Any] | None:
    """Commit, branch, dirty state and remote of the git repository holding ``folder``; None outside git."""

    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--", ".")
    return {
        "commit": commit,
        "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status),
        "remote": _without_credentials(git("config", "--get", "remote.origin.url")),
    }


def _without_credentials(url: str | None) -> str | None:
    """``https://user:token@host/repo`` → ``https://host/repo``: remotes may embed tokens."""
    if not url or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{rest.split('@', 1)[1]}"
