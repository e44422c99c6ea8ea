"""The registry's latest pointer: flat cost in the number of versions, kept right by conditional writes under
racing processes, repaired when it lags, rebuilt for registries written before it existed."""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.datasets import registry as registry_module
from airflow_mlpipe.datasets.registry import LATEST_POINTER, REGISTRY_ROOT, DatasetRegistry
from airflow_mlpipe.datasets.seal import SEAL_FIELD, sealed_bytes
from airflow_mlpipe.exceptions import DatasetNotFoundError
from airflow_mlpipe.storage import conditional
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore, make_s3_datastore
from tests.datasets.conftest import use_as_default

_FORK = multiprocessing.get_context("fork")
# moto's server, as the suite runs it, decides conditional writes atomically as on AWS S3 (tests/moto_atomic_server.py)


def _made(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Datastore:
    """A fresh datastore of ``kind``, made the default one (so processes forked from here find it by name)."""
    if kind == "local":
        made = Datastore("local", (tmp_path / "store").as_uri())
    elif kind == "azurite":
        made = make_azurite_datastore(request.getfixturevalue("azurite"))
    else:
        made = make_s3_datastore(request.getfixturevalue("moto_s3"))
    return use_as_default(request.getfixturevalue("monkeypatch"), made)


@pytest.fixture(params=["local", "azurite", "moto"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Datastore:
    return _made(request.param, request, tmp_path)


def _pointer(store: Datastore, name: str) -> int | None:
    path = f"{REGISTRY_ROOT}/{name}/{LATEST_POINTER}"
    return int(store.read_json(path)["version"]) if store.exists(path) else None


def _set_pointer(store: Datastore, name: str, version: int) -> None:
    """What a registration that died between creating its record and advancing the pointer leaves."""
    store.write_json(f"{REGISTRY_ROOT}/{name}/{LATEST_POINTER}", {"format": 1, "name": name, "version": version})


def _register(store: Datastore, name: str, text: str, **kwargs: Any) -> tuple[int, bool]:
    store.write_text(f"data/{name}/{text}.csv", f"v\n{text}\n")
    ds = Dataset.File.from_files((store, f"data/{name}/{text}.csv"))
    registered = ds.register(name, registry=DatasetRegistry(store), **kwargs)
    return registered.version or 0, bool(registered.is_new_version)


def _fill(store: Datastore, name: str, count: int) -> None:
    """``count`` versions written directly (the layout is simple), and the pointer at the last."""
    _register(store, name, "first")
    record = {k: v for k, v in store.read_json(f"{REGISTRY_ROOT}/{name}/1.json").items() if k != SEAL_FIELD}
    objects = {f"{REGISTRY_ROOT}/{name}/{v}.json": sealed_bytes({**record, "version": v}) for v in range(2, count + 1)}
    if store.is_local:
        for path, data in objects.items():
            Path(store.full_path(path)).write_bytes(data)
    else:
        store.fs.pipe({store.full_path(p): d for p, d in objects.items()})
    _set_pointer(store, name, count)


# -- racing processes ---------------------------------------------------------------------------------------------
def _race_register(i: int, barrier: Any, results: Any) -> None:
    try:
        store = Datastore.get_default()
        store.write_text(f"race/{i}.csv", f"v\n{i}\n")
        ds = Dataset.File.from_files((store, f"race/{i}.csv"))
        ds.current_manifest()
        barrier.wait()
        results.put(ds.register("raced", registry=DatasetRegistry(store)).version)
    except BaseException as exc:  # reported to the parent
        results.put(repr(exc))


def _in_processes(target: Any, count: int) -> list[Any]:
    """Run ``target(i, barrier, results)`` in ``count`` forked processes (on the default datastore)."""
    barrier, results = _FORK.Barrier(count), _FORK.Queue()
    procs = [_FORK.Process(target=target, args=(i, barrier, results)) for i in range(count)]
    for p in procs:
        p.start()
    found = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    return found


def test_twenty_racing_processes_get_gapless_versions_and_the_pointer_the_last(store: Datastore) -> None:
    versions = _in_processes(_race_register, 20)
    assert sorted(versions) == list(range(1, 21)), versions
    assert _pointer(store, "raced") == 20
    registry = DatasetRegistry(store)
    assert registry.get("raced").version == 20
    assert len({registry.get("raced", v).manifest.entries[0].path for v in range(1, 21)}) == 20


def _race_advance(i: int, barrier: Any, results: Any) -> None:
    try:
        registry = DatasetRegistry(Datastore.get_default())
        barrier.wait()
        for version in range(i % 4 + 1, 41, 4):  # each process climbs its own interleaved ladder to 37..40
            registry._advance("climb", version, registry._read_pointer("climb"))
            seen = registry._read_pointer("climb").version or 0
            if seen < version:
                results.put(f"pointer at {seen} after advancing to {version}")
                return
        results.put("ok")
    except BaseException as exc:  # reported to the parent
        results.put(repr(exc))


def test_the_pointer_never_moves_backwards_under_racing_writers(store: Datastore) -> None:
    assert _in_processes(_race_advance, 8) == ["ok"] * 8
    assert _pointer(store, "climb") == 40


def _race_increment(i: int, barrier: Any, results: Any) -> None:
    try:
        store = Datastore.get_default()
        barrier.wait()
        for _ in range(10):
            while True:
                seen = conditional.read_tagged(store, "counter")
                assert seen is not None
                if conditional.replace_if_unchanged(store, "counter", str(int(seen.data) + 1).encode(), seen.tag):
                    break
        results.put("ok")
    except BaseException as exc:  # reported to the parent
        results.put(repr(exc))


@pytest.mark.parametrize("kind", ["local", "azurite", "moto"])
def test_compare_and_swap_loses_no_update(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Eight processes add 1 ten times each with read-then-conditional-write: every increment lands."""
    store = _made(kind, request, tmp_path)
    assert conditional.replace_if_unchanged(store, "counter", b"0", None)
    assert _in_processes(_race_increment, 8) == ["ok"] * 8
    assert store.read_text("counter") == "80"


@pytest.mark.parametrize("kind", ["local", "memory", "azurite", "moto"])
def test_conditional_writes(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = Datastore("mem", "memory://cas-test") if kind == "memory" else _made(kind, request, tmp_path)
    assert conditional.read_tagged(store, "p/x") is None
    assert conditional.replace_if_unchanged(store, "p/x", b"1", None)
    assert not conditional.replace_if_unchanged(store, "p/x", b"1", None)  # create: only while absent
    seen = conditional.read_tagged(store, "p/x")
    assert seen is not None and seen.data == b"1"
    assert conditional.replace_if_unchanged(store, "p/x", b"2", seen.tag)
    assert not conditional.replace_if_unchanged(store, "p/x", b"3", seen.tag)  # the tag is stale now
    assert not conditional.replace_if_unchanged(store, "p/absent", b"3", seen.tag)
    now = conditional.read_tagged(store, "p/x")
    assert now is not None and now.data == b"2" and now.tag != seen.tag
    if kind == "memory":
        store.delete("p", recursive=True)


# -- a pointer that lags, or is missing -----------------------------------------------------------------------
def test_a_stale_pointer_is_repaired_by_the_next_reader(store: Datastore) -> None:
    for text in "abcd":
        _register(store, "lagging", text)
    _set_pointer(store, "lagging", 2)  # versions 3 and 4 created, the pointer never advanced
    assert DatasetRegistry(store).get("lagging").version == 4
    assert _pointer(store, "lagging") == 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("e", (5, True), id="new-content"),
        pytest.param("d", (4, False), id="same-as-the-real-latest"),
        pytest.param("b", (5, True), id="same-as-the-pointers-version"),
    ],
)
def test_a_stale_pointer_is_repaired_by_the_next_registration(
    store: Datastore, text: str, expected: tuple[int, bool]
) -> None:
    for t in "abcd":
        _register(store, "lagging", t)
    _set_pointer(store, "lagging", 2)
    assert _register(store, "lagging", text) == expected
    assert _pointer(store, "lagging") == expected[0]


def test_a_registry_without_pointers_is_read_and_gets_its_pointer(store: Datastore) -> None:
    for text in "abc":
        _register(store, "legacy", text)
    for name in ("legacy",):
        store.delete(f"{REGISTRY_ROOT}/{name}/{LATEST_POINTER}")  # today's layout: records only
    registry = DatasetRegistry(store)
    assert registry.get("legacy", 2).version == 2
    assert _pointer(store, "legacy") is None  # a numbered lookup reads the record alone
    assert registry.get("legacy").version == 3
    assert _pointer(store, "legacy") == 3
    assert _register(store, "legacy", "d") == (4, True)
    assert _pointer(store, "legacy") == 4


def test_an_unreadable_pointer_is_rebuilt(store: Datastore) -> None:
    for text in "ab":
        _register(store, "garbled", text)
    store.write_text(f"{REGISTRY_ROOT}/garbled/{LATEST_POINTER}", "{not json")
    assert DatasetRegistry(store).get("garbled").version == 2
    assert _pointer(store, "garbled") == 2


def test_a_missing_version_names_the_range_from_the_pointer(store: Datastore) -> None:
    _fill(store, "ranged", 12)
    with pytest.raises(DatasetNotFoundError, match=r"dataset 'ranged' has no version 13; versions: 1\.\.12"):
        DatasetRegistry(store).get("ranged", 13)
    with pytest.raises(DatasetNotFoundError, match="no dataset named 'nowhere'.*registered: 'ranged'"):
        DatasetRegistry(store).get("nowhere")


def test_registered_by_walks_back_from_the_pointer(store: Datastore) -> None:
    for n in range(4):
        store.write_text(f"w/{n}.csv", str(n))
        Dataset.File.from_files((store, f"w/{n}.csv")).register(
            "walk", lineage={"step_run_id": f"s{n}"}, registry=DatasetRegistry(store)
        )
    _set_pointer(store, "walk", 2)
    registry = DatasetRegistry(store)
    assert registry.registered_by("walk", "s3", since="2000-01-01").version == 4  # type: ignore[union-attr]
    assert registry.registered_by("walk", "s0", since="2000-01-01").version == 1  # type: ignore[union-attr]
    assert registry.registered_by("walk", "s0", since="2999-01-01") is None


def test_names_come_a_page_at_a_time(store: Datastore) -> None:
    for name in ("b", "a-b", "a", "c.d", "c"):
        _register(store, name, "x")
    registry = DatasetRegistry(store)
    every = registry.names()
    assert sorted(every) == ["a", "a-b", "b", "c", "c.d"]
    paged, token = [], ""
    while True:
        names, next_token = registry.names_page(limit=2, start_after=token)
        paged += names
        if next_token is None:
            break
        token = next_token
    assert paged == every
    assert registry.names(limit=3) == every[:3]


# -- requests counted -----------------------------------------------------------------------------------------
_STORE_OPERATIONS = (
    "exists",
    "isfile",
    "isdir",
    "info",
    "read_bytes",
    "list",
    "glob",
    "write_bytes",
    "create_if_absent",
)


@pytest.fixture
def operations(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Every datastore operation the registry makes (each is one request on an object store)."""
    counted: Counter[str] = Counter()

    def wrap(owner: Any, attr: str) -> None:
        original = getattr(owner, attr)

        def counting(*args: Any, **kwargs: Any) -> Any:
            counted[attr] += 1
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, attr, counting)

    for attr in _STORE_OPERATIONS:
        wrap(Datastore, attr)
    for attr in ("read_tagged", "replace_if_unchanged", "list_children"):
        wrap(registry_module, attr)
    yield counted


@pytest.mark.parametrize("count", [pytest.param(10, id="10-versions"), pytest.param(1000, id="1000-versions")])
def test_lookups_and_registrations_cost_the_same_at_any_number_of_versions(
    store: Datastore, operations: Counter[str], count: int
) -> None:
    _fill(store, "wide", count)
    store.write_text("data/wide/new.csv", "v\nnew\n")
    new = Dataset.File.from_files((store, "data/wide/new.csv"))
    content = {"name": "wide", "kind": new.kind, "definition": new.definition(), "manifest": new.current_manifest()}
    registry = DatasetRegistry(store)

    operations.clear()
    assert registry.get("wide").version == count
    assert sum(operations.values()) <= 3, operations

    operations.clear()
    assert registry.get("wide", count // 2).version == count // 2
    assert sum(operations.values()) == 1, operations

    operations.clear()
    assert registry.latest_version("wide") == count
    assert sum(operations.values()) <= 2, operations

    operations.clear()
    assert registry.register(**content) == (registry.get("wide", count + 1), True)
    assert sum(operations.values()) <= 5 + 1, operations  # and the get in the assertion

    operations.clear()
    assert registry.register(**content)[1] is False
    assert sum(operations.values()) <= 5, operations
    assert not operations["list"] and not operations["list_children"], operations


# -- the command line -----------------------------------------------------------------------------------------
def test_cli_lists_a_page_of_datasets_and_shows_versions_as_a_range(store: Datastore, operations: Counter[str]) -> None:
    from tests.reuse.reuse_helpers import mlpipe_in_process

    for name in ("d1", "d2", "d3"):
        _register(store, name, "x")
    _fill(store, "d0", 300)
    operations.clear()
    code, out = mlpipe_in_process("datasets", "list", "--limit", "2", "--json")
    assert code == 0, out
    first = json.loads(out)
    assert [(r["name"], r["latest_version"]) for r in first["datasets"]] == [("d0", 300), ("d1", 1)]
    assert first["next"] == "d1"
    assert not operations["list"] and operations["list_children"] == 1, operations  # one page of names, no versions
    code, out = mlpipe_in_process("datasets", "list", "--limit", "2", "--after", "d1", "--json")
    assert [r["name"] for r in json.loads(out)["datasets"]] == ["d2", "d3"] and json.loads(out)["next"] is None
    code, out = mlpipe_in_process("datasets", "list", "--limit", "2")
    assert "next page: mlpipe datasets list --limit 2 --after d1" in out

    operations.clear()
    code, out = mlpipe_in_process("datasets", "show", "d0", "--version", "7", "--json")
    shown = json.loads(out)
    assert (shown["version"], shown["latest_version"], shown["versions"]) == (7, 300, "1..300")
    assert not operations["list"], operations
    code, out = mlpipe_in_process("datasets", "show", "d0")
    assert "300 (of 1..300)" in out
