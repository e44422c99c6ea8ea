"""Find a datastore's settings by name: ``AIRFLOW_CONN_<NAME>`` first, then Airflow's secrets backends.

Reading the environment first keeps step runners (subprocesses, containers, pods) free of Airflow's import and
database; inside Airflow, connections from the UI, the metadata DB and secrets backends are found through
Airflow's own ``Connection.get``.

Resolved datastores are kept for ``MLPIPE_DATASTORE_TTL`` seconds (default 300), then looked up again, so that a
long-lived process (a worker, the triggerer) picks up rotated credentials; an unchanged configuration keeps its
filesystem object (and the connections it pools).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from airflow_mlpipe.exceptions import DatastoreNotFoundError
from airflow_mlpipe.storage import metadb
from airflow_mlpipe.storage.config import (
    CONN_TYPE,
    DEFAULT_DATASTORE,
    DatastoreConfig,
    config_from_connection_string,
    config_from_env,
    config_from_fields,
)
from airflow_mlpipe.storage.datastore import Datastore

_cache: dict[str, tuple[float, Datastore]] = {}
_lock = threading.Lock()
TTL_ENV = "MLPIPE_DATASTORE_TTL"
DEFAULT_TTL = 300.0


def config_ttl() -> float:
    """Seconds a resolved datastore is used before its configuration is looked up again."""
    raw = os.environ.get(TTL_ENV, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_TTL
    except ValueError:
        return DEFAULT_TTL


def mlpipe_home() -> Path:
    """``$MLPIPE_HOME``, else ``$AIRFLOW_HOME/mlpipe`` (``AIRFLOW_HOME`` defaults to ``~/airflow``)."""
    home = os.environ.get("MLPIPE_HOME")
    if home:
        return Path(home).expanduser()
    airflow_home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(airflow_home).expanduser() / "mlpipe"


def local_default_config() -> DatastoreConfig:
    folder = (mlpipe_home() / "datastore").resolve()
    return config_from_fields(
        DEFAULT_DATASTORE,
        conn_type=CONN_TYPE,
        extra={"url": folder.as_uri(), "description": "embedded default: a local folder"},
    )


def clear_cache() -> None:
    """Forget resolved datastores (after connections changed)."""
    with _lock:
        _cache.clear()


def find_config(name: str) -> DatastoreConfig | None:
    """The datastore's settings, or None when no connection of that name exists."""
    config = config_from_env(name)
    if config is not None:
        return config
    return _config_from_airflow(name)


def resolve_datastore(name: str) -> Datastore:
    if not isinstance(name, str) or not name:
        raise DatastoreNotFoundError(f"datastore name {name!r} is not a non-empty string")
    now = time.monotonic()
    with _lock:
        cached = _cache.get(name)
    if cached is not None and now - cached[0] < config_ttl():
        return cached[1]
    config = find_config(name)
    if config is None:
        if name == DEFAULT_DATASTORE:
            config = local_default_config()
        else:
            known = ", ".join(repr(n) for n in known_datastore_names()) or "none"
            raise DatastoreNotFoundError(
                f"no datastore named {name!r}: create an Airflow connection with conn_id {name!r} and conn_type "
                f'{CONN_TYPE!r} (extra {{"url": ...}}), or set {("AIRFLOW_CONN_" + name.upper())!r}; '
                f"known datastores: {known}"
            )
    store = cached[1] if cached is not None and cached[1].config == config else Datastore.from_config(config)
    with _lock:
        _cache[name] = (now, store)
    return store


def resolve_default_datastore() -> Datastore:
    return resolve_datastore(DEFAULT_DATASTORE)


def _config_from_airflow(name: str) -> DatastoreConfig | None:
    if os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server":  # the CLI: the metadata DB without Airflow's import
        found = metadb.find_connection(name)
        if not isinstance(found, metadb.AskAirflow):
            return None if found is None else _config_of_row(found)
    try:
        from airflow.sdk.definitions.connection import Connection
        from airflow.sdk.exceptions import AirflowNotFoundException
    except ImportError:  # the step runner inside an image without Airflow
        return None
    try:
        conn = Connection.get(name)
    except AirflowNotFoundException:
        return None
    return config_from_fields(
        name,
        conn_type=conn.conn_type,
        login=conn.login,
        password=conn.password,
        host=conn.host,
        extra=conn.extra,
    )


def _config_of_row(row: metadb.Row) -> DatastoreConfig:
    return config_from_fields(
        row.conn_id, conn_type=row.conn_type, login=row.login, password=row.password, host=row.host, extra=row.extra
    )


def known_datastore_names() -> list[str]:
    """Names of every datastore we can see: environment connections and, where reachable, the metadata DB."""
    return sorted({c.name for c in list_datastore_configs()} | {DEFAULT_DATASTORE})


def list_datastore_configs() -> list[DatastoreConfig]:
    configs: dict[str, DatastoreConfig] = {}
    for key, value in os.environ.items():
        if not key.startswith("AIRFLOW_CONN_"):
            continue
        conn_id = key[len("AIRFLOW_CONN_") :].lower()
        try:
            configs[conn_id] = config_from_connection_string(conn_id, value)
        except ValueError:
            continue  # another kind of connection, or one we cannot read: not a datastore
    for config in _configs_from_metadata_db():
        configs.setdefault(config.name, config)
    if DEFAULT_DATASTORE not in configs:
        configs[DEFAULT_DATASTORE] = local_default_config()
    return [configs[k] for k in sorted(configs)]


def _configs_from_metadata_db() -> list[DatastoreConfig]:
    """Datastore connections kept in Airflow's metadata DB (only where this process may read it: CLI, server)."""
    return [read for _, read, _ in metadata_db_datastores() if isinstance(read, DatastoreConfig)]


def metadata_db_datastores() -> list[tuple[str, DatastoreConfig | ValueError, list[str]]]:
    """Each datastore connection in the metadata DB, where this process may read it (CLI, server): its id, its
    config or why it cannot be read, and the credentials it holds (to keep out of what shows that error)."""
    if os.environ.get("_AIRFLOW_PROCESS_CONTEXT") != "server":
        return []
    listed = metadb.connections_of_type(CONN_TYPE)
    if not isinstance(listed, metadb.AskAirflow):
        return [_read_row(row) for row in listed]
    try:
        from airflow.models.connection import Connection as DbConnection
        from airflow.utils.session import create_session
    except ImportError:
        return []
    # Columns, not models: Airflow decrypts a model's password as it loads it, and one row that does not decrypt
    # would fail the whole query; each row is decrypted here, and one that fails is listed with its error.
    columns = (
        DbConnection.conn_id,
        DbConnection.conn_type,
        DbConnection.host,
        DbConnection.login,
        DbConnection._password,
        DbConnection._extra,
        DbConnection.is_encrypted,
        DbConnection.is_extra_encrypted,
    )
    try:
        with create_session() as session:
            raws = session.query(*columns).filter(DbConnection.conn_type == CONN_TYPE).all()
    except Exception:  # no database configured or reachable: the environment is all we can list
        return []
    return [_decrypted_row(tuple(raw)) for raw in raws]


def _decrypted_row(raw: tuple[Any, ...]) -> tuple[str, DatastoreConfig | ValueError, list[str]]:
    conn_id, conn_type, host, login, password, extra, is_encrypted, is_extra_encrypted = raw
    try:
        if (is_encrypted and password) or (is_extra_encrypted and extra):
            from airflow.models.crypto import get_fernet

            fernet = get_fernet()
            if is_encrypted and password:
                password = fernet.decrypt(password.encode("utf-8")).decode()
            if is_extra_encrypted and extra:
                extra = fernet.decrypt(extra.encode("utf-8")).decode()
    except Exception as exc:
        return str(conn_id), _unreadable_row(str(conn_id), exc), []
    return _read_row(metadb.Row(conn_id, conn_type, host, login, password, extra))


def _read_row(row: Any) -> tuple[str, DatastoreConfig | ValueError, list[str]]:
    """A connection row (ours or Airflow's model) as (id, config or its error, its credentials)."""
    from airflow_mlpipe.core.secrets import secret_values

    conn_id = str(row.conn_id)
    try:  # Airflow's model decrypts password and extra on access: a rotated Fernet key makes that fail
        password, raw = row.password, row.extra
    except Exception as exc:
        return conn_id, _unreadable_row(conn_id, exc), []
    extra: Any = raw
    with contextlib.suppress(ValueError):  # an extra that is not JSON: its text is searched as it is
        extra = json.loads(extra) if isinstance(extra, str) else extra
    secrets = list(dict.fromkeys(secret_values({"password": password, "extra": extra, "raw": raw})))
    try:
        config = _config_of_row(row)
    except ValueError as exc:
        return conn_id, exc, secrets
    except Exception as exc:  # one connection that cannot be read never hides the others
        return conn_id, _unreadable_row(conn_id, exc), secrets
    return conn_id, config, secrets


def _unreadable_row(conn_id: str, exc: BaseException) -> ValueError:
    """Why a metadata DB connection cannot be read, without its content (the exception's type and Airflow's own
    words, which name no value)."""
    from airflow_mlpipe.core.secrets import scrub_text

    return ValueError(
        f"connection {conn_id!r} in the metadata DB cannot be read ({type(exc).__name__}: {scrub_text(str(exc))}); "
        "if its password "
        "or extra cannot be decrypted, check [core] fernet_key (a rotated key must list the old one too), or "
        f"re-create the connection: airflow connections delete {conn_id}, then add it again"
    )
