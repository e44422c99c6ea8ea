"""SDK v1's data references, as both step scripts and v1 pipeline files use them: ``datastore.path(...)``,
``DataReference``, ``DataPath`` and ``DataPathComputeBinding``, and the datastore object v1 calls return."""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.core.paths import check_user_path, normalize_relpath
from airflow_mlpipe.datasets.paths import DataPath as _DataPath
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.committed import refuse_committed_for_files
from airflow_mlpipe.storage.confine import confined_path
from airflow_mlpipe.storage.datastore import Datastore as _Datastore
from airflow_mlpipe.storage.transfer_links import refuse_links_on_the_way

if TYPE_CHECKING:
    from airflow_mlpipe.datasets.consumption import DatasetConsumptionConfig
    from airflow_mlpipe.datasets.dataset import FileDataset


class V1Datastore(_Datastore):
    """A datastore as SDK v1 hands it out (``Datastore.get(ws, name)``, ``ws.get_default_datastore()``): ours,
    plus v1's ``path``, ``upload`` and ``upload_files``."""

    @classmethod
    def of(cls, store: _Datastore) -> V1Datastore:
        obj = cls.__new__(cls)
        obj._config, obj._name = store._config, store.name
        return obj

    def path(self, path: str | None = None, data_reference_name: str | None = None) -> DataReference:
        return DataReference(self, data_reference_name=data_reference_name, path_on_datastore=path)

    def as_mount(self) -> DataReference:
        return self.path("").as_mount()

    def as_download(self, path_on_compute: str | None = None) -> DataReference:
        return self.path("").as_download(path_on_compute)

    def upload(  # type: ignore[override]
        self,
        src_dir: str | os.PathLike[str],
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """v1's ``upload(src_dir, target_path)``: every file below ``src_dir`` to ``target_path``; returns a
        reference to ``target_path``, as v1 does."""
        target = confined_path(self, target_path or "", argument="target_path")
        local = os.fspath(src_dir)
        if os.path.isdir(local):
            dests = _checked(self, [_joined(target, rel) for rel in _local_files(local)])
        else:  # one file: to target_path, or by its name to the root
            target = _checked(self, [target or os.path.basename(local)])[0]
            dests = [target]
        refuse_links_on_the_way(self, dests, argument="target_path")
        refuse_committed_for_files(self, dests, argument="upload destination")
        if not overwrite:
            _refuse_existing(self, dests)
        super().upload(src_dir, target)
        return self.path(target)

    def upload_files(
        self,
        files: Iterable[str | os.PathLike[str]],
        relative_root: str | None = None,
        target_path: str | None = None,
        overwrite: bool = False,
        show_progress: bool = True,
    ) -> DataReference:
        """v1's ``upload_files``: each file to ``target_path``/(its path relative to ``relative_root``, or its
        name when no root is given); returns a reference to ``target_path``."""
        target = confined_path(self, target_path or "", argument="target_path")
        pairs = []
        for f in files:
            local = os.fspath(f)
            rel = os.path.relpath(local, relative_root) if relative_root else os.path.basename(local)
            if rel.startswith(".."):
                raise ConfigError(f"upload_files: {local!r} is not below relative_root {relative_root!r}")
            pairs.append((local, _joined(target, rel.replace(os.sep, "/"))))
        _checked(self, [dest for _, dest in pairs])
        refuse_links_on_the_way(self, [dest for _, dest in pairs], argument="target_path")
        refuse_committed_for_files(self, [dest for _, dest in pairs], argument="upload destination")
        if not overwrite:
            _refuse_existing(self, [dest for _, dest in pairs])
        for local, dest in pairs:
            super().upload(local, dest)
        return self.path(target)


def _local_files(folder: str) -> builtins.list[str]:
    found = []
    for dirpath, _, filenames in os.walk(folder):
        found += [os.path.relpath(os.path.join(dirpath, f), folder).replace(os.sep, "/") for f in filenames]
    return found


def _checked(store: _Datastore, dests: builtins.list[str]) -> builtins.list[str]:
    """Each file's destination (``target_path`` and its name below it) as a user path: not in ``_mlpipe/``, no
    reserved name (a forged marker or journal), no backslash; checked before any file is written."""
    return [check_user_path(dest, argument="upload destination", datastore=store.name) for dest in dests]


def _joined(target: str, rel: str) -> str:
    return "/".join(p for p in (target, rel) if p)


def _refuse_existing(store: _Datastore, paths: builtins.list[str]) -> None:
    existing = [p for p in paths if store.exists(p.replace(os.sep, "/"))]
    if existing:
        raise ConfigError(
            f"datastore {store.name!r} already holds {existing[0]!r} (and {len(existing) - 1} more); pass "
            "overwrite=True to replace them"
        )


class DataPath:
    """v1's ``DataPath(datastore, path_on_datastore, name)``."""

    def __init__(
        self, datastore: _Datastore | None = None, path_on_datastore: str | None = None, name: str | None = None
    ):
        if datastore is None:
            raise ConfigError("DataPath needs a datastore: DataPath(Datastore.get(ws, 'NAME'), 'folder/file.csv')")
        self.datastore = datastore
        self.path_on_datastore = normalize_relpath(path_on_datastore or "", datastore=datastore.name)
        self.name = name

    def to_data_path(self) -> _DataPath:
        return _DataPath(self.datastore.name, self.path_on_datastore)

    def create_data_reference(
        self, data_reference_name: str | None = None, datapath_compute_binding: DataPathComputeBinding | None = None
    ) -> DataReference:
        binding = datapath_compute_binding or DataPathComputeBinding()
        return DataReference(
            self.datastore,
            data_reference_name=data_reference_name or self.name,
            path_on_datastore=self.path_on_datastore,
            mode=binding.mode,
            path_on_compute=binding.path_on_compute,
        )

    def __repr__(self) -> str:
        return f"DataPath({self.datastore.name!r}, {self.path_on_datastore!r})"


class DataPathComputeBinding:
    """v1's ``DataPathComputeBinding(mode, path_on_compute, overwrite)``: how a ``DataPath`` reaches the step."""

    def __init__(self, mode: str = "mount", path_on_compute: str | None = None, overwrite: bool = False) -> None:
        self.mode, self.path_on_compute, self.overwrite = _mode(mode), path_on_compute, overwrite


class DataReference:
    """v1's ``DataReference``: a folder or file in a datastore, as a step input (mounted or downloaded) or as a
    ``DataTransferStep`` end."""

    def __init__(
        self,
        datastore: _Datastore,
        data_reference_name: str | None = None,
        path_on_datastore: str | None = None,
        mode: str = "mount",
        path_on_compute: str | None = None,
        overwrite: bool = False,
    ) -> None:
        if not isinstance(datastore, _Datastore):
            raise ConfigError(f"DataReference needs a Datastore, not {datastore!r}")
        self.datastore = datastore
        self.path_on_datastore = normalize_relpath(path_on_datastore or "", datastore=datastore.name)
        self.data_reference_name = data_reference_name or _default_name(datastore.name, self.path_on_datastore)
        self.mode = _mode(mode)
        self.path_on_compute = path_on_compute
        self.overwrite = overwrite

    def _with(self, mode: str, path_on_compute: str | None) -> DataReference:
        return DataReference(
            self.datastore, self.data_reference_name, self.path_on_datastore, mode, path_on_compute, self.overwrite
        )

    def as_mount(self) -> DataReference:
        return self._with("mount", self.path_on_compute)

    def as_download(self, path_on_compute: str | None = None, overwrite: bool = False) -> DataReference:
        return self._with("download", path_on_compute or self.path_on_compute)

    def path(self, path: str | None = None, data_reference_name: str | None = None) -> DataReference:
        joined = "/".join(p for p in (self.path_on_datastore, path or "") if p)
        return DataReference(self.datastore, data_reference_name, joined, self.mode, self.path_on_compute)

    def to_dataset(self) -> FileDataset:
        from airflow_mlpipe.datasets.dataset import FileDataset

        return FileDataset((_DataPath(self.datastore.name, self.path_on_datastore),))

    def to_input(self) -> DatasetConsumptionConfig:
        """The step input: the files below the path, mounted or downloaded under the reference's name."""
        consumption = self.to_dataset().as_named_input(self.data_reference_name)
        if self.mode == "download":
            return consumption.as_download(self.path_on_compute)
        return consumption.as_mount(self.path_on_compute)

    def __repr__(self) -> str:
        return f"DataReference({self.datastore.name!r}, {self.path_on_datastore!r}, mode={self.mode!r})"


def _mode(mode: str) -> str:
    if mode not in ("mount", "download", "upload", "direct"):
        raise ConfigError(f"mode {mode!r} must be 'mount' or 'download' (or 'upload' for outputs)")
    return "mount" if mode == "direct" else mode


def _default_name(datastore: str, path: str) -> str:
    """Deterministic, as v1's are not: a name from the datastore and path keeps reuse keys stable."""
    from airflow_mlpipe.fingerprint.hashing import hash_bytes

    return "ref_" + hash_bytes(f"{datastore}/{path}".encode())[:10]


def to_any_data_path(value: Any) -> Any:
    """v1 path forms (``DataPath``, ``DataReference``) as ours; anything else as given."""
    if isinstance(value, DataPath):
        return value.to_data_path()
    if isinstance(value, DataReference):
        return _DataPath(value.datastore.name, value.path_on_datastore)
    if isinstance(value, list):
        return [to_any_data_path(v) for v in value]
    return value
