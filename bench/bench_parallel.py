"""Benchmark of ParallelRunStep (issue 15): batch scoring on a real scheduler against a plain loop, as ratios.

    .venv/bin/python bench/bench_parallel.py                 # 10,000 items of 1 KB, mini-batches of 100
    .venv/bin/python bench/bench_parallel.py --items 2000    # a quicker look

1. Baseline: one process imports the entry script, calls ``init()`` and then ``run()`` on each mini-batch of the
   same local files, one after the other (no Airflow, no datastore, no records).
2. First run: the same entry script as a ``ParallelRunStep`` (``LocalCompute``, ``node_count=2``, one process per
   node) in a real deployment (api-server, scheduler with LocalExecutor, dag-processor; SQLite), triggered through
   the REST API; wall time from the trigger to the DAG run's end, and from the planning task's start to the gather
   task's end.
3. Reruns after changing 10 files: held in one mini-batch (consecutive files) and spread over 10 mini-batches.

``run()`` does a fixed amount of CPU work per item (``--item-ms``, SHA-256 rounds over the item's bytes calibrated
in the baseline process), standing for a small model's inference. The machines are shared: only ratios from one
run mean much, and the load averages are printed next to them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.benchlib import load  # noqa: E402

DAG_ID = "bench_parallel"
ENTRY = """\
import hashlib, os

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "1000"))


def init():
    pass


def run(mini_batch):
    out = []
    for path in mini_batch:
        with open(path, "rb") as fh:
            digest = fh.read()
        for _ in range(ROUNDS):
            digest = hashlib.sha256(digest).digest()
        out.append(f"{os.path.basename(path)} {digest.hex()[:16]}")
    return out
"""
DAG = """\
import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Dataset, Datastore, OutputFileDatasetConfig, ParallelRunConfig, ParallelRunStep

with DAG(dag_id="{dag_id}", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False):
    config = ParallelRunConfig(
        entry_script="score.py",
        source_directory=os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps"),
        mini_batch_size={batch},
        error_threshold=0,
        node_count=2,
        process_count_per_node=1,
        environment_variables={{"BENCH_ROUNDS": "{rounds}"}},
        run_invocation_timeout=600,
    )
    items = Dataset.File.from_files(path=(Datastore.get_default(), "bench/items/*.bin"))
    ParallelRunStep(
        name="score",
        parallel_run_config=config,
        inputs=[items.as_named_input("items")],
        output=OutputFileDatasetConfig(name="scores"),
    )
"""
BASELINE = """\
import importlib.util, os, sys, time
spec = importlib.util.spec_from_file_location("entry", sys.argv[1])
entry = importlib.util.module_from_spec(spec); spec.loader.exec_module(entry)
folder, size = sys.argv[2], int(sys.argv[3])
start = time.perf_counter()
files = sorted(os.path.join(folder, f) for f in os.listdir(folder))
entry.init()
lines = 0
for n in range(0, len(files), size):
    lines += len(entry.run(files[n : n + size]))
print(time.perf_counter() - start, lines)
"""


def calibrate(item_ms: float) -> int:
    """SHA-256 rounds that take ``item_ms`` on this machine: the fastest of a few timings (the machine is shared,
    and a loaded moment would make every later item cheaper than asked)."""
    import hashlib

    best = float("inf")
    for _ in range(7):
        data = os.urandom(32)
        start = time.perf_counter()
        for _ in range(20000):
            data = hashlib.sha256(data).digest()
        best = min(best, (time.perf_counter() - start) / 20000)
    return max(1, int(item_ms / 1000 / best))


def write_items(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (folder / f"item-{n:05d}.bin").write_bytes(os.urandom(1024))


def baseline(work: Path, items: Path, batch: int, rounds: int) -> float:
    script = work / "baseline.py"
    script.write_text(BASELINE)
    env = {**os.environ, "BENCH_ROUNDS": str(rounds)}
    cmd = [sys.executable, str(script), str(work / "dags" / "steps" / "score.py"), str(items), str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[0])


def _when(text: str | None) -> float:
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()


def timed_run(services: Any, run_id: str) -> dict[str, Any]:
    start = time.monotonic()
    services.trigger(DAG_ID, run_id)
    state = services.wait_for_runs(DAG_ID, [run_id], timeout=3600)[run_id]
    wall = time.monotonic() - start
    tis = services.api("GET", f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]
    by_task = {(t["task_id"], t["map_index"]): t for t in tis}
    plan, gather = by_task[("score.plan", -1)], by_task[("score.gather", -1)]
    batches = [t for t in tis if t["task_id"] == "score.mini_batch"]
    return {
        "state": state,
        "wall_s": round(wall, 1),
        "tasks_s": round(_when(gather["end_date"]) - _when(plan["start_date"]), 1),
        "nodes": len(batches),
        "plan_s": round(plan["duration"] or 0, 1),
        "mean_node_s": round(sum(t["duration"] or 0 for t in batches) / max(1, len(batches)), 1),
    }


def reused_counts(home: Path, run_id: str) -> str:
    """How many of the run's mini-batches were reused (from their run records: a mini-batch is a step run of its
    own, named as map index <mini-batch number> of score.mini_batch)."""
    runs = home / "mlpipe" / "datastore" / "_mlpipe" / "runs"
    statuses = [
        json.loads(p.read_text()).get("status") for p in runs.glob(f"{DAG_ID}.{run_id}.score.mini_batch.*/record.json")
    ]
    return f"{statuses.count('Reused')}/{len(statuses)} mini-batches reused"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--item-ms", type=float, default=5.0)
    args = parser.parse_args()
    from tests.scheduler import AirflowServices

    work = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    home = work / "home"
    steps = work / "dags" / "steps"
    steps.mkdir(parents=True)
    (steps / "score.py").write_text(ENTRY)
    rounds = calibrate(args.item_ms)
    (work / "dags" / "bench_parallel.py").write_text(DAG.format(dag_id=DAG_ID, batch=args.batch, rounds=rounds))
    items = home / "mlpipe" / "datastore" / "bench" / "items"
    write_items(items, args.items)
    print(f"{args.items} items of 1 KB, mini-batches of {args.batch}, run() ~{args.item_ms} ms per item; load {load()}")

    single = baseline(work, items, args.batch, rounds)
    print(f"baseline (one process, init() then run() per mini-batch): {single:.1f} s; load {load()}")
    services = AirflowServices(home, work / "dags", {}, components=("api-server", "scheduler", "dag-processor"))
    services.start()
    try:
        services.wait_for_dags(DAG_ID, timeout=300)
        rows = []
        first = timed_run(services, "first")
        rows.append(("first run", first, reused_counts(home, "first")))
        names = sorted(os.listdir(items))
        for label, chosen in (
            ("10 files in one mini-batch", names[len(names) // 2 : len(names) // 2 + 10]),
            ("10 files in 10 mini-batches", names[:: max(1, len(names) // 10)][:10]),
        ):
            for name in chosen:
                (items / name).write_bytes(os.urandom(1024))
            run_id = label.replace(" ", "_")
            rows.append((f"rerun, {label}", timed_run(services, run_id), reused_counts(home, run_id)))
    finally:
        services.stop()
    print(
        f"{'run':<40} {'wall s':>8} {'plan→gather s':>14} {'plan s':>7} {'nodes':>6} {'per node s':>11} "
        f"{'vs baseline':>12} {'vs first':>9}  reuse"
    )
    for label, row, reused in rows:
        print(
            f"{label:<40} {row['wall_s']:>8.1f} {row['tasks_s']:>14.1f} {row['plan_s']:>7.1f} {row['nodes']:>6} "
            f"{row['mean_node_s']:>11.1f} "
            f"{row['wall_s'] / single:>11.2f}x {row['wall_s'] / first['wall_s']:>8.2f}x  {reused} ({row['state']})"
        )
    print(f"load {load()}")


if __name__ == "__main__":
    main()
