"""Writes one file and logs metrics that are not finite numbers (a diverged loss), as Azure ML scripts may."""

import os
import sys

from airflow_mlpipe import Run

out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "model.txt"), "w") as fh:
    fh.write("weights\n")
run = Run.get_context()
run.log("loss", float("nan"))
run.log("grad_norm", float("inf"))
run.log("floor", float("-inf"))
run.log_list("losses", [0.5, float("nan")])
run.log_row("curve", epoch=1, loss=float("nan"))
run.log("accuracy", 0.75)
