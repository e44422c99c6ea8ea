"""Writes one file to its output and logs a metric (used on every compute target)."""

import os
import platform
import sys

from airflow_mlpipe import Run

out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "hello.txt"), "w") as fh:
    fh.write(f"hello from {platform.node()}\n")
Run.get_context().log("answer", 42)
print("hello step done")
