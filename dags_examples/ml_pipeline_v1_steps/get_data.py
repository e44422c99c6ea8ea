"""Step 1: put the raw iris table into the step's output (in real life the data is already in a datastore)."""

import argparse
import os
import shutil

from azureml.core import Run

parser = argparse.ArgumentParser()
parser.add_argument("--output", required=True)
args = parser.parse_args()

run = Run.get_context()
os.makedirs(args.output, exist_ok=True)
shutil.copyfile(os.path.join("data", "iris.csv"), os.path.join(args.output, "iris.csv"))
with open(os.path.join(args.output, "iris.csv")) as fh:
    run.log("rows", sum(1 for _ in fh) - 1)
