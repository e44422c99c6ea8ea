"""A datastore: a named fsspec filesystem and a root folder in it.

Every path a caller gives is relative to the root and may not leave it. Writes of small records are atomic
(``write_bytes`` replaces a whole object, ``create_if_absent`` has exactly one winner among racing writers) and a
folder of files counts as complete only once its completion marker exists. Compare-and-swap on small objects
(a read that returns the object's ETag, a write only while it is unchanged) is in ``storage.conditional``.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import threading
import uuid
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import IO, Any

from airflow_mlpipe.core.paths import join_under, normalize_relpath, relative_to
from airflow_mlpipe.core.urls import display_url
from airflow_mlpipe.exceptions import ConfigError, DatastoreAccessError, IncompleteFolderError
from airflow_mlpipe.storage.config import DatastoreConfig, config_from_fields
from airflow_mlpipe.storage.errors import translate_errors
from airflow_mlpipe.storage.timeouts import TIMEOUT_OPTION, client_options, hold_to_budget, store_budget

# The completion marker of a folder of files. Leading underscore: Spark, pyarrow and pandas readers skip it.
COMPLETE_MARKER = "_MLPIPE_COMPLETE"

_memory_lock = threading.Lock()


class Datastore:
    """A named place to keep data: ``Datastore.get("name")`` or ``Datastore.get_default()`` in DAG files."""

    def __init__(
        self,
        name: str,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        description: str = "",
    ) -> None:
        _check_arguments(name, storage_options, description)
        if url is not None and not isinstance(url, str):
            from airflow_mlpipe.core.checks import shown

            raise ConfigError(
                f"Datastore {name!r}: url {shown(url)} must be one URL string, not {type(url).__name__}, e.g. "
                "Datastore('lake', 'az://container/path') or Datastore('lake', Path('/data/lake').as_uri())"
            )
        extra = {"url": url, **dict(storage_options or {})}
        if description:
            extra["description"] = description
        self._config: DatastoreConfig | None = config_from_fields(name, conn_type=None, extra=extra)
        self._name = name

    @classmethod
    def from_config(cls, config: DatastoreConfig) -> Datastore:
        obj = cls.__new__(cls)
        obj._config, obj._name = config, config.name
        return obj

    @classmethod
    def by_name(cls, name: str) -> Datastore:
        """A datastore whose connection is looked up on first use, not now: what DAG files get, so that
        parsing them never waits for a connection lookup."""
        from airflow_mlpipe.exceptions import DatastoreNotFoundError

        if not isinstance(name, str) or not name:
            raise DatastoreNotFoundError(f"datastore name {name!r} is not a non-empty string")
        obj = cls.__new__(cls)
        obj._config, obj._name = None, name
        return obj

    # -- resolution ---------------------------------------------------------------------------------------------
    @classmethod
    def get(cls, name: str) -> Datastore:
        """The datastore defined by the Airflow connection ``name`` (conn_type ``mlpipe_datastore``)."""
        return cls.by_name(name)

    @classmethod
    def get_default(cls) -> Datastore:
        """Connection ``mlpipe_default``, or the local folder ``$MLPIPE_HOME/datastore`` when it is absent."""
        from airflow_mlpipe.storage.config import DEFAULT_DATASTORE

        return cls.by_name(DEFAULT_DATASTORE)

    # -- identity -----------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def config(self) -> DatastoreConfig:
        """The connection's settings (looked up on first use for ``Datastore.get``)."""
        if self._config is None:
            from airflow_mlpipe.storage.resolve import resolve_datastore

            self._config = resolve_datastore(self._name).config
        return self._config

    @property
    def protocol(self) -> str:
        return self.config.parsed.protocol

    @property
    def url(self) -> str:
        """The root's canonical URL (no credentials)."""
        return display_url(self.config.parsed)

    @property
    def description(self) -> str:
        return self.config.description

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    def __repr__(self) -> str:
        if self._config is None:
            return f"Datastore(name={self.name!r})"
        return f"Datastore(name={self.name!r}, url={self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Datastore) and (self.name, self.url) == (other.name, other.url)

    def __hash__(self) -> int:
        return hash((self.name, self.url))

    # -- filesystem ---------------------------------------------------------------------------------------------
    @cached_property
    def fs(self) -> Any:
        """The fsspec filesystem (built on first use; the backend library is imported then)."""
        backend = self.config.parsed.backend
        if backend.module:
            try:
                __import__(backend.module)
            except ImportError:
                raise ConfigError(
                    f"datastore {self.name!r}: url {self.config.public_url!r} needs the Python package "
                    f"{backend.package!r}, which is not installed; run: pip install {backend.package}"
                ) from None
        import fsspec

        options = dict(self.config.storage_options)
        budget = store_budget(self.name, options)
        options.pop(TIMEOUT_OPTION, None)
        if backend.protocol == "file":
            options.setdefault("auto_mkdir", True)
        elif backend.protocol != "memory":
            # Registry records, leases and markers are written by many processes: a cached listing would hide
            # their writes (a version allocator would retry the same version forever).
            options.setdefault("use_listings_cache", False)
            options.update(client_options(backend.protocol, budget, options))
        if backend.protocol == "abfs":
            _quiet_azure_request_logs()
        with translate_errors(self.config, "open the filesystem of"):
            fs = fsspec.filesystem(backend.protocol, **options)
        hold_to_budget(fs, backend.protocol, budget)
        return fs

    @cached_property
    def root(self) -> str:
        """The root folder as the backend filesystem spells paths."""
        root = self.config.parsed.root
        if self.protocol == "file":
            root = os.path.abspath(root)
            if not os.path.isdir(root):
                with translate_errors(self.config, "create the root folder"):
                    os.makedirs(root, exist_ok=True)
        return root

    def full_path(self, path: str = "") -> str:
        """The backend path of ``path`` (relative to the datastore root; never outside it)."""
        return join_under(self.root, normalize_relpath(path, datastore=self.name))

    def uri(self, path: str = "") -> str:
        """A URL for ``path`` that fsspec understands (``az://c/p/x``, ``s3://b/p/x``, ``file:///d/x``)."""
        rel = normalize_relpath(path, datastore=self.name)
        base = self.url.rstrip("/")
        return f"{base}/{rel}" if rel else base

    def relpath(self, full: str) -> str:
        """The datastore-relative form of a backend path returned by the filesystem."""
        full = self.fs._strip_protocol(full) if "://" in full else full
        return relative_to(self.root, full)

    # -- reading ------------------------------------------------------------------------------------------------
    def exists(self, path: str = "") -> bool:
        full = self.full_path(path)
        with translate_errors(self.config, "check", path):
            return bool(self.fs.exists(full))

    def isdir(self, path: str = "") -> bool:
        full = self.full_path(path)
        with translate_errors(self.config, "check", path):
            return bool(self.fs.isdir(full))

    def isfile(self, path: str) -> bool:
        full = self.full_path(path)
        with translate_errors(self.config, "check", path):
            return bool(self.fs.isfile(full))

    def info(self, path: str) -> dict[str, Any]:
        full = self.full_path(path)
        with translate_errors(self.config, "read information about", path):
            return dict(self.fs.info(full))

    def read_bytes(self, path: str) -> bytes:
        full = self.full_path(path)
        with translate_errors(self.config, "read", path):
            return bytes(self.fs.cat_file(full))

    def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return self.read_bytes(path).decode(encoding)

    def read_json(self, path: str) -> Any:
        return json.loads(self.read_bytes(path))

    def read_many(self, paths: Iterable[str]) -> dict[str, bytes | Exception]:
        """Read several objects at once (concurrent requests on object stores): each path's bytes, or the error
        that reading it raised (``FileNotFoundError`` for a missing one)."""
        wanted = {self.full_path(p): p for p in paths}
        if not wanted:
            return {}
        if self.protocol == "file":
            found: dict[str, bytes | Exception] = {}
            for full, rel in wanted.items():
                try:
                    with open(full, "rb") as fh:
                        found[rel] = fh.read()
                except OSError as exc:
                    found[rel] = exc
            return found
        with translate_errors(self.config, "read", next(iter(wanted.values()))):
            answers = self.fs.cat(list(wanted), on_error="return")
        return {rel: _as_bytes_or_error(answers.get(full, FileNotFoundError(full))) for full, rel in wanted.items()}

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Open a file. Writing through ``open`` is not atomic: use ``write_bytes`` for records."""
        full = self.full_path(path)
        with translate_errors(self.config, "open", path):
            if "w" in mode and self.protocol == "file":
                os.makedirs(os.path.dirname(full), exist_ok=True)
            return self.fs.open(full, mode, **kwargs)

    def list(self, path: str = "", *, recursive: bool = False, detail: bool = False) -> Any:
        """Entries under ``path`` (relative to the datastore). ``recursive`` lists every file below it.

        Returns sorted relative paths, or with ``detail`` a dict of relative path to info.
        """
        full = self.full_path(path)
        with translate_errors(self.config, "list", path):
            if recursive:
                found = self.fs.find(full, detail=True, withdirs=False)
                entries = {self.relpath(p): info for p, info in found.items()}
            else:
                listed = self.fs.ls(full, detail=True)
                entries = {self.relpath(info["name"]): info for info in listed}
                entries.pop(normalize_relpath(path, datastore=self.name), None)
        if detail:
            return dict(sorted(entries.items()))
        return sorted(entries)

    def glob(self, pattern: str, *, detail: bool = False) -> Any:
        """Files matching a glob pattern (``**`` crosses folders): sorted relative paths, or with ``detail`` a
        dict of relative path to info."""
        full = self.full_path(pattern)
        with translate_errors(self.config, "search", pattern):
            found = self.fs.glob(full, detail=True)
        files = {self.relpath(p): dict(info) for p, info in found.items() if info.get("type") != "directory"}
        return dict(sorted(files.items())) if detail else sorted(files)

    # -- writing ------------------------------------------------------------------------------------------------
    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace the whole object at ``path``: readers see the old or the new content, never a part."""
        full = self.full_path(path)
        with translate_errors(self.config, "write", path):
            if self.protocol == "file":
                _local_atomic_write(full, data, replace=True)
            else:
                self.fs.pipe_file(full, data)

    def write_text(self, path: str, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def write_json(self, path: str, value: Any) -> None:
        self.write_bytes(path, _json_bytes(value))

    def write_many(self, objects: Mapping[str, bytes]) -> None:
        """Replace several objects, each whole (concurrent requests on object stores)."""
        if self.protocol in ("file", "memory") or len(objects) < 2:
            for path, data in objects.items():
                self.write_bytes(path, data)
            return
        full = {self.full_path(p): data for p, data in objects.items()}
        with translate_errors(self.config, "write", next(iter(objects))):
            self.fs.pipe(full)

    def create_if_absent(self, path: str, data: bytes) -> bool:
        """Create ``path`` with ``data`` unless it exists. Exactly one of many racing writers gets True."""
        full = self.full_path(path)
        with translate_errors(self.config, "create", path):
            try:
                if self.protocol == "file":
                    _local_atomic_write(full, data, replace=False)
                elif self.protocol == "memory":
                    with _memory_lock:
                        if self.fs.exists(full):
                            return False
                        self.fs.pipe_file(full, data)
                else:
                    self.fs.pipe_file(full, data, mode="create")
            except FileExistsError:
                return False
        return True

    def create_json_if_absent(self, path: str, value: Any) -> bool:
        return self.create_if_absent(path, _json_bytes(value))

    def delete(self, path: str, *, recursive: bool = False, missing_ok: bool = True) -> None:
        rel = normalize_relpath(path, datastore=self.name)
        if not rel and recursive:
            raise ConfigError(f"datastore {self.name!r}: refusing to delete the whole datastore root")
        full = self.full_path(rel)
        with translate_errors(self.config, "delete", path):
            if not missing_ok and not self.fs.exists(full):
                raise FileNotFoundError(full)
            try:
                self.fs.rm(full, recursive=recursive)
            except FileNotFoundError:
                if not missing_ok:
                    raise
            if self.protocol == "file" and recursive and os.path.isdir(full):
                import shutil

                shutil.rmtree(full, ignore_errors=True)

    def upload(self, local_path: str | os.PathLike[str], path: str) -> builtins.list[str]:
        """Upload a local file or folder to ``path``. Returns the relative paths written."""
        local = os.fspath(local_path)
        if os.path.isdir(local):
            pairs = list(_walk_local(local))
            sources = [os.path.join(local, rel) for rel in pairs]
            targets = [self.full_path("/".join(p for p in (path.strip("/"), rel) if p)) for rel in pairs]
        elif os.path.isfile(local):
            pairs = [""]
            sources, targets = [local], [self.full_path(path)]
        else:
            raise FileNotFoundError(f"cannot upload {local!r} to datastore {self.name!r}: it does not exist")
        with translate_errors(self.config, "upload to", path):
            if self.protocol == "file":
                for target in {os.path.dirname(t) for t in targets}:
                    os.makedirs(target, exist_ok=True)
            if sources:
                self.fs.put(sources, targets)
        base = normalize_relpath(path, datastore=self.name)
        return [f"{base}/{rel}".strip("/") if rel else base for rel in pairs]

    def download(self, path: str, local_path: str | os.PathLike[str]) -> builtins.list[str]:
        """Download a file or a folder (every file below it) to ``local_path``. Returns local files written."""
        local = os.fspath(local_path)
        rel = normalize_relpath(path, datastore=self.name)
        if self.isfile(rel):
            os.makedirs(os.path.dirname(os.path.abspath(local)), exist_ok=True)
            with translate_errors(self.config, "download", path):
                self.fs.get_file(self.full_path(rel), local)
            return [local]
        files = [f for f in self.list(rel, recursive=True) if os.path.basename(f) != COMPLETE_MARKER]
        if not files and not self.exists(rel):
            raise FileNotFoundError(f"datastore {self.name!r}: {path!r} does not exist")
        prefix = rel + "/" if rel else ""
        locals_ = [os.path.join(local, *f[len(prefix) :].split("/")) for f in files]
        for d in {os.path.dirname(p) for p in locals_} | {local}:
            os.makedirs(d, exist_ok=True)
        with translate_errors(self.config, "download", path):
            if files:
                self.fs.get([self.full_path(f) for f in files], locals_)
        return locals_

    # -- completion markers ---------------------------------------------------------------------------------------
    def marker_path(self, folder: str) -> str:
        rel = normalize_relpath(folder, datastore=self.name)
        return f"{rel}/{COMPLETE_MARKER}" if rel else COMPLETE_MARKER

    def mark_complete(self, folder: str, manifest: Mapping[str, Any] | None = None) -> None:
        """Declare ``folder`` complete. Write it only after every file in it is written."""
        self.write_json(self.marker_path(folder), dict(manifest or {}))

    def is_complete(self, folder: str) -> bool:
        return self.exists(self.marker_path(folder))

    def read_marker(self, folder: str) -> dict[str, Any]:
        """The manifest stored in the folder's marker; ``IncompleteFolderError`` when it has none."""
        try:
            return dict(self.read_json(self.marker_path(folder)))
        except FileNotFoundError:
            raise IncompleteFolderError(
                f"datastore {self.name!r}: folder {folder!r} is incomplete (no {COMPLETE_MARKER} marker): the "
                "step that writes it has not finished, or failed; run it again"
            ) from None

    def clear_complete(self, folder: str) -> None:
        """Withdraw the marker before rewriting a folder, so no reader takes a half-written folder as complete."""
        self.delete(self.marker_path(folder), missing_ok=True)

    def check_access(self) -> None:
        """List the root once: raises ``DatastoreAccessError`` with a fix when the store refuses or is away, or
        when a local root folder does not exist (checking never creates it)."""
        if self.protocol == "file":
            root = os.path.abspath(self.config.parsed.root)
            if not os.path.isdir(root):
                raise DatastoreAccessError(
                    f"datastore {self.name!r}: the folder {root} does not exist; create it or fix the path in the "
                    "connection's url"
                )
            if not os.access(root, os.R_OK | os.W_OK | os.X_OK):
                raise DatastoreAccessError(
                    f"datastore {self.name!r}: the folder {root} is not readable and writable by this process"
                )
            return
        with translate_errors(self.config, "list"):
            try:
                self.fs.ls(self.root, refresh=True)
            except FileNotFoundError:
                if self.protocol in ("file", "memory"):
                    return
                bucket = self.root.split("/", 1)[0]
                try:
                    self.fs.ls(bucket, refresh=True)
                except FileNotFoundError:
                    raise DatastoreAccessError(
                        f"datastore {self.name!r} ({self.url}): container or bucket {bucket!r} does not exist; "
                        "create it or correct the connection's url"
                    ) from None


class OnDefaultDatastore:
    """For records kept in a datastore (registry, reuse index, histories): ``store`` is the datastore given, or
    the default one, resolved on first use."""

    _store: Datastore | None = None

    @property
    def store(self) -> Datastore:
        if self._store is None:
            self._store = Datastore.get_default()
        return self._store


def _quiet_azure_request_logs() -> None:
    """The Azure SDK logs every HTTP request at INFO; under Airflow's INFO logging that floods task logs."""
    import logging

    for name in ("azure", "azure.core.pipeline.policies.http_logging_policy"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def _as_bytes_or_error(answer: Any) -> bytes | Exception:
    return answer if isinstance(answer, Exception) else bytes(answer)


def _local_atomic_write(full: str, data: bytes, *, replace: bool) -> None:
    directory = os.path.dirname(full)
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(full)}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    try:
        if replace:
            os.replace(tmp, full)
        else:
            os.link(tmp, full)  # atomic and fails when ``full`` exists: exactly one winner
    finally:
        if not replace and os.path.lexists(tmp):
            os.unlink(tmp)


def _walk_local(folder: str) -> Iterable[str]:
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, folder)
        for fname in sorted(filenames):
            rel = fname if rel_dir == "." else f"{rel_dir}/{fname}"
            yield rel.replace(os.sep, "/")


# An Airflow connection id: a datastore's name is the id of its connection.
_NAME = re.compile(r"^[\w.-]{1,250}$")


def _check_arguments(name: object, storage_options: object, description: object) -> None:
    from airflow_mlpipe.core.checks import shown

    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            f"Datastore: name {shown(name)} must be 1-250 letters, digits, '_', '-' or '.' (it is the id of the "
            "datastore's Airflow connection), e.g. Datastore('team_lake', 'az://container/path')"
        )
    if storage_options is not None and not isinstance(storage_options, Mapping):
        raise ConfigError(
            f"Datastore {name!r}: storage_options must be a dict of the filesystem's options, not "
            f"{type(storage_options).__name__} (its content is not shown: it may hold credentials), e.g. "
            "{'account_name': 'acct'}"
        )
    if not isinstance(description, str):
        raise ConfigError(f"Datastore {name!r}: description {shown(description)} must be text")
