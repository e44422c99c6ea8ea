"""A step for the dedup test: counts its execution, then holds until the test opens its gate, then writes.

``MLPIPE_DEDUP_COUNTER``: a file (outside any datastore) that gets one line per execution.
``MLPIPE_DEDUP_GATES``: a folder; the step waits for the file named after it there (at most two minutes).
"""

import argparse
import os
import time

parser = argparse.ArgumentParser()
parser.add_argument("--name", required=True)
parser.add_argument("--out", required=True)
parser.add_argument("--data")
args = parser.parse_args()

with open(os.environ["MLPIPE_DEDUP_COUNTER"], "a") as counter:
    counter.write(args.name + "\n")
print(f"computing {args.name}", flush=True)

gate = os.path.join(os.environ["MLPIPE_DEDUP_GATES"], args.name)
deadline = time.monotonic() + 120
while not os.path.exists(gate) and time.monotonic() < deadline:
    time.sleep(0.05)

upstream = ""
if args.data:
    with open(os.path.join(args.data, "result.txt")) as fh:
        upstream = fh.read()
os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "result.txt"), "w") as fh:
    fh.write(upstream + args.name + "\n")
