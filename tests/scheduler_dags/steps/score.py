"""A mapped step: scores one value and writes it to its output."""

import argparse
import os

from airflow_mlpipe import Run

parser = argparse.ArgumentParser()
parser.add_argument("--x", required=True)
args = parser.parse_args()
run = Run.get_context()
run.log("x", float(args.x))
out = run.output_datasets["scores"]
with open(os.path.join(out, "score.txt"), "w") as fh:
    fh.write(f"x={args.x}\n")
