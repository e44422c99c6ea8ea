"""DatastoreHook and the provider's registration, against a real Airflow and real storage servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlpipe.exceptions import DatastoreAccessError
from airflow_mlpipe.hooks.datastore import DatastoreHook
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import airflow_cli
from tests.conftest import unique
from tests.emulators import AZURITE_ACCOUNT, Azurite, MotoS3

WRONG_KEY = "V3J vbmcta2V5LXRoYXQtaXMtbm90LXRoZS1henVyaXRlLWtleQ==".replace(" ", "")


def _airflow(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return airflow_cli(*args, env=env)


def test_provider_is_registered(airflow_db: Path) -> None:
    out = _airflow("providers", "list", "--output", "json")
    assert out.returncode == 0, out.stderr
    names = {p["package_name"] for p in json.loads(out.stdout)}
    assert "airflow-mlpipe" in names
    hooks = _airflow("providers", "hooks", "--output", "json")
    conn_types = {h["connection_type"] for h in json.loads(hooks.stdout)}
    assert "mlpipe_datastore" in conn_types


def test_airflow_accepts_a_datastore_connection_and_hook_opens_it(airflow_db: Path, azurite: Azurite) -> None:
    conn_id = unique("ds_")
    container = unique("c")
    add = _airflow(
        "connections",
        "add",
        conn_id,
        "--conn-type",
        "mlpipe_datastore",
        "--conn-login",
        AZURITE_ACCOUNT,
        "--conn-password",
        "placeholder",
        "--conn-extra",
        json.dumps({"url": f"az://{container}/team", "connection_string": azurite.connection_string}),
    )
    assert add.returncode == 0, add.stderr
    try:
        _open_through_the_hook(conn_id, container, azurite)
    finally:  # the metadata DB is the session's: other tests list its datastore connections
        _airflow("connections", "delete", conn_id)


def _open_through_the_hook(conn_id: str, container: str, azurite: Azurite) -> None:
    Datastore(conn_id, f"az://{container}", {"connection_string": azurite.connection_string}).fs.mkdir(container)
    # A server-side process (the CLI, the API server) reads connections from the metadata DB.
    code = (
        "from airflow_mlpipe.hooks.datastore import DatastoreHook;"
        f"h = DatastoreHook(datastore_conn_id={conn_id!r});"
        "h.datastore.write_text('probe.txt', 'ok');"
        "print(h.test_connection()); print(h.datastore.url)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "_AIRFLOW_PROCESS_CONTEXT": "server"},
    )
    assert run.returncode == 0, run.stderr
    assert "(True, " in run.stdout
    assert f"az://{container}/team" in run.stdout
    back = Datastore(conn_id, f"az://{container}/team", {"connection_string": azurite.connection_string})
    assert back.read_text("probe.txt") == "ok"


def _hook_for(monkeypatch: pytest.MonkeyPatch, conn_id: str, conn: dict) -> DatastoreHook:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return DatastoreHook(datastore_conn_id=conn_id)


def test_test_connection_ok_on_s3(monkeypatch: pytest.MonkeyPatch, moto_s3: MotoS3) -> None:
    bucket = unique("b")
    opts = moto_s3.storage_options()
    hook = _hook_for(
        monkeypatch,
        "s3data",
        {
            "conn_type": "mlpipe_datastore",
            "login": opts["key"],
            "password": opts["secret"],
            "extra": {
                "url": f"s3://{bucket}/p",
                "endpoint_url": moto_s3.endpoint_url,
                "region_name": "eu-west-1",
            },
        },
    )
    ok, message = hook.test_connection()
    assert not ok and f"bucket {bucket!r} does not exist" in message
    hook.get_fs().mkdir(bucket)
    ok, message = hook.test_connection()
    assert ok, message
    assert f"s3://{bucket}/p is reachable" in message


def test_wrong_azure_key_names_datastore_and_setting_without_secret(
    monkeypatch: pytest.MonkeyPatch, azurite: Azurite
) -> None:
    container = unique("c")
    Datastore("setup", f"az://{container}", {"connection_string": azurite.connection_string}).fs.mkdir(container)
    bad_cs = azurite.connection_string.replace(
        azurite.connection_string.split("AccountKey=")[1].split(";")[0], WRONG_KEY
    )
    hook = _hook_for(
        monkeypatch,
        "badkey",
        {
            "conn_type": "mlpipe_datastore",
            "extra": {"url": f"az://{container}", "connection_string": bad_cs},
        },
    )
    ok, message = hook.test_connection()
    assert not ok
    assert f"'az://{container}'" in message and "access denied" in message and "account key" in message
    assert WRONG_KEY not in message and WRONG_KEY[:20] not in message
    with pytest.raises(DatastoreAccessError) as info:
        hook.datastore.write_text("x.txt", "never")
    assert WRONG_KEY not in str(info.value)
    assert WRONG_KEY not in repr(hook.datastore) and WRONG_KEY not in repr(hook.datastore.config)
    assert not Datastore("check", f"az://{container}", {"connection_string": azurite.connection_string}).exists("x.txt")


def test_unreachable_store_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.emulators import free_port

    hook = _hook_for(
        monkeypatch,
        "away",
        {
            "conn_type": "mlpipe_datastore",
            "login": "k",
            "password": "secret-value-123",
            "extra": {
                "url": "s3://bucket",
                "endpoint_url": f"http://127.0.0.1:{free_port()}",
                "storage_options": json.dumps({"config_kwargs": {"retries": {"max_attempts": 1}}}),
            },
        },
    )
    ok, message = hook.test_connection()
    assert not ok
    assert "'s3://bucket'" in message and "could not be reached" in message
    assert "secret-value-123" not in message


def test_ui_form_fields_are_declared() -> None:
    from airflow_mlpipe.provider_info import get_provider_info

    info = get_provider_info()
    conn = info["connection-types"][0]
    assert conn["connection-type"] == "mlpipe_datastore"
    assert {"endpoint_url", "region_name", "connection_string", "sas_token", "storage_options"} == set(
        conn["conn-fields"]
    )
    assert conn["conn-fields"]["connection_string"]["schema"]["format"] == "password"
    behaviour = DatastoreHook.get_ui_field_behaviour()
    assert "extra" in behaviour["hidden_fields"] and "host" not in behaviour["hidden_fields"]
    assert behaviour["relabeling"]["host"] == "Datastore URL (required)"  # the URL is the form's first field


def test_testing_a_missing_local_folder_fails_and_creates_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "no" / "such" / "folder"
    hook = _hook_for(monkeypatch, "localds", {"conn_type": "mlpipe_datastore", "host": missing.as_uri()})
    ok, message = hook.test_connection()
    assert not ok and f"the folder {missing} does not exist; create it or fix the path" in message
    assert not missing.exists() and not missing.parent.exists()
    missing.mkdir(parents=True)
    ok, message = hook.test_connection()
    assert ok and message == f"The datastore at file://{missing} is reachable: its root can be listed"
