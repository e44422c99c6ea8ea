"""Any store to any store through fsspec's file objects, on threads: the path for stores without async I/O.

Each file streams in blocks of ``chunk_size`` (bounded memory). Small files go in one ``pipe_file``, which every
store makes visible all at once; a large file's writer is discarded on failure, never closed (closing an fsspec
writer commits what it holds, which would leave a truncated file that looks whole).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import IO, Any

from airflow_mlpipe.storage.copy_common import CopyContext, local_target, make_local_parents, on_side, run_in_threads
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer_plan import FileTask


def _open_read(store: Datastore, path: str, block: int) -> IO[bytes]:
    if store.protocol == "file":
        return open(path, "rb")
    return store.fs.open(path, "rb", block_size=block)


def _pump(
    task: FileTask, reader: IO[bytes], write: Callable[[bytes], Any], block: int, on_bytes: Callable[[int], None]
) -> None:
    while True:
        with on_side(task, "source"):
            data = reader.read(block)
        if not data:
            return
        with on_side(task, "destination"):
            write(data)
        on_bytes(len(data))


def _discard(writer: Any) -> None:
    with contextlib.suppress(Exception):
        writer.discard()
    # Marked closed so that neither ``close`` nor the finaliser commits the partial content.
    with contextlib.suppress(Exception):
        writer.closed = True


def stream_file(
    src: Datastore, dst: Datastore, task: FileTask, ctx: CopyContext, on_bytes: Callable[[int], None]
) -> None:
    """Copy one file from ``src`` to ``dst`` in blocks; raises ``CopyFailure`` naming the side that failed."""
    block = ctx.chunk_size
    if dst.protocol == "file":
        with on_side(task, "destination"), local_target(task, ctx.atomic) as target:
            with on_side(task, "source"):
                reader = _open_read(src, task.src, block)
            with reader, open(target, "wb") as out:
                _pump(task, reader, out.write, block, on_bytes)
        return
    with on_side(task, "source"):
        reader = _open_read(src, task.src, block)
    with reader:
        # A memory store holds the whole file anyway; elsewhere one request for a small file.
        if task.size <= block or dst.protocol == "memory":
            with on_side(task, "source"):
                data = reader.read()
            with on_side(task, "destination"):
                dst.fs.pipe_file(task.dst, data)
            return
        with on_side(task, "destination"):
            writer = dst.fs.open(task.dst, "wb", block_size=block)
        try:
            _pump(task, reader, writer.write, block, on_bytes)
            with on_side(task, "destination"):
                writer.close()
        except BaseException:
            _discard(writer)
            raise


class GenericCopier:
    method = "stream"

    def __init__(self, src: Datastore, dst: Datastore) -> None:
        self.src = src
        self.dst = dst

    def run(self, tasks: Sequence[FileTask], ctx: CopyContext) -> None:
        if self.dst.protocol == "file":
            make_local_parents(tasks)
        run_in_threads(tasks, ctx, lambda task, on_bytes: stream_file(self.src, self.dst, task, ctx, on_bytes))


class SyncServerCopier:
    """Within one store that has no async API (memory, for one): the filesystem's own ``cp_file``."""

    method = "server-side"

    def __init__(self, store: Datastore) -> None:
        self.store = store

    def run(self, tasks: Sequence[FileTask], ctx: CopyContext) -> None:
        def copy_one(task: FileTask, on_bytes: Callable[[int], None]) -> None:
            with on_side(task, "destination"):
                self.store.fs.cp_file(task.src, task.dst)

        run_in_threads(tasks, ctx, copy_one)
