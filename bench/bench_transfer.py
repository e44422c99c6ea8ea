"""Benchmark of the copy engine (``airflow_mlpipe.storage.transfer``) against the libraries, tuned, as ratios.

    .venv/bin/python bench/bench_transfer.py                   # every path, 3 rounds (15 to 40 minutes on 2 CPUs)
    .venv/bin/python bench/bench_transfer.py --only local --rounds 5
    .venv/bin/python bench/bench_transfer.py --quick           # 200 small files, 2 x 16 MiB, 2 rounds

Every path (local->local, local->Azurite, local->moto, Azurite->moto, Azurite->Azurite and moto->moto server-side,
Azurite->local and moto->local) copies two data sets: many small files and a few large ones. Each side (the engine
with its defaults, every tuned library baseline) runs once a round into a fresh destination; the order alternates
from round to round (engine first, then baselines first), so drift in the machine's load favours neither; medians
are reported. Destinations are deleted (untimed) after each run, so the emulators never fill up.

Starts its own Azurite and moto (``tests/emulators.py``). ``ratio`` is baseline / engine (above 1.0: the engine is
faster); ``best`` compares with the fastest baseline of the path. The re-run row is the engine's up-to-date re-run
over its full copy (lower is better). Load averages are printed per path: the machine is shared.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402
from airflow_mlpipe.storage.transfer import transfer  # noqa: E402
from tests.emulators import Azurite, MotoS3, Server  # noqa: E402

MiB = 1024 * 1024
Run = Callable[[], Any]
Prepare = Callable[[], Run]  # untimed set-up (a fresh destination) returning the timed copy


@dataclass(frozen=True)
class Sizes:
    small_count: int
    small_size: int
    big_count: int
    big_size: int
    rounds: int


FULL = Sizes(1_000, 100_000, 4, 64 * MiB, rounds=3)
QUICK = Sizes(200, 100_000, 2, 16 * MiB, rounds=2)


@dataclass
class Row:
    path: str
    data: str
    baseline: str
    baseline_s: float
    engine_s: float
    load: str

    @property
    def rerun(self) -> bool:
        return self.baseline == "engine full copy"

    @property
    def ratio(self) -> float:
        """baseline / engine (higher: the engine is faster); for the re-run row, re-run / full copy."""
        if self.rerun:
            return self.engine_s / self.baseline_s
        return self.baseline_s / self.engine_s if self.engine_s > 0 else float("inf")


def _load() -> float:
    return os.getloadavg()[0]


def _timed(prepare: Prepare, cleanup: Callable[[], Any]) -> float:
    run = prepare()
    start = time.perf_counter()
    run()
    seconds = time.perf_counter() - start
    cleanup()
    return seconds


@dataclass
class Case:
    """One path and one data set: the engine and its baselines, each a ``Prepare``."""

    path: str
    data: str
    engine: Callable[[], tuple[Run, Run]]  # returns (full copy, re-run) into one fresh destination
    baselines: dict[str, Prepare]
    cleanup: Callable[[], Any]

    def measure(self, rounds: int) -> list[Row]:
        times: dict[str, list[float]] = {name: [] for name in self.baselines}
        full: list[float] = []
        rerun: list[float] = []
        loads = [_load()]

        def engine() -> None:
            copy, again = self.engine()
            start = time.perf_counter()
            copy()
            full.append(time.perf_counter() - start)
            start = time.perf_counter()
            again()
            rerun.append(time.perf_counter() - start)
            self.cleanup()

        for index in range(rounds):
            if index % 2 == 0:
                engine()
            for name, prepare in self.baselines.items():
                times[name].append(_timed(prepare, self.cleanup))
            if index % 2 == 1:
                engine()
            loads.append(_load())
        load = f"{min(loads):.1f}-{max(loads):.1f}"
        engine_s = statistics.median(full)
        rows = [Row(self.path, self.data, name, statistics.median(t), engine_s, load) for name, t in times.items()]
        rows.append(Row(self.path, self.data, "engine full copy", engine_s, statistics.median(rerun), load))
        line = ", ".join(f"{r.baseline} {r.baseline_s:.2f} s ({r.ratio:.2f}x)" for r in rows[:-1])
        print(f"  {self.path} {self.data}: engine {engine_s:.2f} s; {line}; load {load}", flush=True)
        return rows


# -- data -------------------------------------------------------------------------------------------------------------
def make_data(work: Path, sizes: Sizes) -> tuple[str, str]:
    """``small/`` (in 20 subfolders) and ``big/`` under ``work``, made once and kept between runs."""
    small, big = work / "small", work / "big"
    done = work / f".made-{sizes.small_count}-{sizes.small_size}-{sizes.big_count}-{sizes.big_size}"
    if not done.exists():
        shutil.rmtree(small, ignore_errors=True)
        shutil.rmtree(big, ignore_errors=True)
        for i in range(sizes.small_count):
            sub = small / f"d{i % 20:02d}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"f{i:05d}.bin").write_bytes(os.urandom(sizes.small_size))
        big.mkdir()
        for i in range(sizes.big_count):
            with open(big / f"b{i}.bin", "wb") as fh:
                for _ in range(0, sizes.big_size, 16 * MiB):
                    fh.write(os.urandom(min(16 * MiB, sizes.big_size)))
        done.touch()
    return (
        f"{sizes.small_count} x {sizes.small_size // 1000} KB",
        f"{sizes.big_count} x {sizes.big_size // MiB} MiB",
    )


# -- stores -----------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    for server in servers:
        server.start()
    try:
        yield
    finally:
        for server in servers:
            server.stop()


class Stores:
    """Plain library filesystems (own instances, nothing shared with the engine's) and fresh destinations."""

    def __init__(self, work: Path, azurite: Azurite, moto: MotoS3) -> None:
        import fsspec

        self.work, self.azurite, self.moto = work, azurite, moto
        self.az = fsspec.filesystem("abfs", connection_string=azurite.connection_string, skip_instance_cache=True)
        self.s3 = fsspec.filesystem("s3", skip_instance_cache=True, **moto.storage_options())
        self.local = Datastore("bench-local", work.as_uri())
        self.az_src = Datastore("bench-az-src", "az://source/data", {"connection_string": azurite.connection_string})
        self.s3_src = Datastore("bench-s3-src", "s3://source/data", moto.storage_options())
        self.out = work / "out"

    def fresh(self, kind: str) -> tuple[Datastore, str]:
        """A new empty container, bucket or folder: the engine's datastore and the library's path of its root."""
        name = f"b{uuid.uuid4().hex[:12]}"
        if kind == "local":
            folder = self.out / name
            folder.mkdir(parents=True)
            return Datastore("bench-dst", folder.as_uri()), str(folder)
        if kind == "az":
            self.az.mkdir(name)
            opts = {"connection_string": self.azurite.connection_string}
            return Datastore("bench-dst", f"az://{name}/data", opts), f"{name}/data"
        self.s3.mkdir(name)
        return Datastore("bench-dst", f"s3://{name}/data", self.moto.storage_options()), f"{name}/data"

    def cleanup(self) -> None:
        """Delete every destination (untimed): containers and buckets other than ``source``, local ``out/``."""
        shutil.rmtree(self.out, ignore_errors=True)
        self.az.invalidate_cache()
        for container in self.az.ls(""):
            if container.strip("/") != "source":
                self.az.rm(container.strip("/"), recursive=True)
        self.s3.invalidate_cache()
        for bucket in self.s3.ls(""):
            if bucket.strip("/") != "source":
                self.s3.rm(bucket, recursive=True)
        os.sync()  # no timed run starts while the previous run's dirty pages are still being written back

    def source(self, kind: str) -> tuple[Datastore, str, Any]:
        """The source datastore of ``kind``, its root as the library names it, and the library filesystem."""
        if kind == "local":
            return self.local, str(self.work), None
        if kind == "az":
            return self.az_src, "source/data", self.az
        return self.s3_src, "source/data", self.s3

    def seed(self) -> None:
        """Both data sets into Azurite and moto, once (the sources of store-to-store and download paths)."""
        self.az.mkdir("source")
        self.s3.mkdir("source")
        for sub in ("small", "big"):
            transfer(self.local, sub, self.az_src, sub)
            transfer(self.local, sub, self.s3_src, sub)


# -- baselines --------------------------------------------------------------------------------------------------------
def _library(kind_src: str, kind_dst: str, stores: Stores, sub: str, big: bool) -> dict[str, Prepare]:
    """The tuned library calls for one path: ``name -> prepare``."""
    _, src_root, src_fs = stores.source(kind_src)
    src = f"{src_root}/{sub}"

    def to(kind: str, call: Callable[[str], Any]) -> Prepare:
        def prepare() -> Run:
            _, root = stores.fresh(kind)
            return lambda: call(f"{root}/copy")

        return prepare

    # Small files: requests in flight is the knob (batch_size); large files: blocks of one file in flight.
    settings = (
        {"batch=4 conc=8": {"batch_size": 4, "max_concurrency": 8}}
        if big
        else {"batch=32": {"batch_size": 32}, "batch=128": {"batch_size": 128}}
    )
    s3_big = {"chunksize": 8 * MiB} if big else {}
    out: dict[str, Prepare] = {}
    pair = (kind_src, kind_dst)
    if pair == ("local", "local"):
        out["cp -r"] = to("local", lambda dst: subprocess.run(["cp", "-r", src, dst], check=True))
        out["shutil.copytree"] = to("local", lambda dst: shutil.copytree(src, dst))
        return out
    for label, opts in settings.items():
        batch = {"batch_size": opts["batch_size"]}
        name, kind, call = _library_call(pair, stores, src, src_fs, opts, batch, s3_big)
        out[f"{name} {label}"] = to(kind, call)
        if pair == ("az", "s3"):
            out[f"adlfs get + s3fs put {label}"] = to("s3", _two_step(stores, src, opts, s3_big))
    return out


def _library_call(
    pair: tuple[str, str],
    stores: Stores,
    src: str,
    src_fs: Any,
    opts: dict[str, Any],
    batch: dict[str, Any],
    s3_big: dict[str, Any],
) -> tuple[str, str, Callable[[str], Any]]:
    """The library's one call for a path: (its name, the destination's kind, ``call(destination path)``)."""
    from fsspec.generic import GenericFileSystem, rsync

    if pair == ("local", "az"):
        return "adlfs put", "az", lambda d: stores.az.put(src, d, recursive=True, **opts)
    if pair == ("local", "s3"):
        return "s3fs put", "s3", lambda d: stores.s3.put(src, d, recursive=True, **opts, **s3_big)
    if pair == ("az", "az"):
        return "adlfs copy", "az", lambda d: stores.az.copy(src, d, recursive=True, **batch)
    if pair == ("s3", "s3"):
        return "s3fs copy", "s3", lambda d: stores.s3.copy(src, d, recursive=True, **batch)
    if pair == ("az", "s3"):
        generic = GenericFileSystem(
            default_method="options",
            storage_options={
                "abfs": {"connection_string": stores.azurite.connection_string},
                "s3": stores.moto.storage_options(),
            },
        )
        return "fsspec.generic.rsync", "s3", lambda d: rsync(f"abfs://{src}", f"s3://{d}", fs=generic, **batch)
    extra = s3_big if src_fs is stores.s3 else {}
    name = "s3fs get" if src_fs is stores.s3 else "adlfs get"
    return name, "local", lambda d: src_fs.get(src, d, recursive=True, **opts, **extra)


def _two_step(stores: Stores, src: str, opts: dict[str, Any], s3_big: dict[str, Any]) -> Callable[[str], Any]:
    def run(dst: str) -> None:
        with tempfile.TemporaryDirectory(dir=stores.work) as tmp:
            stores.az.get(src, f"{tmp}/x", recursive=True, **opts)
            stores.s3.put(f"{tmp}/x", dst, recursive=True, **opts, **s3_big)

    return run


def _engine(kind_src: str, kind_dst: str, stores: Stores, sub: str) -> Callable[[], tuple[Run, Run]]:
    src, _, _ = stores.source(kind_src)

    def prepare() -> tuple[Run, Run]:
        dst, _ = stores.fresh(kind_dst)

        def copy() -> Any:
            return transfer(src, sub, dst, "copy")

        return copy, copy

    return prepare


PATHS: dict[str, tuple[str, str]] = {
    "local->local": ("local", "local"),
    "local->Azurite": ("local", "az"),
    "local->moto": ("local", "s3"),
    "Azurite->moto": ("az", "s3"),
    "Azurite->Azurite": ("az", "az"),
    "moto->moto": ("s3", "s3"),
    "Azurite->local": ("az", "local"),
    "moto->local": ("s3", "local"),
}


def listing_rows(stores: Stores, label: str, rounds: int) -> list[Row]:
    """The engine's Azure listing (List Blobs XML read directly) against adlfs ``find``, on the small data set."""
    from airflow_mlpipe.storage.listing import list_tree

    full = stores.az_src.full_path("small")
    sides: dict[str, Run] = {
        "engine": lambda: list_tree(stores.az_src, full),
        "adlfs find": lambda: stores.az.find(full, detail=True),
    }
    times: dict[str, list[float]] = {name: [] for name in sides}
    loads = [_load()]
    for index in range(rounds):
        for name in sides if index % 2 == 0 else reversed(sides):
            stores.az.invalidate_cache()
            start = time.perf_counter()
            sides[name]()
            times[name].append(time.perf_counter() - start)
        loads.append(_load())
    load = f"{min(loads):.1f}-{max(loads):.1f}"
    row = Row(
        "list Azurite",
        label,
        "adlfs find",
        statistics.median(times["adlfs find"]),
        statistics.median(times["engine"]),
        load,
    )
    print(
        f"  list Azurite {label}: engine {row.engine_s:.2f} s; adlfs find {row.baseline_s:.2f} s "
        f"({row.ratio:.2f}x); load {load}",
        flush=True,
    )
    return [row]


# -- report -----------------------------------------------------------------------------------------------------------
def report(rows: list[Row]) -> str:
    lines = [
        "| path | data | baseline (tuned) | base s | engine s | ratio | best | load |",
        "|---|---|---|---:|---:|---:|---:|---|",
    ]
    for (path, data), group in _groups(rows).items():
        fastest = min((r.baseline_s for r in group if not r.rerun), default=0.0)
        for r in group:
            ratio = f"{r.ratio:.3f}x" if r.rerun else f"{r.ratio:.2f}x"
            best = "" if r.rerun or r.baseline_s != fastest else f"{r.ratio:.2f}x"
            lines.append(
                f"| {path} | {data} | {r.baseline} | {r.baseline_s:.2f} | {r.engine_s:.3f} | {ratio} | {best} | "
                f"{r.load} |"
            )
    return "\n".join(lines)


def _groups(rows: list[Row]) -> dict[tuple[str, str], list[Row]]:
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.path, row.data), []).append(row)
    return groups


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, 2 rounds")
    parser.add_argument(
        "--only", action="append", choices=[*sorted(PATHS), "list Azurite"], help="run this path (repeatable)"
    )
    parser.add_argument("--rounds", type=int, help="rounds per case (default 3; quick 2)")
    parser.add_argument("--work", type=Path, help="scratch folder (kept between runs to reuse test data)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    rounds = args.rounds or sizes.rounds
    work = args.work or Path(tempfile.gettempdir()) / "mlpipe-bench-transfer"
    work.mkdir(parents=True, exist_ok=True)
    labels = make_data(work, sizes)
    started, load = time.perf_counter(), _load()
    rows: list[Row] = []
    azurite, moto = Azurite(), MotoS3()
    with running(azurite, moto):
        stores = Stores(work, azurite, moto)
        stores.seed()
        for path in [p for p in args.only or list(PATHS) if p in PATHS]:
            kind_src, kind_dst = PATHS[path]
            for sub, label in zip(("small", "big"), labels, strict=True):
                case = Case(
                    path,
                    label,
                    _engine(kind_src, kind_dst, stores, sub),
                    _library(kind_src, kind_dst, stores, sub, big=sub == "big"),
                    stores.cleanup,
                )
                rows += case.measure(rounds)
        if not args.only or "list Azurite" in args.only:
            rows += listing_rows(stores, labels[0], rounds)
    print()
    print(report(rows))
    print(
        f"\n{rounds} rounds, medians, {time.perf_counter() - started:.0f} s, {os.cpu_count()} cores, "
        f"load average {load:.1f} at the start and {_load():.1f} at the end"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"ratio": r.ratio} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
