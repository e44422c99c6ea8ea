"""Retries with exponential backoff for transient storage errors, and the rule that says which errors are.

Transient: the store answered 5xx/408/429, a connection dropped, a request timed out. Not transient: auth and
permission errors, not-found, bad requests: retrying those only delays a clear error; nor a store that could not
be reached at all or did not answer (a connect that failed, a read timeout, a ``DatastoreAccessError``): the
clients' own tries within the store's time budget (``storage.timeouts``) came before it. The rule works on class
names and HTTP status codes along the exception chain, so it needs no import of azure, botocore or aiohttp (heavy
optional packages) and sees through wrappers such as s3fs's ``OSError(EIO)`` around a ``ClientError``.
"""

from __future__ import annotations

import asyncio
import errno
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_mlpipe.core.checks import check_positive_number, check_whole_number, shown
from airflow_mlpipe.exceptions import ConfigError, DatastoreAccessError, MlpipeError

T = TypeVar("T")

_TRANSIENT_CLASS_NAMES = frozenset(
    {
        # azure-core
        "ServiceResponseError",
        "IncompleteReadError",
        # botocore / aiobotocore
        "ConnectionClosedError",
        "ResponseStreamingError",
        "HTTPClientError",
        "ResponseParserError",
        # aiohttp
        "ClientConnectionError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientPayloadError",
        "ClientOSError",
        # urllib3 / http.client / fsspec
        "ProtocolError",
        "IncompleteRead",
        "FSTimeoutError",
    }
)
# The store could not be reached, or took the connection and sent nothing for a read timeout: the clients already
# tried again within the store's time budget (``storage.timeouts``); another round of tries here would multiply the
# time such a store holds a step.
_UNREACHABLE_CLASS_NAMES = frozenset(
    {
        "ServiceRequestError",  # azure-core: no request was sent (connect refused, DNS, connect timeout)
        "EndpointConnectionError",  # botocore: could not connect
        "ConnectTimeoutError",
        "ClientConnectorError",  # aiohttp: could not connect
        "ServiceResponseTimeoutError",  # azure-core: no byte of the answer within the read timeout
        "ReadTimeoutError",  # botocore: the same
    }
)
_PERMANENT_TYPES = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
)
_PERMANENT_CLASS_NAMES = frozenset({"ClientAuthenticationError", "ResourceNotFoundError", "NoCredentialsError"})
_TRANSIENT_ERRNOS = frozenset(
    {errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE, errno.EHOSTUNREACH}
)
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable"}
)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed file copy is tried again.

    ``attempts`` counts the first try. The wait before try ``n + 1`` is ``initial_delay * multiplier ** (n - 1)``,
    capped at ``max_delay``, with random jitter (half to full) so parallel workers do not retry in lockstep.
    The storage SDKs retry single requests themselves; this policy retries a whole file on top of that.
    """

    attempts: int = 4
    initial_delay: float = 0.5
    max_delay: float = 30.0
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        check_whole_number("RetryPolicy", "attempts", self.attempts, minimum=1, example=3)
        for argument in ("initial_delay", "max_delay"):
            check_positive_number("RetryPolicy", argument, getattr(self, argument), allow_zero=True)
        multiplier = self.multiplier
        if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or not multiplier >= 1:
            raise ConfigError(
                f"RetryPolicy: multiplier {shown(multiplier)} must be a number of at least 1 (1 waits the same "
                "before every try), e.g. multiplier=2"
            )
        if not math.isfinite(multiplier):
            raise ConfigError(f"RetryPolicy: multiplier {shown(multiplier)} must be finite, e.g. multiplier=2")

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failed try."""
        base = min(self.max_delay, self.initial_delay * self.multiplier ** max(0, failures - 1))
        return base * random.uniform(0.5, 1.0)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _class_names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _http_status(exc: BaseException) -> tuple[int | None, str]:
    """(HTTP status, service error code) of an azure ``HttpResponseError`` or a botocore ``ClientError``."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)  # azure-core, aiohttp
    code = str(getattr(exc, "error_code", "") or "")
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        meta = response.get("ResponseMetadata") or {}
        status = status or meta.get("HTTPStatusCode")
        code = code or str((response.get("Error") or {}).get("Code") or "")
    return (int(status) if isinstance(status, int) else None), code


def could_not_reach(exc: BaseException) -> bool:
    """Whether the clients gave up on a store that could not be reached or did not answer (by class name along the
    chain: a connect that failed or timed out, a read timeout)."""
    return any(_class_names(link) & _UNREACHABLE_CLASS_NAMES for link in _chain(exc))


def is_transient(exc: BaseException) -> bool:
    """Whether trying again later might succeed."""
    for link in _chain(exc):
        if isinstance(link, DatastoreAccessError):
            # Raised once the store's clients spent its time budget (``storage.timeouts``) on their own tries:
            # trying again would multiply the time an unreachable store holds a step.
            return False
        if isinstance(link, (MlpipeError, *_PERMANENT_TYPES)):
            return False
        names = _class_names(link)
        if names & (_PERMANENT_CLASS_NAMES | _UNREACHABLE_CLASS_NAMES):
            return False
        status, code = _http_status(link)
        if code in _TRANSIENT_CODES:
            return True
        if status is not None:
            return status >= 500 or status in (408, 429)
        if names & _TRANSIENT_CLASS_NAMES:
            return True
        if isinstance(link, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
            return True
        if isinstance(link, OSError) and link.errno in _TRANSIENT_ERRNOS:
            return True
    return False


def _retry_delay(
    exc: Exception, failures: int, policy: RetryPolicy, on_retry: Callable[[BaseException], Any] | None
) -> float | None:
    """Seconds to wait before trying again, or None when the error must propagate."""
    if failures >= policy.attempts or not is_transient(exc):
        return None
    if on_retry is not None:
        on_retry(exc)
    return policy.delay(failures)


def call_with_retry(
    fn: Callable[[], T], policy: RetryPolicy, on_retry: Callable[[BaseException], Any] | None = None
) -> T:
    """Call ``fn`` until it succeeds, a non-transient error occurs, or ``policy.attempts`` are used up."""
    failures = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            failures += 1
            delay = _retry_delay(exc, failures, policy, on_retry)
            if delay is None:
                raise
        time.sleep(delay)


async def call_with_retry_async(
    fn: Callable[[], Awaitable[T]], policy: RetryPolicy, on_retry: Callable[[BaseException], Any] | None = None
) -> T:
    """The coroutine twin of ``call_with_retry``."""
    failures = 0
    while True:
        try:
            return await fn()
        except Exception as exc:
            failures += 1
            delay = _retry_delay(exc, failures, policy, on_retry)
            if delay is None:
                raise
        await asyncio.sleep(delay)
