"""A careless consumer: reads its mounted input, then writes over it in place."""

import os

from airflow_mlpipe import Run

run = Run.get_context()
folder = run.input_datasets["model"]
out = run.output_datasets["seen"]
for name in sorted(os.listdir(folder)):
    with open(os.path.join(folder, name)) as src, open(os.path.join(out, name), "w") as dst:
        dst.write(src.read())
    try:
        with open(os.path.join(folder, name), "w") as fh:
            fh.write("scribbled over")
    except PermissionError:
        print(f"{name} is read-only")
