"""How long a datastore may take to answer before a step fails: one budget, spread over the storage clients'
connect timeouts, read timeouts, retries and backoff.

The SDKs' own defaults let a store that does not answer hold a step for minutes (Azure's blob client waits 15 s,
then 18 s, then 24 s between its retries; a host that drops packets costs five minutes a try; a server that takes
the connection and never answers costs a minute a try, tried four times by Azure and again and again by s3fs over
botocore's own tries; an S3 upload waited for ever for its "100 Continue"). ``MLPIPE_STORE_TIMEOUT`` (seconds,
default 60), or the datastore's extra ``store_timeout``, bounds the time from the first request to the error:

* a store that cannot be reached: each try gets a quarter of the budget (split over the tries) to connect, and the
  waits between tries add up to about half of it;
* a store that takes the connection but sends nothing: each try waits at most ``read_timeout`` for the next byte
  (Azure tries such a request twice, with one wait between; S3 as often as a connect, with botocore's
  backoff between), which adds up to about the budget.

The read timeout is time without data, not the time of a request: a reachable store's transfers are not cut,
however large, while bytes keep coming.

A store that stops taking an upload's body (or a network that drops every packet once the body flows) is not
seen by a read timeout, which starts once the body is sent. The clients' sockets carry a TCP user timeout
(Linux): data the store leaves unacknowledged, or a receive window it keeps closed, for as long as a read may
wait ends the connection, and the write fails like a read that timed out. A slow link whose data is acknowledged
as it goes is not cut.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import ConfigError

log = logging.getLogger(__name__)

TIMEOUT_ENV = "MLPIPE_STORE_TIMEOUT"
TIMEOUT_OPTION = "store_timeout"
DEFAULT_TIMEOUT = 60.0
# A bound that still bounds: a store that does not answer is given up on within a day at the most.
MAX_TIMEOUT = 86400.0
# Less bounds nothing more: a try waits at least half a second to connect and a second for an answer, so a budget
# of a millisecond would still take seconds (and the error would claim a millisecond).
MIN_TIMEOUT = 1.0
# Connection extras that set a client's timeouts by hand (seconds; they win over the budget's values): Azure's
# top-level options, and S3's ``config_kwargs`` (botocore's Config), whose ``retries`` is a mapping.
AZURE_TIMEOUT_OPTIONS = ("connection_timeout", "read_timeout")
S3_CONFIG_OPTION = "config_kwargs"
S3_TIMEOUT_OPTIONS = ("connect_timeout", "read_timeout")
# Azure: how many times a request whose answer did not come (a read timeout, a dropped response) is tried again.
AZURE_READ_RETRIES = 1


@dataclass(frozen=True)
class StoreBudget:
    """The time a store that does not answer may take before the error: ``seconds``, as tries, connect and read
    timeouts and waits."""

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

    def read_timeout(self, tries: int, waits: float = 0.0) -> float:
        """The longest a try waits for the next byte when ``tries`` tries and ``waits`` seconds of waiting between
        them share the budget (at least a second: a healthy store's slow answer is not cut)."""
        return max(1.0, (self.seconds - waits) / max(1, tries))

    @property
    def azure_read_timeout(self) -> float:
        return self.read_timeout(AZURE_READ_RETRIES + 1, AZURE_READ_RETRIES * self.wait)

    @property
    def s3_read_timeout(self) -> float:
        # botocore's standard mode waits rand(0, 1) * 2 ** (n - 1) s before its n-th retry: on average 2 ** n - 1
        # halved over n retries.
        return self.read_timeout(self.retries + 1, (2**self.retries - 1) / 2)


def store_budget(name: str, options: Mapping[str, Any]) -> StoreBudget:
    """The datastore's budget: its ``store_timeout`` option, else ``MLPIPE_STORE_TIMEOUT``, else a minute. The
    timeouts the connection sets by hand are checked too (``client_timeouts``), before any client is built."""
    raw = options.get(TIMEOUT_OPTION)
    where = f"datastore {name!r}: the connection's extra {TIMEOUT_OPTION!r}"
    if raw is None:
        raw, where = os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT, f"{TIMEOUT_ENV}"
    seconds = _seconds(raw)
    if not MIN_TIMEOUT <= seconds <= MAX_TIMEOUT:
        raise ConfigError(
            f"{where} {shown(raw)} must be a positive number of seconds, at most {MAX_TIMEOUT:.0f} (a day) and at "
            f"least {MIN_TIMEOUT:.0f} (a try waits that long for an answer anyway), e.g. 60"
        )
    client_timeouts(name, options)
    return StoreBudget(seconds)


def _seconds(raw: object) -> float:
    """``raw`` as seconds (a number, or its text from a connection URI); NaN for anything else (``true`` too)."""
    if isinstance(raw, bool):
        return float("nan")
    try:
        return float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def client_timeouts(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The timeouts the connection's extra sets by hand, checked as the budget is (a positive number of seconds,
    at most a day; ``true`` is none): Azure's ``connection_timeout`` and ``read_timeout``, and S3's
    ``config_kwargs`` (a mapping) with its ``connect_timeout``, ``read_timeout`` and ``retries`` (a mapping). Each
    as the clients take it; a ``ConfigError`` naming the datastore and the extra otherwise."""
    found: dict[str, Any] = {}
    for option in AZURE_TIMEOUT_OPTIONS:
        if options.get(option) is not None:
            found[option] = _override(name, repr(option), options[option])
    config = options.get(S3_CONFIG_OPTION)
    if config is None:
        return found
    where = f"datastore {name!r}: the connection's extra {S3_CONFIG_OPTION!r}"
    if not isinstance(config, Mapping):
        raise ConfigError(
            f"{where} must be a mapping of botocore Config options, not {type(config).__name__} (its content is not "
            'shown: it may hold credentials), e.g. "config_kwargs": {"read_timeout": 120}'
        )
    checked = dict(config)
    for option in S3_TIMEOUT_OPTIONS:
        if checked.get(option) is not None:
            checked[option] = _override(name, f"{S3_CONFIG_OPTION!r} key {option!r}", checked[option])
    retries = checked.get("retries")
    if retries is not None and not isinstance(retries, Mapping):
        raise ConfigError(
            f"{where} key 'retries' {shown(retries)} must be a mapping, e.g. "
            '"retries": {"total_max_attempts": 4, "mode": "standard"}'
        )
    for option, least in (("max_attempts", 0), ("total_max_attempts", 1)):
        count = (retries or {}).get(option)
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < least):
            raise ConfigError(
                f"{where} key 'retries' {option!r} {shown(count)} must be a whole number of at least {least}, "
                f'e.g. "retries": {{"{option}": 4}}'
            )
    found[S3_CONFIG_OPTION] = checked
    return found


def _override(name: str, option: str, raw: object) -> float:
    seconds = _seconds(raw)
    if not 0 < seconds <= MAX_TIMEOUT:
        raise ConfigError(
            f"datastore {name!r}: the connection's extra {option} {shown(raw)} must be a positive number of seconds, "
            f"at most {MAX_TIMEOUT:.0f} (a day), e.g. 60; or leave it out: {TIMEOUT_ENV} (or the extra "
            f"{TIMEOUT_OPTION!r}) then sets it"
        )
    return seconds


def client_options(protocol: str, budget: StoreBudget, options: Mapping[str, Any]) -> dict[str, Any]:
    """fsspec options that hold the client to ``budget`` (those the connection sets itself win; ``store_budget``
    has checked them, naming the datastore)."""
    overrides = client_timeouts("", options)
    if protocol == "s3":
        config = dict(overrides.get(S3_CONFIG_OPTION) or {})
        config.setdefault("connect_timeout", budget.connect_timeout)
        config.setdefault("read_timeout", budget.s3_read_timeout)
        # total_max_attempts counts the first try (botocore's max_attempts does not).
        config.setdefault("retries", {"total_max_attempts": budget.retries + 1, "mode": "standard"})
        session_cls = _s3_http_session_cls(_milliseconds(config["read_timeout"]))
        if session_cls is not None:
            config.setdefault("http_session_cls", session_cls)
        return {"config_kwargs": config}
    if protocol == "abfs":
        # adlfs hands these to its transfers (cat, pipe, get, put); ``hold_to_budget`` sets them for the rest.
        return {
            "connection_timeout": overrides.get("connection_timeout", budget.connect_timeout),
            "read_timeout": overrides.get("read_timeout", budget.azure_read_timeout),
        }
    return {}


def _milliseconds(seconds: float) -> int:
    return max(1000, round(seconds * 1000))


def unacknowledged_data_timeout(milliseconds: int) -> Callable[[tuple[Any, ...]], socket.socket]:
    """An aiohttp ``socket_factory``: TCP sockets whose data may stay unacknowledged (or whose peer's window may
    stay closed) for ``milliseconds`` at most, where the platform has ``TCP_USER_TIMEOUT``."""

    def make(addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = socket.socket(family=family, type=kind, proto=proto)
        option = getattr(socket, "TCP_USER_TIMEOUT", None)
        if option is not None and family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, option, milliseconds)
            except OSError as exc:  # a kernel without it: reads stay bounded, a stalled upload is not
                log.debug("TCP_USER_TIMEOUT not set: %s", exc)
        return sock

    return make


@functools.cache
def _s3_http_session_cls(user_timeout_ms: int) -> type | None:
    """aiobotocore's HTTP session, less the ``Expect: 100-continue`` header botocore puts on uploads, with sockets
    that give up on data left unacknowledged for ``user_timeout_ms``. aiohttp waits for the "100 Continue" with no
    timeout at all (its read timeout starts once the body is sent), so a store that takes the connection and never
    answers would hold a write for ever. The header is not signed; without it the body goes at once and the read
    timeout bounds the wait for the answer. (One class a timeout, so that fsspec's cache of filesystems still finds
    the same options the same.)"""
    try:
        from aiobotocore.httpsession import AIOHTTPSession
    except ImportError:  # another aiobotocore: its own session stands
        return None

    class StoreSession(AIOHTTPSession):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            connector_args = getattr(self, "_connector_args", None)
            if isinstance(connector_args, dict):
                factory = unacknowledged_data_timeout(user_timeout_ms)
                self._connector_args = {**connector_args, "socket_factory": factory}

        async def send(self, request: Any) -> Any:
            if "Expect" in request.headers:
                del request.headers["Expect"]
            return await super().send(request)

    StoreSession.__qualname__ = StoreSession.__name__ = "MlpipeAIOHTTPSession"
    return StoreSession


def _hold_azure_sockets(transport: Any, user_timeout_ms: int) -> None:
    """Azure's aiohttp transport opens its own session, with aiohttp's default sockets: make it open one whose
    sockets give up on data left unacknowledged (another transport, or one given a session by its caller, is
    left as it is)."""
    held = _azure_transport_cls()
    if held is None or type(transport) not in (held, held.__base__):
        return
    if transport.session is not None or not transport._session_owner:
        return
    transport._mlpipe_socket_factory = unacknowledged_data_timeout(user_timeout_ms)
    transport.__class__ = held


@functools.cache
def _azure_transport_cls() -> type | None:
    try:
        import aiohttp
        from azure.core.pipeline.transport import AioHttpTransport
    except ImportError:
        return None

    class StoreTransport(AioHttpTransport):
        _mlpipe_socket_factory: Callable[[tuple[Any, ...]], socket.socket]

        async def open(self) -> None:
            if self.session is None and self._session_owner and not self._has_been_opened:  # type: ignore[has-type]
                self.session = aiohttp.ClientSession(
                    trust_env=self._use_env_settings,
                    cookie_jar=aiohttp.DummyCookieJar(),
                    auto_decompress=False,
                    connector=aiohttp.TCPConnector(socket_factory=self._mlpipe_socket_factory),
                )
            await super().open()

    StoreTransport.__qualname__ = StoreTransport.__name__ = "MlpipeAioHttpTransport"
    return StoreTransport


def hold_to_budget(fs: Any, protocol: str, budget: StoreBudget) -> None:
    """What the clients take no option for. Azure: its retry policy (the waits, how often a connect and a read
    are tried) and its transport's connect and read timeouts, which every request (a listing too) uses. S3: s3fs
    tries a read timeout again five times on top of botocore's tries; botocore's tries are the budget's."""
    if protocol == "s3":
        if getattr(fs, "retries", 1) > 1:
            fs.retries = 1
        return
    if protocol != "abfs":
        return
    timeouts = getattr(fs, "_timeout_kwargs", None) or {}
    try:
        client = fs.service_client
        policy = client._config.retry_policy
        policy.connect_retries = budget.retries
        policy.read_retries = min(policy.read_retries, AZURE_READ_RETRIES)
        policy.initial_backoff = max(0.0, budget.wait - 1)
        policy.increment_base = 1  # its wait is initial_backoff + increment_base ** n: plus 1 s, not 3 ** n
        policy.random_jitter_range = min(policy.random_jitter_range, budget.wait / 2)
        transport = client._pipeline._transport
        connection = transport.connection_config
        connection.timeout = timeouts.get("connection_timeout", budget.connect_timeout)
        connection.read_timeout = timeouts.get("read_timeout", budget.azure_read_timeout)
        _hold_azure_sockets(transport, _milliseconds(connection.read_timeout))
    except AttributeError as exc:  # another azure-storage-blob: its defaults stand
        log.debug("could not hold the Azure client to %.0f s: %s", budget.seconds, exc)
