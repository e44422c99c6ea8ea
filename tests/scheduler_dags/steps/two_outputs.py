"""Writes two outputs (the second registered by the DAG); counts its executions; can fail or sleep on purpose.

``--case`` names the DAG run's case: ``fail_once`` writes part of its outputs and fails on its first try;
``fail_second`` fails on its second try; ``slow`` sleeps first (writing its pid to ``MLPIPE_TEST_PIDS`` so that
a test can see the process die).
"""

import argparse
import os
import time

from airflow_mlpipe import Run

parser = argparse.ArgumentParser()
parser.add_argument("--case", required=True)
parser.add_argument("--model", required=True)
parser.add_argument("--report", required=True)
args = parser.parse_args()
run = Run.get_context()

with open(os.environ["MLPIPE_TEST_COUNTER"], "a") as counter:
    counter.write(f"{args.case} try{run.try_number}\n")
if args.case == "slow" and run.try_number == 1:
    with open(os.path.join(os.environ["MLPIPE_TEST_PIDS"], f"{args.case}.pid"), "w") as fh:
        fh.write(f"{os.getpid()} {os.getppid()}\n")
    time.sleep(120)

os.makedirs(args.model, exist_ok=True)
os.makedirs(args.report, exist_ok=True)
with open(os.path.join(args.model, "weights.txt"), "w") as fh:
    fh.write(f"weights for {args.case}\n")
if args.case == "fail_once" and run.try_number == 1:
    raise SystemExit("failing on purpose after writing part of the outputs")
if args.case == "fail_second" and run.try_number == 2:
    raise SystemExit("failing on purpose on the second try")
with open(os.path.join(args.report, "summary.txt"), "w") as fh:
    fh.write(f"report for {args.case}\n")
run.log("case_length", len(args.case))
print(f"two outputs written for {args.case}")
