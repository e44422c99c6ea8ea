"""A datastore whose container or bucket does not exist: its errors say so and how to fix it (a store answers
"not found" to a write then, which read as "'x/y.txt' does not exist" before)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_mlpipe.exceptions import DatastoreAccessError
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import unique


@pytest.mark.parametrize("kind", ["moto", "azurite"])
def test_a_missing_bucket_or_container_is_named(kind: str, request: pytest.FixtureRequest) -> None:
    name = unique("missing")
    if kind == "moto":
        options: dict[str, Any] = request.getfixturevalue("moto_s3").storage_options()
        store, word, error = Datastore("gone", f"s3://{name}/root", options), "bucket", FileNotFoundError
    else:
        options = {"connection_string": request.getfixturevalue("azurite").connection_string}
        store, word, error = Datastore("gone", f"az://{name}/root", options), "container", DatastoreAccessError
    with pytest.raises(error) as info:
        store.write_bytes("x/y.txt", b"a")
    message = str(info.value)
    assert f"cannot write 'x/y.txt': the {word} {name!r} of the datastore's url" in message
    assert "does not exist: create it, or correct the connection's url" in message


@pytest.mark.parametrize(
    ("action", "url", "expected"),
    [
        (
            "write",
            "s3://b/root",
            "cannot write 'a/b': the bucket 'b' of the datastore's url (s3://b/root) may not exist",
        ),
        ("mark complete", "az://c/r", "cannot mark complete 'a/b': the container 'c' of the datastore's url"),
        ("read", "s3://b/root", "datastore 'd': 'a/b' does not exist"),  # a missing file, as before
        ("write", "file:///tmp/x", "datastore 'd': 'a/b' does not exist"),
    ],
)
def test_not_found_on_a_write_points_at_the_bucket(action: str, url: str, expected: str) -> None:
    from airflow_mlpipe.storage.errors import translate_errors

    with pytest.raises(FileNotFoundError) as info, translate_errors(Datastore("d", url).config, action, "a/b"):
        raise FileNotFoundError("a/b")
    assert expected in str(info.value)
