"""A step for the pod tests: optionally reads an input, registers a new version of a dataset while it runs (as a
teammate might meanwhile), sleeps, and writes its output."""

import argparse
import os
import time
import uuid

from airflow_mlpipe import Dataset, Datastore, Run

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--sleep", type=float, default=0)
parser.add_argument("--data")
parser.add_argument("--bump")
args = parser.parse_args()
run = Run.get_context()
seen = ""
if args.data:
    files = sorted(os.listdir(args.data)) if os.path.isdir(args.data) else [os.path.basename(args.data)]
    seen = ",".join(files)
if args.bump:
    store = Datastore.get_default()
    store.write_text(f"{args.bump}/part-{uuid.uuid4().hex[:8]}.csv", "x\n1\n")
    added = Dataset.File.from_files(path=(store, f"{args.bump}/*.csv")).register(args.bump)
    print(f"registered {args.bump} version {added.version} while running")
time.sleep(args.sleep)
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "result.txt"), "w") as fh:
    fh.write(f"read: {seen}\n")
run.log("files_read", len(seen.split(",")) if seen else 0)
