"""What every copier shares: the job's settings, the error that says which side failed, local file targets."""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Literal

from airflow_mlpipe.storage.listing import TEMP_SUFFIX
from airflow_mlpipe.storage.progress import ProgressTracker
from airflow_mlpipe.storage.retry import RetryPolicy, call_with_retry
from airflow_mlpipe.storage.transfer_plan import FileTask

Side = Literal["source", "destination"]


class CopyFailure(Exception):
    """A file's copy failed: which file, on which side, and why (the cause is chained for retry decisions)."""

    def __init__(self, task: FileTask, side: Side, cause: BaseException) -> None:
        super().__init__(f"{side} side of {task.rel or task.src!r}: {type(cause).__name__}: {cause}")
        self.task = task
        self.side = side
        self.cause = cause


@contextlib.contextmanager
def on_side(task: FileTask, side: Side) -> Iterator[None]:
    """Attribute any error raised inside to ``side`` of ``task`` (the first attribution wins)."""
    try:
        yield
    except CopyFailure:
        raise
    except Exception as exc:
        raise CopyFailure(task, side, exc) from exc


@dataclass
class CopyContext:
    """Settings and shared state of one transfer's copy phase.

    ``atomic``: write each local file under a temporary name and rename it (single-file transfers, where no
    completion marker guards readers). ``md5s`` collects MD5s the engine computed (large Azure uploads), for
    verification.
    ``cancel`` stops workers from starting new files once one has failed for good.
    """

    tracker: ProgressTracker
    retry: RetryPolicy
    workers: int
    chunk_size: int
    block_parallel: int
    memory_limit: int
    atomic: bool
    md5s: dict[str, str] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)


def temp_name(path: str) -> str:
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")


def make_local_parents(tasks: Sequence[FileTask]) -> None:
    for folder in sorted({os.path.dirname(t.dst) for t in tasks}):
        os.makedirs(folder, exist_ok=True)


@contextlib.contextmanager
def local_target(task: FileTask, atomic: bool) -> Iterator[str]:
    """The local path to write ``task`` into; renamed into place on success, removed on failure.

    An existing destination file is unlinked rather than truncated: it may be a hard link into another copy.
    """
    target = temp_name(task.dst) if atomic else task.dst
    if task.replace and not atomic:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(task.dst)
    try:
        yield target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise
    if atomic:
        os.replace(target, task.dst)


# Copy one file, raising CopyFailure on error.
CopyOne = Callable[[FileTask], None]


def _thread_batches(tasks: Sequence[FileTask], chunk_size: int) -> list[list[FileTask]]:
    """Large files one a batch (started first, so they do not finish last); small files in runs of 256.

    One pool task per small file would spend more on scheduling than on copying.
    """
    large = [[t] for t in sorted((t for t in tasks if t.size > chunk_size), key=lambda t: -t.size)]
    small = [t for t in tasks if t.size <= chunk_size]
    return large + [small[i : i + 256] for i in range(0, len(small), 256)]


# Copy a run of small files in one go, returning those that failed (each is then copied alone, with retries).
CopyMany = Callable[[list[FileTask]], list[FileTask]]


def run_in_threads(
    tasks: Sequence[FileTask], ctx: CopyContext, copy_one: CopyOne, copy_many: CopyMany | None = None
) -> None:
    """Copy ``tasks`` on ``ctx.workers`` threads, each file with retries; the first final failure stops all.
    With ``copy_many``, a run of small files goes first through it, and only the files it failed one by one."""

    def work(batch: list[FileTask]) -> None:
        if copy_many is not None and len(batch) > 1 and not ctx.cancel.is_set():
            failed = copy_many(batch)
            done = len(batch) - len(failed)
            ctx.tracker.advance(files=done, nbytes=sum(t.size for t in batch) - sum(t.size for t in failed))
            batch = failed
        for task in batch:
            if ctx.cancel.is_set():
                return
            call_with_retry(functools.partial(copy_one, task), ctx.retry, ctx.tracker.retried)
            ctx.tracker.advance(files=1, nbytes=task.size)

    with ThreadPoolExecutor(max_workers=max(1, ctx.workers), thread_name_prefix="mlpipe-copy") as pool:
        futures = [pool.submit(work, batch) for batch in _thread_batches(tasks, ctx.chunk_size)]
        try:
            for future in as_completed(futures):
                future.result()
        except BaseException:
            ctx.cancel.set()
            raise
