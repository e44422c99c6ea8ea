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


class _ClientError(Exception):
    """Shaped like botocore's ClientError: the store's answer in ``response``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"An error occurred ({code}) when calling the UploadPart operation: {message}")
        self.response = {"Error": {"Code": code, "Message": message}}


def _s3fs_not_found(code: str, message: str) -> FileNotFoundError:
    """What s3fs raises for a 404 answer: a FileNotFoundError holding the store's message, from the ClientError."""
    try:
        raise FileNotFoundError(message) from _ClientError(code, message)
    except FileNotFoundError as exc:
        return exc


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have "
         "been aborted or completed."),
        ("NoSuchUpload", "not found"),
        ("NoSuchKey", "The specified key does not exist."),
    ],
)  # fmt: skip
def test_a_lost_upload_or_object_on_a_write_is_not_a_missing_bucket(code: str, message: str) -> None:
    """A multipart upload whose part timed out is gone (NoSuchUpload): the bucket is there."""
    from airflow_mlpipe.storage.errors import translate_errors

    with (
        pytest.raises(FileNotFoundError) as info,
        translate_errors(Datastore("d", "s3://b/root").config, "write", "copied/x.bin"),
    ):
        raise _s3fs_not_found(code, message)
    shown = str(info.value)
    assert "bucket" not in shown and "may not exist" not in shown, shown
    if code == "NoSuchUpload":
        assert shown.startswith("datastore 'd': cannot write 'copied/x.bin': the store no longer knows the multipart")
        assert shown.endswith("write it again")


@pytest.mark.parametrize(
    ("url", "error", "word"),
    [
        ("s3://b/root", _s3fs_not_found("NoSuchBucket", "not found"), "bucket 'b'"),
        ("az://c/root", type("ResourceNotFoundError", (FileNotFoundError,), {"error_code": "ContainerNotFound"})("x"),
         "container 'c'"),
    ],
)  # fmt: skip
def test_a_missing_bucket_is_named_by_its_code(url: str, error: Exception, word: str) -> None:
    from airflow_mlpipe.storage.errors import translate_errors

    with pytest.raises(FileNotFoundError) as info, translate_errors(Datastore("d", url).config, "read", "a/b"):
        raise error
    assert f"cannot read 'a/b': the {word} of the datastore's url" in str(info.value)
    assert "does not exist: create it" in str(info.value)
