"""Benchmark of source snapshots (``airflow_mlpipe.steps.snapshot``) against one batched transfer of the same
folder, as ratios measured in one run.

    .venv/bin/python bench/bench_snapshot.py            # 100, 1,000 and 10,000 files of 4 KB, 4 files of 32 MiB
    .venv/bin/python bench/bench_snapshot.py --quick    # 100 and 1,000 files, 2 files of 8 MiB (about 3 minutes)
    .venv/bin/python bench/bench_snapshot.py --only azurite --before 5c34d58~1   # with the per-file code of a commit

For each folder, on a local datastore and on Azurite (started here, as ``tests/emulators.py`` does):

* ``store``: ``store_snapshot`` of the scanned tree into an empty datastore (the scan, done at planning, is not
  timed) against ``fs.put(folder, remote, recursive=True)``;
* ``store again``: the same snapshot a second time (it is there already);
* ``fetch``: ``fetch_snapshot`` into an empty folder with an empty snapshot cache (on Azurite: the fetch fills the
  cache, then copies into the folder; a local datastore is read directly) against ``fs.get(remote, folder,
  recursive=True)``;
* ``fetch, cached``: the same fetch once the machine's cache holds the snapshot (Azurite only; no request);
* ``fetch, old layout``: a snapshot stored one object per file, as before packs (up to 1,000 files).

On the local datastore ``store`` is also set against ``put+fsync`` (the put, then every copied file flushed to
disk): a local snapshot is made durable before its record is written, which a plain put does not do.

The baseline is the faster of the library's defaults and ``batch_size=64`` (adlfs defaults to one request per file
at once, up to an open-files limit), so the ratio is against the best plain transfer found. ``ratio`` is snapshot
seconds / baseline seconds: the goal is at most 1.2x. ``cpu s``: CPU seconds of this process (all threads) in the
same run, steadier than wall time on a shared machine. Every upload to Azurite starts from a freshly started Azurite
(it slows down as it fills, which would favour whichever runs first). Each figure is the best of the rounds: the
machines are shared, so absolute seconds mean little, and only ratios from one run are reported.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airflow_mlpipe.fingerprint.tree import Tree  # noqa: E402
from airflow_mlpipe.steps.snapshot import (  # noqa: E402
    fetch_snapshot,
    object_path,
    scan_source,
    store_snapshot,
    tree_path,
)
from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402
from tests.emulators import Azurite  # noqa: E402

MiB = 1024 * 1024
BASELINE_BATCH = 64


@dataclass(frozen=True)
class Sizes:
    counts: tuple[int, ...]
    small_size: int
    big_count: int
    big_size: int
    rounds: int
    emu_rounds: int
    old_layout_max: int = 1_000  # the per-file layout costs a request per file: only the smaller folders


FULL = Sizes((100, 1_000, 10_000), 4_000, 4, 32 * MiB, rounds=3, emu_rounds=1)
QUICK = Sizes((100, 1_000), 4_000, 2, 8 * MiB, rounds=2, emu_rounds=1)


@dataclass
class Row:
    store: str
    data: str
    step: str
    seconds: float
    baseline: str
    baseline_s: float | None
    cpu: float = 0.0  # CPU seconds of this process in the same run

    @property
    def ratio(self) -> float | None:
        return self.seconds / self.baseline_s if self.baseline_s else None


def best(times: list[tuple[float, float]]) -> float:
    return min(times)[0]


def best_cpu(times: list[tuple[float, float]]) -> float:
    return min(times)[1]


def timed(run: Callable[[], Any], before: Callable[[], Any] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (this process, all threads) of ``run``."""
    if before is not None:
        before()
    os.sync()  # no timed run starts while the previous run's dirty pages are still being written back
    start, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - start, time.process_time() - cpu


# -- data -------------------------------------------------------------------------------------------------------------
def make_small(folder: Path, count: int, size: int) -> Path:
    """``count`` files in 20 subfolders; made once and kept between runs (the marker sits beside the folder)."""
    done = folder.parent / f".{folder.name}-made-{count}-{size}"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        sub = folder / f"pkg{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"mod{i:05d}.py").write_bytes(os.urandom(size))
    done.touch()
    return folder


def make_big(folder: Path, count: int, size: int) -> Path:
    done = folder.parent / f".{folder.name}-made-{count}-{size}"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(count):
        with open(folder / f"weights{i}.bin", "wb") as fh:
            left = size
            while left:
                n = min(left, 16 * MiB)
                fh.write(os.urandom(n))
                left -= n
    done.touch()
    return folder


def data_sets(work: Path, sizes: Sizes) -> list[tuple[str, Path]]:
    sets = [
        (f"{n:,} x {sizes.small_size // 1000} KB", make_small(work / f"small-{n}", n, sizes.small_size))
        for n in sizes.counts
    ]
    big = make_big(work / "big", sizes.big_count, sizes.big_size)
    return [*sets, (f"{sizes.big_count} x {sizes.big_size // MiB} MiB", big)]


def durable_put(fs: Any, folder: str, dest: str) -> None:
    """``fs.put`` of a local folder, then every file copied flushed to disk (as a local snapshot store does)."""
    fs.put(folder, dest, recursive=True)
    for parent, _, names in os.walk(dest):
        for name in names:
            fd = os.open(os.path.join(parent, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


# -- the layout before packs ------------------------------------------------------------------------------------------
def store_old_layout(tree: Tree, folder: Path, store: Datastore) -> None:
    """Every file an object and a record without a pack (untimed set-up, written in one batch)."""
    data = {store.full_path(object_path(e.digest)): (folder / rel).read_bytes() for rel, e in tree.entries.items()}
    if store.is_local:
        for full, value in data.items():
            os.makedirs(os.path.dirname(full), exist_ok=True)
            Path(full).write_bytes(value)
    else:
        store.fs.pipe(data, batch_size=BASELINE_BATCH)
    store.write_json(tree_path(tree.digest), tree.to_dict())


def load_before(commit: str) -> ModuleType:
    """``airflow_mlpipe/steps/snapshot.py`` as it was at ``commit`` (the per-file store and fetch)."""
    text = subprocess.run(
        ["git", "-C", str(REPO), "show", f"{commit}:airflow_mlpipe/steps/snapshot.py"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="snapshot-before-")) / "snapshot_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("snapshot_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# -- one datastore kind -----------------------------------------------------------------------------------------------
@dataclass
class Target:
    """Where snapshots and baseline copies go: a fresh datastore per call, and the plain filesystem beside it."""

    name: str
    fresh: Callable[[], Datastore]  # an empty datastore (a new folder or container)
    reset: Callable[[], None]  # before an upload: nothing left from earlier uploads (a fresh Azurite)
    plain: Callable[[], Any]  # the plain fsspec filesystem with default settings
    cached: bool  # whether fetches go through the machine's snapshot cache
    durable_put: bool = False  # also time a put made durable (a snapshot in a local datastore is fsynced)


def measure(
    target: Target, label: str, folder: Path, rounds: int, work: Path, sizes: Sizes, before: ModuleType | None
) -> list[Row]:
    tree = scan_source(str(folder))
    cache_dir = work / "cache"
    out = work / "out"

    def clean_out() -> None:
        shutil.rmtree(out, ignore_errors=True)

    def empty_cache() -> None:
        shutil.rmtree(cache_dir, ignore_errors=True)

    times: dict[str, list[tuple[float, float]]] = {}

    def note(step: str, seconds: tuple[float, float]) -> None:
        times.setdefault(step, []).append(seconds)

    for _ in range(rounds):
        # Uploads, each into an empty store.
        for batch in (None, BASELINE_BATCH):
            target.reset()
            fs, store = target.plain(), target.fresh()
            dest = store.full_path(f"base-{uuid.uuid4().hex[:6]}")
            kwargs = {} if batch is None else {"batch_size": batch}
            note(
                f"put{'' if batch is None else f' b={batch}'}",
                timed(partial(fs.put, str(folder), dest, recursive=True, **kwargs)),
            )
        if target.durable_put:
            fs, store = target.plain(), target.fresh()
            dest = store.full_path("durable")
            note("put + fsync", timed(partial(durable_put, fs, str(folder), dest)))
        if before is not None and len(tree) <= sizes.old_layout_max:
            target.reset()
            old = target.fresh()
            note("store, per file (before)", timed(partial(before.store_snapshot, str(folder), tree, old)))
        target.reset()
        store = target.fresh()
        note("store", timed(partial(store_snapshot, str(folder), tree, store)))
        note("store again", timed(partial(store_snapshot, str(folder), tree, store)))
        # Downloads, all from the store the snapshot went to.
        fs = target.plain()
        base = store.full_path("base")
        fs.put(str(folder), base, recursive=True, batch_size=BASELINE_BATCH)
        for batch in (None, BASELINE_BATCH):
            kwargs = {} if batch is None else {"batch_size": batch}
            note(
                f"get{'' if batch is None else f' b={batch}'}",
                timed(partial(fs.get, base, str(out), recursive=True, **kwargs), clean_out),
            )
        os.environ["MLPIPE_CACHE_DIR"] = str(cache_dir)
        empty_cache()
        note("fetch", timed(partial(fetch_snapshot, tree.digest, store, str(out)), clean_out))
        if target.cached:
            note("fetch, cached", timed(partial(fetch_snapshot, tree.digest, store, str(out)), clean_out))
        if len(tree) <= sizes.old_layout_max:
            old_store = target.fresh()
            store_old_layout(tree, folder, old_store)
            note(
                "fetch, old layout",
                timed(partial(fetch_snapshot, tree.digest, old_store, str(out), cache=False), clean_out),
            )
            if before is not None:
                note(
                    "fetch, per file (before)",
                    timed(partial(before.fetch_snapshot, tree.digest, old_store, str(out)), clean_out),
                )
        clean_out()
        empty_cache()

    b = f"put b={BASELINE_BATCH}"
    put_name = "put" if best(times["put"]) <= best(times[b]) else b
    b = f"get b={BASELINE_BATCH}"
    get_name = "get" if best(times["get"]) <= best(times[b]) else b
    put, get = best(times[put_name]), best(times[get_name])

    def make(step: str, against: str, base: float) -> Row:
        return Row(target.name, label, step, best(times[step]), against, base, best_cpu(times[step]))

    rows = [
        make("put", f"put b={BASELINE_BATCH}", best(times[f"put b={BASELINE_BATCH}"])),
        make("get", f"get b={BASELINE_BATCH}", best(times[f"get b={BASELINE_BATCH}"])),
    ]
    rows += [
        make(step, put_name, put) for step in ("store", "store again", "store, per file (before)") if step in times
    ]
    if "put + fsync" in times:
        rows.append(make("store", "put+fsync", best(times["put + fsync"])))
    rows += [
        make(step, get_name, get)
        for step in ("fetch", "fetch, cached", "fetch, old layout", "fetch, per file (before)")
        if step in times
    ]
    for row in rows:
        print(f"  {row.store} {row.data}: {row.step} {row.seconds:.3f} s ({_ratio(row)} {row.baseline})", flush=True)
    return rows


def _ratio(row: Row) -> str:
    return "" if row.ratio is None else f"{row.ratio:.2f}x"


@contextlib.contextmanager
def local_target(work: Path) -> Iterator[Target]:
    import fsspec

    root = work / "stores"

    def fresh() -> Datastore:
        folder = root / uuid.uuid4().hex[:8]
        folder.mkdir(parents=True)
        return Datastore("bench-local", folder.as_uri())

    def reset() -> None:
        shutil.rmtree(root, ignore_errors=True)

    try:
        yield Target("local", fresh, reset, lambda: fsspec.filesystem("file"), cached=False, durable_put=True)
    finally:
        reset()


@contextlib.contextmanager
def azurite_target() -> Iterator[Target]:
    import fsspec
    from adlfs import AzureBlobFileSystem

    azurite = Azurite()
    azurite.start()
    plain: dict[str, Any] = {}

    def connect() -> None:
        AzureBlobFileSystem.clear_instance_cache()  # no pooled connection to an Azurite that was restarted
        plain["az"] = fsspec.filesystem("abfs", connection_string=azurite.connection_string, skip_instance_cache=True)

    def reset() -> None:
        azurite.stop()
        azurite.start()
        connect()

    def fresh() -> Datastore:
        container = f"c{uuid.uuid4().hex[:12]}"
        plain["az"].mkdir(container)
        return Datastore("bench-az", f"az://{container}/data", {"connection_string": azurite.connection_string})

    connect()
    try:
        yield Target("Azurite", fresh, reset, lambda: plain["az"], cached=True)
    finally:
        azurite.stop()


# -- report -----------------------------------------------------------------------------------------------------------
def report(rows: list[Row]) -> str:
    head = (
        f"| {'store':7} | {'data':15} | {'step':24} | {'seconds':>8} | {'cpu s':>6} | {'against':9} | {'base s':>7} "
        f"| {'ratio':>6} |"
    )
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        base = "" if r.baseline_s is None else f"{r.baseline_s:7.3f}"
        lines.append(
            f"| {r.store:7} | {r.data:15} | {r.step:24} | {r.seconds:8.3f} | {r.cpu:6.2f} | {r.baseline:9} "
            f"| {base:>7} | {_ratio(r):>6} |"
        )
    return "\n".join(lines)


def growth(rows: list[Row], counts: tuple[int, ...]) -> str:
    """Seconds per step at each file count, and the factor from one count to the next (10x files each)."""
    lines = []
    for store in dict.fromkeys(r.store for r in rows):
        for step in dict.fromkeys(r.step for r in rows if r.store == store):
            series = [
                next(
                    (r.seconds for r in rows if r.store == store and r.step == step and r.data.startswith(f"{n:,} ")),
                    None,
                )
                for n in counts
            ]
            if any(s is None for s in series):
                continue
            cells = " -> ".join(f"{s:.3f}" for s in series if s is not None)
            factors = ", ".join(f"{b / a:.1f}x" for a, b in itertools.pairwise(series) if a and b)
            lines.append(f"  {store:7} {step:24} {cells} s (growth {factors})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 files, 2 files of 8 MiB")
    parser.add_argument("--only", choices=["local", "azurite"], help="one datastore kind")
    parser.add_argument("--data", choices=["small", "large"], help="only the small-file or the large-file folders")
    parser.add_argument("--rounds", type=int, help="rounds per data set (default: 3 local, 1 Azurite)")
    parser.add_argument("--before", help="also time the per-file snapshot code of this git commit")
    parser.add_argument("--work", type=Path, help="scratch folder (kept between runs to reuse test data)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the emulator on the way out
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = replace(sizes, rounds=args.rounds, emu_rounds=args.rounds)
    work = args.work or Path(tempfile.gettempdir()) / "mlpipe-bench-snapshot"
    work.mkdir(parents=True, exist_ok=True)
    before = load_before(args.before) if args.before else None
    sets = data_sets(work / "data", sizes)
    if args.data:
        sets = sets[:-1] if args.data == "small" else sets[-1:]
    load = os.getloadavg()
    started = time.perf_counter()
    rows: list[Row] = []
    if args.only in (None, "local"):
        with local_target(work) as target:
            for label, folder in sets:
                rows += measure(target, label, folder, sizes.rounds, work, sizes, before)
    if args.only in (None, "azurite"):
        with azurite_target() as target:
            for label, folder in sets:
                rows += measure(target, label, folder, sizes.emu_rounds, work, sizes, before)
    print()
    print(report(rows))
    print("\ngrowth with the file count:")
    print(growth(rows, sizes.counts))
    end = os.getloadavg()
    print(
        f"\n{'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s, {os.cpu_count()} cores, "
        f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start and "
        f"{end[0]:.1f} / {end[1]:.1f} / {end[2]:.1f} at the end"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"ratio": r.ratio} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
