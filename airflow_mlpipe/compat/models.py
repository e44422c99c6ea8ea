"""SDK v1's model registry (``Model.register``, ``Model.get_model_path``, ``run.register_model``): registered
versions kept exactly as datasets are (``_mlpipe/registry/models/<name>/<version>.json`` in the default datastore),
the files under ``models/<name>/<upload id>/`` there. Registering the same bytes again adds no version."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from airflow_mlpipe.compat.data import V1Datastore
from airflow_mlpipe.core.checks import check_bool, check_str_mapping, shown
from airflow_mlpipe.core.secrets import scrub_labels
from airflow_mlpipe.datasets.dataset import FileDataset
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.paths import DataPath
from airflow_mlpipe.datasets.registry import DatasetRecord, DatasetRegistry
from airflow_mlpipe.exceptions import ConfigError, DatasetNotFoundError
from airflow_mlpipe.storage.datastore import Datastore

MODEL_REGISTRY_ROOT = "_mlpipe/registry/models"
MODEL_FILES_ROOT = "models"


class ModelRegistry(DatasetRegistry):
    root = MODEL_REGISTRY_ROOT


class Model:
    """A registered model version: ``Model(ws, name)`` (latest), ``Model(ws, name, version=2)``."""

    def __init__(
        self,
        workspace: Any = None,
        name: str | None = None,
        id: str | None = None,
        version: int | None = None,
        **kwargs: Any,
    ) -> None:
        if id and not name:
            name, _, number = id.partition(":")
            version = int(number) if number else version
        if not name:
            raise DatasetNotFoundError("Model(ws, name): give the model's name (or id='name:version')")
        self._record = _scrubbed(_get(name, version))
        self.workspace = workspace

    @classmethod
    def _of(cls, record: DatasetRecord, workspace: Any = None) -> Model:
        obj = cls.__new__(cls)
        obj._record, obj.workspace = _scrubbed(record), workspace
        return obj

    name = property(lambda self: self._record.name)
    version = property(lambda self: self._record.version)
    id = property(lambda self: self._record.id)
    description = property(lambda self: self._record.description)
    tags = property(lambda self: dict(self._record.tags))
    created_time = property(lambda self: self._record.created_at)

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self._record.lineage.get("properties") or {})

    @property
    def run_id(self) -> str | None:
        return self._record.lineage.get("step_run_id")

    @staticmethod
    def register(
        workspace: Any,
        model_path: str | os.PathLike[str],
        model_name: str,
        tags: Mapping[str, str] | None = None,
        properties: Mapping[str, Any] | None = None,
        description: str | None = None,
        **kwargs: Any,
    ) -> Model:
        """Upload the local file or folder ``model_path`` and register it as the next version of ``model_name``
        (framework, datasets and resource settings are accepted and ignored)."""
        return register_model(model_path, model_name, tags=tags, properties=properties, description=description)

    @staticmethod
    def get_model_path(model_name: str, version: int | None = None, _workspace: Any = None) -> str:
        """A local copy of the model's files (cached per version): the file when one file was registered, else
        the folder."""
        record = _get(model_name, version)
        folder = os.path.join(_cache_root(), record.name, f"{record.version}-{record.manifest.digest[:16]}")
        if not os.path.isdir(folder):
            staging = f"{folder}.{uuid.uuid4().hex[:8]}"
            FileDataset(record=record).download(staging)
            try:
                os.replace(staging, folder)
            except OSError:  # another process put the same version there first
                import shutil

                shutil.rmtree(staging, ignore_errors=True)
        single = record.definition.get("options", {}).get("file")
        return os.path.join(folder, single) if single else folder

    def download(self, target_dir: str = ".", exist_ok: bool = False, **kwargs: Any) -> str:
        check_bool(f"Model({self.name!r}).download", "exist_ok", exist_ok)
        FileDataset(record=self._record).download(target_dir, overwrite=exist_ok)
        single = self._record.definition.get("options", {}).get("file")
        return os.path.join(target_dir, single) if single else target_dir

    @staticmethod
    def list(workspace: Any = None, name: str | None = None, **kwargs: Any) -> list[Model]:
        registry = ModelRegistry()
        names = [name] if name else registry.names()
        listed = (registry.listed(n, v) for n in names for v in registry.versions(n))
        return [Model._of(record, workspace) for record in listed if record is not None]

    def __repr__(self) -> str:
        return f"Model(name={self.name!r}, version={self.version})"


def register_model(
    model_path: str | os.PathLike[str],
    model_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    properties: Mapping[str, Any] | None = None,
    description: str | None = None,
    lineage: Mapping[str, Any] | None = None,
) -> Model:
    """Upload ``model_path`` as v1's ``Datastore.upload`` does (a link inside a folder is refused, never followed)
    and register it. Every argument is checked first: a bad one writes nothing."""
    local, checked = _check_register(model_path, model_name, tags, properties, description)
    store = V1Datastore.of(Datastore.get_default())
    folder = f"{MODEL_FILES_ROOT}/{model_name}/{uuid.uuid4().hex}"
    single = os.path.basename(local.rstrip(os.sep)) if os.path.isfile(local) else None
    store.upload(local, f"{folder}/{single}" if single else folder)
    dataset = FileDataset((DataPath(store.name, folder),), options={"file": single} if single else {})
    try:
        registered = dataset.register(
            model_name,
            description=checked["description"],
            tags=checked["tags"],
            lineage={**dict(lineage or {}), "properties": checked["properties"]},
            registry=ModelRegistry(),
        )
    except BaseException:
        if store.exists(folder):  # nothing registered names the files just uploaded
            store.delete(folder, recursive=True)
        raise
    record = registered.record
    assert record is not None
    if not registered.is_new_version:
        store.delete(folder, recursive=True)  # the same bytes are registered already
    return Model._of(record)


def _check_register(
    model_path: object, model_name: object, tags: object, properties: object, description: object
) -> tuple[str, dict[str, Any]]:
    """``Model.register``'s arguments, checked before anything is uploaded: the local path and the values the
    registry keeps."""
    owner = f"Model.register({shown(model_name)})"
    check_name(model_name, what="model name")
    if not isinstance(model_path, (str, os.PathLike)) or not os.fspath(model_path):
        raise ConfigError(
            f"{owner}: model_path {shown(model_path)} must be the path of a local file or folder, e.g. "
            "model_path='outputs/model.pkl'"
        )
    local = os.fspath(model_path)
    if not isinstance(local, str):
        raise ConfigError(f"{owner}: model_path {shown(model_path)} must be a text path, e.g. 'outputs/model.pkl'")
    if not os.path.exists(local):
        raise ConfigError(
            f"{owner}: model_path {shown(local)} does not exist on this machine; give the file or folder the "
            "script wrote, e.g. model_path='outputs/model.pkl'"
        )
    if description is not None and not isinstance(description, str):
        raise ConfigError(
            f"{owner}: description {shown(description)} must be a string or None, not {type(description).__name__}; "
            "e.g. description='iris classifier'"
        )
    checked = {
        "description": description,
        "tags": check_str_mapping(owner, "tags", tags, example="{'area': 'iris'}"),
        # free text, like tags (which the registry scrubs): stored without the credentials it shows
        "properties": scrub_labels(check_str_mapping(owner, "properties", properties, example="{'accuracy': '0.93'}")),
    }
    return local, checked


def _scrubbed(record: DatasetRecord) -> DatasetRecord:
    """``record`` with its properties scrubbed: records registered before properties were scrubbed when written
    keep a credential pasted into one (records are sealed, never rewritten), which is not shown."""
    properties = record.lineage.get("properties")
    if not isinstance(properties, Mapping):
        return record
    shown_properties = scrub_labels(properties)
    if shown_properties == dict(properties):
        return record
    return replace(record, lineage={**record.lineage, "properties": shown_properties})


def _get(name: str, version: int | None) -> DatasetRecord:
    check_name(name, what="model name", existing=True)  # one registered before names ending in '.' were refused
    try:
        return ModelRegistry().get(name, "latest" if version is None else version)
    except DatasetNotFoundError as exc:
        raise DatasetNotFoundError(str(exc).replace("dataset", "model")) from None


def _cache_root() -> str:
    from airflow_mlpipe.storage.resolve import mlpipe_home

    return os.path.join(mlpipe_home(), "cache", "models")
