"""An entry script that misbehaves as ``--fault`` asks (parallel_faults.py)."""

from __future__ import annotations

import argparse
import os
import sys
import time

FAULT = sys.argv[sys.argv.index("--fault") + 1] if "--fault" in sys.argv[:-1] else "none"


def init() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fault", default="none")
    parser.parse_known_args()
    if FAULT == "init":
        raise RuntimeError("the model file is corrupt")
    marker = os.environ.get("MLPIPE_FAULT_MARKER", "")
    if FAULT == "init_once" and os.environ.get("MLPIPE_MAP_INDEX") == "1" and not os.path.exists(marker):
        open(marker, "w").close()  # mini-batch 1 fails its node's first try only
        raise RuntimeError("a passing failure")


def run(mini_batch: list[str]) -> list[str]:
    if FAULT == "raise_first" and any(p.endswith("part-00.txt") for p in mini_batch):
        raise ValueError("cannot score part-00.txt")
    if FAULT == "timeout":
        time.sleep(30)
    if FAULT == "count":
        return ["only one"]
    return [f"{p.rsplit('/', 1)[-1]} ok" for p in mini_batch]


if FAULT == "no_run":
    del run
