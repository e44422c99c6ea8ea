"""Source snapshots: the ``source_directory`` minus ignored files, stored content-addressed in the default
datastore (``_mlpipe/objects/<xx>/<digest>`` per file, ``_mlpipe/snapshots/<tree digest>.json`` per tree), with
the git commit, branch and dirty state when the folder is in a git repository."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.exceptions import ConfigError
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
    """Upload the files the store lacks, then the tree record (last, so a tree record implies its objects)."""
    if store.exists(tree_path(tree.digest)):
        return Snapshot(tree, 0)
    uploaded = 0
    for rel, entry in tree.entries.items():
        target = object_path(entry.digest)
        if store.exists(target):
            continue
        full = os.path.join(source_directory, *rel.split("/"))
        data = os.readlink(full).encode() if entry.link else _read(full)
        store.create_if_absent(target, data)
        uploaded += 1
    store.create_json_if_absent(tree_path(tree.digest), tree.to_dict())
    return Snapshot(tree, uploaded)


def fetch_snapshot(digest: str, store: Datastore, target: str) -> Tree:
    """Recreate snapshot ``digest`` under the local folder ``target``."""
    try:
        tree = Tree.from_dict(store.read_json(tree_path(digest)))
    except FileNotFoundError:
        raise ConfigError(
            f"source snapshot {digest} is missing from datastore {store.name!r} ({tree_path(digest)}); it may have "
            "been cleaned up: run the step again so that it is uploaded anew"
        ) from None
    for rel, entry in tree.entries.items():
        local = os.path.join(target, *rel.split("/"))
        os.makedirs(os.path.dirname(local), exist_ok=True)
        data = store.read_bytes(object_path(entry.digest))
        if entry.link:
            os.symlink(data.decode(), local)
            continue
        with open(local, "wb") as fh:
            fh.write(data)
        if entry.executable:
            os.chmod(local, 0o755)
    return tree


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
