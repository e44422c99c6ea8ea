"""The API server middleware behind the datastore connection form, on a small FastAPI app that echoes what reaches
its routes (the real API server's routes are exercised in tests/attempts/native_cases.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from airflow_mlpipe.plugins.connection_form import TESTED_CONNECTION_ID, ConnectionFormMiddleware


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()

    async def echo(request: Request) -> dict[str, Any]:
        raw = await request.body()
        return {
            "body": json.loads(raw) if raw else None,
            "length": request.headers.get("content-length"),
            "size": len(raw),
            "tested": TESTED_CONNECTION_ID.get(),
        }

    for path in ("/api/v2/connections", "/api/v2/connections/{conn_id}", "/api/v2/connections/{conn_id}/x"):
        app.add_api_route(path, echo, methods=["POST", "PATCH", "GET"])
    app.add_api_route("/other", echo, methods=["POST"])
    app.add_middleware(ConnectionFormMiddleware)
    return TestClient(app)


def _body(**fields: Any) -> dict[str, Any]:
    extra = {"endpoint_url": None, "region_name": "", "storage_options": None, "sas_token": None}
    body = {"connection_id": "team", "conn_type": "mlpipe_datastore", "host": "s3://b/p", "extra": json.dumps(extra)}
    return body | fields


def test_save_drops_the_empty_extra_fields(client: TestClient) -> None:
    extra = json.dumps({"endpoint_url": "http://minio:9000", "region_name": None, "sas_token": ""})
    answer = client.post("/api/v2/connections", json=_body(extra=extra)).json()
    assert json.loads(answer["body"]["extra"]) == {"endpoint_url": "http://minio:9000"}
    assert int(answer["length"]) == answer["size"]  # the rewritten body's length, not the original's
    answer = client.patch("/api/v2/connections/team", json=_body()).json()
    assert json.loads(answer["body"]["extra"]) == {}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"host": ""}, "connection 'team': the Datastore URL is required"),
        ({"host": None}, "connection 'team': the Datastore URL is required"),
        ({"host": "bucket/prefix"}, "the Datastore URL 'bucket/prefix' has no scheme"),
        ({"host": "ftp2://x"}, "has scheme 'ftp2://', which is not supported"),
        ({"extra": "{nope"}, "connection 'team': its extra is not valid JSON"),
        ({"extra": "[1]"}, "connection 'team': its extra must be a JSON object, not list"),
        ({"extra": json.dumps({"storage_options": "{bad"})}, "storage options"),
    ],
)
def test_save_refuses_a_datastore_that_could_never_work(
    client: TestClient, fields: dict[str, Any], message: str
) -> None:
    for response in (
        client.post("/api/v2/connections", json=_body(**fields)),
        client.patch("/api/v2/connections/team", json=_body(**fields)),
    ):
        assert response.status_code == 400
        assert message in response.json()["detail"]


def test_an_extra_url_is_enough(client: TestClient) -> None:
    """Connections made before the URL moved to the Host field keep saving."""
    answer = client.post("/api/v2/connections", json=_body(host="", extra=json.dumps({"url": "file:///d"}))).json()
    assert json.loads(answer["body"]["extra"]) == {"url": "file:///d"}


def test_test_drops_the_port_zero_and_names_the_tested_connection(client: TestClient) -> None:
    answer = client.post("/api/v2/connections/test", json=_body(port=0, login="", password="")).json()
    assert "port" not in answer["body"] and answer["body"]["login"] == ""
    assert answer["tested"] == "team"
    assert client.post("/api/v2/connections/test", json=_body(port=8080)).json()["body"]["port"] == 8080
    # testing is not saving: an unsaved, broken form can be tested (the test reports what is wrong)
    assert client.post("/api/v2/connections/test", json=_body(host="")).status_code == 200
    assert TESTED_CONNECTION_ID.get() is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v2/connections", {"connection_id": "h", "conn_type": "http", "extra": '{"a": null}', "port": 0}),
        ("POST", "/api/v2/connections/test", {"connection_id": "h", "conn_type": "http", "port": 0}),
        ("POST", "/other", {"connection_id": "team", "conn_type": "mlpipe_datastore", "host": ""}),
        ("POST", "/api/v2/connections/team/x", {"connection_id": "team", "conn_type": "mlpipe_datastore"}),
        ("PATCH", "/api/v2/connections", {"actions": []}),
    ],
)
def test_other_requests_pass_untouched(client: TestClient, method: str, path: str, body: dict[str, Any]) -> None:
    answer = client.request(method, path, json=body).json()
    assert answer["body"] == body and answer["tested"] is None


def test_bodies_that_are_not_json_objects_pass_untouched(client: TestClient) -> None:
    assert client.post("/api/v2/connections", content=b"[1, 2]").json()["body"] == [1, 2]
    big = {"connection_id": "team", "conn_type": "mlpipe_datastore", "host": "", "pad": "x" * (2 << 20)}
    answer = client.post("/api/v2/connections", content=json.dumps(big).encode()).json()
    assert answer["size"] == len(json.dumps(big))  # larger than any form: handed on whole, unread
