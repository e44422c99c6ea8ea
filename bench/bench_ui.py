"""Benchmark of the ML pages: each page's answer time with 100, 1,000 and 10,000 step runs (and 10, 100 and 1,000
versions of a dataset), as a ratio of one GET of a small object on the same store, and its growth.

    .venv/bin/python bench/bench_ui.py                 # 100, 1,000 and 10,000 step runs, local and Azurite
    .venv/bin/python bench/bench_ui.py --quick         # 100 and 1,000
    [--only local|azurite] [--sizes 100,10000] [--reps 15]

``runs, first view`` empties the server's memory of final summaries before each request (``ui/cache.py``);
the other pages are timed as viewed again. The records are written directly (a record, its three summaries in
the run index, a log; one dataset version per ten step runs), growing in place from the smallest size to the
largest. Each page is requested through the plugin's FastAPI app in this process (``TestClient``), with
Airflow's login and DAG permission answered yes (their cost is Airflow's, the same for every page and size);
medians of ``--reps``. Azurite is started here (``tests/emulators.py``). The machine is shared: the load
average is printed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-ui-airflow-"))

from benchlib import load, stores, timed  # noqa: E402

from airflow_mlpipe.core.attempt import AttemptId  # noqa: E402
from airflow_mlpipe.datasets.manifest import Manifest  # noqa: E402
from airflow_mlpipe.datasets.registry import LATEST_POINTER, REGISTRY_ROOT  # noqa: E402
from airflow_mlpipe.datasets.seal import sealed_bytes  # noqa: E402
from airflow_mlpipe.steps import records  # noqa: E402
from airflow_mlpipe.steps.run_index import INDEXED_MARKER, summary_of, summary_paths  # noqa: E402
from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402
from airflow_mlpipe.storage.paged import write_listed  # noqa: E402

DAGS = 20
MEASURED_DAG = "bench_dag_19"  # the DAG of the newest step run at every size (n = 99, 999, 9,999)
DATASET = "bench_model"
PAGES = (
    "runs, first view",
    "runs",
    "runs of a DAG",
    "runs of a task",
    "runs, status filter",
    "step run",
    "step run JSON",
    "compare",
    "log download",
    "datasets",
    "dataset (latest)",
    "dataset (a version)",
)


def record_of(n: int, reused_from: str | None = None) -> dict[str, Any]:
    dag_id, task_id = f"bench_dag_{n % DAGS}", ("prep", "train", "score")[n % 3]
    step_run_id = AttemptId(dag_id, f"run-{n}", task_id).step_run_id
    moment = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n)).isoformat(timespec="milliseconds")
    loss = [round(1 / (e + 1), 4) for e in range(50)]
    return {
        "step_run_id": step_run_id,
        "dag_id": dag_id,
        "run_id": f"run-{n}",
        "task_id": task_id,
        "map_index": -1,
        "try_number": 1,
        "created_at": moment,
        "started_at": moment,
        "finished_at": moment,
        "status": records.REUSED if reused_from else (records.FAILED if n % 97 == 0 else records.COMPLETED),
        "reused_from": reused_from,
        "arguments": ["--lr", {"kind": "param", "name": "lr", "value": 0.1}],
        "inputs": [{"name": "data", "mode": "download", "dataset": {"kind": "file", "name": DATASET, "version": 1}}],
        "outputs": [
            {
                "name": "model",
                "datastore": "bench",
                "path": f"dataset/{step_run_id}/model",
                "uri": f"bench://dataset/{step_run_id}/model",
                "manifest": {"files": 3, "bytes": 4096, "digest": "d"},
                "registered": None,
            }
        ],
        "metrics": {"accuracy": 0.9, "loss": loss, "curve": {"epoch": list(range(50)), "loss": loss}},
        "metric_log": [{"name": "loss", "kind": "scalar", "value": v} for v in loss]
        + [{"name": "curve", "kind": "row", "value": {"epoch": e, "loss": v}} for e, v in enumerate(loss)]
        + [{"name": "accuracy", "kind": "scalar", "value": 0.9}],
        "reuse": {"key": uuid.uuid5(uuid.NAMESPACE_URL, step_run_id).hex, "components": {"script": "train.py"}},
        "logs": [records.log_path(step_run_id, 1)],
        "artifacts": [],
    }


def version_of(v: int) -> dict[str, Any]:
    return {
        "format": 1,
        "name": DATASET,
        "version": v,
        "kind": "file",
        "definition": {"paths": [{"datastore": "bench", "path": f"models/v{v}"}], "options": {}},
        "manifest": Manifest.from_dict(
            {
                "entries": [
                    {
                        "datastore": "bench",
                        "kind": "xxh3",
                        "path": f"models/v{v}/model.json",
                        "size": 100 + v,
                        "value": f"{v:016x}",
                    }
                ]
            }
        ).to_dict(),
        "description": "",
        "tags": {},
        "created_at": "2026-01-01T00:00:00.000+00:00",
        "lineage": {"step_run_id": AttemptId("bench_dag_1", f"run-{v}", "train").step_run_id, "dag_id": "bench_dag_1"},
    }


def fill(store: Datastore, start: int, stop: int) -> None:
    """Step runs ``start``..``stop - 1`` (every 10th reusing the one before it) and their dataset versions.

    On an object store a listing request costs the same whatever lies outside its prefix, so only what the timed
    pages list or read is written there: the all-runs index in full, the per-DAG and per-task indexes of the DAG
    timed (``MEASURED_DAG``), and the records and logs of the last ten step runs (writing 40,000 objects to a
    shared Azurite would take most of an hour)."""
    light = not store.is_local
    objects: dict[str, bytes] = {}
    listed: dict[str, bytes] = {}  # summaries, written as the runner writes them (``paged.write_listed``)
    for n in range(start, stop):
        earlier = record_of(n - 1)["step_run_id"] if n % 10 == 5 else None
        record = record_of(n, earlier)
        summary = json.dumps(summary_of(record)).encode()
        paths = summary_paths(record)
        listed.update(dict.fromkeys(paths if not light or record["dag_id"] == MEASURED_DAG else paths[:1], summary))
        if not light or n >= stop - 10:
            objects[records.record_path(record["step_run_id"])] = json.dumps(record).encode()
            objects[records.log_path(record["step_run_id"], 1)] = b"a log line\n" * 20
    for v in range(start // 10 + 1, stop // 10 + 1):
        objects[f"{REGISTRY_ROOT}/{DATASET}/{v}.json"] = sealed_bytes(version_of(v))
    objects[f"{REGISTRY_ROOT}/{DATASET}/{LATEST_POINTER}"] = json.dumps(
        {"format": 1, "name": DATASET, "version": stop // 10}
    ).encode()
    objects[INDEXED_MARKER] = json.dumps({"format": 1, "indexed_at": "2026-01-01", "records": 0}).encode()
    if store.is_local:
        objects.update(listed)
        for path, data in objects.items():
            full = Path(store.full_path(path))
            full.parent.mkdir(parents=True, exist_ok=True)
            full.write_bytes(data)
    else:
        items = list(objects.items())
        for i in range(0, len(items), 500):
            store.fs.pipe({store.full_path(p): d for p, d in items[i : i + 500]}, batch_size=64)
        summaries = list(listed.items())
        for i in range(0, len(summaries), 64):
            write_listed(store, dict(summaries[i : i + 64]))


def client_for(store: Datastore) -> Any:
    from airflow.api_fastapi.core_api.security import get_user
    from fastapi.testclient import TestClient

    from airflow_mlpipe.ui import access
    from airflow_mlpipe.ui import app as ui_app

    ui_app._store = lambda: store  # type: ignore[assignment]
    access.can_read_dag = lambda user, dag_id: True  # type: ignore[assignment]
    access.require_assets = lambda user: None  # type: ignore[assignment]
    ui_app.require_assets = access.require_assets  # type: ignore[assignment]
    app = ui_app.create_app()
    app.dependency_overrides[get_user] = lambda: object()
    return TestClient(app)


def measure(store: Datastore, count: int, reps: int) -> dict[str, Any]:
    client = client_for(store)
    newest = record_of(count - 1)
    reused = record_of(count - 5 - (count - 5) % 10 + 5, record_of(0)["step_run_id"])
    other = record_of(count - 4)
    sample = summary_paths(newest)[0]
    srid = quote(reused["step_run_id"], safe="")
    urls = {
        "runs": "/runs",
        "runs of a DAG": f"/runs?dag_id={newest['dag_id']}",
        "runs of a task": f"/runs?dag_id={newest['dag_id']}&task_id={newest['task_id']}",
        "runs, status filter": "/runs?status=Failed",
        "step run": f"/runs/{srid}",
        "step run JSON": f"/api/runs/{srid}",
        "compare": f"/compare?ids={quote(newest['step_run_id'], safe='')}&ids={quote(other['step_run_id'], safe='')}",
        "log download": f"/runs/{quote(newest['step_run_id'], safe='')}/files/logs/try-1.txt",
        "datasets": "/datasets",
        "dataset (latest)": f"/datasets/{DATASET}",
        "dataset (a version)": f"/datasets/{DATASET}?version={max(count // 20, 1)}",
    }
    row: dict[str, Any] = {"count": count, "versions": count // 10}
    row["get"] = timed(lambda: store.read_bytes(sample), reps)
    from airflow_mlpipe.ui import cache

    def first_view() -> None:  # the summaries not yet in the server's memory
        cache.clear()
        client.get("/runs")

    row["runs, first view"] = timed(first_view, reps)
    for label, url in urls.items():
        answer = client.get(url)
        assert answer.status_code == 200, (label, url, answer.status_code, answer.text[:300])

        def get(url: str = url) -> None:
            client.get(url)

        row[label] = timed(get, reps)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["local", "azurite"])
    parser.add_argument("--sizes", help="comma-separated numbers of step runs")
    parser.add_argument("--reps", type=int, default=15)
    args = parser.parse_args()
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("http.access").setLevel(logging.WARNING)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [100, 1000] + ([] if args.quick else [10_000])
    print(f"load average at start: {load()}; sizes {sizes}; {args.reps} repetitions (medians)", flush=True)
    rows: list[dict[str, Any]] = []
    servers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for label, make in stores(args.only, Path(tmp), servers):
                store, done = make(), 0
                for count in sizes:
                    print(f"  {label}: filling to {count} step runs...", file=sys.stderr, flush=True)
                    fill(store, done, count)
                    done = count
                    rows.append({**measure(store, count, args.reps), "backend": label, "load": load()})
                    print(json.dumps(rows[-1]), flush=True)  # each size as it is measured
        finally:
            for server in servers.values():
                if server.proc is not None:
                    server.stop()
    report(rows)
    print(f"\nload average at end: {load()}")


def report(rows: list[dict[str, Any]]) -> None:
    print("\nms (median), and in brackets as a multiple of one GET of a small object on the same store:\n")
    print("| backend | step runs | versions | GET | " + " | ".join(PAGES) + " | load |")
    print("|---|---:|---:|---:|" + "---:|" * len(PAGES) + "---|")
    for r in rows:
        cells = " | ".join(f"{r[p]:.1f} ({r[p] / r['get']:.0f}x)" for p in PAGES)
        print(f"| {r['backend']} | {r['count']:,} | {r['versions']:,} | {r['get']:.2f} | {cells} | {r['load']} |")
    print("\ngrowth (time at N step runs / time at the smallest size; 1.0x is flat):\n")
    print("| backend | step runs | " + " | ".join(PAGES) + " |")
    print("|---|---:|" + "---:|" * len(PAGES))
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = [r for r in rows if r["backend"] == backend]
        base = mine[0]
        for r in mine[1:]:
            cells = " | ".join(f"{r[p] / base[p]:.2f}x" for p in PAGES)
            print(f"| {backend} | {base['count']:,} → {r['count']:,} | {cells} |")
    slow = [(r["backend"], r["count"], p, r[p]) for r in rows for p in PAGES if r[p] >= 300]
    print("\nevery page under 300 ms" if not slow else f"\npages at 300 ms or more: {slow}")


if __name__ == "__main__":
    main()
