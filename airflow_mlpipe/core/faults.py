"""Fault points for crash tests: stop a step exactly at a phase boundary with ``SIGKILL``.

``fault_point(phase, dag_id, run_id)`` does nothing unless ``MLPIPE_FAULT_DIR`` is set (one environment lookup).
When it is, and that folder holds a file named ``<dag_id>.<run_id>.<phase>``, the first process to reach the point
renames the file (so the fault fires once: the retry passes) and kills itself with ``SIGKILL``: no handler, no
``finally``, no flush, as when a worker dies or the kernel's OOM killer strikes. The crash tests name the phases in
``docs/reuse.md`` ("What a step run is").
"""

from __future__ import annotations

import os
import signal

FAULT_DIR_ENV = "MLPIPE_FAULT_DIR"


def fault_point(phase: str, dag_id: str, run_id: str) -> None:
    folder = os.environ.get(FAULT_DIR_ENV)
    if not folder:
        return
    armed = os.path.join(folder, f"{dag_id}.{run_id}.{phase}")
    try:
        os.rename(armed, armed + ".fired")
    except OSError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
