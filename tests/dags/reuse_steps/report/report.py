"""Report: the model next to the number of rows it was trained on."""

import argparse
import json
import os

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--data", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
with open(os.environ["MLPIPE_REUSE_COUNTER"], "a") as counter:
    counter.write("report\n")

with open(os.path.join(args.model, "model.json")) as fh:
    model = json.load(fh)
with open(os.path.join(args.data, "rows.csv")) as fh:
    rows = len(fh.read().splitlines()) - 1
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "report.json"), "w") as fh:
    json.dump({"weight": model["weight"], "rows": rows}, fh)
