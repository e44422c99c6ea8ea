"""Datastore connections in ``AIRFLOW_CONN_*`` variables that cannot be read: ``mlpipe datastores list`` shows
them as rows with their errors rather than leaving them out (a datastore that silently vanishes from the list is
harder to fix than one that says what is wrong with it)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_PREFIX = "AIRFLOW_CONN_"


def broken_db_datastores(readable: set[str]) -> list[dict[str, Any]]:
    """A row for each datastore connection in the metadata DB that cannot be read (where this process may read
    the DB), its error with the connection's credentials masked."""
    from airflow_mlpipe.cli.output import error_text
    from airflow_mlpipe.storage.resolve import metadata_db_datastores

    return [
        {
            "name": name,
            "url": None,
            "backend": None,
            "options": None,
            "description": None,
            "error": error_text(str(read), secrets),
        }
        for name, read, secrets in metadata_db_datastores()
        if isinstance(read, ValueError) and name not in readable
    ]


def broken_env_datastores(readable: set[str]) -> list[dict[str, Any]]:
    """A row for each datastore connection in the environment that cannot be read (``readable`` names those
    that can); connections of another conn_type are not datastores and are left out."""
    from airflow_mlpipe.cli.output import error_text
    from airflow_mlpipe.storage.config import CONN_TYPE, config_from_connection_string

    rows = []
    for key, raw in sorted(os.environ.items()):
        name = key[len(_PREFIX) :].lower()
        if not key.startswith(_PREFIX) or name in readable or _conn_type(raw) not in (None, CONN_TYPE):
            continue
        try:
            config_from_connection_string(name, raw)
        except ValueError as exc:
            error = error_text(str(exc), _secrets_of(raw))
            rows.append(
                {"name": name, "url": None, "backend": None, "options": None, "description": None, "error": error}
            )
    return rows


def _conn_type(raw: str) -> str | None:
    """The conn_type a connection value declares; None when it declares none or cannot be read."""
    data = _json_object(raw)
    if data is not None:
        declared = data.get("conn_type")
    elif raw.strip().startswith("{"):
        return None
    else:
        declared = urlsplit(raw.strip()).scheme
    return str(declared).replace("-", "_") if declared else None


def _secrets_of(raw: str) -> list[str]:
    """Every credential the value holds, wherever it is (JSON fields, URL user info, query parameters)."""
    from airflow_mlpipe.core.secrets import secret_values

    return list(dict.fromkeys(_all_secrets(raw, secret_values)))


def _all_secrets(raw: str, secret_values: Any) -> Iterator[str]:
    yield from secret_values(raw)
    data = _json_object(raw)
    if data is not None:
        yield from secret_values(data)  # the password field, and the extra when it is an object
        extra = data.get("extra")
        extra_json = _json_object(extra) if isinstance(extra, str) else None
        if extra_json is not None:
            yield from secret_values(extra_json)
        return
    parts = urlsplit(raw.strip())
    if parts.password:
        yield parts.password
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    yield from secret_values(query)
    extra_json = _json_object(query.get("__extra__", ""))
    if extra_json is not None:
        yield from secret_values(extra_json)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None
