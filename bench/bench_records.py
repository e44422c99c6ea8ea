"""Benchmark of records at scale: a page of step runs, the reuse history a decision reads, and the CLI's start.

    .venv/bin/python bench/bench_records.py            # local up to 150,000 step runs, Azurite up to 10,000
    .venv/bin/python bench/bench_records.py --quick    # local and Azurite up to 1,000

1. ``runs page``: ``list_runs(limit=50)``, the newest 50 step runs of N (N = 100, 1,000, 10,000 and, locally,
   150,000), against one GET of a small object and one LIST of a 50-entry folder, timed in the same run; and the
   listing of before (``iter_records``: a listing of every run folder and a read of every record), up to 10,000.
2. ``history``: ``StepHistory.previous``, what a reuse miss reads to explain itself, with N entries in the step's
   history, against the same GET; and the history of before (one listing of the step's folder, then reads).
3. ``cli``: ``mlpipe runs show`` and a page of ``mlpipe runs list`` with the embedded default datastore, against
   ``python -c pass`` and against the same command once Airflow is imported (what each command paid before).

The stored objects are written straight into their layouts (the layouts are simple), not through the runner: the
benchmark is about reading them. Figures are medians of several rounds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from airflow_mlpipe.datasets.seal import SEAL_FIELD, seal_of  # noqa: E402
from airflow_mlpipe.reuse.history import LEGACY_ROOT, HistoryEntry, StepHistory  # noqa: E402
from airflow_mlpipe.steps import records, run_index  # noqa: E402
from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402
from airflow_mlpipe.storage.paged import newest_first_name, write_listed  # noqa: E402

BASE = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def timed(fn: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _record(i: int) -> dict[str, Any]:
    at = (BASE + dt.timedelta(minutes=7 * i)).isoformat(timespec="milliseconds")
    dag, task = f"dag{i % 200}", f"task{i % 7}"
    return {
        "step_run_id": f"{dag}.run{i}.{task}.t1.{i:012x}",
        "dag_id": dag,
        "run_id": f"run{i}",
        "task_id": task,
        "status": "Completed",
        "created_at": at,
        "started_at": at,
        "finished_at": at,
        "metrics": {"accuracy": 0.9},
    }


def fill_runs(store: Datastore, start: int, stop: int, *, with_records: bool) -> None:
    """Summaries (and, for the listing of before, records) of step runs ``start``..``stop``."""
    objects: dict[str, bytes] = {}
    summaries: dict[str, bytes] = {}
    for i in range(start, stop):
        record = _record(i)
        summary = run_index.summary_of(record)  # sealed, as write_summaries writes it
        body = json.dumps({**summary, SEAL_FIELD: seal_of(summary, run_index.SUMMARY_SALT)}, sort_keys=True).encode()
        summaries[run_index.summary_paths(record)[0]] = body
        if with_records:
            objects[records.record_path(record["step_run_id"])] = json.dumps(record).encode()
        if len(summaries) >= 1000:
            _put(store, objects, summaries)
            objects, summaries = {}, {}
    _put(store, objects, summaries)


def _put(store: Datastore, objects: dict[str, bytes], listed: dict[str, bytes] | None = None) -> None:
    if listed and store.protocol != "file":
        write_listed(store, listed)  # as the runner writes summaries (on Azure, bodies ride along with listings)
    elif listed:
        objects = {**objects, **listed}
    if not objects:
        return
    if store.protocol == "file":
        for rel, body in objects.items():
            full = store.full_path(rel)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as fh:
                fh.write(body)
    else:
        store.fs.pipe({store.full_path(k): v for k, v in objects.items()})


def fill_history(store: Datastore, dag: str, task: str, start: int, stop: int) -> None:
    new: dict[str, bytes] = {}
    old: dict[str, bytes] = {}
    for i in range(start, stop):
        at = (BASE + dt.timedelta(minutes=7 * i)).isoformat(timespec="milliseconds")
        srid = f"{dag}.run{i}.{task}"
        entry = HistoryEntry(srid, dag, f"run{i}", task, at, "k" * 64, {"source": "s"}, {}, {"hit": False})
        body = json.dumps(entry.to_dict()).encode()
        new[f"_mlpipe/reuse/history/{dag}/{task}/{newest_first_name(at, srid)}"] = body
        stamp = (BASE + dt.timedelta(minutes=7 * i)).strftime("%Y%m%dT%H%M%S000Z")
        old[f"{LEGACY_ROOT}/{dag}-old/{task}/{stamp}_{srid}.json"] = body
        if len(new) >= 2000:
            _put(store, new | old)
            new, old = {}, {}
    _put(store, new | old)


def legacy_previous(store: Datastore, folder: str) -> Any:
    """What a miss read before: one listing of the step's folder, then the newest entry."""
    names = sorted(p for p in store.list(folder) if p.endswith(".json"))
    return store.read_json(names[-1])


def legacy_runs_page(store: Datastore) -> list[dict[str, Any]]:
    """``iter_records`` before the run index: list every run folder, read every record, sort."""
    found = []
    for folder in store.list(records.RUNS_ROOT):
        try:
            found.append(store.read_json(f"{folder}/record.json"))
        except FileNotFoundError:
            continue
    found.sort(key=lambda r: str(r.get("started_at") or ""), reverse=True)
    return found[:50]


def bench_store(label: str, store: Datastore, sizes: list[int], legacy_limit: int, rounds: int) -> None:
    store.write_bytes("bench/one.json", b'{"a": 1}')
    for i in range(50):
        store.write_bytes(f"bench/fifty/{i:02d}.json", b"{}")
    store.write_json(run_index.INDEXED_MARKER, {"format": 1})
    print(f"\n## {label}\n")
    print(
        "| step runs | one GET | one LIST (50) | runs page (50) | page / GET | page / LIST | before: all records "
        "| before / page |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    done = 0
    for n in sizes:
        fill_runs(store, done, n, with_records=n <= legacy_limit)
        done = n
        get = timed(lambda: store.read_bytes("bench/one.json"), rounds * 3)
        lst = timed(lambda: store.list("bench/fifty"), rounds * 3)
        page = timed(lambda: run_index.list_runs(store, limit=50), rounds)
        rows = run_index.list_runs(store, limit=50).rows
        assert len(rows) == 50 and rows[0]["step_run_id"] == _record(n - 1)["step_run_id"], rows[0]
        if n <= legacy_limit:
            before = timed(lambda: legacy_runs_page(store), 1 if n >= 10_000 else max(1, rounds // 3))
            before_cells = f"{before * 1000:.0f} ms | {before / page:.0f}x"
        else:
            before_cells = "- | -"
        print(
            f"| {n:,} | {get * 1000:.1f} ms | {lst * 1000:.1f} ms | {page * 1000:.1f} ms | {page / get:.1f}x "
            f"| {page / lst:.1f}x | {before_cells} |",
            flush=True,
        )
    print("\n| history entries | one GET | previous() (a miss) | / GET | before: list + read | before / now |")
    print("|---:|---:|---:|---:|---:|---:|")
    done = 0
    for n in [s for s in sizes if s <= 10_000]:
        fill_history(store, "hdag", "htask", done, n)
        done = n
        history = StepHistory("hdag", "htask", store)
        get = timed(lambda: store.read_bytes("bench/one.json"), rounds * 3)
        now = timed(lambda h=history: h.previous("hdag.new.htask"), rounds)  # type: ignore[misc]
        assert history.previous("hdag.new.htask").step_run_id == f"hdag.run{n - 1}.htask"  # type: ignore[union-attr]
        before = timed(lambda: legacy_previous(store, f"{LEGACY_ROOT}/hdag-old/htask"), max(1, rounds // 2))
        print(
            f"| {n:,} | {get * 1000:.1f} ms | {now * 1000:.1f} ms | {now / get:.1f}x | {before * 1000:.0f} ms "
            f"| {before / now:.1f}x |",
            flush=True,
        )


def bench_cli(rounds: int) -> None:
    home = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW__"))},
        "AIRFLOW_HOME": str(home / "airflow"),
        "MLPIPE_HOME": str(home / "mlpipe"),
    }
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
    store = Datastore("mlpipe_default", (home / "mlpipe" / "datastore").as_uri())
    for i in range(200):
        records.write_record(_record(i), store)
    srid = _record(7)["step_run_id"]

    def run(*code: str) -> float:
        def once() -> None:
            subprocess.run([sys.executable, "-c", *code], env=env, check=True, capture_output=True)

        return timed(once, rounds)

    cli = "import sys; from airflow_mlpipe.cli.main import main; main(sys.argv[1:])"
    old = "import sys, airflow; from airflow_mlpipe.cli.main import main; main(sys.argv[1:])"
    python = run("pass")
    print("\n## CLI start (embedded default datastore, SQLite metadata DB)\n")
    print("| command | now | with Airflow imported (before) | python -c pass | now - python | before / now |")
    print("|---|---:|---:|---:|---:|---:|")
    for argv in (["runs", "show", srid, "--json"], ["runs", "list", "--limit", "50", "--json"]):
        now, before = run(cli, *argv), run(old, *argv)
        print(
            f"| mlpipe {' '.join(argv[:2])} | {now:.2f} s | {before:.2f} s | {python:.2f} s | {now - python:.2f} s "
            f"| {before / now:.1f}x |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-azure", action="store_true")
    parser.add_argument("--no-local", action="store_true")
    args = parser.parse_args()
    rounds = 5 if args.quick else 9
    print(f"# records at scale (load average {os.getloadavg()[0]:.1f})")
    with tempfile.TemporaryDirectory(prefix="bench-records-") as folder:
        if args.no_local:
            folder = ""
        local_sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000, 150_000]
        if folder:
            bench_store("local datastore", Datastore("local", Path(folder).as_uri()), local_sizes, 10_000, rounds)
    if not args.no_azure:
        from tests.emulators import Azurite

        server = Azurite()
        server.start()
        try:
            options = {"connection_string": server.connection_string}
            import fsspec

            fsspec.filesystem("abfs", **options).mkdir("bench")
            store = Datastore("azure", "abfs://bench/records", storage_options=options)
            sizes = [100, 1_000] if args.quick else [100, 1_000, 10_000]
            bench_store("Azurite", store, sizes, 1_000 if args.quick else 10_000, rounds)
        finally:
            server.stop()
    bench_cli(3 if args.quick else 5)


if __name__ == "__main__":
    main()
