"""The API server's side of the datastore connection form.

Airflow's connection form is generic; three things about it go wrong for a datastore, and they are fixed here, on the
requests for the ``mlpipe_datastore`` connection type only (every other request passes through untouched, after one
look at its path):

* Save (``POST /api/v2/connections``, ``PATCH /api/v2/connections/<id>``): the form saves every extra field it shows,
  unused ones as ``null``; those are dropped, so the stored extra holds what the user typed. A connection that could
  never work (no URL, an unknown scheme, storage options that are not a JSON object) is refused with a 400 that names
  the connection and the field, instead of being saved and failing later in a step.
* Test (``POST /api/v2/connections/test``): the list's Test button sends ``port: Number(connection.port)``, which is
  ``0`` for a connection without a port, and Airflow (up to 3.3.2) then refuses the test as "another host or port
  than the stored connection". A datastore never uses the port, so a ``0`` there is dropped.
* Airflow tests a copy of the connection under a random id; the id the user tested is handed to
  ``DatastoreHook.test_connection`` so that its messages name it.

Nothing here reads or writes connections itself: it only rewrites the request body that Airflow's own routes then
authorise and handle as usual.
"""

from __future__ import annotations

import contextvars
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import CONN_TYPE

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# POST .../connections, PATCH .../connections/<id>, POST .../connections/test (under any base path).
_PATH = re.compile(r"/api/v2/connections(?:/(?P<rest>[^/]+))?/?$")
# Connection bodies are a few KiB; anything larger is passed on unread past this size.
_MAX_BODY = 1 << 20

# The connection id the user asked to test, while Airflow tests its copy under a random id.
TESTED_CONNECTION_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "mlpipe_tested_connection_id", default=None
)


def _is_datastore(body: dict[str, Any]) -> bool:
    conn_type = body.get("conn_type")
    return isinstance(conn_type, str) and conn_type.replace("-", "_") == CONN_TYPE


def _clean_extra(extra: Any) -> Any:
    """The extra JSON without the null and empty values the form saves for fields left empty."""
    if not isinstance(extra, str) or not extra.strip():
        return extra
    try:
        parsed = json.loads(extra)
    except json.JSONDecodeError:
        return extra  # refused by check_saved with a message naming the field
    if not isinstance(parsed, dict):
        return extra
    return json.dumps({k: v for k, v in parsed.items() if v is not None and v != ""})


def check_saved(body: dict[str, Any]) -> str | None:
    """Why a datastore connection about to be saved could never work, or None when it can be saved."""
    from airflow_mlpipe.storage.config import config_from_fields

    conn_id = str(body.get("connection_id") or "(no id)")
    extra = body.get("extra")
    if isinstance(extra, str) and extra.strip():
        try:
            parsed = json.loads(extra)
        except json.JSONDecodeError as exc:
            return f"connection {conn_id!r}: its extra is not valid JSON ({exc.msg} at character {exc.pos}); fix it"
        if not isinstance(parsed, dict):
            return f"connection {conn_id!r}: its extra must be a JSON object, not {type(parsed).__name__}"
        has_url = bool(parsed.get("url"))
    else:
        has_url = False
    host = body.get("host")
    if not has_url and not (isinstance(host, str) and host.strip()):
        return (
            f"connection {conn_id!r}: the Datastore URL is required; enter where the data lives, e.g. "
            "az://container/prefix, s3://bucket/prefix or file:///data"
        )
    if isinstance(host, str) and host.strip() and "://" not in host and not has_url:
        return (
            f"connection {conn_id!r}: the Datastore URL {host.strip()!r} has no scheme; write it as "
            "az://container/prefix, s3://bucket/prefix or file:///data"
        )
    try:
        config_from_fields(
            conn_id,
            conn_type=CONN_TYPE,
            login=body.get("login"),
            password=None,  # never parsed, never echoed: the URL and options are what can be wrong at save
            host=host.strip() if isinstance(host, str) else host,
            extra=extra if isinstance(extra, str) and extra.strip() else None,
        )
    except ConfigError as exc:
        return str(exc)
    return None


def rewrite(method: str, rest: str | None, body: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The body Airflow should see for a datastore connection request, and an error to answer with instead."""
    body = dict(body)
    if method == "POST" and rest == "test":
        if body.get("port") == 0:
            body.pop("port")
        return body, None
    if "extra" in body:
        body["extra"] = _clean_extra(body["extra"])
    return body, check_saved(body)


class ConnectionFormMiddleware:
    """ASGI middleware for the datastore connection form (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or scope.get("method") not in ("POST", "PATCH"):
            await self.app(scope, receive, send)
            return
        match = _PATH.search(scope.get("path", ""))
        rest = match.group("rest") if match else None
        method = scope["method"]
        if match is None or (method == "POST" and rest not in (None, "test")) or (method == "PATCH" and not rest):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away before sending its body
                return
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            more = message.get("more_body", False)
            if size > _MAX_BODY:
                break
        raw = b"".join(chunks)
        if size > _MAX_BODY:  # too large to be a form's connection: handed on unread (Airflow reads any rest)
            await self.app(scope, _replay(raw, receive, more=more), send)
            return
        try:
            body = json.loads(raw) if raw else None
        except (UnicodeDecodeError, json.JSONDecodeError):
            body = None
        if not isinstance(body, dict) or not _is_datastore(body):
            await self.app(scope, _replay(raw, receive), send)
            return
        new_body, error = rewrite(method, rest, body)
        if error is not None:
            await _answer(send, 400, {"detail": error})
            return
        data = json.dumps(new_body).encode()
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(data)).encode()))
        scope = dict(scope, headers=headers)
        token = TESTED_CONNECTION_ID.set(str(body.get("connection_id") or "") or None) if rest == "test" else None
        try:
            await self.app(scope, _replay(data, receive), send)
        finally:
            if token is not None:
                TESTED_CONNECTION_ID.reset(token)


def _replay(data: bytes, receive: Receive, *, more: bool = False) -> Receive:
    """A receive callable that hands on the body already read, then the rest of the connection's messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": data, "more_body": more}
        return await receive()

    return replay


async def _answer(send: Send, status: int, payload: dict[str, Any]) -> None:
    data = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": data})
