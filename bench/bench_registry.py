"""Benchmark of the dataset registry: lookups and registrations at 10 to 10,000 versions, as ratios against one
GET of a small object and one LIST page measured in the same run, and their growth with the number of versions.

    .venv/bin/python bench/bench_registry.py            # 10, 100, 1,000 and 10,000 versions, local and Azurite
    .venv/bin/python bench/bench_registry.py --quick    # 10, 100 and 1,000 versions
    [--only local|azurite|moto] [--sizes 10,1000] [--reps 30]

For each backend and size, a dataset with that many versions is written directly (the records are plain JSON
files; only the first goes through ``register``), with its latest pointer. Then, timed (medians of ``--reps``):

- ``GET``: one read of a small object (the dataset's latest record), the unit of the ratios;
- ``LIST``: one listing request of 100 names (``list_children(limit=100)`` of the dataset's folder);
- ``PUT``: one atomic write of a small object (``write_bytes``: on a local folder a temp file, ``fsync``, rename);
- ``latest``: ``get(name)`` (pointer, probe of the next version, record);
- ``by number``: ``get(name, N // 2)``;
- ``register``: a new version with new content (each repetition adds one);
- ``unchanged``: ``register`` of the latest version's content again (adds nothing);
- ``listing``: the latest found the way the registry did before pointers (list every version, read the last);
  at most 3 repetitions.

``ops`` counts the datastore operations (each one request on an object store) of one ``latest`` / ``register``.
Starts its own Azurite and moto (``tests/emulators.py``), afresh for every size (Azurite slows down as it
fills). The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchlib import load, stores, timed  # noqa: E402

from airflow_mlpipe.datasets import registry as registry_module  # noqa: E402
from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry  # noqa: E402
from airflow_mlpipe.datasets.registry import LATEST_POINTER, REGISTRY_ROOT, DatasetRegistry  # noqa: E402
from airflow_mlpipe.datasets.seal import SEAL_FIELD, sealed_bytes  # noqa: E402
from airflow_mlpipe.fingerprint.identity import FileIdentity  # noqa: E402
from airflow_mlpipe.storage.conditional import list_children  # noqa: E402
from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402

NAME = "bench"
_OPERATIONS = ("exists", "isfile", "isdir", "info", "read_bytes", "list", "glob", "write_bytes", "create_if_absent")


@contextlib.contextmanager
def counting() -> Iterator[Counter[str]]:
    """Count every datastore operation (one request each on an object store) made inside the block."""
    counted: Counter[str] = Counter()
    saved: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, attr: str) -> None:
        original = getattr(owner, attr)
        saved.append((owner, attr, original))

        def counting_call(*args: Any, **kwargs: Any) -> Any:
            counted[attr] += 1
            return original(*args, **kwargs)

        setattr(owner, attr, counting_call)

    for attr in _OPERATIONS:
        wrap(Datastore, attr)
    for attr in ("read_tagged", "replace_if_unchanged", "list_children"):
        wrap(registry_module, attr)
    try:
        yield counted
    finally:
        for owner, attr, original in reversed(saved):
            setattr(owner, attr, original)


def manifest_of(text: str) -> Manifest:
    identity = FileIdentity(f"data/{text}.csv", len(text), "xxh3", uuid.uuid5(uuid.NAMESPACE_URL, text).hex[:16])
    return Manifest.of([ManifestEntry("bench", identity)])


def fill(store: Datastore, count: int) -> DatasetRegistry:
    """``count`` versions of ``NAME``: the first registered, the others written directly, the pointer at the last."""
    registry = DatasetRegistry(store)
    registry.register(name=NAME, kind="file", definition={"paths": [], "options": {}}, manifest=manifest_of("v1"))
    first = {k: v for k, v in store.read_json(f"{REGISTRY_ROOT}/{NAME}/1.json").items() if k != SEAL_FIELD}
    objects = {
        f"{REGISTRY_ROOT}/{NAME}/{v}.json": sealed_bytes(
            {**first, "version": v, "manifest": manifest_of(f"v{v}").to_dict()}
        )
        for v in range(2, count + 1)
    }
    if store.is_local:
        for path, data in objects.items():
            Path(store.full_path(path)).write_bytes(data)
    else:
        items = list(objects.items())
        for i in range(0, len(items), 500):
            store.fs.pipe({store.full_path(p): d for p, d in items[i : i + 500]}, batch_size=64)
    pointer = {"format": 1, "name": NAME, "version": count}
    store.write_bytes(f"{REGISTRY_ROOT}/{NAME}/{LATEST_POINTER}", json.dumps(pointer).encode())
    return registry


def measure(store: Datastore, count: int, reps: int) -> dict[str, Any]:
    """Each repetition runs every operation once, in turn (registrations every third), so that drift in the
    machine's load or the emulator's speed moves the unit and the registry's calls alike."""
    registry = fill(store, count)
    folder = f"{REGISTRY_ROOT}/{NAME}"
    record_path = f"{folder}/{count}.json"
    texts = iter(f"new{i}" for i in range(10**6))
    empty: dict[str, Any] = {"paths": [], "options": {}}

    def register_new() -> None:
        registry.register(name=NAME, kind="file", definition=empty, manifest=manifest_of(next(texts)))

    def register_same() -> None:
        assert not registry.register(name=NAME, kind="file", definition=empty, manifest=latest.manifest)[1]

    plain: dict[str, Callable[[], Any]] = {
        "get": lambda: store.read_bytes(record_path),
        "put": lambda: store.write_bytes(f"{folder}/_bench.json", b'{"x": 1}'),
        "list": lambda: list_children(store, folder, limit=100),
        "latest": lambda: registry.get(NAME),
        "by_number": lambda: registry.get(NAME, count // 2),
    }
    for fn in plain.values():  # warm-up: connections, caches
        fn()
    samples: dict[str, list[float]] = {key: [] for key in [*plain, "register", "unchanged"]}
    for rep in range(reps):
        for key, fn in plain.items():
            samples[key].append(timed(fn, 1))
        if rep % 3 == 0:
            samples["register"].append(timed(register_new, 1))
            latest = registry.get(NAME)
            samples["unchanged"].append(timed(register_same, 1))
    row: dict[str, Any] = {key: statistics.median(values) for key, values in samples.items()}
    row.update(backend=store.protocol, versions=count)
    with counting() as ops:
        registry.get(NAME)
    row["ops_latest"] = sum(ops.values())
    with counting() as ops:
        register_new()
    row["ops_register"] = sum(ops.values())
    latest = registry.get(NAME)
    with counting() as ops:
        register_same()
    row["ops_unchanged"] = sum(ops.values())
    row["listing"] = timed(lambda: registry.get(NAME, max(registry.versions(NAME))), min(3, reps))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["local", "azurite", "moto"])
    parser.add_argument("--sizes", help="comma-separated numbers of versions")
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    sizes = (
        [int(s) for s in args.sizes.split(",")] if args.sizes else [10, 100, 1000] + ([] if args.quick else [10_000])
    )
    reps = min(args.reps, 10) if args.quick else args.reps
    print(f"load average at start: {load()}; sizes {sizes}; {reps} repetitions (medians)", flush=True)
    rows: list[dict[str, Any]] = []
    servers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for label, make in stores(args.only, Path(tmp), servers):
                server = servers.get(label)
                for count in sizes:
                    print(f"  {label}: {count} versions...", file=sys.stderr, flush=True)
                    if server is not None:
                        if server.proc is not None:
                            server.stop()
                        server.start()
                    rows.append({**measure(make(), count, reps), "backend": label, "load": load()})
        finally:
            for server in servers.values():
                if server.proc is not None:
                    server.stop()
    report(rows)
    print(f"\nload average at end: {load()}")


def report(rows: list[dict[str, Any]]) -> None:
    def x(row: dict[str, Any], key: str) -> str:
        return f"{row[key]:.2f} ({row[key] / row['get']:.1f}x)"

    print("\nms (median), and in brackets as a multiple of one GET of a small object on the same store:\n")
    columns = ["backend", "versions", "GET", "PUT", "LIST 100", "latest", "by number", "register", "unchanged"]
    columns += ["ops latest / register / unchanged", "listing (before pointers)", "load"]
    print("| " + " | ".join(columns) + " |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['versions']:,} | {r['get']:.2f} | {x(r, 'put')} | {x(r, 'list')} | "
            f"{x(r, 'latest')} | "
            f"{x(r, 'by_number')} | {x(r, 'register')} | {x(r, 'unchanged')} | "
            f"{r['ops_latest']} / {r['ops_register']} / {r['ops_unchanged']} | {x(r, 'listing')} | {r['load']} |"
        )
    print("\ngrowth (time at N versions / time at the smallest size; 1.0x is flat):\n")
    print("| backend | versions | latest | by number | register | unchanged | listing (before pointers) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = [r for r in rows if r["backend"] == backend]
        base = mine[0]
        for r in mine[1:]:
            cells = " | ".join(
                f"{r[k] / base[k]:.2f}x" for k in ("latest", "by_number", "register", "unchanged", "listing")
            )
            print(f"| {backend} | {base['versions']:,} → {r['versions']:,} | {cells} |")


if __name__ == "__main__":
    main()
