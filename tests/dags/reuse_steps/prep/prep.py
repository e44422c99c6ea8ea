"""Prepare: concatenate the raw csv files and count their rows."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--raw", required=True)
parser.add_argument("--out", required=True)
args = parser.parse_args()
with open(os.environ["MLPIPE_REUSE_COUNTER"], "a") as counter:
    counter.write("prep\n")

files = [args.raw] if os.path.isfile(args.raw) else sorted(os.path.join(args.raw, f) for f in os.listdir(args.raw))
rows = []
for name in files:
    with open(name) as fh:
        rows += [line for line in fh.read().splitlines()[1:] if line]
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "rows.csv"), "w") as fh:
    fh.write("x\n" + "\n".join(rows) + "\n")
print(f"prepared {len(rows)} rows")
