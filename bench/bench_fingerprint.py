"""Benchmark content fingerprinting against raw XXH3, ``cat`` and DVC, with ratios measured in the same run.

Run from the repository root (DVC is installed into a virtualenv of the benchmark's own, never into the project):

    .venv/bin/python bench/bench_fingerprint.py            # 1 GiB file, 100,000 files, 5 rounds
    .venv/bin/python bench/bench_fingerprint.py --quick    # 256 MiB, 20,000 files, 3 rounds

"Cold" means no stat cache (ours) and no DVC state (DVC's hash database removed): the files themselves stay in
the page cache for both sides, as nobody can drop the page cache here. Each measurement is repeated in rounds
that interleave the contenders, so both see the same load; the table gives medians and the ratio of medians.
Besides wall time, CPU time (user + system, worker processes included) is given: it is steadier on a shared
machine.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import xxhash

from airflow_mlpipe.fingerprint.hashing import hash_file, hash_files
from airflow_mlpipe.fingerprint.statcache import RACY_WINDOW_NS, StatCache
from airflow_mlpipe.fingerprint.tree import scan_tree

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
DVC_SPEC = "dvc==3.67.1"  # the version these figures were taken with

# Runs inside DVC's virtualenv: times DVC's own Python API, without interpreter start-up and imports.
DVC_DRIVER = textwrap.dedent(
    """
    import json, os, shutil, sys, time
    from dvc.repo import Repo
    root, mode = sys.argv[1], sys.argv[2]
    if mode == "add":
        repo = Repo(root)
        shutil.rmtree(repo.site_cache_dir, ignore_errors=True)  # DVC's hash database: cold
        repo.close()
    wall, cpu = time.perf_counter(), time.process_time()
    repo = Repo(root)
    if mode == "add":
        repo.add("data", no_commit=True)
    else:
        repo.status()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    repo.close()
    print(json.dumps({"wall": wall, "cpu": cpu}))
    """
)


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)

    @property
    def wall_median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)


def cpu_now() -> float:
    """CPU seconds of this process and of every child it has waited for (pool workers, subprocesses)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), cpu_now()
    fn()
    return time.perf_counter() - wall, cpu_now() - cpu


def run_timed(cmd: list[str], **kwargs: object) -> tuple[float, float]:
    """Wall and CPU time of a command (CPU from the rusage of waited-for children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]
    wall = time.perf_counter() - wall
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


# -- data ---------------------------------------------------------------------------------------------------------
def make_big_file(path: Path, size: int) -> None:
    block = random.Random(1).randbytes(16 * 1024 * 1024)
    with open(path, "wb") as fh:
        left = size
        while left:
            n = min(left, len(block))
            fh.write(block[:n])
            left -= n
            block = block[1:] + block[:1]  # no two blocks alike


def make_tree(root: Path, files: int, folders: int) -> int:
    """``files`` files of 1-10 KB spread over ``folders`` folders; returns the total size."""
    rnd = random.Random(2)
    blob = rnd.randbytes(16 * 1024 * 1024)
    total = 0
    for i in range(files):
        folder = root / f"d{i % folders:03d}"
        if i < folders:
            folder.mkdir(parents=True)
        size = rnd.randint(1024, 10 * 1024)
        start = rnd.randrange(len(blob) - size)
        (folder / f"f{i:06d}.bin").write_bytes(blob[start : start + size])
        total += size
    return total


# -- contenders ---------------------------------------------------------------------------------------------------
def simple_loop_hash(path: Path) -> str:
    """The first version of ``hash_file``: 8 MiB reads, one thread."""
    h = xxhash.xxh3_128()
    buf = bytearray(8 * 1024 * 1024)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])
    return h.hexdigest()


class InMemory:
    """The file's bytes read once into memory: XXH3 alone, without any reading, is the ceiling."""

    def __init__(self, path: Path) -> None:
        self.data = path.read_bytes()

    def hash(self) -> str:
        return xxhash.xxh3_128_hexdigest(self.data)


def stat_walk(root: Path) -> int:
    count = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    entry.stat(follow_symlinks=False)
                    count += 1
    return count


def ours_in_new_process(root: Path, cache_path: Path) -> list[str]:
    code = (
        "from airflow_mlpipe.fingerprint.statcache import StatCache\n"
        "from airflow_mlpipe.fingerprint.tree import scan_tree\n"
        f"scan_tree({str(root)!r}, cache=StatCache({str(cache_path)!r})).digest\n"
    )
    return [sys.executable, "-c", code]


class Dvc:
    """DVC in its own virtualenv, on a workspace holding the tree as ``data``."""

    def __init__(self, venv: Path, workspace: Path) -> None:
        self.venv = venv
        self.workspace = workspace
        self.bin = venv / "bin" / "dvc"
        self.python = venv / "bin" / "python"

    def install(self) -> None:
        if self.bin.exists():
            return
        print(f"installing {DVC_SPEC} into {self.venv} (once)", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        pip = [str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", DVC_SPEC]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"pip install {DVC_SPEC} failed: {done.stderr[-2000:]}")

    def version(self) -> str:
        return subprocess.run([str(self.bin), "--version"], capture_output=True, text=True, check=True).stdout.strip()

    def setup(self) -> None:
        """``dvc init`` and a committed ``dvc add``, so that ``dvc status`` has something to check."""
        self._dvc("init", "--no-scm", "-q")
        self._dvc("config", "core.analytics", "false")
        self._dvc("config", "core.site_cache_dir", str(self.workspace / ".dvc-site-cache"))
        self._dvc("add", "-q", "data")

    def clear_state(self) -> None:
        shutil.rmtree(self.workspace / ".dvc-site-cache", ignore_errors=True)

    def cli(self, *args: str) -> tuple[float, float]:
        return run_timed([str(self.bin), *args], cwd=self.workspace, stdout=subprocess.DEVNULL)

    def api(self, mode: str) -> tuple[float, float]:
        done = subprocess.run(
            [str(self.python), "-c", DVC_DRIVER, str(self.workspace), mode],
            cwd=self.workspace,
            capture_output=True,
            text=True,
        )
        if done.returncode:
            raise RuntimeError(f"DVC's API failed ({mode}): {done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        return float(result["wall"]), float(result["cpu"])

    def _dvc(self, *args: str) -> None:
        subprocess.run([str(self.bin), *args], cwd=self.workspace, check=True, stdout=subprocess.DEVNULL)


# -- the benchmark ------------------------------------------------------------------------------------------------
def bench_big_file(path: Path, size: int, rounds: int, work: Path) -> dict[str, Sample]:
    samples = {k: Sample() for k in ("xxh3 in memory", "simple loop", "cat", "hash_file", "hash_files+cache")}
    in_memory = InMemory(path)
    for r in range(rounds):
        samples["xxh3 in memory"].add(*timed(in_memory.hash))
        samples["simple loop"].add(*timed(lambda: simple_loop_hash(path)))
        samples["cat"].add(*run_timed(["cat", str(path)], stdout=subprocess.DEVNULL))
        samples["hash_file"].add(*timed(lambda: hash_file(path)))
        cache = StatCache(work / f"big-cache-{r}.sqlite3")
        samples["hash_files+cache"].add(*timed(lambda: hash_files([path], cache=cache)))  # noqa: B023
    assert hash_file(path) == in_memory.hash() == simple_loop_hash(path)
    return samples


def bench_tree(root: Path, dvc: Dvc | None, rounds: int, work: Path) -> dict[str, Sample]:
    samples: dict[str, Sample] = {}

    def add(name: str, result: tuple[float, float]) -> None:
        samples.setdefault(name, Sample()).add(*result)

    reference = scan_tree(root, cache=False).digest
    for r in range(rounds):
        print(f"  round {r + 1}/{rounds}", flush=True)
        cache_path = work / f"tree-cache-{r}.sqlite3"
        fresh_path = work / f"tree-cache-{r}-fresh.sqlite3"
        add("stat walk", timed(lambda: stat_walk(root)))
        if dvc is not None:
            dvc.clear_state()
            add("dvc add --no-commit (CLI)", dvc.cli("add", "--no-commit", "-q", "data"))
            add("dvc add --no-commit (API)", dvc.api("add"))
        cache = StatCache(cache_path)
        add("ours cold (in process)", timed(lambda: scan_tree(root, cache=cache).digest))  # noqa: B023
        add("ours cold, no cache at all", timed(lambda: scan_tree(root, cache=False).digest))
        add("ours cold (new process)", run_timed(ours_in_new_process(root, fresh_path)))
        forced = StatCache(work / f"tree-cache-{r}-forced.sqlite3")
        add("ours cold, 2 workers forced", timed(lambda: scan_tree(root, cache=forced, workers=2).digest))  # noqa: B023
        if dvc is not None:
            add("dvc status (CLI)", dvc.cli("status", "-q"))
            add("dvc status (API)", dvc.api("status"))
        found: list[str] = []
        add("ours warm (in process)", timed(lambda: found.append(scan_tree(root, cache=cache).digest)))  # noqa: B023
        add("ours warm (new process)", run_timed(ours_in_new_process(root, cache_path)))
        warm_forced = timed(lambda: found.append(scan_tree(root, cache=forced, workers=2).digest))  # noqa: B023
        add("ours warm, 2 workers forced", warm_forced)
        assert found == [reference, reference], "a warm scan must give the cold digest"
    return samples


def ratio(slow: Sample, fast: Sample) -> tuple[float, float]:
    return slow.wall_median / fast.wall_median, slow.cpu_median / fast.cpu_median


def report(args: argparse.Namespace, big: dict[str, Sample], tree: dict[str, Sample], meta: dict[str, object]) -> str:
    gib = args.big_mib / 1024
    lines = [
        f"Machine: {meta['cpus']} CPUs, load average {meta['load']}; Python {meta['python']}, DVC {meta['dvc']}; "
        f"rounds: {args.rounds}; {meta['when']}",
        "",
        f"### One {args.big_mib} MiB file (page cache warm; GB/s = 10^9 bytes/s)",
        "",
        "| contender | median wall s | GB/s |",
        "|---|---:|---:|",
    ]
    size = args.big_mib * 1024 * 1024
    for name, s in big.items():
        lines.append(f"| {name} | {s.wall_median:.4f} | {size / s.wall_median / 1e9:.1f} |")
    baselines = [
        ("xxh3 over bytes already in memory (hash only, no read)", "xxh3 in memory"),
        ("a plain one-thread read-and-hash loop (8 MiB reads)", "simple loop"),
        ("`cat > /dev/null` (reading alone)", "cat"),
    ]
    lines += ["", "| throughput ratio, ours / baseline | hash_file | hash_files, stat cache |", "|---|---:|---:|"]
    for label, name in baselines:
        base = big[name].wall_median
        lines.append(
            f"| ours / {label} | {base / big['hash_file'].wall_median:.2f}x "
            f"| {base / big['hash_files+cache'].wall_median:.2f}x |"
        )
    lines += [
        "",
        f"### {args.files:,} files of 1-10 KB in {args.folders} folders ({meta['tree_mb']:.0f} MB), {gib:g} GiB aside",
        "",
        "| contender | median wall s | median CPU s |",
        "|---|---:|---:|",
    ]
    for name, s in tree.items():
        lines.append(f"| {name} | {s.wall_median:.3f} | {s.cpu_median:.3f} |")
    if "dvc status (CLI)" in tree:
        pairs = [
            (
                "cold: dvc add --no-commit CLI / ours in a new process",
                "dvc add --no-commit (CLI)",
                "ours cold (new process)",
            ),
            ("cold: dvc add --no-commit API / ours in process", "dvc add --no-commit (API)", "ours cold (in process)"),
            ("cold: dvc add --no-commit CLI / ours in process", "dvc add --no-commit (CLI)", "ours cold (in process)"),
            ("warm: dvc status CLI / ours in a new process", "dvc status (CLI)", "ours warm (new process)"),
            ("warm: dvc status API / ours in process", "dvc status (API)", "ours warm (in process)"),
            ("warm: dvc status CLI / ours in process", "dvc status (CLI)", "ours warm (in process)"),
        ]
        lines += ["", "| how much faster (ratio of medians) | wall | CPU |", "|---|---:|---:|"]
        for label, slow, fast in pairs:
            wall, cpu = ratio(tree[slow], tree[fast])
            lines.append(f"| {label} | {wall:.1f}x | {cpu:.1f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="256 MiB, 20,000 files, 3 rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--no-dvc", action="store_true", help="leave DVC out")
    parser.add_argument("--dvc-venv", type=Path, default=RESULTS / "dvc-venv", help="where DVC is installed")
    parser.add_argument("--workdir", type=Path, default=None, help="where to build the data (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the data afterwards")
    args = parser.parse_args()
    args.big_mib, args.files, args.folders = (256, 20_000, 20) if args.quick else (1024, 100_000, 100)
    args.rounds = args.rounds or (3 if args.quick else 5)

    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-fp-", dir=args.workdir))
    try:
        dvc = None if args.no_dvc else Dvc(args.dvc_venv.resolve(), work / "ws")
        if dvc is not None:
            dvc.install()
        print(f"building data in {work}", flush=True)
        big = work / "big.bin"
        make_big_file(big, args.big_mib * 1024 * 1024)
        tree_root = work / "ws" / "data"
        tree_bytes = make_tree(tree_root, args.files, args.folders)
        if dvc is not None:
            print("dvc init and a first dvc add (not measured)", flush=True)
            dvc.setup()
        # the racy-entry guard never caches a file changed in the last seconds: let the new files age past it
        time.sleep(RACY_WINDOW_NS / 1e9 + 0.5)
        load_before = os.getloadavg()[0]
        print("one big file", flush=True)
        big_samples = bench_big_file(big, args.big_mib, args.rounds, work)
        print("the tree", flush=True)
        tree_samples = bench_tree(tree_root, dvc, args.rounds, work)
        meta: dict[str, object] = {
            "load": f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
            "cpus": len(os.sched_getaffinity(0)),
            "python": sys.version.split()[0],
            "dvc": dvc.version() if dvc is not None else "no DVC",
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "tree_mb": tree_bytes / 1e6,
        }
        text = report(args, big_samples, tree_samples, meta)
        print()
        print(text)
        RESULTS.mkdir(parents=True, exist_ok=True)
        out = RESULTS / f"fingerprint-{time.strftime('%Y%m%d-%H%M%S')}.json"
        raw = {
            "big": {k: vars(v) for k, v in big_samples.items()},
            "tree": {k: vars(v) for k, v in tree_samples.items()},
        }
        out.write_text(json.dumps({"meta": meta, "args": vars(args), **raw}, default=str))
        print(f"\nraw samples: {out.relative_to(REPO)}")
    finally:
        if args.keep:
            print(f"data kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
