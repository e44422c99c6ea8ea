"""Writes part of its output, then fails: nothing may be committed or registered."""

import os
import sys

from airflow_mlpipe import Run

out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "half.csv"), "w") as fh:
    fh.write("a\n1\n")
Run.get_context().log("progress", 0.5)
print("about to fail")
sys.exit(3)
