"""Benchmark of the copy engine (``airflow_mlpipe.storage.transfer``) against plain tools, as ratios in one run.

    .venv/bin/python bench/bench_transfer.py            # full sizes (about 10 minutes on 2 cores)
    .venv/bin/python bench/bench_transfer.py --quick    # small sizes (about a minute)

Starts its own Azurite and moto (``tests/emulators.py``). Every figure is a ratio against a baseline measured in
the same run, interleaved with it (baseline, engine, baseline, engine, ...), best of ``--repeat`` each: the
machines are shared and noisy, so absolute seconds mean little. Emulator CPU is sampled from /proc during each
run: an emulator near one full core (``emu cpu`` about 1.0) is the bottleneck (Azurite is single-threaded node,
moto a single Python process).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402
from airflow_mlpipe.storage.transfer import transfer  # noqa: E402
from tests.emulators import Azurite, MotoS3, Server  # noqa: E402

MiB = 1024 * 1024
_TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sizes:
    big: int  # bytes of the single large local file
    small_count: int  # small files, local
    small_size: int
    emu_count: int  # small files to and between emulators
    emu_big: int  # bytes of the large file to and between emulators
    repeat: int


FULL = Sizes(big=1024 * MiB, small_count=10_000, small_size=100_000, emu_count=10_000, emu_big=256 * MiB, repeat=3)
QUICK = Sizes(big=128 * MiB, small_count=2_000, small_size=100_000, emu_count=1_000, emu_big=32 * MiB, repeat=2)


@dataclass
class Row:
    scenario: str
    baseline: str
    baseline_s: float
    engine_s: float
    goal: str
    emulator_cpu: float | None = None
    client_cpu: float | None = None

    @property
    def speedup(self) -> float:
        return self.baseline_s / self.engine_s if self.engine_s > 0 else float("inf")


def _cpu_seconds(server: Server | None) -> float:
    if server is None or server.proc is None:
        return 0.0
    with open(f"/proc/{server.proc.pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class Timing:
    seconds: float
    emulator_cpu: float  # CPU seconds per wall second of the busiest emulator (1.0: one core, its limit)
    client_cpu: float  # CPU seconds per wall second of this process (all its threads)


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], Any], emulators: tuple[Server, ...] = ()) -> Timing:
    cpu0 = [_cpu_seconds(s) for s in emulators]
    own0 = _own_cpu()
    start = time.perf_counter()
    fn()
    seconds = max(time.perf_counter() - start, 1e-9)
    busiest = max((_cpu_seconds(s) - c for s, c in zip(emulators, cpu0, strict=True)), default=0.0)
    return Timing(seconds, busiest / seconds, (_own_cpu() - own0) / seconds)


@dataclass
class Compared:
    baseline: float  # best seconds of the baseline
    engine: float  # best seconds of the engine's full copy
    rerun: float  # best seconds of the engine's up-to-date re-run, right after each full copy
    emulator_cpu: float  # during the engine's full copy (see Timing)
    client_cpu: float


def compare(
    repeat: int,
    baseline: Callable[[], Any],
    make_engine: Callable[[], Callable[[], Any]],
    emulators: tuple[Server, ...] = (),
    before: Callable[[], Any] | None = None,
) -> Compared:
    """Interleaved runs, the best of each (least disturbed by other load).

    ``make_engine()`` prepares a fresh destination and returns the transfer to time; it is timed twice: the full
    copy, then at once the re-run that finds everything up to date (same conditions for the ratio of the two).
    """
    base, full, rerun, emu, own = [], [], [], [], []
    for _ in range(repeat):
        if before:
            before()
        base.append(timed(baseline, emulators).seconds)
        if before:
            before()
        run = make_engine()
        t = timed(run, emulators)
        full.append(t.seconds)
        emu.append(t.emulator_cpu)
        own.append(t.client_cpu)
        rerun.append(timed(run, emulators).seconds)
    best = full.index(min(full))
    return Compared(min(base), min(full), min(rerun), emu[best], own[best])


# -- data --------------------------------------------------------------------------------------------------------------
def make_big(path: Path, size: int) -> None:
    if path.exists() and path.stat().st_size == size:
        return
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, 16 * MiB)
            fh.write(os.urandom(n))
            left -= n


def make_small(folder: Path, count: int, size: int) -> None:
    marker = folder / f".made-{count}-{size}"
    if marker.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(count):
        sub = folder / f"d{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    marker.touch()


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


# -- scenarios ---------------------------------------------------------------------------------------------------------
def rerun_row(scenario: str, result: Compared) -> Row:
    return Row(scenario, "engine full copy", result.engine, result.rerun, "re-run < 0.1x")


def local_scenarios(work: Path, sizes: Sizes) -> list[Row]:
    import fsspec

    lfs = fsspec.filesystem("file")
    rows = []
    big = work / "big.bin"
    make_big(big, sizes.big)
    src = Datastore("bench-src", work.as_uri())
    out = work / "out"
    dst = Datastore("bench-dst", out.as_uri())

    def clean() -> None:
        fresh(out).mkdir()
        os.sync()  # start each timed run without the previous run's dirty pages still being written back

    def engine(path: str, dest: str, kind: Any) -> Callable[[], Callable[[], Any]]:
        return lambda: lambda: transfer(src, path, dst, dest, kind=kind)

    label = f"local->local 1 file {sizes.big // MiB} MiB"
    for name, baseline in [
        ("cp", lambda: subprocess.run(["cp", str(big), str(out / "cp.bin")], check=True)),
        ("fsspec put", lambda: lfs.put(str(big), str(out / "put.bin"))),
    ]:
        result = compare(sizes.repeat, baseline, engine("big.bin", "big.bin", "file"), before=clean)
        rows.append(Row(label, name, result.baseline, result.engine, ">= 0.9x"))
    rows.append(rerun_row(label, result))

    small = work / "small"
    make_small(small, sizes.small_count, sizes.small_size)
    label = f"local->local {sizes.small_count} x {sizes.small_size // 1000} KB"
    for name, baseline in [
        ("cp -r", lambda: subprocess.run(["cp", "-r", str(small), str(out / "cp")], check=True)),
        ("fsspec put", lambda: lfs.put(str(small), str(out / "put"), recursive=True)),
    ]:
        result = compare(sizes.repeat, baseline, engine("small", "tree", "directory"), before=clean)
        rows.append(Row(label, name, result.baseline, result.engine, ">= 0.9x"))
    rows.append(rerun_row(label, result))
    clean()
    return rows


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Fresh emulators for one scenario: both keep every byte in memory (Azurite began to answer HTTP 500 past
    about 4 GB), and a restart is far faster than deleting 10,000 blobs."""
    for server in servers:
        server.start()
    try:
        yield
    finally:
        for server in servers:
            server.stop()


def _bucket(fs: Any) -> str:
    name = f"b{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return name


def _row(scenario: str, baseline: str, result: Compared, goal: str = "") -> Row:
    return Row(scenario, baseline, result.baseline, result.engine, goal, result.emulator_cpu, result.client_cpu)


def _engine(src: Datastore, path: str, make_dst: Callable[[], Datastore], kind: Any) -> Callable[[], Any]:
    def prepare() -> Callable[[], Any]:
        dst = make_dst()
        return lambda: transfer(src, path, dst, "copy", kind=kind)

    return prepare


def emulator_scenarios(work: Path, sizes: Sizes) -> list[Row]:
    """Local -> Azurite and Azurite -> moto, each against plain fsspec/adlfs/s3fs calls with default settings."""
    import fsspec
    from fsspec.generic import GenericFileSystem, rsync

    rows: list[Row] = []
    azurite, moto = Azurite(), MotoS3()
    # Plain filesystems with default settings, as a user would make them (own instances: nothing shared with ours).
    az = fsspec.filesystem("abfs", connection_string=azurite.connection_string, skip_instance_cache=True)
    s3 = fsspec.filesystem("s3", skip_instance_cache=True, **moto.storage_options())
    local = Datastore("bench-local", work.as_uri())
    make_small(work / "emu-small", sizes.emu_count, sizes.small_size)
    make_big(work / "emu-big.bin", sizes.emu_big)
    small = f"{sizes.emu_count} x {sizes.small_size // 1000} KB"
    large = f"1 file {sizes.emu_big // MiB} MiB"

    def az_store() -> Datastore:
        return Datastore("bench-az", f"az://{_bucket(az)}/data", {"connection_string": azurite.connection_string})

    def s3_store() -> Datastore:
        return Datastore("bench-s3", f"s3://{_bucket(s3)}/data", moto.storage_options())

    def empty_moto() -> None:
        s3.invalidate_cache()
        for bucket in s3.ls(""):
            s3.rm(bucket, recursive=True)

    label = f"local->Azurite {small}"
    with running(azurite):
        result = compare(
            1,
            lambda: az.put(str(work / "emu-small"), f"{_bucket(az)}/data/copy", recursive=True),
            _engine(local, "emu-small", az_store, "directory"),
            (azurite,),
        )
    rows += [_row(label, "adlfs put (defaults)", result, ">= 1.5x"), rerun_row(label, result)]
    with running(azurite):
        result = compare(
            1,
            lambda: az.put(str(work / "emu-big.bin"), f"{_bucket(az)}/data/copy"),
            _engine(local, "emu-big.bin", az_store, "file"),
            (azurite,),
        )
    rows.append(_row(f"local->Azurite {large}", "adlfs put (defaults)", result))

    with running(azurite, moto):
        az_src = az_store()
        transfer(local, "emu-small", az_src, "small")
        transfer(local, "emu-big.bin", az_src, "big.bin", kind="file")

        def two_step(path: str, recursive: bool) -> Callable[[], Any]:
            def run() -> None:
                with tempfile.TemporaryDirectory(dir=work) as tmp:
                    az.get(az_src.full_path(path), f"{tmp}/x", recursive=recursive)
                    s3.put(f"{tmp}/x", f"{_bucket(s3)}/data/copy", recursive=recursive)

            return run

        generic = GenericFileSystem(
            default_method="options",
            storage_options={"abfs": {"connection_string": azurite.connection_string}, "s3": moto.storage_options()},
        )

        def generic_rsync() -> None:
            rsync(f"abfs://{az_src.full_path('small')}", f"s3://{_bucket(s3)}/data/copy", fs=generic)

        label = f"Azurite->moto {small}"
        for name, baseline in [
            ("adlfs get + s3fs put (defaults)", two_step("small", True)),
            ("fsspec.generic.rsync (defaults)", generic_rsync),
        ]:
            engine = _engine(az_src, "small", s3_store, "directory")
            result = compare(1, baseline, engine, (azurite, moto), before=empty_moto)
            rows.append(_row(label, name, result, ">= 1.5x"))
        rows.append(rerun_row(label, result))
        engine = _engine(az_src, "big.bin", s3_store, "file")
        result = compare(1, two_step("big.bin", False), engine, (azurite, moto), before=empty_moto)
        rows.append(_row(f"Azurite->moto {large}", "adlfs get + s3fs put (defaults)", result))
    return rows


# -- report ------------------------------------------------------------------------------------------------------------
def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def report(rows: list[Row]) -> str:
    """A Markdown table. ``ratio``: baseline / engine (higher is better), or re-run / full copy (lower is better)."""
    head = (
        f"| {'scenario':38} | {'baseline':32} | {'base s':>7} | {'engine s':>8} | {'ratio':>7} | {'goal':13} "
        "| emu cpu | own cpu |"
    )
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        rerun = "re-run" in r.goal
        ratio = f"{r.engine_s / r.baseline_s:.3f}x" if rerun else f"{r.speedup:.2f}x"
        lines.append(
            f"| {r.scenario:38} | {r.baseline:32} | {r.baseline_s:7.2f} | {r.engine_s:8.3f} | {ratio:>7} | "
            f"{r.goal:13} | {_cell(r.emulator_cpu):>7} | {_cell(r.client_cpu):>7} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    parser.add_argument("--only", choices=["local", "emulators"], help="run one group of scenarios")
    parser.add_argument("--work", type=Path, help="scratch folder (kept between runs to reuse test data)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    work = args.work or Path(tempfile.gettempdir()) / "mlpipe-bench-transfer"
    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    started = time.perf_counter()
    if args.only in (None, "local"):
        rows += local_scenarios(work, sizes)
        print(report(rows), flush=True)
    if args.only in (None, "emulators"):
        rows += emulator_scenarios(work, sizes)
    print()
    print(report(rows))
    print(f"\n{'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s, {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ | {"speedup": r.speedup} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
