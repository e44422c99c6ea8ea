"""Datastore settings from connections and environment variables; errors that name the fault."""

from __future__ import annotations

import json

import pytest

from airflow_mlpipe.core.paths import normalize_relpath
from airflow_mlpipe.core.urls import parse_datastore_url
from airflow_mlpipe.exceptions import (
    ConfigError,
    DatastoreNotFoundError,
    PathOutsideDatastoreError,
    UnsupportedSchemeError,
)
from airflow_mlpipe.storage.config import (
    config_from_connection_string,
    config_from_fields,
    config_to_env_value,
)
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.resolve import resolve_datastore


@pytest.mark.parametrize(
    ("url", "protocol", "root", "options"),
    [
        pytest.param("file:///data/x/", "file", "/data/x", (), id="file"),
        pytest.param("/data/y", "file", "/data/y", (), id="bare-path"),
        pytest.param("az://container/prefix", "abfs", "container/prefix", (), id="az"),
        pytest.param(
            "abfs://cont@acct.dfs.core.windows.net/p/q",
            "abfs",
            "cont/p/q",
            (("account_name", "acct"),),
            id="abfs-account-host",
        ),
        pytest.param("s3://bucket", "s3", "bucket", (), id="s3-bucket-only"),
        pytest.param("s3a://bucket/pre/fix", "s3", "bucket/pre/fix", (), id="s3a"),
        pytest.param("memory://store", "memory", "/store", (), id="memory"),
    ],
)
def test_parse_datastore_url(url: str, protocol: str, root: str, options: tuple) -> None:
    parsed = parse_datastore_url(url)
    assert (parsed.protocol, parsed.root, parsed.url_options) == (protocol, root, options)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("ftp://host/x", r"scheme 'ftp://'.*not supported; use one of file://.*az://.*s3://", id="scheme"),
        pytest.param("", "is empty", id="empty"),
        pytest.param("s3:///nobucket", "no container or bucket", id="no-bucket"),
        pytest.param("file://server/share", "three slashes", id="file-host"),
    ],
)
def test_bad_urls_say_how_to_fix(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_datastore_url(url, datastore="mine")


def test_unsupported_scheme_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_datastore_url("hdfs://x/y")
    assert issubclass(UnsupportedSchemeError, ValueError)


def test_missing_backend_package_gives_install_hint() -> None:
    store = Datastore("gcsdata", "gs://bucket/prefix")
    try:
        import gcsfs  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match=r"needs the Python package 'gcsfs'.*pip install gcsfs"):
            _ = store.fs
    else:  # pragma: no cover - only where gcsfs happens to be installed
        pytest.skip("gcsfs is installed here")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("a/b", "a/b"), ("./a//b/", "a/b"), ("", ""), (".", "")],
)
def test_normalize_relpath(path: str, expected: str) -> None:
    assert normalize_relpath(path) == expected


@pytest.mark.parametrize("bad", ["..", "../a", "a/../../b", "/abs", "a/\x00"])
def test_normalize_relpath_refuses_escapes(bad: str) -> None:
    with pytest.raises(PathOutsideDatastoreError):
        normalize_relpath(bad, datastore="d")


def test_login_password_map_to_backend_credentials() -> None:
    az = config_from_fields(
        "a", conn_type="mlpipe_datastore", login="acct", password="k3y-secret", extra={"url": "az://c/p"}
    )
    assert az.storage_options == {"account_name": "acct", "account_key": "k3y-secret"}
    s3 = config_from_fields(
        "s",
        conn_type="mlpipe_datastore",
        login="AKIA",
        password="s3cr3t-value",
        extra={"url": "s3://b", "endpoint_url": "http://x", "region_name": "eu-west-1"},
    )
    assert s3.storage_options == {
        "key": "AKIA",
        "secret": "s3cr3t-value",
        "endpoint_url": "http://x",
        "client_kwargs": {"region_name": "eu-west-1"},
    }
    assert s3.public_options()["secret"] == "***"
    assert "s3cr3t-value" not in repr(s3)


def test_storage_options_field_merges_json() -> None:
    cfg = config_from_fields(
        "a",
        conn_type="mlpipe_datastore",
        extra={"url": "az://c", "storage_options": '{"max_concurrency": 8}', "sas_token": ""},
    )
    assert cfg.storage_options == {"max_concurrency": 8}
    with pytest.raises(ConfigError, match=r"\"storage_options\"\) must be a JSON object .*; it holds a JSON list"):
        config_from_fields("a", conn_type="mlpipe_datastore", extra={"url": "az://c", "storage_options": "[1]"})
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        config_from_fields(
            "a", conn_type="mlpipe_datastore", extra={"url": "az://c", "storage_options": '{"account_key": s3cr3t'}
        )
    assert "s3cr3t" not in str(info.value)  # the field may hold a key: it is never echoed


def test_wrong_conn_type_and_missing_url() -> None:
    with pytest.raises(ConfigError, match="conn_type 'http'.*mlpipe_datastore"):
        config_from_fields("x", conn_type="http", extra={"url": "s3://b"})
    with pytest.raises(ConfigError, match="datastore 'x': the connection has no url"):
        config_from_fields("x", conn_type="mlpipe_datastore", extra={})
    with pytest.raises(ConfigError, match="extra is not valid JSON"):
        config_from_fields("x", conn_type="mlpipe_datastore", extra="{nope")


def test_connection_string_forms_roundtrip() -> None:
    cfg = config_from_fields(
        "d", conn_type="mlpipe_datastore", login="acct", password="pw/with+chars", extra={"url": "az://c/p"}
    )
    again = config_from_connection_string("d", config_to_env_value(cfg))
    assert again.storage_options == cfg.storage_options and again.url == cfg.url
    uri = "mlpipe-datastore://AKIA:pw%2Fx@/?url=s3%3A%2F%2Fbucket%2Fp&region_name=eu-west-1"
    from_uri = config_from_connection_string("d", uri)
    assert from_uri.storage_options["secret"] == "pw/x"
    assert from_uri.parsed.root == "bucket/p"


def test_resolve_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_RAW_DATA",
        json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": tmp_path.as_uri()}}),
    )
    store = Datastore.get("raw_data")
    assert store.name == "raw_data" and store.root == str(tmp_path)


def test_unknown_datastore_names_known_ones(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_LANDING",
        json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": tmp_path.as_uri()}}),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SOME_HTTP", "http://example.com")
    with pytest.raises(
        DatastoreNotFoundError,
        match=r"no datastore named 'nope'.*known datastores: 'landing', 'mlpipe_default'",
    ):
        resolve_datastore("nope")


def test_default_datastore_is_local_folder_under_mlpipe_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "home"))
    store = Datastore.get_default()
    assert store.name == "mlpipe_default"
    assert store.root == str(tmp_path / "home" / "datastore")
    store.write_text("hello.txt", "hi")
    assert (tmp_path / "home" / "datastore" / "hello.txt").read_text() == "hi"


def test_default_datastore_from_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MLPIPE_DEFAULT",
        json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": "memory://team"}}),
    )
    assert Datastore.get_default().url == "memory:///team"


def test_mlpipe_home_defaults_to_airflow_home(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("MLPIPE_HOME")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert Datastore.get_default().root == str(tmp_path / "mlpipe" / "datastore")


def test_get_looks_the_connection_up_on_first_use_only() -> None:
    store = Datastore.get("not_defined_yet")  # what a DAG file does at parse time: no lookup
    assert store.name == "not_defined_yet" and repr(store) == "Datastore(name='not_defined_yet')"
    with pytest.raises(DatastoreNotFoundError, match="no datastore named 'not_defined_yet'"):
        store.exists("x")
