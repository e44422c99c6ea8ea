"""File and Tabular datasets, as in Azure ML SDK v1: ``Dataset.File.from_files``, ``Dataset.Tabular...``,
``dataset.register(name)``, ``Dataset.get_by_name(name, version)``.

A dataset is a definition (which files, how to read them). Registering pins a manifest (each file's size and
content identity) under a name and version. Nothing here touches storage until it is used, so DAG files that
build datasets parse fast.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_mlpipe.core.checks import check_bool, shown
from airflow_mlpipe.datasets.copy_marks import mark_registered_copies
from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.paths import DataPath, match_files, relative_in_dataset, to_data_paths
from airflow_mlpipe.datasets.registry import DatasetRecord, DatasetRegistry, check_register_arguments
from airflow_mlpipe.datasets.tabular_types import check_column_types
from airflow_mlpipe.datasets.transforms import TabularTransforms
from airflow_mlpipe.datasets.verify import verify_copies
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.fingerprint.identity import identities
from airflow_mlpipe.storage.datastore import Datastore

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlpipe.datasets.consumption import DatasetConsumptionConfig


class AbstractDataset:
    """What File and Tabular datasets share: paths, registration, lazy lookup by name."""

    kind: ClassVar[str] = "abstract"

    def __init__(
        self,
        paths: tuple[DataPath, ...] = (),
        *,
        options: Mapping[str, Any] | None = None,
        record: DatasetRecord | None = None,
        by_name: tuple[str, int | str] | None = None,
        pin: Manifest | None = None,
    ) -> None:
        self._paths = paths
        self._options = dict(options or {})
        self._record: DatasetRecord | None = None
        self._by_name = by_name
        # The exact files a step was planned with (an unregistered definition matches whatever is there now).
        self._pin = pin
        if record is not None:
            self._adopt(record)

    def _adopt(self, record: DatasetRecord) -> None:
        self._record = record
        self._paths = tuple(DataPath.from_dict(p) for p in record.definition.get("paths", ()))
        self._options = dict(record.definition.get("options") or {})

    # -- identity -------------------------------------------------------------------------------------------
    @property
    def record(self) -> DatasetRecord | None:
        """The registry record (loaded on first use for ``get_by_name`` references)."""
        if self._record is None and self._by_name is not None:
            name, version = self._by_name
            record = DatasetRegistry().get(name, version)
            if record.kind != self.kind and self.kind != "abstract":
                raise DatasetError(
                    f"dataset {name!r} version {record.version} is a {record.kind} dataset, not a {self.kind} one"
                )
            self._adopt(record)
        return self._record

    @property
    def name(self) -> str | None:
        if self._by_name is not None:
            return self._by_name[0]
        return self._record.name if self._record else None

    @property
    def version(self) -> int | None:
        record = self.record
        return record.version if record else None

    @property
    def requested_version(self) -> int | str | None:
        """The version asked for (``"latest"`` stays unresolved): no storage access."""
        if self._by_name is not None:
            return self._by_name[1]
        return self._record.version if self._record else None

    @property
    def id(self) -> str | None:
        record = self.record
        return record.id if record else None

    @property
    def description(self) -> str:
        record = self.record
        return record.description if record else ""

    @property
    def tags(self) -> dict[str, str]:
        record = self.record
        return dict(record.tags) if record else {}

    @property
    def is_new_version(self) -> bool | None:
        """After ``register``: True when it created a version, False when an identical one existed."""
        return getattr(self, "_created", None)

    @property
    def data_paths(self) -> tuple[DataPath, ...]:
        self.record  # noqa: B018 - loads paths of by-name references
        return self._paths

    @property
    def options(self) -> dict[str, Any]:
        self.record  # noqa: B018
        return dict(self._options)

    def definition(self) -> dict[str, Any]:
        return {"paths": [p.to_dict() for p in self.data_paths], "options": self.options}

    def __repr__(self) -> str:
        if self._by_name is not None or self._record is not None:
            return f"{type(self).__name__}(name={self.name!r}, version={self.requested_version!r})"
        return f"{type(self).__name__}(paths={[str(p) for p in self._paths]!r})"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able reference: by name and version when registered, else by definition (with the files it
        is pinned to, if any)."""
        if self._by_name is not None:
            return {"kind": self.kind, "name": self._by_name[0], "version": self._by_name[1]}
        if self._record is not None:
            return {"kind": self.kind, "name": self._record.name, "version": self._record.version}
        if self._pin is not None:
            return {"kind": self.kind, **self.definition(), "pin": self._pin.to_dict()}
        return {"kind": self.kind, **self.definition()}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> AbstractDataset:
        cls = _KINDS.get(str(data.get("kind")))
        if cls is None:
            raise DatasetError(f"unknown dataset kind {data.get('kind')!r}; expected 'file' or 'tabular'")
        pin = Manifest.from_dict(data["pin"]) if data.get("pin") else None
        if "name" in data:
            return cls(by_name=(str(data["name"]), data.get("version", "latest"))).pinned_to(pin)
        paths = tuple(DataPath.from_dict(p) for p in data.get("paths", ()))
        return cls(paths, options=data.get("options"), pin=pin)

    def pinned_to(self, manifest: Manifest | None) -> AbstractDataset:
        """This dataset restricted to exactly the files of ``manifest`` (what a step was planned with): reading
        checks each file against it. A registered version must still have that manifest."""
        if manifest is None:
            return self
        record = self.record
        if record is not None and record.manifest.digest != manifest.digest:
            raise DatasetError(
                f"dataset {record.name!r} version {record.version}: its registry record lists other files than "
                "when the step was planned (the record was changed); the step's retry plans again"
            )
        self._pin = manifest
        return self

    def pinned(self) -> AbstractDataset:
        """The same dataset with ``"latest"`` resolved to a version number (reads the registry)."""
        record = self.record
        if record is None:
            return self
        return type(self)(record=record)

    # -- files ----------------------------------------------------------------------------------------------
    def current_manifest(self, *, markers: dict[str, set[str]] | None = None) -> Manifest:
        """The manifest of the files the definition matches now (reads storage). ``markers`` collects, by
        datastore, the folders whose completion marker the listings met."""
        entries = []
        for data_path in self.data_paths:
            store = Datastore.get(data_path.datastore)
            met = None if markers is None else markers.setdefault(store.name, set())
            infos = match_files(data_path, store, markers=met)
            for ident in identities(store, infos).values():
                entries.append(ManifestEntry(store.name, ident))
        unique = {(e.datastore, e.path): e for e in entries}
        return Manifest.of(unique.values())

    def manifest(self) -> Manifest:
        """The pinned manifest of a registered version (or of a step's input), else the current one."""
        expected = self.expected_manifest()
        return expected if expected is not None else self.current_manifest()

    def expected_manifest(self) -> Manifest | None:
        """The files this dataset must consist of: a registered version's, or those a step was planned with."""
        record = self.record
        return record.manifest if record is not None else self._pin

    def verified_entries(self) -> list[ManifestEntry]:
        """The files to read. For a registered version (or a step's pinned input), each must still have the
        identity it was registered (or planned) with: changed data is an error, never a silent new content."""
        expected = self.expected_manifest()
        if expected is None:
            return list(self.current_manifest().entries)
        changed = []
        by_store: dict[str, list[ManifestEntry]] = {}
        for entry in expected.entries:
            by_store.setdefault(entry.datastore, []).append(entry)
        for store_name, entries in by_store.items():
            store = Datastore.get(store_name)
            infos = {}
            for e in entries:
                try:
                    infos[e.path] = store.info(e.path)
                except FileNotFoundError:
                    changed.append(f"{e.path} (deleted)")
            now = identities(store, infos)
            changed += [
                f"{e.path}"
                for e in entries
                if e.path in now and (now[e.path].token != e.identity.token or now[e.path].size != e.identity.size)
            ]
        if changed:
            record = self.record
            if record is None:
                raise DatasetError(
                    f"input files changed since the step was planned: {', '.join(changed[:10])}; the step's outputs "
                    "would not match its reuse key, so it stops here (a retry plans again with the new files)"
                )
            raise DatasetError(
                f"dataset {record.name!r} version {record.version}: files changed since it was registered: "
                f"{', '.join(changed[:10])}; register a new version of the dataset to use the new data"
            )
        return list(expected.entries)

    # -- registration ---------------------------------------------------------------------------------------
    def register(
        self,
        name: str,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        create_new_version: bool = True,
        *,
        lineage: Mapping[str, Any] | None = None,
        registry: DatasetRegistry | None = None,
    ) -> AbstractDataset:
        """Register this dataset as the next version of ``name`` (no new version when the content is unchanged:
        check ``.is_new_version`` on the result)."""
        description, tags, create_new_version = check_register_arguments(name, description, tags, create_new_version)
        definition = self.definition()
        markers: dict[str, set[str]] = {}
        manifest = self.current_manifest(markers=markers)
        record, created = (registry or DatasetRegistry()).register(
            name=name,
            kind=self.kind,
            definition=definition,
            manifest=manifest,
            description=description,
            tags=tags,
            lineage=lineage,
            create_new_version=create_new_version,
        )
        mark_registered_copies(record, self.data_paths, markers)
        result = type(self)(record=record)
        result._created = created  # type: ignore[attr-defined]
        return result

    # -- as step inputs -------------------------------------------------------------------------------------
    def as_named_input(self, name: str) -> DatasetConsumptionConfig:
        from airflow_mlpipe.datasets.consumption import DatasetConsumptionConfig

        return DatasetConsumptionConfig(check_name(name, what="input name"), self)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return self.as_named_input(self._default_input_name()).as_download(path_on_compute)

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return self.as_named_input(self._default_input_name()).as_mount(path_on_compute)

    def _default_input_name(self) -> str:
        if self.name:
            return self.name
        from airflow_mlpipe.fingerprint.hashing import hash_bytes

        # Deterministic: the same definition always gets the same name, so reuse keys stay stable.
        return "input_" + hash_bytes(repr(self.to_dict()).encode())[:10]


class FileDataset(AbstractDataset):
    """Files in datastores: download them, mount them, or hand their paths to a step."""

    kind = "file"

    def to_path(self) -> list[str]:
        """The dataset's files as relative paths (the part under each path's folder), as Azure ML's to_path."""
        return [_relative_in_dataset(e, self.data_paths) for e in self.verified_entries()]

    def download(self, target_path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> list[str]:
        """Copy the files under ``target_path`` (a new temporary folder by default). Returns the local paths."""
        check_bool("download", "overwrite", overwrite)
        if target_path is not None and not (
            isinstance(target_path, os.PathLike) or (isinstance(target_path, str) and target_path)
        ):
            raise DatasetError(
                f"download: target_path {shown(target_path)} must be a local folder's path, e.g. "
                "download(target_path='data/raw') (or None for a new temporary folder)"
            )
        target = os.fspath(target_path) if target_path is not None else tempfile.mkdtemp(prefix="mlpipe-dataset-")
        entries = self.verified_entries()
        plan = [(e, os.path.join(target, *_relative_in_dataset(e, self.data_paths).split("/"))) for e in entries]
        if not overwrite:
            existing = [local for _, local in plan if os.path.exists(local)]
            if existing:
                raise DatasetError(
                    f"download target {target!r} already holds {existing[0]!r} (and {len(existing) - 1} more); "
                    "pass overwrite=True or choose an empty folder"
                )
        fetch_copies(plan)
        return [local for _, local in plan]

    @contextlib.contextmanager
    def mount(self, mount_point: str | os.PathLike[str] | None = None) -> Iterator[str]:
        """A read-only local view of the files for the duration of the ``with`` block; yields the folder.

        The view holds read-only copies, checked against the manifest: writing into a mount can never change
        the dataset's own files."""
        folder = os.fspath(mount_point) if mount_point is not None else tempfile.mkdtemp(prefix="mlpipe-mount-")
        os.makedirs(folder, exist_ok=True)
        created = materialize_view(self, folder)
        try:
            yield folder
        finally:
            for path in created:
                with contextlib.suppress(OSError):
                    os.chmod(path, 0o600)
                    os.unlink(path)
            if mount_point is None:
                shutil.rmtree(folder, ignore_errors=True)


def fetch_copies(plan: list[tuple[ManifestEntry, str]]) -> None:
    """Copy each entry's file to its local path, then check every copy against its entry (``verify_copies``)."""
    by_store: dict[str, list[tuple[ManifestEntry, str]]] = {}
    for entry, local in plan:
        by_store.setdefault(entry.datastore, []).append((entry, local))
    for store_name, items in by_store.items():
        store = Datastore.get(store_name)
        for d in {os.path.dirname(local) for _, local in items}:
            os.makedirs(d, exist_ok=True)
        for _, local in items:
            if os.path.islink(local) or os.path.isfile(local):
                os.unlink(local)  # an earlier copy or link: replaced, never written through
        store.fs.get([store.full_path(e.path) for e, _ in items], [local for _, local in items])
    verify_copies(plan)


def materialize_view(dataset: FileDataset, folder: str) -> list[str]:
    """Make ``folder`` show the dataset's files as read-only copies, checked against the dataset's manifest."""
    entries = dataset.verified_entries()
    plan = [(e, os.path.join(folder, *_relative_in_dataset(e, dataset.data_paths).split("/"))) for e in entries]
    fetch_copies(plan)
    for _, local in plan:
        os.chmod(local, 0o444)
    return [local for _, local in plan]


class TabularDataset(AbstractDataset, TabularTransforms):
    """Delimited or Parquet files read as one table (``keep_columns``, ``take``, ``random_split``... return
    views read from it, see ``datasets.transforms``)."""

    kind = "tabular"

    def to_pandas_dataframe(self) -> pd.DataFrame:
        """The files as one table. A registered version (or a step's pinned input) is read from local copies
        checked against its manifest, so the table holds exactly the bytes the version names."""
        from airflow_mlpipe.datasets.tabular import read_frames

        entries = self.verified_entries()
        if self.expected_manifest() is None:
            return read_frames(entries, self.options)
        with tempfile.TemporaryDirectory(prefix="mlpipe-read-") as folder:
            plan = [(e, os.path.join(folder, str(n))) for n, e in enumerate(entries)]
            fetch_copies(plan)
            return read_frames(entries, self.options, {e.path: local for e, local in plan})

    def to_path(self) -> list[str]:
        return [_relative_in_dataset(e, self.data_paths) for e in self.verified_entries()]

    def download(self, target_path: str | os.PathLike[str] | None = None, overwrite: bool = False) -> list[str]:
        return FileDataset.download(self, target_path, overwrite)  # type: ignore[arg-type]


def _relative_in_dataset(entry: ManifestEntry, paths: tuple[DataPath, ...]) -> str:
    return relative_in_dataset(entry.datastore, entry.path, paths)


_KINDS: dict[str, type[AbstractDataset]] = {"file": FileDataset, "tabular": TabularDataset}


class _FileFactory:
    @staticmethod
    def from_files(path: object, validate: bool = False) -> FileDataset:
        """``path``: one or a list of ``(datastore, "folder/or/glob/*.csv")`` or ``mlpipe://datastores/...``.

        ``validate=True`` checks now that the paths match files (reads storage; keep it off in DAG files).
        """
        dataset = FileDataset(to_data_paths(path))
        if check_bool("Dataset.File.from_files", "validate", validate):
            dataset.current_manifest()
        return dataset


class _TabularFactory:
    @staticmethod
    def from_delimited_files(
        path: object,
        validate: bool = False,
        include_path: bool = False,
        infer_column_types: bool = True,
        set_column_types: Mapping[str, str] | None = None,
        separator: str = ",",
        header: bool = True,
        encoding: str = "utf8",
        skip_rows: int = 0,
    ) -> TabularDataset:
        """Delimited text files (csv, tsv, ...) read as one table; ``separator="\\t"`` for tsv."""
        owner = "Dataset.Tabular.from_delimited_files"
        if not isinstance(separator, str) or not separator:
            raise DatasetError(f"separator {separator!r} must be a non-empty string such as ',' or '\\t'")
        if not isinstance(encoding, str) or not encoding or not _is_codec(encoding):
            raise DatasetError(f"{owner}: encoding {encoding!r} must be a codec name such as 'utf8' or 'latin-1'")
        if isinstance(skip_rows, bool) or not isinstance(skip_rows, int) or skip_rows < 0:
            raise DatasetError(f"{owner}: skip_rows {skip_rows!r} must be a whole number of rows (0 or more)")
        options = {
            "format": "delimited",
            "separator": separator,
            "header": check_bool(owner, "header", header),
            "encoding": encoding,
            "include_path": check_bool(owner, "include_path", include_path),
            "infer_column_types": check_bool(owner, "infer_column_types", infer_column_types),
            "set_column_types": check_column_types(owner, set_column_types),
            "skip_rows": skip_rows,
        }
        dataset = TabularDataset(to_data_paths(path), options=options)
        if check_bool(owner, "validate", validate):
            dataset.current_manifest()
        return dataset

    @staticmethod
    def from_parquet_files(
        path: object,
        validate: bool = False,
        include_path: bool = False,
        set_column_types: Mapping[str, str] | None = None,
    ) -> TabularDataset:
        owner = "Dataset.Tabular.from_parquet_files"
        options = {
            "format": "parquet",
            "include_path": check_bool(owner, "include_path", include_path),
            "set_column_types": check_column_types(owner, set_column_types),
        }
        dataset = TabularDataset(to_data_paths(path), options=options)
        if check_bool(owner, "validate", validate):
            dataset.current_manifest()
        return dataset


class Dataset:
    """Entry point, as in Azure ML: ``Dataset.File.from_files``, ``Dataset.Tabular.from_delimited_files``,
    ``Dataset.get_by_name``."""

    File = _FileFactory
    Tabular = _TabularFactory

    @staticmethod
    def get_by_name(name: str, version: int | str = "latest", *, kind: str | None = None) -> AbstractDataset:
        """A registered dataset. The registry is read on first use (not here), so DAG files stay fast; with
        ``version="latest"`` a step run pins the latest version when it starts."""
        check_name(name, existing=True)
        if isinstance(version, bool) or not isinstance(version, (int, str)):
            raise DatasetError(
                f"dataset {name!r}: version {version!r} must be a whole number (1, 2, ...) or 'latest', not "
                f"{type(version).__name__}"
            )
        if version != "latest":
            try:
                version = int(version)
            except (TypeError, ValueError):
                raise DatasetError(f"dataset {name!r}: version {version!r} is not a number or 'latest'") from None
            if version < 1:
                raise DatasetError(f"dataset {name!r}: version {version} does not exist; versions start at 1")
        if kind is not None and kind not in ("file", "tabular"):
            raise DatasetError(f"dataset {name!r}: kind {kind!r} must be 'file', 'tabular' or None (either)")
        if kind is None:
            return _LazyDataset(by_name=(name, version))
        return _KINDS[kind](by_name=(name, version))


class _LazyDataset(AbstractDataset):
    """A by-name reference whose kind is known only once its record is read; becomes File or Tabular then."""

    kind = "abstract"

    @property
    def record(self) -> DatasetRecord | None:
        record = super().record
        if record is not None and type(self) is _LazyDataset:
            self.__class__ = _KINDS[record.kind]  # type: ignore[assignment]
        return record

    def to_dict(self) -> dict[str, Any]:
        assert self._by_name is not None
        return {"kind": "by_name", "name": self._by_name[0], "version": self._by_name[1]}

    def __getattr__(self, item: str) -> Any:
        # to_pandas_dataframe / download / mount: load the record, then behave as the registered kind. Names that
        # frameworks probe for (Airflow's templating looks for ``resolve`` and ``template_fields``) load nothing.
        if item.startswith("_") or item in _PROBED:
            raise AttributeError(item)
        self.record  # noqa: B018
        if type(self) is _LazyDataset:
            raise AttributeError(item)
        return getattr(self, item)


_KINDS["by_name"] = _LazyDataset
_PROBED = frozenset({"resolve", "template_fields", "template_ext", "serialize"})


def _is_codec(name: str) -> bool:
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True
