"""Source snapshots: the ``source_directory`` minus ignored files, stored content-addressed in the default
datastore (``_mlpipe/objects/<xx>/<digest>`` per file, ``_mlpipe/snapshots/<tree digest>.json`` per tree), with
the git commit, branch and dirty state when the folder is in a git repository."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.paths import normalize_relpath
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.hashing import hash_bytes
from airflow_mlpipe.fingerprint.tree import Tree, scan_tree
from airflow_mlpipe.storage.datastore import Datastore

SNAPSHOTS_ROOT = "_mlpipe/snapshots"
OBJECTS_ROOT = "_mlpipe/objects"
DEFAULT_LIMIT_MB = 300  # Azure ML's snapshot limit; MLPIPE_SNAPSHOT_LIMIT_MB changes it


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


def snapshot_limit_bytes() -> int:
    raw = os.environ.get("MLPIPE_SNAPSHOT_LIMIT_MB", str(DEFAULT_LIMIT_MB))
    try:
        return int(float(raw) * 1024 * 1024)
    except ValueError:
        raise ConfigError(f"MLPIPE_SNAPSHOT_LIMIT_MB={raw!r} is not a number of megabytes") from None


def scan_source(source_directory: str) -> Tree:
    """The source tree, refusing one over the snapshot limit (naming the biggest files)."""
    tree = scan_tree(source_directory)
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
    """Upload the files the store lacks, then the tree record (last, so a tree record implies its objects).

    Each file is read once for upload and its bytes are checked against the digest the tree holds: a file
    changed since the scan fails the snapshot (naming the file) instead of storing new bytes under an old digest.
    """
    if store.exists(tree_path(tree.digest)):
        return Snapshot(tree, 0)  # checked when first stored: the same tree is the same files and links
    root = os.path.abspath(source_directory)
    for rel, entry in tree.entries.items():
        if entry.link:  # refused now rather than when the runner fetches the snapshot
            full = os.path.join(root, *rel.split("/"))
            _confined_link(os.readlink(full), full, root, rel)
    uploaded = 0
    for rel, entry in tree.entries.items():
        target = object_path(entry.digest)
        if store.exists(target):
            continue
        full = os.path.join(source_directory, *rel.split("/"))
        data = os.fsencode(os.readlink(full)) if entry.link else _read(full)
        if hash_bytes(data) != entry.digest:
            raise ConfigError(
                f"source file {rel!r} in {source_directory!r} changed while the step's snapshot was being taken; "
                "run the step again once nothing writes to its source_directory"
            )
        store.create_if_absent(target, data)
        uploaded += 1
    store.create_json_if_absent(tree_path(tree.digest), tree.to_dict())
    return Snapshot(tree, uploaded)


def fetch_snapshot(digest: str, store: Datastore, target: str) -> Tree:
    """Recreate snapshot ``digest`` under the local folder ``target``, checking every byte against the digests:
    the tree against ``digest``, each file against its entry. Paths stay inside ``target`` and links may only
    point inside it."""
    try:
        tree = Tree.from_dict(store.read_json(tree_path(digest)))
    except FileNotFoundError:
        raise ConfigError(
            f"source snapshot {digest} is missing from datastore {store.name!r} ({tree_path(digest)}); it may have "
            "been cleaned up: run the step again so that it is uploaded anew"
        ) from None
    if tree.digest != digest:
        raise ConfigError(f"source snapshot {digest}: its tree record {tree_path(digest)} describes another tree")
    root = os.path.abspath(target)
    for rel, entry in tree.entries.items():
        local = os.path.join(root, *_confined(rel, digest).split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        data = store.read_bytes(object_path(entry.digest))
        if hash_bytes(data) != entry.digest:
            raise ConfigError(
                f"source snapshot {digest}: the stored copy of {rel!r} ({object_path(entry.digest)}) does not match "
                "its digest; delete that object and run the step again to upload it anew"
            )
        if entry.link:
            os.symlink(_confined_link(data.decode(), local, root, rel), local)
            continue
        with open(local, "wb") as fh:
            fh.write(data)
        if entry.executable:
            os.chmod(local, 0o755)
    return tree


def _confined(rel: str, digest: str) -> str:
    try:
        return normalize_relpath(rel, datastore=f"snapshot {digest}")
    except ConfigError:
        raise ConfigError(f"source snapshot {digest} holds the path {rel!r}, which leaves the snapshot") from None


def _confined_link(link: str, local: str, root: str, rel: str) -> str:
    resolved = os.path.normpath(os.path.join(os.path.dirname(local), link))
    if os.path.isabs(link) or not (resolved == root or resolved.startswith(root + os.sep)):
        raise ConfigError(
            f"source file {rel!r} is a link to {link!r}, outside the source folder: a step's snapshot holds only "
            "what is inside source_directory (copy the file in, or read it as a dataset)"
        )
    return link


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


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
