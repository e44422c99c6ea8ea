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
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
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
    notes: list[str] = field(default_factory=list)

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
    emulator_cpu: float  # emulator CPU seconds per wall second


def timed(fn: Callable[[], Any], emulators: tuple[Server, ...] = ()) -> Timing:
    cpu0 = [_cpu_seconds(s) for s in emulators]
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    busiest = max((_cpu_seconds(s) - c for s, c in zip(emulators, cpu0, strict=True)), default=0.0)
    return Timing(seconds, busiest / seconds if seconds > 0 else 0.0)


def best_of(
    repeat: int,
    baseline: Callable[[], Any],
    engine: Callable[[], Any],
    emulators: tuple[Server, ...] = (),
    before: Callable[[], Any] | None = None,
) -> tuple[float, float, float]:
    """Interleaved runs; the best of each (least disturbed by other load). Returns (baseline, engine, emu cpu)."""
    base, eng, emu = [], [], []
    for _ in range(repeat):
        if before:
            before()
        base.append(timed(baseline, emulators).seconds)
        if before:
            before()
        t = timed(engine, emulators)
        eng.append(t.seconds)
        emu.append(t.emulator_cpu)
    return min(base), min(eng), max(emu)


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


def drop_marker_files(folder: Path) -> None:
    for p in folder.glob(".made-*"):
        p.unlink()


# -- scenarios ---------------------------------------------------------------------------------------------------------
def local_scenarios(work: Path, sizes: Sizes) -> list[Row]:
    import fsspec

    lfs = fsspec.filesystem("file")
    rows = []
    big = work / "big.bin"
    make_big(big, sizes.big)
    src = Datastore("bench-src", work.as_uri())
    out = work / "out"
    out.mkdir(exist_ok=True)
    dst = Datastore("bench-dst", out.as_uri())

    def engine_big() -> None:
        transfer(src, "big.bin", dst, f"big-{uuid.uuid4().hex[:6]}.bin", kind="file")

    def clean() -> None:
        fresh(out).mkdir()
        os.sync()  # start each timed run without the previous run's dirty pages still being written back

    for name, baseline in [
        ("cp", lambda: subprocess.run(["cp", str(big), str(out / "cp.bin")], check=True)),
        ("fsspec put", lambda: lfs.put(str(big), str(out / "put.bin"))),
    ]:
        b, e, _ = best_of(sizes.repeat, baseline, engine_big, before=clean)
        rows.append(Row(f"local->local 1 file {sizes.big // MiB} MiB", name, b, e, ">= 0.9x"))

    small = work / "small"
    make_small(small, sizes.small_count, sizes.small_size)
    label = f"local->local {sizes.small_count} x {sizes.small_size // 1000} KB"

    def engine_small() -> None:
        transfer(src, "small", dst, "tree")

    for name, baseline in [
        ("cp -r", lambda: subprocess.run(["cp", "-r", str(small), str(out / "cp")], check=True)),
        ("fsspec put", lambda: lfs.put(str(small), str(out / "put"), recursive=True)),
    ]:
        b, e, _ = best_of(sizes.repeat, baseline, engine_small, before=clean)
        rows.append(Row(label, name, b, e, ">= 0.9x"))

    clean()
    full = min(timed(engine_small).seconds for _ in range(1))
    rerun = min(timed(engine_small).seconds for _ in range(sizes.repeat))
    rows.append(Row(label, "engine full copy", full, rerun, "re-run < 0.1x", notes=["engine = up-to-date re-run"]))
    clean()
    transfer(src, "big.bin", dst, "big.bin", kind="file")
    full_big = min(timed(lambda: transfer(src, "big.bin", dst, "big2.bin", kind="file")).seconds for _ in range(1))
    rerun_big = min(
        timed(lambda: transfer(src, "big.bin", dst, "big.bin", kind="file")).seconds for _ in range(sizes.repeat)
    )
    rows.append(
        Row(
            f"local->local 1 file {sizes.big // MiB} MiB",
            "engine full copy",
            full_big,
            rerun_big,
            "re-run < 0.1x",
            notes=["engine = up-to-date re-run"],
        )
    )
    clean()
    return rows


@contextlib.contextmanager
def emulators() -> Iterator[tuple[Azurite, MotoS3]]:
    azurite, moto = Azurite(), MotoS3()
    azurite.start()
    moto.start()
    try:
        yield azurite, moto
    finally:
        azurite.stop()
        moto.stop()


def _container(fs: Any) -> str:
    name = f"b{uuid.uuid4().hex[:12]}"
    fs.mkdir(name)
    return name


def emulator_scenarios(work: Path, sizes: Sizes, azurite: Azurite, moto: MotoS3) -> list[Row]:
    import fsspec
    from fsspec.generic import GenericFileSystem, rsync

    rows: list[Row] = []
    # Plain filesystems with default settings, as a user would make them (their own instances: no shared state).
    az = fsspec.filesystem("abfs", connection_string=azurite.connection_string, skip_instance_cache=True)
    s3 = fsspec.filesystem("s3", skip_instance_cache=True, **moto.storage_options())
    local = Datastore("bench-local", work.as_uri())
    small = work / "emu-small"
    make_small(small, sizes.emu_count, sizes.small_size)
    big = work / "emu-big.bin"
    make_big(big, sizes.emu_big)
    n = sizes.emu_count
    label_small = f"{n} x {sizes.small_size // 1000} KB"
    label_big = f"1 file {sizes.emu_big // MiB} MiB"

    def az_store() -> Datastore:
        return Datastore("bench-az", f"az://{_container(az)}/data", {"connection_string": azurite.connection_string})

    def s3_store() -> Datastore:
        return Datastore("bench-s3", f"s3://{_container(s3)}/data", moto.storage_options())

    emus: tuple[Server, ...] = (azurite,)
    b, e, cpu = best_of(
        1,
        lambda: az.put(str(small), f"{_container(az)}/data/small", recursive=True),
        lambda: transfer(local, "emu-small", az_store(), "small"),
        emus,
    )
    rows.append(Row(f"local->Azurite {label_small}", "adlfs put (defaults)", b, e, ">= 1.5x", cpu))
    b, e, cpu = best_of(
        1,
        lambda: az.put(str(big), f"{_container(az)}/data/big.bin"),
        lambda: transfer(local, "emu-big.bin", az_store(), "big.bin", kind="file"),
        emus,
    )
    rows.append(Row(f"local->Azurite {label_big}", "adlfs put (defaults)", b, e, "", cpu))

    # An Azurite source for the store-to-store rows, and the up-to-date re-run against it.
    az_src = az_store()
    full = timed(lambda: transfer(local, "emu-small", az_src, "small"), emus).seconds
    rerun = timed(lambda: transfer(local, "emu-small", az_src, "small"), emus).seconds
    rows.append(
        Row(f"local->Azurite {label_small}", "engine full copy", full, rerun, "re-run < 0.1x", notes=["re-run"])
    )
    transfer(local, "emu-big.bin", az_src, "big.bin", kind="file")
    src_dir = az_src.full_path("small")
    src_big = az_src.full_path("big.bin")
    emus = (azurite, moto)

    def two_step() -> None:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            az.get(src_dir, f"{tmp}/small", recursive=True)
            s3.put(f"{tmp}/small", f"{_container(s3)}/data/small", recursive=True)

    generic = GenericFileSystem(
        default_method="options",
        storage_options={"abfs": {"connection_string": azurite.connection_string}, "s3": moto.storage_options()},
    )

    def generic_rsync() -> None:
        rsync(f"abfs://{src_dir}", f"s3://{_container(s3)}/data/small", fs=generic)

    for name, baseline in [("adlfs get + s3fs put (defaults)", two_step), ("fsspec.generic.rsync", generic_rsync)]:
        b, e, cpu = best_of(1, baseline, lambda: transfer(az_src, "small", s3_store(), "small"), emus)
        rows.append(Row(f"Azurite->moto {label_small}", name, b, e, ">= 1.5x", cpu))

    def two_step_big() -> None:
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            az.get(src_big, f"{tmp}/big.bin")
            s3.put(f"{tmp}/big.bin", f"{_container(s3)}/data/big.bin")

    b, e, cpu = best_of(1, two_step_big, lambda: transfer(az_src, "big.bin", s3_store(), "big.bin", kind="file"), emus)
    rows.append(Row(f"Azurite->moto {label_big}", "adlfs get + s3fs put (defaults)", b, e, "", cpu))

    s3_dst = s3_store()
    full = timed(lambda: transfer(az_src, "small", s3_dst, "small"), emus).seconds
    rerun = timed(lambda: transfer(az_src, "small", s3_dst, "small"), emus).seconds
    rows.append(Row(f"Azurite->moto {label_small}", "engine full copy", full, rerun, "re-run < 0.1x", notes=["re-run"]))
    return rows


# -- report ------------------------------------------------------------------------------------------------------------
def report(rows: list[Row]) -> str:
    head = (
        f"| {'scenario':38} | {'baseline':32} | {'base s':>7} | {'engine s':>8} | {'ratio':>6} | goal          "
        "| emu cpu |"
    )
    lines = [head, "|" + "|".join("-" * (len(c) + 0) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        rerun = "re-run" in r.goal
        ratio = r.engine_s / r.baseline_s if rerun else r.speedup
        shown = f"{ratio:.3f}x" if rerun else f"{ratio:.2f}x"
        emu = "" if r.emulator_cpu is None else f"{r.emulator_cpu:.2f}"
        lines.append(
            f"| {r.scenario:38} | {r.baseline:32} | {r.baseline_s:7.2f} | {r.engine_s:8.3f} | {shown:>6} | "
            f"{r.goal:13} | {emu:>7} |"
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
        with emulators() as (azurite, moto):
            rows += emulator_scenarios(work, sizes, azurite, moto)
    print()
    print(report(rows))
    print(f"\n{'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s, {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps([r.__dict__ | {"speedup": r.speedup} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
