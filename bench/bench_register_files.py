"""Benchmark of registering a dataset from files (``Dataset.File.from_files(...).register``) with and without the
transfer-copy check (``datasets/copy_marks.py``: a version registered from a transfer's copy writes that into the
copy's marker), at 10, 100 and 1,000 files, as ratios against the registration without the check measured in the
same run, and its growth with the number of files.

    .venv/bin/python bench/bench_register_files.py            # 10, 100 and 1,000 files, local and Azurite
    .venv/bin/python bench/bench_register_files.py --quick    # 10 and 100 files
    [--only local|azurite|moto] [--sizes 10,1000] [--reps 9]

The dataset path is ``zone/raw/copy`` (three folder levels: the check asks each once), a folder of N files whose
marker is a transfer's (so a first registration writes ``registered`` into it). Timed (medians of ``--reps``), each
repetition registering new content (one file rewritten): ``plain`` with the check switched off, ``checked`` with
it. ``ops``: datastore operations of one registration each way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_registry import counting  # noqa: E402
from benchlib import load, stores, timed  # noqa: E402

from airflow_mlpipe import Dataset  # noqa: E402
from airflow_mlpipe.datasets import copy_marks  # noqa: E402
from airflow_mlpipe.datasets import dataset as dataset_module  # noqa: E402
from airflow_mlpipe.datasets.registry import DatasetRegistry  # noqa: E402
from airflow_mlpipe.storage import resolve  # noqa: E402
from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402

FOLDER = "zone/raw/copy"


def measure(store: Datastore, files: int, reps: int) -> dict[str, Any]:
    extra = {"url": store.config.url, **dict(store.config.storage_options)}
    os.environ["AIRFLOW_CONN_BENCH"] = json.dumps({"conn_type": "mlpipe_datastore", "extra": extra})
    resolve.clear_cache()
    store = Datastore.get("bench")
    for i in range(files):
        store.write_bytes(f"{FOLDER}/part-{i:05d}.csv", f"x\n{i}\n".encode())
    store.mark_complete(FOLDER, {"transfer": {"source": "file:///elsewhere", "files": {}}})
    registry = DatasetRegistry(store)
    checked_fn = dataset_module.mark_registered_copies
    counter = iter(range(10**6))

    def register(check: bool) -> None:
        store.write_bytes(f"{FOLDER}/part-00000.csv", f"x\n{next(counter)}\n".encode())
        dataset_module.mark_registered_copies = checked_fn if check else (lambda *a, **k: [])  # type: ignore[assignment]
        try:
            Dataset.File.from_files(path=(store, FOLDER)).register("bench", registry=registry)
        finally:
            dataset_module.mark_registered_copies = checked_fn  # type: ignore[assignment]

    register(True)  # warm-up; writes ``registered`` into the marker once
    samples: dict[str, list[float]] = {"plain": [], "checked": []}
    for _ in range(reps):  # alternating, so that drift moves both alike
        samples["plain"].append(timed(lambda: register(False), 1))
        samples["checked"].append(timed(lambda: register(True), 1))
    row: dict[str, Any] = {key: statistics.median(values) for key, values in samples.items()}
    for key, check in (("ops_plain", False), ("ops_checked", True)):
        marks: Counter[str] = Counter()
        original = copy_marks.read_tagged

        def counted_read(*a: Any, marks: Counter[str] = marks, original: Any = original, **k: Any) -> Any:
            marks["read_tagged"] += 1
            return original(*a, **k)

        copy_marks.read_tagged = counted_read  # type: ignore[assignment]
        try:
            with counting() as ops:
                register(check)
        finally:
            copy_marks.read_tagged = original  # type: ignore[assignment]
        row[key] = sum(ops.values()) + sum(marks.values())
    row["files"] = files
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=["local", "azurite", "moto"])
    parser.add_argument("--sizes", help="comma-separated numbers of files")
    parser.add_argument("--reps", type=int, default=9)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [10, 100] + ([] if args.quick else [1000])
    print(f"load average at start: {load()}; sizes {sizes}; {args.reps} repetitions (medians)", flush=True)
    rows: list[dict[str, Any]] = []
    servers: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for label, make in stores(args.only, Path(tmp), servers):
                for files in sizes:
                    print(f"  {label}: {files} files...", file=sys.stderr, flush=True)
                    rows.append({**measure(make(), files, args.reps), "backend": label, "load": load()})
        finally:
            for server in servers.values():
                if server.proc is not None:
                    server.stop()
    print("\nms (median); checked as a multiple of plain (the same registration without the check):\n")
    print("| backend | files | plain | checked | ratio | ops plain / checked | load |")
    print("|---|---:|---:|---:|---:|---|---|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['files']:,} | {r['plain']:.1f} | {r['checked']:.1f} | "
            f"{r['checked'] / r['plain']:.2f}x | {r['ops_plain']} / {r['ops_checked']} | {r['load']} |"
        )
    print("\ngrowth (time at N files / time at the smallest size):\n")
    print("| backend | files | plain | checked |")
    print("|---|---:|---:|---:|")
    for backend in dict.fromkeys(r["backend"] for r in rows):
        mine = [r for r in rows if r["backend"] == backend]
        for r in mine[1:]:
            print(
                f"| {backend} | {mine[0]['files']:,} → {r['files']:,} | {r['plain'] / mine[0]['plain']:.2f}x | "
                f"{r['checked'] / mine[0]['checked']:.2f}x |"
            )
    print(f"\nload average at end: {load()}")


if __name__ == "__main__":
    main()
