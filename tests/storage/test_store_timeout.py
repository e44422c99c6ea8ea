"""An unreachable store fails within the time MLPIPE_STORE_TIMEOUT (or the datastore's store_timeout) gives, with
one message that names the datastore and the fix: Azure and S3 flavours, against a closed port on 127.0.0.1, and
against a server on 127.0.0.1 that takes the connection and never answers (a stalled store). A store that answers
slowly but keeps sending is not cut: the read timeout is time without data."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.exceptions import ConfigError, DatastoreAccessError
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.errors import translate_errors
from airflow_mlpipe.storage.retry import is_transient
from airflow_mlpipe.storage.timeouts import TIMEOUT_ENV, StoreBudget, client_options, store_budget
from airflow_mlpipe.storage.transfer import TransferFailedError, transfer

# Azurite's well-known development key: no secret.
_DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# Loose on purpose: the bound is what is tested, not the clients' exact waits (CI machines are slow).
LOOSE_BOUND_S = 60
SECURITY_DAGS = Path(__file__).resolve().parent.parent / "security" / "dags"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """A TCP server on 127.0.0.1 (port 0) whose every connection is handed to ``handle`` in a thread of its own;
    by default it takes the connection and never answers."""

    def __init__(self, handle: Callable[[socket.socket], None] | None = None) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.handle = handle
        self.connections: list[socket.socket] = []
        self._closed = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            if self.handle is not None:
                threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """The port of a server that takes every connection and never sends a byte."""
    server = _Server()
    yield server.port
    server.close()


def _extra(flavour: str, port: int) -> dict[str, object]:
    if flavour == "azure":
        endpoint = f"http://127.0.0.1:{port}/devstoreaccount1"
        connection = (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={_DEV_KEY};BlobEndpoint={endpoint};"
        )
        return {"url": "az://container/prefix", "connection_string": connection}
    return {
        "url": "s3://bucket/prefix",
        "key": "id",
        "secret": "not-a-secret",
        "client_kwargs": {"endpoint_url": f"http://127.0.0.1:{port}", "region_name": "us-east-1"},
    }


@pytest.mark.parametrize(
    ("flavour", "setting"),
    [
        pytest.param("azure", "option", id="azure-store_timeout"),
        pytest.param("azure", "env", id="azure-MLPIPE_STORE_TIMEOUT"),
        pytest.param("s3", "option", id="s3-store_timeout"),
        pytest.param("s3", "env", id="s3-MLPIPE_STORE_TIMEOUT"),
    ],
)
def test_an_unreachable_store_fails_in_bounded_time_with_one_clear_message(
    flavour: str, setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = _extra(flavour, _closed_port())
    if setting == "option":
        extra["store_timeout"] = 1
    else:
        monkeypatch.setenv(TIMEOUT_ENV, "1")
    store = Datastore("lake", str(extra.pop("url")), extra)
    started = time.monotonic()
    with pytest.raises(DatastoreAccessError) as caught:
        store.read_bytes("_mlpipe/runs/x/spec.json")
    assert time.monotonic() - started < LOOSE_BOUND_S
    message = str(caught.value)
    assert message.startswith("datastore 'lake' (") and "the store could not be reached" in message
    assert "check the connection's url and extra endpoint settings and that the service is up" in message
    assert f"given up after about 1 s: {TIMEOUT_ENV}, or the connection's extra 'store_timeout'" in message
    assert "not-a-secret" not in message and _DEV_KEY not in message


@pytest.mark.parametrize("action", ["list", "read_bytes", "write_bytes"])
@pytest.mark.parametrize(
    ("flavour", "setting"),
    [
        pytest.param("azure", "option", id="azure-store_timeout"),
        pytest.param("azure", "env", id="azure-MLPIPE_STORE_TIMEOUT"),
        pytest.param("s3", "option", id="s3-store_timeout"),
        pytest.param("s3", "env", id="s3-MLPIPE_STORE_TIMEOUT"),
    ],
)
def test_a_store_that_takes_the_connection_and_never_answers_fails_in_bounded_time(
    flavour: str, setting: str, action: str, silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, only connects were bounded: against such a server S3's listing took 325 s at a budget of 8 s,
    Azure's 247 s (with no advice), and an S3 write never ended (aiohttp waits for "100 Continue" with no
    timeout)."""
    extra = _extra(flavour, silent_port)
    if setting == "option":
        extra["store_timeout"] = 2
    else:
        monkeypatch.setenv(TIMEOUT_ENV, "2")
    store = Datastore("lake", str(extra.pop("url")), extra)
    calls: dict[str, Callable[[], object]] = {
        "list": lambda: store.list(""),
        "read_bytes": lambda: store.read_bytes("_mlpipe/runs/x/spec.json"),
        "write_bytes": lambda: store.write_bytes("_mlpipe/runs/x/spec.json", b"{}"),
    }
    started = time.monotonic()
    with pytest.raises(DatastoreAccessError) as caught:
        calls[action]()
    elapsed = time.monotonic() - started
    assert elapsed < LOOSE_BOUND_S, elapsed
    message = str(caught.value)
    assert message.startswith("datastore 'lake' (") and "the store could not be reached" in message, message
    assert "check the connection's url and extra endpoint settings and that the service is up" in message
    assert f"given up after about 2 s: {TIMEOUT_ENV}, or the connection's extra 'store_timeout'" in message
    assert "not-a-secret" not in message and _DEV_KEY not in message


def _dribble(body: bytes, pause: float) -> Callable[[socket.socket], None]:
    """A handler that answers any request with ``body``, four bytes at a time, ``pause`` s apart."""

    def handle(conn: socket.socket) -> None:
        with conn:
            request = conn.recv(65536)
            head = (  # a range's answer, as Azure's downloader wants it
                "HTTP/1.1 206 Partial Content\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Length: {len(body)}\r\nContent-Range: bytes 0-{len(body) - 1}/{len(body)}\r\n"
                'x-ms-blob-type: BlockBlob\r\nETag: "1"\r\nConnection: close\r\n\r\n'
            )
            conn.sendall(head.encode())
            if request.startswith(b"HEAD "):  # s3fs asks the size first
                return
            for start in range(0, len(body), 4):
                time.sleep(pause)
                conn.sendall(body[start : start + 4])

    return handle


@pytest.mark.parametrize("flavour", ["azure", "s3"])
def test_a_slow_answer_that_keeps_coming_is_not_cut(flavour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read timeout is time without a byte, not the time of a request: an answer that takes three times the
    budget but never pauses for long arrives whole."""
    monkeypatch.setenv(TIMEOUT_ENV, "2")  # a read timeout of a second
    body = b"0123456789abcdef" * 5  # 20 pieces, 0.3 s apart: 6 s in all
    server = _Server(_dribble(body, 0.3))
    try:
        extra = _extra(flavour, server.port)
        store = Datastore("lake", str(extra.pop("url")), extra)
        started = time.monotonic()
        assert store.read_bytes("big.bin") == body
        assert time.monotonic() - started > 4
    finally:
        server.close()


@pytest.mark.parametrize("seconds", [1, 2, 8, 60, 600])
def test_the_read_timeouts_spread_over_the_budget(seconds: float) -> None:
    """A stalled store's tries (Azure: two with a wait between; S3: as many as a connect) add up to about the
    budget, with a floor of a second a try; the options hand them to the clients, unless the connection sets
    its own."""
    budget = StoreBudget(seconds)
    assert 2 * budget.azure_read_timeout + budget.wait <= max(seconds, 3)
    assert (budget.retries + 1) * budget.s3_read_timeout + (2**budget.retries - 1) / 2 <= max(seconds, 3)
    s3 = client_options("s3", budget, {})["config_kwargs"]
    assert s3["read_timeout"] == budget.s3_read_timeout and s3["connect_timeout"] == budget.connect_timeout
    assert (
        client_options("s3", budget, {"config_kwargs": {"read_timeout": 300}})["config_kwargs"]["read_timeout"] == 300
    )
    assert client_options("abfs", budget, {})["read_timeout"] == budget.azure_read_timeout
    assert client_options("abfs", budget, {"read_timeout": 300})["read_timeout"] == 300


def test_a_timed_out_request_whose_url_holds_403_is_not_called_access_denied() -> None:
    """The clients' verdict (a read timeout) wins over a marker that the text holds by chance (a port)."""
    store = Datastore("lake", "s3://bucket/prefix", {"key": "id", "secret": "not-a-secret"})
    timeout = type("ReadTimeoutError", (Exception,), {})('Read timeout on endpoint URL: "http://127.0.0.1:40353/b"')
    with (
        pytest.raises(DatastoreAccessError, match="the store could not be reached") as caught,
        translate_errors(store.config, "read", "x"),
    ):
        raise timeout
    assert "access denied" not in str(caught.value)


def test_a_step_runner_whose_store_is_away_says_so_in_one_line() -> None:
    """One flavour: the runner's part is the same for both (the clients' part is tested above)."""
    extra = _extra("azure", _closed_port())
    env = {
        **os.environ,
        "AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}),
        TIMEOUT_ENV: "1",
    }
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_mlpipe.runner", "--spec", "_mlpipe/runs/x/spec.json"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert time.monotonic() - started < LOOSE_BOUND_S
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("step runner: datastore 'mlpipe_default' (")
    assert "could not be reached" in proc.stderr and TIMEOUT_ENV in proc.stderr


@pytest.mark.parametrize("value", ["soon", "0", "-5", "inf", "nan", "1e9", "86401"])
def test_a_bad_timeout_setting_is_named(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A budget of 30 years bounds nothing: a day is the most."""
    monkeypatch.setenv(TIMEOUT_ENV, value)
    store = Datastore("lake", "s3://bucket/prefix", {"key": "id", "secret": "s"})
    with pytest.raises(ConfigError, match=f"{TIMEOUT_ENV} '{value}' must be a positive number of seconds, at most"):
        store.fs  # noqa: B018 -- building the filesystem reads the setting


@pytest.mark.parametrize("value", [True, 1e308, "x", [60]])
def test_a_bad_store_timeout_option_is_named(value: object) -> None:
    store = Datastore("lake", "s3://bucket/prefix", {"key": "id", "secret": "s", "store_timeout": value})
    said = f"datastore 'lake': the connection's extra 'store_timeout' {value!r} must be a positive number"
    with pytest.raises(ConfigError, match=re.escape(said)):
        store.fs  # noqa: B018 -- building the filesystem reads the setting


@pytest.mark.parametrize("value", ["0.0001", "0.5"])
def test_a_budget_under_a_second_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A try waits at least half a second to connect and a second for an answer: a budget of 0.0001 s took 4 s,
    and the error claimed "about 0.0001 s"."""
    monkeypatch.setenv(TIMEOUT_ENV, value)
    store = Datastore("lake", "s3://bucket/prefix", {"key": "id", "secret": "s"})
    with pytest.raises(ConfigError, match=rf"{TIMEOUT_ENV} '{value}' must be .* and at least 1 \(a try waits"):
        store.fs  # noqa: B018 -- building the filesystem reads the setting
    assert store_budget("lake", {"store_timeout": 1}).seconds == 1


_BASE = {
    "azure": ("az://container/prefix", {"account_name": "devstoreaccount1", "account_key": "not-a-key"}),
    "s3": ("s3://bucket/prefix", {"key": "id", "secret": "not-a-secret"}),
}


@pytest.mark.parametrize(
    ("flavour", "options", "said"),
    [
        ("azure", {"read_timeout": "abc"}, "extra 'read_timeout' 'abc' must be a positive number of seconds"),
        ("azure", {"read_timeout": 1e308}, "extra 'read_timeout' 1e+308 must be a positive number of seconds"),
        ("azure", {"read_timeout": float("nan")}, "extra 'read_timeout' nan must be a positive number"),
        ("azure", {"read_timeout": -1}, "extra 'read_timeout' -1 must be a positive number of seconds"),
        ("azure", {"read_timeout": True}, "extra 'read_timeout' True must be a positive number of seconds"),
        ("azure", {"connection_timeout": "x"}, "extra 'connection_timeout' 'x' must be a positive number"),
        ("azure", {"connection_timeout": 0}, "extra 'connection_timeout' 0 must be a positive number"),
        ("s3", {"config_kwargs": {"read_timeout": "abc"}}, "'config_kwargs' key 'read_timeout' 'abc' must be a pos"),
        ("s3", {"config_kwargs": {"read_timeout": -1}}, "'config_kwargs' key 'read_timeout' -1 must be a positive"),
        ("s3", {"config_kwargs": {"connect_timeout": 86401}}, "key 'connect_timeout' 86401 must be a positive"),
        ("s3", {"config_kwargs": {"retries": "x"}}, "extra 'config_kwargs' key 'retries' 'x' must be a mapping"),
        (
            "s3",
            {"config_kwargs": {"retries": {"total_max_attempts": "4"}}},
            "key 'retries' 'total_max_attempts' '4' must be a whole number of at least 1",
        ),
        ("s3", {"config_kwargs": "read_timeout=5"}, "extra 'config_kwargs' must be a mapping of botocore Config"),
    ],
)
def test_a_bad_timeout_the_connection_sets_by_hand_is_named(flavour: str, options: dict[str, Any], said: str) -> None:
    """These extras win over the budget's values: they are checked as the budget is, naming the datastore and the
    extra, before any client is built (they raised TypeError, OverflowError, AttributeError or an empty
    FileExistsError, or a wrong "container does not exist" after 8 s)."""
    url, base = _BASE[flavour]
    store = Datastore("lake", url, {**base, **options})
    with pytest.raises(ConfigError) as caught:
        store.fs  # noqa: B018 -- building the filesystem reads the settings
    message = str(caught.value)
    assert message.startswith("datastore 'lake': the connection's extra ") and said in message, message
    assert "not-a-" not in message


def test_timeouts_the_connection_sets_by_hand_are_taken_as_seconds() -> None:
    """Numbers given as text (a connection in URI form) reach the clients as numbers; good values are kept."""
    budget = StoreBudget(60)
    azure = client_options("abfs", budget, {"read_timeout": "300", "connection_timeout": 5})
    assert (azure["read_timeout"], azure["connection_timeout"]) == (300.0, 5.0)
    config = {"read_timeout": "120", "retries": {"total_max_attempts": 2}, "max_pool_connections": 20}
    s3 = client_options("s3", budget, {"config_kwargs": config})["config_kwargs"]
    assert (s3["read_timeout"], s3["retries"], s3["max_pool_connections"]) == (120.0, {"total_max_attempts": 2}, 20)
    assert s3["connect_timeout"] == budget.connect_timeout


def test_the_budget_spreads_over_tries_connects_and_waits() -> None:
    """The tries' connect timeouts plus the waits between them stay within the budget (a floor of a second to
    connect: tiny budgets take up to three)."""
    for seconds in (1, 3, 10, 60, 600):
        budget = StoreBudget(seconds)
        tries = budget.retries + 1
        assert tries * budget.connect_timeout + budget.retries * budget.wait <= max(seconds, 3)


def _named(name: str) -> Exception:
    return type(name, (Exception,), {})("as the SDK raises it")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(_named("EndpointConnectionError"), False, id="botocore-could-not-connect"),
        pytest.param(_named("ServiceRequestError"), False, id="azure-no-request-sent"),
        pytest.param(_named("ClientConnectorError"), False, id="aiohttp-could-not-connect"),
        pytest.param(_named("ServiceResponseTimeoutError"), False, id="azure-no-answer-within-the-read-timeout"),
        pytest.param(_named("ReadTimeoutError"), False, id="botocore-no-answer-within-the-read-timeout"),
        pytest.param(DatastoreAccessError("datastore 'x': the store could not be reached"), False, id="translated"),
        pytest.param(_named("ServiceResponseError"), True, id="azure-dropped-mid-response"),
        pytest.param(_named("ConnectionClosedError"), True, id="botocore-connection-closed"),
    ],
)
def test_a_store_that_cannot_be_reached_is_not_tried_again_on_top_of_the_clients(
    error: Exception, transient: bool
) -> None:
    """The clients spent the store's budget on their own tries: a transfer's retries would multiply it."""
    assert is_transient(error) is transient


@pytest.mark.parametrize("away", ["closed", "silent"])
@pytest.mark.parametrize("flavour", ["azure", "s3"])
def test_a_transfer_to_an_unreachable_store_fails_in_bounded_time(
    flavour: str, away: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A read timeout, like a failed connect, is not tried again by the transfer on top of the clients' tries."""
    monkeypatch.setenv(TIMEOUT_ENV, "1")
    (tmp_path / "in").mkdir()
    for n in range(5):
        (tmp_path / "in" / f"{n}.txt").write_text(str(n))
    port = _closed_port() if away == "closed" else request.getfixturevalue("silent_port")
    extra = _extra(flavour, port)
    store = Datastore("lake", str(extra.pop("url")), extra)
    started = time.monotonic()
    with pytest.raises((DatastoreAccessError, TransferFailedError), match="datastore 'lake'.*could not be reached"):
        transfer(Datastore("here", (tmp_path / "in").as_uri()), "", store, "out", kind="directory")
    assert time.monotonic() - started < LOOSE_BOUND_S


@pytest.mark.parametrize("away", ["closed", "silent"])
def test_a_step_whose_store_is_away_fails_its_task_with_one_line_and_no_traceback(
    away: str, airflow_db: Path, local_home: dict[str, str], request: pytest.FixtureRequest
) -> None:
    """The whole task under ``airflow dags test``: its log holds the step's one ERROR line naming the datastore
    and the setting, then Airflow's "Task exited", and no traceback (Airflow's, mlpipe's or the client's). A store
    that takes the connection and never answers took 322 s here at a budget of 8 s before reads were bounded."""
    from tests.airflow_utils import airflow_dags_test

    port = _closed_port() if away == "closed" else request.getfixturevalue("silent_port")
    extra = _extra("azure", port)
    env = {
        **local_home,
        "AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}),
        TIMEOUT_ENV: "2",
    }
    started = time.monotonic()
    proc = airflow_dags_test("security_fixed", dags_folder=SECURITY_DAGS, env=env, check=False)
    output = proc.stdout + proc.stderr
    assert time.monotonic() - started < 3 * LOOSE_BOUND_S
    assert "DagRun Finished" in output and "state=failed" in output, output[-4000:]
    errors = [line for line in output.splitlines() if "[error" in line]
    assert len(errors) == 2 and "Task exited" in errors[1], errors
    assert errors[0].split("] ", 1)[1].startswith("step 'first'") and "could not be reached" in errors[0]
    assert TIMEOUT_ENV in errors[0] and _DEV_KEY not in output
    assert "Traceback" not in output


def _stop_reading(conn: socket.socket) -> None:
    """A handler that takes the request's first bytes, then reads no more and never answers: a store that stalls
    mid-upload (or a network that drops every packet once the body flows)."""
    conn.recv(4096)
    time.sleep(600)


@pytest.mark.parametrize("flavour", ["azure", "s3"])
def test_an_upload_the_store_stops_reading_fails_in_bounded_time(flavour: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The read timeout starts once the body is sent: a store that stops taking the body held the write for ever.
    The sockets' TCP user timeout (data left unacknowledged, a window left closed) bounds it."""
    monkeypatch.setenv(TIMEOUT_ENV, "2")
    server = _Server(_stop_reading)  # 32 MiB outgrow what the two sockets' buffers hold on the way
    try:
        extra = _extra(flavour, server.port)
        store = Datastore("lake", str(extra.pop("url")), extra)
        started = time.monotonic()
        with pytest.raises(DatastoreAccessError) as caught:
            store.write_bytes("data/big.bin", os.urandom(32 * 1024 * 1024))
        elapsed = time.monotonic() - started
        assert elapsed < LOOSE_BOUND_S, elapsed
        message = str(caught.value)
        assert message.startswith("datastore 'lake' (") and "could not be reached" in message, message
        assert TIMEOUT_ENV in message and _DEV_KEY not in message and "not-a-secret" not in message
    finally:
        server.close()
