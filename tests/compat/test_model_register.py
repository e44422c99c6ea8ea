"""``Model.register`` checks everything before it uploads: a link inside the model folder is refused (never
followed), and bad tags, properties or descriptions are refused with nothing uploaded or registered."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.compat.models import Model
from airflow_mlpipe.datasets.dataset import FileDataset
from airflow_mlpipe.exceptions import ConfigError, DatasetError
from airflow_mlpipe.storage.datastore import Datastore


def _files(store: Datastore) -> list[str]:
    root = Path(store.full_path(""))
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"w")
    return folder


def test_a_link_inside_the_model_folder_is_refused(local_default: Datastore, model_folder: Path) -> None:
    secret = model_folder.parent / "secret.txt"
    secret.write_text("TOPSECRET")
    os.symlink(secret, model_folder / "link.txt")
    before = _files(local_default)
    with pytest.raises(ConfigError) as info:
        Model.register(None, str(model_folder), "linked")
    message = str(info.value)
    assert f"upload source: 'link.txt' in folder {str(model_folder)!r} is a symbolic link (to {secret})" in message
    assert "never follows a link inside it" in message and message.endswith("nothing was written")
    assert _files(local_default) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "parts"),
    [
        pytest.param(
            {"tags": ["x"]},
            ConfigError,
            ("Model.register('m'): tags (of type list, its content not shown) must map strings to strings",),
            id="tags-list",
        ),
        pytest.param(
            {"description": 3},
            ConfigError,
            ("Model.register('m'): description 3 must be a string or None, not int",),
            id="description-int",
        ),
        pytest.param(
            {"properties": 3},
            ConfigError,
            ("Model.register('m'): properties (of type int, its content not shown) must map strings to strings",),
            id="properties-int",
        ),
        pytest.param(
            {"properties": {"accuracy": 0.9}},
            ConfigError,
            ("properties (the value of 'accuracy' is of type float, not shown) must map strings to strings",),
            id="properties-float-value",
        ),
        pytest.param(
            {"model_path": 3},
            ConfigError,
            ("Model.register('m'): model_path 3 must be the path of a local file or folder",),
            id="path-int",
        ),
        pytest.param(
            {"model_path": "/nonexistent/model.pkl"},
            ConfigError,
            ("model_path '/nonexistent/model.pkl' does not exist on this machine", "model_path='outputs/model.pkl'"),
            id="path-missing",
        ),
        pytest.param({"model_name": "a/b"}, DatasetError, ("model name 'a/b' cannot be used",), id="name-slash"),
    ],
)
def test_bad_arguments_upload_nothing(
    local_default: Datastore, model_folder: Path, kwargs: dict[str, Any], error: type[Exception], parts: tuple[str]
) -> None:
    call = {"model_path": str(model_folder), "model_name": "m", **kwargs}
    before = _files(local_default)
    with pytest.raises(error) as info:
        Model.register(None, **call)
    for part in parts:
        assert part in str(info.value)
    assert _files(local_default) == before


def test_a_failed_registration_removes_the_uploaded_files(
    local_default: Datastore, model_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise DatasetError("registry unavailable")

    monkeypatch.setattr(FileDataset, "register", refuse)
    with pytest.raises(DatasetError, match="registry unavailable"):
        Model.register(None, str(model_folder), "m")
    assert not [p for p in _files(local_default) if p.startswith("models/m/")]


def test_a_good_folder_is_registered(local_default: Datastore, model_folder: Path) -> None:
    model = Model.register(None, str(model_folder), "m", tags={"a": "b"}, properties={"acc": "0.9"})
    assert (model.version, model.tags, model.properties) == (1, {"a": "b"}, {"acc": "0.9"})
    assert os.listdir(Model.get_model_path("m")) == ["weights.bin"]


def test_download_refuses_a_string_for_exist_ok(local_default: Datastore, model_folder: Path, tmp_path: Path) -> None:
    Model.register(None, str(model_folder), "m")
    with pytest.raises(ConfigError, match="Model\\('m'\\).download: exist_ok 'no' must be True or False, not str"):
        Model(None, "m").download(str(tmp_path / "dl"), exist_ok="no")
    assert not (tmp_path / "dl").exists()


def test_properties_are_stored_and_shown_scrubbed(local_default: Datastore, model_folder: Path) -> None:
    """Like tags: a credential pasted into a property is not written into the registry record, nor shown."""
    Model.register(
        None,
        str(model_folder),
        "mm",
        properties={"conn": "postgresql://u:PropUrlPlant1@h/db", "api_key": "PropKeyPlant2", "acc": "0.9"},
    )
    (path,) = [
        p for p in _files(local_default) if p.startswith("_mlpipe/registry/models/mm/") and p.endswith("/1.json")
    ]
    stored = json.loads(local_default.read_text(path))
    assert stored["lineage"]["properties"] == {"conn": "postgresql://u:***@h/db", "api_key": "***", "acc": "0.9"}
    model = Model(None, name="mm")
    assert model.properties == stored["lineage"]["properties"]
    assert "Plant" not in repr(vars(model)) and "Plant" not in repr([vars(m) for m in Model.list(name="mm")])


def test_properties_registered_before_scrubbing_are_shown_scrubbed(
    local_default: Datastore, model_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A record older code stored with a credential in a property: served as it is sealed, shown scrubbed."""
    from airflow_mlpipe.compat import models

    with monkeypatch.context() as older:
        older.setattr(models, "scrub_labels", lambda labels: dict(labels))
        Model.register(None, str(model_folder), "old_mm", properties={"token": "OldPropPlant3", "acc": "0.9"})
    path = "_mlpipe/registry/models/old_mm/1.json"
    assert "OldPropPlant3" in local_default.read_text(path)  # as older code left it
    for model in (Model(None, name="old_mm"), Model(None, id="old_mm:1"), *Model.list(name="old_mm")):
        assert model.properties == {"token": "***", "acc": "0.9"}
        assert "Plant" not in repr(vars(model))
