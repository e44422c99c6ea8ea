"""How long a datastore may take to answer before a step fails: one budget, spread over the storage clients'
connect timeouts, retries and backoff.

The SDKs' own defaults let an unreachable store hold a step for minutes (Azure's blob client waits 15 s, then
18 s, then 24 s between its retries; a host that drops packets costs five minutes a try). ``MLPIPE_STORE_TIMEOUT``
(seconds, default 60), or the datastore's extra ``store_timeout``, bounds the time from the first request to the
error when the store cannot be reached: each try gets a quarter of it to connect and the waits between tries add
up to about half of it. A reachable store's transfers are not cut: reads wait as long as data keeps coming.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.exceptions import ConfigError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "MLPIPE_STORE_TIMEOUT"
TIMEOUT_OPTION = "store_timeout"
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True)
class StoreBudget:
    """The time an unreachable store may take before the error: ``seconds``, as tries, connect timeouts and waits."""

    seconds: float

    @property
    def retries(self) -> int:
        return 3 if self.seconds >= 20 else 2 if self.seconds >= 8 else 1

    @property
    def connect_timeout(self) -> float:
        return min(20.0, max(0.5, self.seconds / 4 / (self.retries + 1)))

    @property
    def wait(self) -> float:
        """The wait between two tries."""
        return max(0.2, self.seconds / 2 / self.retries)


def store_budget(name: str, options: Mapping[str, Any]) -> StoreBudget:
    """The datastore's budget: its ``store_timeout`` option, else ``MLPIPE_STORE_TIMEOUT``, else a minute."""
    raw = options.get(TIMEOUT_OPTION)
    where = f"datastore {name!r}: the connection's extra {TIMEOUT_OPTION!r}"
    if raw is None:
        raw, where = os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT, f"{TIMEOUT_ENV}"
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ConfigError(f"{where} {raw!r} must be a positive number of seconds, e.g. 60")
    return StoreBudget(seconds)


def client_options(protocol: str, budget: StoreBudget, options: Mapping[str, Any]) -> dict[str, Any]:
    """fsspec options that hold the client to ``budget`` (those the connection sets itself win)."""
    if protocol == "s3":
        config = dict(options.get("config_kwargs") or {})
        config.setdefault("connect_timeout", budget.connect_timeout)
        config.setdefault("retries", {"max_attempts": budget.retries + 1, "mode": "standard"})
        return {"config_kwargs": config}
    if protocol == "abfs":
        return {"connection_timeout": options.get("connection_timeout", budget.connect_timeout)}
    return {}


def hold_to_budget(fs: Any, protocol: str, budget: StoreBudget) -> None:
    """What the Azure blob client takes no option for: its retry policy (the waits) and its transport's connect
    timeout. (s3fs repeats botocore's tries only for errors of a store that answered.)"""
    if protocol != "abfs":
        return
    try:
        client = fs.service_client
        policy = client._config.retry_policy
        policy.connect_retries = budget.retries
        policy.initial_backoff = max(0.0, budget.wait - 1)
        policy.increment_base = 1  # its wait is initial_backoff + increment_base ** n: plus 1 s, not 3 ** n
        policy.random_jitter_range = min(policy.random_jitter_range, budget.wait / 2)
        client._pipeline._transport.connection_config.timeout = budget.connect_timeout
    except AttributeError as exc:  # another azure-storage-blob: its defaults stand
        log.debug("could not hold the Azure client to %.0f s: %s", budget.seconds, exc)
