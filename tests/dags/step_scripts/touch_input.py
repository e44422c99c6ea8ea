"""Reads its input ``data`` and then tries to change it in place (a careless step): the copy it was handed may
change, the producer's committed files must not. Writes what it read to its output."""

import os
import sys

from airflow_mlpipe import Run

run = Run.get_context()
given = run.input_datasets["data"]  # a folder, or the file itself for a dataset of one file
folder, names = (given, sorted(os.listdir(given))) if os.path.isdir(given) else os.path.split(given)
names = [names] if isinstance(names, str) else names
out = sys.argv[sys.argv.index("--out") + 1]
with open(os.path.join(out, "read.txt"), "w") as fh:
    for name in names:
        with open(os.path.join(folder, name)) as src:
            fh.write(f"{name}={src.read()}")
for name in names:
    try:
        with open(os.path.join(folder, name), "w") as target:
            target.write("scribbled over")
    except PermissionError:
        print(f"{name} is read-only")
