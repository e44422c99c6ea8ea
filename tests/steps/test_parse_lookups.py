"""No connection lookup when a DAG file is parsed, unless asked for (then one per datastore per DAG file); datastore
settings looked up again after a bounded time; the operators' datastores through ``DatastoreHook``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_mlpipe import KubernetesCompute, OutputFileDatasetConfig, PythonScriptOperator
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.hooks.datastore import DatastoreHook
from airflow_mlpipe.operators import parse_checks
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.config import config_from_fields

GPU = KubernetesCompute(image="python:3.11", gpu=1, secrets=["ds"], datastore_secrets="ds")


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """Every datastore connection looked up through Airflow (secrets backends, metadata DB); the default datastore
    is a local folder there, which a pod cannot reach."""
    calls: list[str] = []

    def look_up(name: str) -> object:
        calls.append(name)
        if name == "mlpipe_default":
            return config_from_fields(name, conn_type="mlpipe_datastore", extra={"url": tmp_path.as_uri()})
        return config_from_fields(name, conn_type="mlpipe_datastore", extra={"url": f"s3://bucket/{name}"})

    monkeypatch.delenv("AIRFLOW_CONN_MLPIPE_DEFAULT", raising=False)
    monkeypatch.setattr(resolve, "_config_from_airflow", look_up)
    resolve.clear_cache()
    parse_checks.clear_parse_cache()
    yield calls
    resolve.clear_cache()
    parse_checks.clear_parse_cache()


def parse(dag_id: str, steps: int = 3) -> None:
    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        for n in range(steps):
            out = OutputFileDatasetConfig(f"out{n}", destination=("features", f"f/{n}"))
            PythonScriptOperator(
                task_id=f"s{n}", script_name="t.py", source_directory=".", arguments=[out], compute_target=GPU
            )


def test_parsing_looks_up_no_connection_by_default(lookups: list[str]) -> None:
    parse("parse_no_lookup")
    assert lookups == []


def test_asked_for_the_check_looks_up_each_datastore_once_per_dag_file(
    lookups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(parse_checks.CHECK_AT_PARSE_ENV, "1")
    with pytest.raises(ConfigError, match=r"step 's0'.*'mlpipe_default' is a local folder.*a pod cannot reach"):
        parse("parse_checked")
    assert lookups == ["features", "mlpipe_default"]
    monkeypatch.setattr(
        resolve,
        "_config_from_airflow",
        lambda name: lookups.append(name) or config_from_fields(name, conn_type=None, extra={"url": f"s3://b/{name}"}),
    )
    parse_checks.clear_parse_cache()
    lookups.clear()
    parse("parse_checked_ok")
    assert sorted(lookups) == ["features", "mlpipe_default"], "three steps, two datastores: two lookups"


def test_a_connection_in_the_environment_is_checked_without_a_lookup(
    lookups: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLPIPE_DEFAULT",
        json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": tmp_path.as_uri()}}),
    )
    with pytest.raises(ConfigError, match="a pod cannot reach"):
        parse("parse_env", steps=1)
    assert lookups == []


def test_datastore_settings_are_looked_up_again_after_the_ttl(
    lookups: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = DatastoreHook.get_datastore("features")
    assert DatastoreHook.get_datastore("features") is first and lookups == ["features"]
    monkeypatch.setenv(resolve.TTL_ENV, "0")
    assert DatastoreHook.get_datastore("features") is first, "unchanged settings keep their datastore"
    rotated = config_from_fields("features", conn_type=None, extra={"url": "s3://bucket/features", "key": "new"})
    monkeypatch.setattr(resolve, "_config_from_airflow", lambda name: rotated)
    assert DatastoreHook.get_datastore("features").config == rotated
    assert len(lookups) == 2


def test_the_hook_gives_the_embedded_default_when_no_connection_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MLPIPE_DEFAULT", raising=False)
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path))
    monkeypatch.setattr(resolve, "_config_from_airflow", lambda name: None)
    resolve.clear_cache()
    assert DatastoreHook.get_datastore().url == (tmp_path / "datastore").resolve().as_uri()
    resolve.clear_cache()
