"""Benchmark of ``mlpipe gc``: how long the plan and the sweep take as the number of step runs grows.

    .venv/bin/python bench/bench_gc.py                    # local, 1,000 and 10,000 step runs
    .venv/bin/python bench/bench_gc.py --store azurite    # Azurite, 1,000 step runs (--sizes to change)

Each step run is written straight into its layout as the runner and the finish path leave it (spec, commit,
record, decision, log, three run summaries, a history entry, a reuse index entry, a one-file output with its
marker; ten snapshots shared by all), with creation times spread over 45 days, so a gc with ``--older-than 30d``
sweeps the older third. Reported: the plan's time (listings and record reads, no output file read) and the
sweep's, each per 1,000 step runs, and how the plan grows from the smallest size to the largest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_records import _put as put_objects  # noqa: E402
from benchlib import load, stores  # noqa: E402

from airflow_mlpipe.core.attempt import AttemptId  # noqa: E402
from airflow_mlpipe.gc import GcSettings, make_plan  # noqa: E402
from airflow_mlpipe.gc.sweep import sweep  # noqa: E402
from airflow_mlpipe.reuse.history import HISTORY_ROOT  # noqa: E402
from airflow_mlpipe.steps import records, run_index  # noqa: E402
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore  # noqa: E402
from airflow_mlpipe.storage.paged import newest_first_name  # noqa: E402

NOW = dt.datetime.now(dt.UTC)
SPAN = dt.timedelta(days=45)
SNAPSHOTS = [f"{n:032x}" for n in range(10)]


def _dump(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True).encode("utf-8")


def fill(store: Datastore, count: int) -> None:
    for snapshot in SNAPSHOTS:
        tree = {"format": "mlpipe-tree/1", "hash": "xxh3", "digest": snapshot, "entries": {}}
        put_objects(store, {f"_mlpipe/snapshots/{snapshot}.json": _dump(tree)})
    for start in range(0, count, 500):
        objects: dict[str, bytes] = {}
        listed: dict[str, bytes] = {}
        for i in range(start, min(count, start + 500)):
            _one_run(i, count, objects, listed)
        put_objects(store, objects, listed)


def _one_run(i: int, count: int, objects: dict[str, bytes], listed: dict[str, bytes]) -> None:
    dag, task = f"dag{i % 5}", f"task{i % 7}"
    attempt = AttemptId(dag, f"run{i}", task)
    srid = attempt.step_run_id
    created = (NOW - SPAN + SPAN * i / count).isoformat(timespec="milliseconds")
    key = f"{i:064x}"
    path = f"dataset/{srid}/model"
    manifest = {"files": 1, "bytes": 6, "digest": key[:32]}
    output = {"name": "model", "datastore": "bench", "path": path, "uri": path, "manifest": manifest}
    reuse = {"key": key, "components": {}, "policy": {}}
    common = {"step_run_id": srid, "created_at": created, "snapshot": SNAPSHOTS[i % 10], "reuse": reuse}
    declared = [{"name": "model", "datastore": "bench", "path": path}]
    spec = {**common, "format": 2, "attempt": attempt.to_dict(), "outputs": declared}
    record = {**common, **attempt.to_dict(), "status": records.COMPLETED, "outputs": [output]}
    decision = {"format": 1, "step_run_id": srid, "dag_id": dag, "run_id": attempt.run_id, "task_id": task}
    entry = {"format": 1, "key": key, "step_run_id": srid, "dag_id": dag, "task_id": task, "created_at": created}
    objects.update(
        {
            records.spec_path(srid): _dump(spec),
            records.commit_path(srid): _dump({"format": 1, "step_run_id": srid, "outputs": [output]}),
            records.record_path(srid): _dump(record),
            f"{records.run_folder(srid)}/decision.json": _dump(decision),
            records.log_path(srid, 1): b"log\n",
            f"{HISTORY_ROOT}/{dag}/{task}/{newest_first_name(created, srid)}": _dump(decision),
            f"_mlpipe/reuse/{key}.json": _dump({**entry, "outputs": [output]}),
            f"{path}/part-0.csv": b"a,b\n1\n",
            f"{path}/{COMPLETE_MARKER}": _dump(manifest),
        }
    )
    summary = _dump(run_index.summary_of(record))
    listed.update(dict.fromkeys(run_index.summary_paths(record), summary))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", choices=["local", "azurite", "moto"], default="local")
    parser.add_argument("--sizes", default=None, help="comma-separated numbers of step runs")
    args = parser.parse_args()
    sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.store == "local" else "1000")).split(",")]
    servers: dict[str, Any] = {}
    settings = GcSettings.of(older_than="30d", grace=0)
    plans: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as work:
        for label, make in stores(args.store, Path(work), servers):
            for size in sizes:
                store = make()
                start = time.perf_counter()
                fill(store, size)
                filled = time.perf_counter() - start
                plan = make_plan(store, settings)
                report = sweep(plan, store)
                plans[size] = plan.plan_seconds
                print(
                    f"{label:8} {size:>6} step runs (written in {filled:.1f} s): plan {plan.plan_seconds:.2f} s "
                    f"({plan.plan_seconds / size * 1000:.2f} s per 1,000), {len(plan.swept_runs)} swept; sweep "
                    f"{report.sweep_seconds:.2f} s ({report.sweep_seconds / max(1, len(plan.swept_runs)) * 1000:.2f} "
                    f"s per 1,000 swept), {report.deleted} items, errors {len(report.errors)}; load {load()}"
                )
    for server in servers.values():
        server.stop()
    if len(plans) > 1:
        small, large = min(plans), max(plans)
        growth = plans[large] / plans[small]
        print(f"plan growth {small} -> {large} step runs: x{growth:.1f} (step runs x{large / small:.0f})")


if __name__ == "__main__":
    main()
