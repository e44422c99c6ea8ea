"""The parse-time reachability check of container and pod steps, without connection lookups by default.

A DAG file is parsed again and again (every ``min_file_process_interval``, by every DAG processor), and Airflow's
best practices forbid network calls at the top level of a DAG file: with a secrets backend such as Vault, looking
up each datastore's connection would be a request per datastore per step per parse. So, by default, only the
connections in the process's environment (``AIRFLOW_CONN_<NAME>``, read without any call) are judged when the
file is parsed; every datastore is checked anyway before the container or pod is created.

``MLPIPE_CHECK_DATASTORES_AT_PARSE=1`` asks for the full check at parse time: the connections are then looked up
through Airflow (secrets backends, metadata DB), once per datastore per DAG file within ``PARSE_CACHE_SECONDS``
(a parse of one file creates all its steps within that time; a later parse looks again).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable

from airflow_mlpipe.compute.base import ComputeTarget
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import DEFAULT_DATASTORE, DatastoreConfig

CHECK_AT_PARSE_ENV = "MLPIPE_CHECK_DATASTORES_AT_PARSE"
PARSE_CACHE_SECONDS = 30.0

_parse_cache: dict[tuple[str, str], tuple[float, DatastoreConfig | None]] = {}
_lock = threading.Lock()


def lookups_asked() -> bool:
    return os.environ.get(CHECK_AT_PARSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def check_reachable_at_parse(
    task_id: str, compute: ComputeTarget, output_datastores: Iterable[str], *, dag_file: str | None = None
) -> None:
    """Refuse, when the DAG file is parsed, a container or pod step whose datastores it cannot reach (a local
    default datastore above all). Only settings known for sure are judged: the same check runs again before the
    container is created."""
    configs = [c for name in sorted({DEFAULT_DATASTORE, *output_datastores}) if (c := _known(name, dag_file))]
    try:
        if compute.kind == "kubernetes":
            from airflow_mlpipe.compute.kubernetes import check_datastores_reachable_from_pod

            check_datastores_reachable_from_pod(compute, configs)  # type: ignore[arg-type]
        elif compute.kind == "docker":
            from airflow_mlpipe.compute.docker import check_datastores_reachable_from_container

            check_datastores_reachable_from_container(compute, configs)  # type: ignore[arg-type]
    except ConfigError as exc:
        raise ConfigError(f"step {task_id!r}: {exc}") from None


def _known(name: str, dag_file: str | None) -> DatastoreConfig | None:
    from airflow_mlpipe.storage.config import config_from_env

    config = config_from_env(name)
    if config is not None or not lookups_asked():
        return config
    key = (dag_file or "", name)
    now = time.monotonic()
    with _lock:
        cached = _parse_cache.get(key)
    if cached is not None and now - cached[0] < PARSE_CACHE_SECONDS:
        return cached[1]
    config = _looked_up(name)
    with _lock:
        _parse_cache[key] = (now, config)
    return config


def _looked_up(name: str) -> DatastoreConfig | None:
    from airflow_mlpipe.storage.resolve import find_config, local_default_config

    config = find_config(name)
    if config is None and name == DEFAULT_DATASTORE and _connection_lookup_is_complete():
        config = local_default_config()
    return config


def clear_parse_cache() -> None:
    with _lock:
        _parse_cache.clear()


def _connection_lookup_is_complete() -> bool:
    """True where ``Connection.get`` sees every backend: the DAG processor and workers (supervisor comms) and
    server processes; False in a plain script, where the metadata DB is not consulted."""
    if os.environ.get("_AIRFLOW_PROCESS_CONTEXT") == "server":
        return True
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None
