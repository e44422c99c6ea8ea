"""A new dataset, model or output name may not end in '.': Azure Blob drops trailing dots from folder names, so the
registry folders of ``iris.`` and ``iris`` would be one there. A name registered before this rule is still read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.compat import models
from airflow_mlpipe.datasets import registry
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.reuse_helpers import mlpipe_in_process


@pytest.mark.parametrize("name", ["iris.", "a.b.", "v1."])
def test_a_new_name_ending_in_a_dot_is_refused(name: str) -> None:
    with pytest.raises(DatasetError) as caught:
        check_name(name)
    message = str(caught.value)
    assert message.startswith(f"dataset name {name!r} cannot be used: it ends in '.'")
    assert f"would mix with those of {name.rstrip('.')!r}" in message and f"e.g. {name.rstrip('.') + '_1'!r}" in message
    assert check_name(name, existing=True) == name


def test_registering_a_name_ending_in_a_dot_writes_nothing(local_default: Datastore) -> None:
    local_default.write_text("f.csv", "1\n")
    with pytest.raises(DatasetError, match=r"dataset name 'iris\.' cannot be used: it ends in '\.'"):
        Dataset.File.from_files((local_default, "f.csv")).register("iris.")
    assert not local_default.exists("_mlpipe/registry")


def test_a_name_registered_before_the_rule_is_still_read(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_default.write_text("f.csv", "1\n")
    with monkeypatch.context() as older:  # as code before the rule registered it
        older.setattr(registry, "check_name", lambda name, **_: name)
        Dataset.File.from_files((local_default, "f.csv")).register("iris.")

    assert DatasetRegistry().get("iris.").version == 1
    assert DatasetRegistry().versions("iris.") == [1] and DatasetRegistry().latest_version("iris.") == 1
    assert [e.path for e in Dataset.get_by_name("iris.").current_manifest().entries] == ["f.csv"]
    code, out = mlpipe_in_process("datasets", "show", "iris.", "--json")
    assert (code, json.loads(out)["name"]) == (0, "iris.")


def test_a_model_registered_before_the_rule_is_still_read(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow_mlpipe.compat.models import Model

    (tmp_path / "model.pkl").write_bytes(b"weights")
    with monkeypatch.context() as older:
        older.setattr(registry, "check_name", lambda name, **_: name)
        older.setattr(models, "check_name", lambda name, **_: name)
        Model.register(None, str(tmp_path / "model.pkl"), "clf.")
    assert Model(None, "clf.").version == 1
    with pytest.raises(DatasetError, match=r"model name 'clf\.' cannot be used: it ends in '\.'"):
        Model.register(None, str(tmp_path / "model.pkl"), "clf.")


def test_a_dag_can_be_scheduled_on_a_name_registered_before_the_rule() -> None:
    """The DAG file parses (it raised before): the asset names the registered dataset; a bad name stays refused."""
    from airflow.sdk import DAG

    from airflow_mlpipe.assets import dataset_asset

    with DAG("on_old_name", schedule=[dataset_asset("iris.")]) as dag:
        pass
    assert dataset_asset("iris.").uri == "mlpipe://datasets/iris." and dag.dag_id == "on_old_name"
    with pytest.raises(DatasetError, match=r"dataset name '\.\./x' cannot be used"):
        dataset_asset("../x")
