"""A step that must run every time (allow_reuse=False)."""

import os

with open(os.environ["MLPIPE_REUSE_COUNTER"], "a") as counter:
    counter.write("audit\n")
