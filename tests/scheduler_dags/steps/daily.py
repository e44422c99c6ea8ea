"""A daily step: counts its executions, sleeps if asked, and writes what day it processed."""

import argparse
import os
import time

from airflow_mlpipe import Run

parser = argparse.ArgumentParser()
parser.add_argument("--day", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--sleep", type=float, default=0)
parser.add_argument("--epochs", type=int, default=1)
args = parser.parse_args()
run = Run.get_context()
with open(os.environ["MLPIPE_TEST_COUNTER"], "a") as counter:
    counter.write(f"{run.task_id}:{args.day} try{run.try_number}\n")
time.sleep(args.sleep)
with open(os.path.join(args.out, "day.txt"), "w") as fh:
    fh.write(f"{args.day} {os.environ['MLPIPE_LOGICAL_DATE']}\n")
