"""Fixtures for the copy-engine tests: datastores of any backend by name, and a private moto server to stop."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore, make_s3_datastore, unique
from tests.emulators import MotoS3

MakeStore = Callable[[str, str], Datastore]


@pytest.fixture
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeStore]:
    """``make_store("local" | "memory" | "azurite" | "moto", name)``: a fresh, empty datastore of that backend."""
    made: list[Datastore] = []

    def make(kind: str, name: str) -> Datastore:
        if kind == "local":
            store = Datastore(name, (tmp_path / unique(name)).as_uri())
        elif kind == "memory":
            store = Datastore(name, f"memory://{unique('m')}")
        elif kind == "azurite":
            store = make_azurite_datastore(request.getfixturevalue("azurite"), name)
        elif kind == "moto":
            store = make_s3_datastore(request.getfixturevalue("moto_s3"), name)
        else:
            raise ValueError(kind)
        made.append(store)
        return store

    yield make
    for store in made:
        if store.protocol == "memory" and store.fs.exists(store.root):
            store.fs.rm(store.root, recursive=True)


@pytest.fixture
def private_moto() -> Iterator[MotoS3]:
    """A moto server of this test's own, which the test may stop and start (the session's stays up)."""
    server = MotoS3()
    server.start()
    yield server
    server.stop()


def fragile_s3_datastore(server: MotoS3, name: str) -> Datastore:
    """An S3 datastore that gives up on an unreachable server in about a second instead of about ten.

    botocore and s3fs each retry on their own; the engine's retry policy is what the tests exercise.
    """
    options = {
        **server.storage_options(),
        "config_kwargs": {"retries": {"max_attempts": 1}, "connect_timeout": 1, "read_timeout": 5},
    }
    store = Datastore(name, f"s3://{unique('b')}/root", options)
    store.fs.retries = 1
    store.fs.mkdir(store.root.split("/", 1)[0])
    return store


def random_tree(count: int, *, size: int = 1500, large: int = 0) -> dict[str, bytes]:
    """``count`` small files in nested folders (one empty), plus one file of ``large`` bytes when asked."""
    files = {f"part-{i % 3}/f{i:03d}.bin": os.urandom(size + i) for i in range(count)}
    files["empty.txt"] = b""
    if large:
        files["big/large.bin"] = os.urandom(large)
    return files


def write_tree(store: Datastore, folder: str, files: dict[str, bytes]) -> None:
    if store.protocol in ("abfs", "s3"):  # one batch of concurrent requests: emulators are slow one at a time
        store.fs.pipe({store.full_path(f"{folder}/{rel}"): data for rel, data in files.items()})
        return
    for rel, data in files.items():
        store.write_bytes(f"{folder}/{rel}", data)


def read_tree(store: Datastore, folder: str) -> dict[str, bytes]:
    """Every data file below ``folder`` (markers and journals left out)."""
    names = store.list(folder, recursive=True)
    prefix = f"{folder}/"
    return {
        name[len(prefix) :]: store.read_bytes(name)
        for name in names
        if not os.path.basename(name).startswith("_MLPIPE_")
    }
