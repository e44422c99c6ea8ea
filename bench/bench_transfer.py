"""Benchmark of the copy engine (``airflow_mlpipe.storage.transfer``) against plain tools, as ratios in one run.

    .venv/bin/python bench/bench_transfer.py            # full sizes (10,000 files, 1 GiB; 10 to 30 minutes)
    .venv/bin/python bench/bench_transfer.py --quick    # small sizes (about 2 minutes)

Starts its own Azurite and moto (``tests/emulators.py``). Uploads to Azurite start from a freshly started Azurite
every time (it slows down as it fills up, which would favour whichever runs first); moto is emptied before each
store-to-store run. Each scenario runs in rounds:
every baseline once, then the engine's full copy and at once its up-to-date re-run; the best time of each over the
rounds is kept (the least disturbed by other load: the machines are shared, so absolute seconds mean little, and
only ratios from one run are reported). ``emu cpu``: CPU seconds per wall second of the busiest emulator during the
engine's best full copy (1.0 is a full core: Azurite is one node process, moto one Python process, so near 1.0 the
emulator is the bottleneck); ``own cpu``: the same for this process (the engine's client side).
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
from dataclasses import asdict, dataclass, field
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
    rounds: int  # local scenarios
    emu_rounds: int  # emulator scenarios (a round of 10,000 files takes minutes)


FULL = Sizes(1024 * MiB, 10_000, 100_000, 10_000, 256 * MiB, rounds=3, emu_rounds=1)
QUICK = Sizes(128 * MiB, 2_000, 100_000, 1_000, 32 * MiB, rounds=2, emu_rounds=2)


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
    def rerun(self) -> bool:
        return "re-run" in self.goal

    @property
    def ratio(self) -> float:
        """baseline / engine (higher is better); for a re-run row, re-run / full copy (lower is better)."""
        if self.rerun:
            return self.engine_s / self.baseline_s
        return self.baseline_s / self.engine_s if self.engine_s > 0 else float("inf")


# -- timing -----------------------------------------------------------------------------------------------------------
def _cpu_seconds(server: Server) -> float:
    if server.proc is None:
        return 0.0
    with open(f"/proc/{server.proc.pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Timing:
    seconds: float
    emulator_cpu: float
    client_cpu: float


def timed(fn: Callable[[], Any], emulators: tuple[Server, ...] = ()) -> Timing:
    emu0 = [_cpu_seconds(s) for s in emulators]
    own0 = _own_cpu()
    start = time.perf_counter()
    fn()
    seconds = max(time.perf_counter() - start, 1e-9)
    busiest = max((_cpu_seconds(s) - c for s, c in zip(emulators, emu0, strict=True)), default=0.0)
    return Timing(seconds, busiest / seconds, (_own_cpu() - own0) / seconds)


@dataclass
class Scenario:
    """``make_engine()`` prepares a fresh destination and returns the transfer to time (full copy, then re-run)."""

    label: str
    baselines: dict[str, Callable[[], Any]]
    make_engine: Callable[[], Callable[[], Any]]
    goal: str = ""
    with_rerun: bool = False
    emulators: tuple[Server, ...] = ()
    before: Callable[[], Any] = field(default=lambda: None)

    def measure(self, rounds: int) -> list[Row]:
        base: dict[str, list[float]] = {name: [] for name in self.baselines}
        full: list[Timing] = []
        rerun: list[float] = []
        for _ in range(rounds):
            for name, baseline in self.baselines.items():
                self.before()
                base[name].append(timed(baseline, self.emulators).seconds)
            self.before()
            run = self.make_engine()
            full.append(timed(run, self.emulators))
            if self.with_rerun:
                rerun.append(timed(run, self.emulators).seconds)
        best = min(full, key=lambda t: t.seconds)
        emu = best.emulator_cpu if self.emulators else None
        rows = [
            Row(self.label, name, min(times), best.seconds, self.goal, emu, best.client_cpu)
            for name, times in base.items()
        ]
        if self.with_rerun:
            rows.append(Row(self.label, "engine full copy", best.seconds, min(rerun), "re-run < 0.1x"))
        return rows


# -- data -------------------------------------------------------------------------------------------------------------
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
    done = folder / f".made-{count}-{size}"
    if done.exists():
        return
    shutil.rmtree(folder, ignore_errors=True)
    for i in range(count):
        sub = folder / f"d{i % 20:02d}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    done.touch()


# -- scenarios --------------------------------------------------------------------------------------------------------
def local_scenarios(work: Path, sizes: Sizes) -> list[Row]:
    import fsspec

    lfs = fsspec.filesystem("file")
    big, small, out = work / "big.bin", work / "small", work / "out"
    make_big(big, sizes.big)
    make_small(small, sizes.small_count, sizes.small_size)
    src, dst = Datastore("bench-src", work.as_uri()), Datastore("bench-dst", out.as_uri())

    def clean() -> None:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir()
        os.sync()  # no timed run starts while the previous run's dirty pages are still being written back

    def engine(path: str, dest: str, kind: Any) -> Callable[[], Callable[[], Any]]:
        return lambda: lambda: transfer(src, path, dst, dest, kind=kind)

    scenarios = [
        Scenario(
            f"local->local 1 file {sizes.big // MiB} MiB",
            {
                "cp": lambda: subprocess.run(["cp", str(big), str(out / "cp.bin")], check=True),
                "fsspec put": lambda: lfs.put(str(big), str(out / "put.bin")),
            },
            engine("big.bin", "big.bin", "file"),
            ">= 0.9x",
            with_rerun=True,
            before=clean,
        ),
        Scenario(
            f"local->local {sizes.small_count} x {sizes.small_size // 1000} KB",
            {
                "cp -r": lambda: subprocess.run(["cp", "-r", str(small), str(out / "cp")], check=True),
                "fsspec put": lambda: lfs.put(str(small), str(out / "put"), recursive=True),
            },
            engine("small", "tree", "directory"),
            ">= 0.9x",
            with_rerun=True,
            before=clean,
        ),
    ]
    rows = [row for s in scenarios for row in s.measure(sizes.rounds)]
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


def _engine(src: Datastore, path: str, make_dst: Callable[[], Datastore], kind: Any) -> Callable[[], Any]:
    def prepare() -> Callable[[], Any]:
        dst = make_dst()
        return lambda: transfer(src, path, dst, "copy", kind=kind)

    return prepare


def emulator_scenarios(work: Path, sizes: Sizes) -> list[Row]:
    """Local -> Azurite and Azurite -> moto, each against plain fsspec/adlfs/s3fs calls with default settings."""
    import fsspec
    from fsspec.generic import GenericFileSystem, rsync

    azurite, moto = Azurite(), MotoS3()
    local = Datastore("bench-local", work.as_uri())
    small, big = work / "emu-small", work / "emu-big.bin"
    make_small(small, sizes.emu_count, sizes.small_size)
    make_big(big, sizes.emu_big)
    n_small = f"{sizes.emu_count} x {sizes.small_size // 1000} KB"
    n_big = f"1 file {sizes.emu_big // MiB} MiB"
    rounds = sizes.emu_rounds
    # Plain filesystems with default settings, as a user would make them (own instances: nothing shared with ours).
    plain: dict[str, Any] = {}

    def connect() -> None:
        from adlfs import AzureBlobFileSystem

        AzureBlobFileSystem.clear_instance_cache()  # no pooled connection to an Azurite that was restarted
        plain["az"] = fsspec.filesystem("abfs", connection_string=azurite.connection_string, skip_instance_cache=True)
        plain["s3"] = fsspec.filesystem("s3", skip_instance_cache=True, **moto.storage_options())

    def fresh_azurite() -> None:
        """Every upload into an empty Azurite: it slows down as it fills, which would favour whoever runs first."""
        azurite.stop()
        azurite.start()
        connect()

    def az_store() -> Datastore:
        container = _bucket(plain["az"])
        return Datastore("bench-az", f"az://{container}/data", {"connection_string": azurite.connection_string})

    def s3_store() -> Datastore:
        return Datastore("bench-s3", f"s3://{_bucket(plain['s3'])}/data", moto.storage_options())

    def empty_moto() -> None:
        plain["s3"].invalidate_cache()
        for bucket in plain["s3"].ls(""):
            plain["s3"].rm(bucket, recursive=True)

    rows: list[Row] = []
    with running(azurite):
        rows += Scenario(
            f"local->Azurite {n_small}",
            {
                "adlfs put (defaults)": lambda: plain["az"].put(
                    str(small), f"{_bucket(plain['az'])}/data/c", recursive=True
                )
            },
            _engine(local, "emu-small", az_store, "directory"),
            ">= 1.5x",
            with_rerun=True,
            emulators=(azurite,),
            before=fresh_azurite,
        ).measure(rounds)
        rows += Scenario(
            f"local->Azurite {n_big}",
            {"adlfs put (defaults)": lambda: plain["az"].put(str(big), f"{_bucket(plain['az'])}/data/copy")},
            _engine(local, "emu-big.bin", az_store, "file"),
            emulators=(azurite,),
            before=fresh_azurite,
        ).measure(rounds)
    with running(azurite, moto):
        connect()
        az_src = az_store()
        transfer(local, "emu-small", az_src, "small")
        transfer(local, "emu-big.bin", az_src, "big.bin", kind="file")

        def two_step(path: str, recursive: bool) -> Callable[[], Any]:
            def run() -> None:
                with tempfile.TemporaryDirectory(dir=work) as tmp:
                    plain["az"].get(az_src.full_path(path), f"{tmp}/x", recursive=recursive)
                    plain["s3"].put(f"{tmp}/x", f"{_bucket(plain['s3'])}/data/copy", recursive=recursive)

            return run

        generic = GenericFileSystem(
            default_method="options",
            storage_options={"abfs": {"connection_string": azurite.connection_string}, "s3": moto.storage_options()},
        )
        rows += Scenario(
            f"Azurite->moto {n_small}",
            {
                "adlfs get + s3fs put (defaults)": two_step("small", True),
                "fsspec.generic.rsync (defaults)": lambda: rsync(
                    f"abfs://{az_src.full_path('small')}", f"s3://{_bucket(plain['s3'])}/data/copy", fs=generic
                ),
            },
            _engine(az_src, "small", s3_store, "directory"),
            ">= 1.5x",
            with_rerun=True,
            emulators=(azurite, moto),
            before=empty_moto,
        ).measure(rounds)
        rows += Scenario(
            f"Azurite->moto {n_big}",
            {"adlfs get + s3fs put (defaults)": two_step("big.bin", False)},
            _engine(az_src, "big.bin", s3_store, "file"),
            emulators=(azurite, moto),
            before=empty_moto,
        ).measure(rounds)
    return rows


# -- report -----------------------------------------------------------------------------------------------------------
def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def report(rows: list[Row]) -> str:
    head = (
        f"| {'scenario':38} | {'baseline':32} | {'base s':>7} | {'engine s':>8} | {'ratio':>7} | {'goal':13} "
        "| emu cpu | own cpu |"
    )
    lines = [head, "|" + "|".join("-" * len(c) for c in head.split("|")[1:-1]) + "|"]
    for r in rows:
        ratio = f"{r.ratio:.3f}x" if r.rerun else f"{r.ratio:.2f}x"
        lines.append(
            f"| {r.scenario:38} | {r.baseline:32} | {r.baseline_s:7.2f} | {r.engine_s:8.3f} | {ratio:>7} | "
            f"{r.goal:13} | {_cell(r.emulator_cpu):>7} | {_cell(r.client_cpu):>7} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes (about 2 minutes)")
    parser.add_argument("--only", choices=["local", "emulators"], help="run one group of scenarios")
    parser.add_argument("--rounds", type=int, help="rounds per scenario (default: 3 local, 1 emulators; quick 2)")
    parser.add_argument("--work", type=Path, help="scratch folder (kept between runs to reuse test data)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = Sizes(**{**asdict(sizes), "rounds": args.rounds, "emu_rounds": args.rounds})
    work = args.work or Path(tempfile.gettempdir()) / "mlpipe-bench-transfer"
    work.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    started = time.perf_counter()
    load = os.getloadavg()[0]
    if args.only in (None, "local"):
        rows += local_scenarios(work, sizes)
        print(report(rows), flush=True)
    if args.only in (None, "emulators"):
        rows += emulator_scenarios(work, sizes)
    print()
    print(report(rows))
    print(
        f"\n{'quick' if args.quick else 'full'} run, {time.perf_counter() - started:.0f} s, {os.cpu_count()} cores, "
        f"load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end"
    )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) | {"ratio": r.ratio} for r in rows], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
