"""Worker processes for hashing: how many, and how they start.

Why ``fork``: a worker starts in about 10 ms and needs no re-import of the caller's ``__main__`` (``spawn`` and
``forkserver`` take 30-100 ms and re-run it). The workers only stat, open, read and hash files and use their own
SQLite connections; they never touch a lock another thread of the parent could hold. Where ``fork`` is missing, or
in a daemonic process (which may not have children), one process does the work.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

MAX_WORKERS = 8

# What a pool raises when it cannot start or loses a worker; the callers then do the work themselves.
# AssertionError: multiprocessing's answer to a daemonic process that tries to start one.
POOL_ERRORS = (BrokenProcessPool, OSError, AssertionError)


def fork_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of forked processes (see the module docstring for why fork)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))


def worker_count(requested: int | None) -> int:
    """How many processes to hash with: ``requested``, else one per idle CPU (at most 8); 1 where forking is out.

    Idle CPUs come from the one-minute load average (as ``make -l`` does): on a machine already busy with other
    work, more processes only add start-up and hand-over costs to a job that runs no faster.
    """
    if "fork" not in multiprocessing.get_all_start_methods() or multiprocessing.current_process().daemon:
        return 1
    if requested is not None:
        return max(1, requested)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        idle = cpus - round(os.getloadavg()[0]) + 1  # + 1: this process is part of the load
    except OSError:  # no load average on this platform
        idle = cpus
    return max(1, min(cpus, idle, MAX_WORKERS))
