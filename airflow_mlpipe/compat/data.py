"""SDK v1's data references, as both step scripts and v1 pipeline files use them: ``datastore.path(...)``,
``DataReference``, ``DataPath`` and ``DataPathComputeBinding``, and the datastore object v1 calls return."""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.core.checks import check_bool, shown
from airflow_mlpipe.core.paths import check_user_path
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.paths import DataPath as _DataPath
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.committed import refuse_committed_for_files
from airflow_mlpipe.storage.confine import confined_path
from airflow_mlpipe.storage.datastore import Datastore as _Datastore
from airflow_mlpipe.storage.errors import translate_errors
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
            pairs = _folder_pairs(local, target)
        else:  # one file: to target_path, or by its name to the root
            target = _checked(self, [target or os.path.basename(local)])[0]
            pairs = [(local, target)]
        _upload_checked(self, pairs, overwrite=overwrite)
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
        name when no root is given); returns a reference to ``target_path``. A folder among ``files`` goes as
        every file below it, each checked as ``upload`` checks it."""
        target = confined_path(self, target_path or "", argument="target_path")
        pairs: builtins.list[tuple[str, str]] = []
        for f in files:
            local = os.fspath(f)
            rel = os.path.relpath(local, relative_root) if relative_root else os.path.basename(local)
            if rel.startswith(".."):
                raise ConfigError(
                    f"upload_files: {local!r} is not below relative_root {relative_root!r}: give a relative_root "
                    "that holds every file (or none, to upload each by its name)"
                )
            dest = _joined(target, "" if rel == "." else rel.replace(os.sep, "/"))
            if os.path.isdir(local):
                pairs += _folder_pairs(local, dest)
            else:
                pairs.append((local, dest or os.path.basename(local)))
        _upload_checked(self, pairs, overwrite=overwrite)
        return self.path(target)


def _upload_checked(store: _Datastore, pairs: builtins.list[tuple[str, str]], *, overwrite: bool) -> None:
    """Write each (local file, destination) pair once every destination passed every check: a user path (not in
    ``_mlpipe/``, no marker or journal name), no link on the way, not in a committed output, and (without
    ``overwrite``) not there yet. Exactly the files checked are written, one ``put`` for all."""
    dests = _checked(store, [dest for _, dest in pairs])
    refuse_links_on_the_way(store, dests, argument="target_path")
    refuse_committed_for_files(store, dests, argument="upload destination")
    if not overwrite:
        _refuse_existing(store, dests)
    if not pairs:
        return
    targets = [store.full_path(dest) for dest in dests]
    with translate_errors(store.config, "upload to", dests[0]):
        if store.protocol == "file":
            for folder in {os.path.dirname(t) for t in targets}:
                os.makedirs(folder, exist_ok=True)
        store.fs.put([local for local, _ in pairs], targets)


def _folder_pairs(folder: str, target: str) -> builtins.list[tuple[str, str]]:
    """(local file, destination) for every file below ``folder``. A symbolic link inside it is refused: followed,
    it would upload a file from elsewhere (a link to /etc/passwd), and a link to a folder would be left out
    silently."""
    pairs, links = [], []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted((*dirnames, *filenames)):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, folder).replace(os.sep, "/")
            if os.path.islink(full):
                links.append((rel, os.readlink(full)))
            elif name in filenames:
                pairs.append((full, _joined(target, rel)))
    if links:
        more = f" (and {len(links) - 1} more: {[rel for rel, _ in links[1:4]]})" if len(links) > 1 else ""
        raise ConfigError(
            f"upload source: {links[0][0]!r} in folder {folder!r} is a symbolic link (to {links[0][1]}){more}; "
            "mlpipe uploads the files a folder holds and never follows a link inside it, which could upload a file "
            "from elsewhere: copy the file (or folder) it names into the folder in its place, or remove the link; "
            "nothing was written"
        )
    return pairs


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
        self.datastore = _check_datastore("DataPath", datastore)
        self.path_on_datastore = _check_path(datastore, path_on_datastore)
        self.name = _check_reference_name("DataPath", "name", name)

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
        self.mode, self.path_on_compute = _mode(mode), path_on_compute
        self.overwrite = check_bool("DataPathComputeBinding", "overwrite", overwrite)


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
        self.datastore = _check_datastore("DataReference", datastore)
        self.path_on_datastore = _check_path(datastore, path_on_datastore)
        name = _check_reference_name("DataReference", "data_reference_name", data_reference_name)
        self.data_reference_name = name or _default_name(datastore.name, self.path_on_datastore)
        self.mode = _mode(mode)
        self.path_on_compute = path_on_compute
        self.overwrite = check_bool("DataReference", "overwrite", overwrite)

    def _with(self, mode: str, path_on_compute: str | None) -> DataReference:
        return DataReference(
            self.datastore, self.data_reference_name, self.path_on_datastore, mode, path_on_compute, self.overwrite
        )

    def as_mount(self) -> DataReference:
        return self._with("mount", self.path_on_compute)

    def as_download(self, path_on_compute: str | None = None, overwrite: bool = False) -> DataReference:
        check_bool("DataReference.as_download", "overwrite", overwrite)
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


def _check_datastore(owner: str, datastore: object) -> _Datastore:
    if not isinstance(datastore, _Datastore):
        named = f"Datastore.get(ws, {datastore!r})" if isinstance(datastore, str) else "Datastore.get(ws, 'NAME')"
        raise ConfigError(
            f"{owner}: datastore {shown(datastore)} must be a Datastore, not {type(datastore).__name__}; give {named}"
        )
    return datastore


def _check_path(datastore: _Datastore, path: object) -> str:
    """A user path: inside the datastore and outside mlpipe's own records (``_mlpipe/``), refused now rather than
    found empty when the step runs."""
    return check_user_path(
        "" if path is None else path,  # type: ignore[arg-type]
        argument="path_on_datastore",
        datastore=datastore.name,
    )


def _check_reference_name(owner: str, argument: str, name: object) -> str | None:
    """The input's name in the step (``run.input_datasets[name]``), as a dataset input's name is checked."""
    if name is None:
        return None
    return check_name(name, what=f"{owner}: {argument}")


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
