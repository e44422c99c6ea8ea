"""One scrubber for configuration: distinctive credentials of every kind are planted and searched for in what
``mlpipe datastores list`` prints (text and ``--json``) and in storage error messages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_mlpipe.core.secrets import MASK, is_secret_key, scrub, scrub_text
from airflow_mlpipe.exceptions import DatastoreAccessError, UnsupportedSchemeError
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.config import config_from_fields
from airflow_mlpipe.storage.errors import translate_errors
from tests.reuse.reuse_helpers import mlpipe_in_process

ACCOUNT_KEY = "PLANTEDaccountKEY0001=="
SAS_SIG = "PLANTEDsasSIG0002%3D"
S3_SECRET = "PLANTEDs3SECRET0003"
NESTED = "PLANTEDnestedOPTION0004"
URL_PASSWORD = "PLANTEDurlPASSWORD0005"
CONN_STRING = (
    f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
)
SAS = f"sv=2022-11-02&ss=b&srt=co&sp=rl&se=2030-01-01&sig={SAS_SIG}"
PLANTED = (ACCOUNT_KEY, SAS_SIG, S3_SECRET, NESTED, URL_PASSWORD)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"account_key": ACCOUNT_KEY}, {"account_key": MASK}, id="account-key"),
        pytest.param({"connection_string": CONN_STRING}, {"connection_string": MASK}, id="connection-string"),
        pytest.param({"sas_token": SAS}, {"sas_token": MASK}, id="sas-option"),
        pytest.param(
            {"client_kwargs": {"aws_secret_access_key": NESTED, "region_name": "eu"}},
            {"client_kwargs": {"aws_secret_access_key": MASK, "region_name": "eu"}},
            id="nested-option",
        ),
        pytest.param(
            [{"AccountKey": ACCOUNT_KEY}, ("x", {"Password": URL_PASSWORD})],
            [{"AccountKey": MASK}, ("x", {"Password": MASK})],
            id="lists-and-camel-case",
        ),
        pytest.param(f"s3://AKID:{S3_SECRET}@bucket/p", f"s3://AKID:{MASK}@bucket/p", id="url-userinfo"),
        pytest.param(f"ftp://user:{URL_PASSWORD}@host/x", f"ftp://user:{MASK}@host/x", id="ftp-userinfo"),
        pytest.param(
            f"https://acct.blob.core.windows.net/c/x?{SAS}",
            f"https://acct.blob.core.windows.net/c/x?{SAS.replace(SAS_SIG, MASK)}",
            id="sas-in-url",
        ),
        pytest.param(CONN_STRING, CONN_STRING.replace(ACCOUNT_KEY, MASK), id="connection-string-text"),
        pytest.param(f"failed: {{'secret': '{S3_SECRET}'}}", f"failed: {{'secret': '{MASK}'}}", id="repr-in-text"),
        pytest.param(
            {"account_name": "acct", "max_concurrency": 8, "token": "anon", "anon": True},
            {"account_name": "acct", "max_concurrency": 8, "token": "anon", "anon": True},
            id="nothing-secret",
        ),
    ],
)
def test_scrub(value: Any, expected: Any) -> None:
    assert scrub(value) == expected


def test_known_values_are_scrubbed_anywhere_in_text() -> None:
    assert scrub_text(f"denied for {NESTED}!", known=[NESTED]) == f"denied for {MASK}!"


@pytest.mark.parametrize("name", ["key", "secret", "password", "token", "sas", "credential", "connection_string"])
def test_secret_key_names(name: str) -> None:
    assert is_secret_key(name) and is_secret_key(name.upper()) and is_secret_key(f"my_{name}")


def _conn(extra: dict[str, Any], **fields: str) -> str:
    return json.dumps({"conn_type": "mlpipe_datastore", "extra": extra, **fields})


def planted_connections() -> dict[str, str]:
    """Datastore connections (``AIRFLOW_CONN_<NAME>`` values) holding each kind of credential."""
    return {
        "az_key": _conn({"url": "az://c/p"}, login="acct", password=ACCOUNT_KEY),
        "az_conn_string": _conn({"url": "az://c/p", "connection_string": CONN_STRING}),
        "az_sas": _conn({"url": "az://c/p", "account_name": "acct", "sas_token": SAS}),
        "s3_url": _conn({"url": f"s3://AKID:{S3_SECRET}@bucket/p"}),
        "s3_nested": _conn({"url": "s3://bucket/p", "client_kwargs": {"aws_secret_access_key": NESTED}}),
        "s3_options": _conn({"url": "s3://bucket/p", "storage_options": {"extra_auth": {"password": URL_PASSWORD}}}),
    }


def plant(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Set the planted connections in the environment; returns their names."""
    for name, value in planted_connections().items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", value)
    resolve.clear_cache()
    return list(planted_connections())


def leaks(text: str) -> list[str]:
    """The planted credentials ``text`` shows."""
    return [secret for secret in PLANTED if secret in text]


@pytest.fixture
def planted(monkeypatch: pytest.MonkeyPatch) -> None:
    plant(monkeypatch)


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_datastores_list_shows_no_credential(planted: None, as_json: bool) -> None:
    code, printed = mlpipe_in_process("datastores", "list", *(["--json"] if as_json else []))
    assert code == 0, printed
    assert "s3_nested" in printed and "az_sas" in printed
    assert [secret for secret in PLANTED if secret in printed] == []
    if as_json:
        rows = {row["name"]: row for row in json.loads(printed)["datastores"]}
        assert rows["s3_url"]["url"] == "s3://bucket/p"
        assert rows["s3_nested"]["options"]["client_kwargs"] == {"aws_secret_access_key": MASK}


def test_credentials_in_an_s3_url_become_secret_options() -> None:
    config = config_from_fields("s3", conn_type=None, extra={"url": f"s3://AKID:{S3_SECRET}@bucket/p"})
    assert config.parsed.root == "bucket/p"
    assert (config.storage_options["key"], config.storage_options["secret"]) == ("AKID", S3_SECRET)
    assert S3_SECRET in config.secret_values
    assert S3_SECRET not in config.public_url


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        pytest.param({"url": "s3://bucket/p", "client_kwargs": {"aws_secret_access_key": NESTED}}, NESTED, id="nested"),
        pytest.param({"url": f"s3://AKID:{S3_SECRET}@bucket/p"}, f"bad url s3://AKID:{S3_SECRET}@bucket", id="url"),
        pytest.param({"url": "az://c/p", "sas_token": SAS}, f"GET https://a.blob/c?{SAS} 403", id="sas"),
        pytest.param({"url": "az://c/p", "connection_string": CONN_STRING}, f"bad {CONN_STRING}", id="conn-string"),
    ],
)
def test_storage_errors_carry_no_credential(extra: dict[str, Any], error: str) -> None:
    config = config_from_fields("store", conn_type=None, extra=extra)
    with pytest.raises(DatastoreAccessError) as info, translate_errors(config, "list", "data"):
        raise RuntimeError(error)
    assert "datastore 'store'" in str(info.value)
    assert [secret for secret in PLANTED if secret in str(info.value)] == []


def test_an_unsupported_url_is_echoed_without_its_password() -> None:
    with pytest.raises(UnsupportedSchemeError) as info:
        config_from_fields("ftp", conn_type=None, extra={"url": f"ftp://user:{URL_PASSWORD}@host/x"})
    assert URL_PASSWORD not in str(info.value) and "ftp://user:***@host/x" in str(info.value)


def test_a_task_masks_every_credential_of_the_datastores_it_uses(
    planted: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow.sdk.log

    from airflow_mlpipe.hooks.datastore import DatastoreHook

    masked: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", masked.append)
    for name in ("s3_url", "s3_nested", "s3_options", "az_sas", "az_conn_string", "az_key"):
        DatastoreHook.get_datastore(name)
    assert {S3_SECRET, NESTED, URL_PASSWORD, SAS, SAS_SIG, CONN_STRING, ACCOUNT_KEY} <= set(masked)
