"""Datastore settings from an Airflow connection's fields, parsed without importing Airflow.

The same parsing serves Airflow's ``Connection`` objects (in tasks, the CLI and the UI) and the
``AIRFLOW_CONN_<NAME>`` environment variables a step runner receives inside a pod or a subprocess.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from airflow_mlpipe.core.secrets import scrub, scrub_text, secret_values
from airflow_mlpipe.core.urls import ParsedUrl, parse_datastore_url
from airflow_mlpipe.exceptions import ConfigError

CONN_TYPE = "mlpipe_datastore"
DEFAULT_DATASTORE = "mlpipe_default"

# Extra keys that describe the datastore rather than configure fsspec.
_META_KEYS = frozenset({"url", "description", "region_name", "storage_options"})


@dataclass(frozen=True)
class DatastoreConfig:
    name: str
    url: str = field(repr=False)  # may hold credentials (s3://KEY:SECRET@bucket); public_url is shown instead
    parsed: ParsedUrl
    storage_options: Mapping[str, Any] = field(default_factory=dict, repr=False)
    description: str = ""

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Every credential the connection holds: secret options (nested ones too) and secrets in its url."""
        return tuple(dict.fromkeys([*secret_values(dict(self.storage_options)), *secret_values(self.url)]))

    def public_options(self) -> dict[str, Any]:
        """Storage options with every credential replaced by ``***`` (``core.secrets.scrub``)."""
        return dict(scrub(dict(self.storage_options), self.secret_values))

    @property
    def public_url(self) -> str:
        """The connection's url without credentials."""
        return str(scrub_text(self.url, self.secret_values))


def config_from_fields(
    name: str,
    *,
    conn_type: str | None,
    login: str | None = None,
    password: str | None = None,
    host: str | None = None,
    extra: Mapping[str, Any] | str | None = None,
) -> DatastoreConfig:
    """Build a datastore config from the fields of an Airflow connection."""
    if conn_type and conn_type.replace("-", "_") != CONN_TYPE:
        raise ConfigError(
            f"connection {name!r} has conn_type {conn_type!r}, not {CONN_TYPE!r}; create it with "
            f"conn_type {CONN_TYPE!r} to use it as a datastore"
        )
    extra_d = _extra_dict(name, extra)
    url = extra_d.get("url") or (host if host and "://" in host else None)
    if not url:
        raise ConfigError(
            f"datastore {name!r}: the connection has no url; set its extra to "
            '{"url": "file:///data" | "az://container/prefix" | "s3://bucket/prefix"}'
        )
    parsed = parse_datastore_url(str(url), datastore=name)
    options: dict[str, Any] = {k: v for k, v in extra_d.items() if k not in _META_KEYS and v is not None and v != ""}
    options.update(_storage_options(name, extra_d.get("storage_options")))
    options.update({k: v for k, v in parsed.url_options if k not in options})
    proto = parsed.protocol
    if proto == "abfs":
        if login and "account_name" not in options:
            options["account_name"] = login
        if password and not ({"account_key", "sas_token", "connection_string"} & options.keys()):
            options["account_key"] = password
    elif proto == "s3":
        if login and "key" not in options:
            options["key"] = login
        if password and "secret" not in options:
            options["secret"] = password
        if extra_d.get("region_name"):
            client_kwargs = dict(options.get("client_kwargs") or {})
            client_kwargs.setdefault("region_name", extra_d["region_name"])
            options["client_kwargs"] = client_kwargs
    elif proto == "gcs" and password and "token" not in options:
        options["token"] = password
    return DatastoreConfig(
        name=name,
        url=str(url),
        parsed=parsed,
        storage_options=options,
        description=str(extra_d.get("description") or ""),
    )


def _storage_options(name: str, value: Any) -> dict[str, Any]:
    """The UI form's "storage options" field: a JSON object of further fsspec arguments."""
    if value in (None, "", {}):
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    field = (
        f'datastore {name!r}: the storage options (the form\'s "Further fsspec storage options", extra key '
        '"storage_options") must be a JSON object such as {"max_concurrency": 8}'
    )
    try:
        parsed = json.loads(value)
    except TypeError:
        raise ConfigError(f"{field}, not {type(value).__name__}") from None
    except json.JSONDecodeError as exc:  # the value itself is not echoed: it may hold a key
        raise ConfigError(f"{field}; what it holds is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(parsed, dict):
        raise ConfigError(f"{field}; it holds a JSON {type(parsed).__name__}")
    return parsed


def _extra_dict(name: str, extra: Mapping[str, Any] | str | None) -> dict[str, Any]:
    if extra is None or extra == "":
        return {}
    if isinstance(extra, Mapping):
        return dict(extra)
    try:
        value = json.loads(extra)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"datastore {name!r}: the connection's extra is not valid JSON ({exc.msg} at character {exc.pos}); "
            'write it as {"url": "...", ...}'
        ) from None
    if not isinstance(value, dict):
        raise ConfigError(
            f"datastore {name!r}: the connection's extra must be a JSON object, not {type(value).__name__}"
        )
    return value


def env_var_name(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def config_from_env(name: str, environ: Mapping[str, str] | None = None) -> DatastoreConfig | None:
    """The datastore defined by ``AIRFLOW_CONN_<NAME>`` (JSON or URI form), or None when unset."""
    env = os.environ if environ is None else environ
    raw = env.get(env_var_name(name))
    if raw is None:
        return None
    return config_from_connection_string(name, raw)


def config_from_connection_string(name: str, raw: str) -> DatastoreConfig:
    raw = raw.strip()
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"datastore {name!r}: {env_var_name(name)} is not valid JSON ({exc.msg} at character {exc.pos})"
            ) from None
        return config_from_fields(
            name,
            conn_type=data.get("conn_type"),
            login=data.get("login"),
            password=data.get("password"),
            host=data.get("host"),
            extra=data.get("extra"),
        )
    parts = urlsplit(raw)
    extra: dict[str, Any]
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra = _extra_dict(name, query["__extra__"]) if "__extra__" in query else dict(query)
    return config_from_fields(
        name,
        conn_type=parts.scheme.replace("-", "_"),
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        host=unquote(parts.hostname) if parts.hostname else None,
        extra=extra,
    )


def config_to_env_value(config: DatastoreConfig) -> str:
    """The ``AIRFLOW_CONN_<NAME>`` JSON value that recreates ``config`` (used to hand datastores to a runner)."""
    extra: dict[str, Any] = {"url": config.url, **dict(config.storage_options)}
    if config.description:
        extra["description"] = config.description
    return json.dumps({"conn_type": CONN_TYPE, "extra": extra}, sort_keys=True)
