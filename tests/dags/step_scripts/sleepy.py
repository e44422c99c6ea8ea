"""Writes part of its output, then sleeps until it is killed."""

import os
import sys
import time

out = sys.argv[sys.argv.index("--out") + 1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "partial.bin"), "wb") as fh:
    fh.write(b"x" * 1000)
print("written, now sleeping", flush=True)
time.sleep(120)
