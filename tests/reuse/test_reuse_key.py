"""The reuse key: listed components, canonical text with a format salt, and inputs identified by content."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.exceptions import IncompleteFolderError
from airflow_mlpipe.reuse import inputs as reuse_inputs
from airflow_mlpipe.reuse.inputs import input_identity
from airflow_mlpipe.reuse.key import KEY_FORMAT, ReuseKey
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_s3_datastore
from tests.reuse.reuse_helpers import committed_output, fingerprint, local_file, output_spec, tree


@pytest.fixture
def local_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    return Datastore.get_default()


def _dataset_spec(dataset: Any, name: str = "raw", mode: str = "download") -> dict[str, Any]:
    return {
        "name": name,
        "mode": mode,
        "path_on_compute": None,
        "source": {"type": "dataset", "dataset": dataset.to_dict()},
    }


def test_the_key_is_a_canonical_listed_structure_with_a_format_salt() -> None:
    fp = fingerprint()
    text = fp.key.canonical()
    assert json.loads(text)["format"] == KEY_FORMAT
    assert text == json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))
    assert set(fp.key.components()) == {
        "script",
        "source",
        "hash_paths",
        "arguments",
        "inputs",
        "outputs",
        "environment",
    }
    assert ReuseKey.from_components(json.loads(json.dumps(fp.key.components()))).digest == fp.digest
    assert len(fp.digest) == 32


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"source": tree(train_py="v2")}, id="source file"),
        pytest.param({"hash_paths": tree(util_py="x")}, id="hash_paths"),
        pytest.param({"arguments": [{"t": "param", "name": "learning_rate", "value": 0.2}]}, id="parameter value"),
        pytest.param({"arguments": [{"t": "str", "v": "--fast"}]}, id="argument text"),
        pytest.param({"outputs": [output_spec("model", "models/{run-id}")]}, id="output destination"),
        pytest.param({"outputs": [output_spec("model", registration="m")]}, id="output registration"),
        pytest.param(
            {"environment": {"image": None, "pip_packages": ["x==1"], "env_vars": {}, "python": "p"}}, id="env"
        ),
    ],
)
def test_each_component_changes_the_key(change: dict[str, Any]) -> None:
    assert fingerprint(**change).digest != fingerprint().digest


def test_run_specific_paths_never_enter_the_key() -> None:
    one, two = output_spec("model"), output_spec("model")
    one["path"], two["path"] = "dataset/run-1/model", "dataset/run-2/model"
    assert fingerprint(outputs=[one]).digest == fingerprint(outputs=[two]).digest
    assert fingerprint(outputs=[one]).key.outputs["model"]["destination"] == "dataset/{run-id}/{output-name}"


def test_a_dataset_definition_counts_by_the_content_of_the_files_it_matches(local_default: Datastore) -> None:
    local_default.write_text("raw/part-0.csv", "x\n1\n")
    spec = _dataset_spec(Dataset.File.from_files(path=(local_default, "raw/*.csv")))
    first = input_identity(spec)
    assert first.detail["origin"] == "definition"
    assert first.detail["entries"] == {"raw/part-0.csv": first.detail["entries"]["raw/part-0.csv"]}

    os.utime(local_file(local_default, "raw/part-0.csv"), (1, 1))  # a touched file is the same data
    assert input_identity(spec).component == first.component
    local_default.write_text("raw/part-0.csv", "x\n2\n")  # other bytes at the same path are not
    assert input_identity(spec).component["content"] != first.component["content"]
    local_default.write_text("raw/part-1.csv", "x\n3\n")
    assert set(input_identity(spec).detail["entries"]) == {"raw/part-0.csv", "raw/part-1.csv"}


def test_a_registered_version_counts_by_its_pinned_manifest_without_reading_the_files(
    local_default: Datastore,
) -> None:
    local_default.write_text("raw/a.csv", "x\n1\n")
    registered = Dataset.File.from_files(path=(local_default, "raw/a.csv")).register("raw_data")
    local_default.delete("raw/a.csv")
    ident = input_identity(_dataset_spec(Dataset.get_by_name("raw_data", 1)))
    assert ident.component["content"] == registered.record.manifest.digest  # type: ignore[union-attr]
    assert ident.detail["dataset"] == "raw_data:1"
    # the same content under another name is the same input
    local_default.write_text("raw/a.csv", "x\n1\n")
    Dataset.File.from_files(path=(local_default, "raw/a.csv")).register("raw_copy")
    copy = input_identity(_dataset_spec(Dataset.get_by_name("raw_copy", 1)))
    assert copy.component == ident.component


def test_an_upstream_output_counts_by_its_completion_marker(local_default: Datastore, tmp_path: Path) -> None:
    out = committed_output(local_default, "prepped", "dataset/r1/prepped", {"rows.csv": "x\n1\n"}, tmp_path)
    spec = {"name": "prepped", "mode": "mount", "source": {"type": "folder", "datastore": "mlpipe_default",
                                                            "path": out["path"], "producer": "prep"}}  # fmt: skip
    ident = input_identity(spec)
    assert ident.component == {"mode": "mount", "content": out["manifest"]["digest"]}
    assert ident.detail["entries"] is not None and list(ident.detail["entries"]) == ["rows.csv"]
    local_default.clear_complete(out["path"])
    with pytest.raises(IncompleteFolderError):
        input_identity(spec)


def test_large_inputs_keep_counts_not_entries(local_default: Datastore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reuse_inputs, "DETAIL_ENTRIES_LIMIT", 2)
    for n in range(3):
        local_default.write_text(f"many/{n}.csv", str(n))
    ident = input_identity(_dataset_spec(Dataset.File.from_files(path=(local_default, "many"))))
    assert ident.detail["entries"] is None and ident.detail["files"] == 3


def test_remote_inputs_are_identified_from_listings_never_downloaded(
    moto_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_s3_datastore(moto_s3)
    monkeypatch.setenv("AIRFLOW_CONN_S3", json.dumps({"conn_type": "mlpipe_datastore", "extra": {
        "url": store.config.url, **dict(store.config.storage_options)}}))  # fmt: skip
    resolve.clear_cache()
    store = Datastore.get("s3")
    store.write_text("raw/part-0.csv", "x\n1\n")

    def no_download(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an input was downloaded to be fingerprinted")

    monkeypatch.setattr(type(store.fs), "cat_file", no_download)
    monkeypatch.setattr(type(store.fs), "_cat_file", no_download)
    ident = input_identity(_dataset_spec(Dataset.File.from_files(path=(store, "raw/*.csv"))))
    (token,) = ident.detail["entries"].values()
    assert token.split(":")[1] in ("etag", "md5")
    assert "read_to_hash" not in ident.detail
