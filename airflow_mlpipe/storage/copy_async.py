"""Copies that talk to object stores, on fsspec's event loop: many files in flight at once.

One request per small file is the floor, so throughput comes from keeping enough of them in flight (a few dozen:
far more, as fsspec's default of 1/8 of the open-file limit, only queues them up and costs CPU). Large files go
block-parallel (``copy_blocks``). Memory is bounded by a byte budget that every file in flight holds a share of.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

from airflow_mlpipe.storage.copy_blocks import ReadRange, block_sink, copy_in_blocks, first_error
from airflow_mlpipe.storage.copy_common import (
    CopyContext,
    FileAccounting,
    local_target,
    make_local_parents,
    on_side,
)
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.retry import call_with_retry_async
from airflow_mlpipe.storage.transfer_plan import FileTask

Mode = Literal["upload", "download", "stream", "server"]
_METHODS: dict[Mode, str] = {"upload": "upload", "download": "download", "stream": "stream", "server": "server-side"}


class ByteBudget:
    """At most ``limit`` bytes held by the files in flight (a file needing more than all waits for all)."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._free = self._limit
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def hold(self, nbytes: int) -> AsyncIterator[None]:
        nbytes = min(nbytes, self._limit)
        async with self._changed:
            await self._changed.wait_for(lambda: self._free >= nbytes)
            self._free -= nbytes
        try:
            yield
        finally:
            async with self._changed:
                self._free += nbytes
                self._changed.notify_all()


def _protocol(fs: Any) -> str:
    return fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]


def _download_options(fs: Any, ctx: CopyContext) -> dict[str, Any]:
    """Ranged, parallel downloads with a bounded number of blocks in flight (adlfs' default is unbounded)."""
    protocol = _protocol(fs)
    if protocol == "s3":
        return {"chunksize": ctx.chunk_size, "max_concurrency": ctx.block_parallel}
    if protocol == "abfs":
        return {"max_concurrency": ctx.block_parallel}
    return {}


async def _azure_server_copy(fs: Any, src: str, dst: str) -> None:
    """Copy Blob within one account, waiting while the service reports the copy pending (large blobs)."""
    src_container, src_blob, _ = fs.split_path(src)
    dst_container, dst_blob, _ = fs.split_path(dst)
    source_url = fs.service_client.get_blob_client(src_container, src_blob).url
    async with fs.service_client.get_blob_client(dst_container, dst_blob) as client:
        status = (await client.start_copy_from_url(source_url)).get("copy_status")
        delay = 0.05
        while status == "pending":
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            status = (await client.get_blob_properties()).copy.status
    if status != "success":
        raise OSError(f"server-side copy of {src!r} ended with status {status!r}")
    fs.invalidate_cache(dst)


class AsyncCopier:
    """``upload`` local to store, ``download`` store to local, ``stream`` store to another store,
    ``server`` within one store (the store copies; no byte passes through this process)."""

    def __init__(self, src: Datastore, dst: Datastore, mode: Mode) -> None:
        self.src = src
        self.dst = dst
        self.mode = mode
        self.method = _METHODS[mode]

    def run(self, tasks: Sequence[FileTask], ctx: CopyContext) -> None:
        from fsspec.asyn import sync

        if self.mode == "download":
            make_local_parents(tasks)
        remote = self.src if self.mode == "download" else self.dst
        sync(remote.fs.loop, self._run_all, tasks, ctx)

    async def _run_all(self, tasks: Sequence[FileTask], ctx: CopyContext) -> None:
        budget = ByteBudget(ctx.memory_limit)
        # Largest first: they take longest, and must not be the last ones running alone.
        pending = iter(sorted(tasks, key=lambda t: -t.size))

        async def worker() -> None:
            for task in pending:
                if ctx.cancel.is_set():
                    return
                async with budget.hold(self._memory_cost(task, ctx)):
                    await self._copy_with_retry(task, ctx)

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(max(1, min(ctx.workers, len(tasks)))):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            ctx.cancel.set()
            raise first_error(group_error)  # noqa: B904 (the error keeps its own cause chain)

    def _memory_cost(self, task: FileTask, ctx: CopyContext) -> int:
        if self.mode == "server":
            return 0
        if task.size <= ctx.chunk_size:
            return task.size
        return ctx.chunk_size * ctx.block_parallel

    async def _copy_with_retry(self, task: FileTask, ctx: CopyContext) -> None:
        account = FileAccounting(task, ctx)

        async def attempt() -> None:
            account.begin_attempt()
            md5 = await self._copy_file(task, ctx, account.on_bytes)
            if md5:
                ctx.md5s[task.rel] = md5

        await call_with_retry_async(attempt, ctx.retry, ctx.tracker.retried)
        account.settle()

    async def _copy_file(self, task: FileTask, ctx: CopyContext, on_bytes: Callable[[int], None]) -> str | None:
        if self.mode == "server":
            with on_side(task, "destination"):
                if _protocol(self.dst.fs) == "abfs":
                    await _azure_server_copy(self.dst.fs, task.src, task.dst)
                else:
                    await self.dst.fs._cp_file(task.src, task.dst)
            return None
        if self.mode == "download":
            await self._download(task, ctx)
            return None
        small = task.size <= ctx.chunk_size
        if small:
            data = await self._read_whole(task)
            with on_side(task, "destination"):
                await self.dst.fs._pipe_file(task.dst, data)
            return None
        return await self._copy_large(task, ctx, on_bytes)

    async def _read_whole(self, task: FileTask) -> bytes:
        with on_side(task, "source"):
            if self.mode == "upload":
                return await asyncio.to_thread(_read_local, task.src)
            return bytes(await self.src.fs._cat_file(task.src))

    async def _download(self, task: FileTask, ctx: CopyContext) -> None:
        with on_side(task, "destination"), local_target(task, ctx.atomic) as target:
            if task.size <= ctx.chunk_size:
                data = await self._read_whole(task)
                await asyncio.to_thread(_write_local, target, data)
            else:
                with on_side(task, "source"):
                    await self.src.fs._get_file(task.src, target, **_download_options(self.src.fs, ctx))

    async def _copy_large(self, task: FileTask, ctx: CopyContext, on_bytes: Callable[[int], None]) -> str | None:
        sink = block_sink(self.dst.fs, task.dst)
        if sink is None:
            # A store without block uploads: its own streaming writer, on a thread (its API is blocking).
            from airflow_mlpipe.storage.copy_generic import stream_file

            await asyncio.to_thread(stream_file, self.src, self.dst, task, ctx, on_bytes)
            return None
        if self.mode == "stream":
            fs = self.src.fs
            return await copy_in_blocks(task, _remote_reader(fs, task.src), sink, ctx=ctx, on_bytes=on_bytes)
        with on_side(task, "source"):
            fd = os.open(task.src, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return await copy_in_blocks(task, _local_reader(fd), sink, ctx=ctx, on_bytes=on_bytes)
        finally:
            os.close(fd)


# Local file I/O goes to threads: a read that misses the page cache (or a write held up by writeback) takes
# milliseconds, and on the event loop it would stall every request in flight.
def _read_local(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _write_local(path: str, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)


def _remote_reader(fs: Any, path: str) -> ReadRange:
    return lambda start, end: fs._cat_file(path, start=start, end=end)


def _local_reader(fd: int) -> ReadRange:
    return lambda start, end: asyncio.to_thread(os.pread, fd, end - start, start)
