"""Each file is copied by one call of the stores' own libraries; the engine only schedules and accounts.

The calls are those the libraries' batch copies make per file: ``shutil.copy2`` (local to local, the kernel
copies and the mtime is kept), ``put_file`` (upload), ``get_file`` (download), ``cp_file`` (within one store:
the store copies; on S3 runs of small files as coroutines on s3fs's loop, as its own batch ``copy`` does), and
between two stores ``get_file`` into a temporary file then ``put_file``, as
``fsspec.generic`` does. Measured against those batch copies, tuned, a copy engine of our own (kernel copies,
block-parallel uploads, streaming between stores) was nowhere 1.3x faster, so it was dropped
(docs/bench-transfer.md). What the engine adds around the calls is not speed: files in flight and the memory
large files hold are bounded, each failed file is retried, an error names the side that failed, and progress
is counted; an Azure upload too large for one request gets the Content-MD5 that one request would have had.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from airflow_mlpipe.storage.copy_common import (
    CopyContext,
    CopyFailure,
    CopyMany,
    Side,
    local_target,
    make_local_parents,
    on_side,
    run_in_threads,
)
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer_plan import FileTask

_S3_MIN_PART = 5 * 1024 * 1024


def _protocol(store: Datastore) -> str:
    protocol = store.fs.protocol
    return protocol if isinstance(protocol, str) else protocol[0]


@contextlib.contextmanager
def _library_call(task: FileTask, side: Side, other_path: str) -> Iterator[None]:
    """Errors of a call that reads one side and writes the other are ``side``'s, except an error about the file
    ``other_path`` (its path in the error), which lies on the other side."""
    other: Side = "destination" if side == "source" else "source"
    try:
        yield
    except CopyFailure:
        raise
    except Exception as exc:
        about_other = isinstance(exc, OSError) and exc.filename == other_path
        raise CopyFailure(task, other if about_other else side, exc) from exc


def _block_options(store: Datastore, ctx: CopyContext) -> dict[str, Any]:
    """Blocks of one large file in flight (and their size, where the library takes it)."""
    protocol = _protocol(store)
    if protocol == "s3":
        return {"chunksize": max(ctx.chunk_size, _S3_MIN_PART), "max_concurrency": ctx.block_parallel}
    if protocol == "abfs":
        return {"max_concurrency": ctx.block_parallel}
    return {}


def _azure_single_put(fs: Any) -> int:
    """Above this size the Azure SDK uploads in blocks, and the blob gets no Content-MD5 unless it is given one."""
    config = getattr(fs.service_client, "_config", None)
    return int(getattr(config, "max_single_put_size", 64 * 1024 * 1024))


def _file_md5(path: str) -> bytes:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        while chunk := fh.read(8 * 1024 * 1024):
            digest.update(chunk)
    return digest.digest()


def _azure_server_copy(fs: Any, src: str, dst: str) -> None:
    """Copy Blob within one account, waiting while the service reports it pending (adlfs' ``cp_file`` returns
    at once, and a folder must not be marked complete while a copy into it is still running)."""
    from fsspec.asyn import sync

    async def copy() -> None:
        import asyncio

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

    sync(fs.loop, copy)
    fs.invalidate_cache(dst)


class LibraryCopier:
    """``method``: ``local``, ``upload``, ``download``, ``server-side`` or ``stream`` (two stores)."""

    def __init__(self, src: Datastore, dst: Datastore, method: str) -> None:
        self.src = src
        self.dst = dst
        self.method = method

    def run(self, tasks: Sequence[FileTask], ctx: CopyContext) -> None:
        if self.dst.protocol == "file":
            make_local_parents(tasks)
        # A large file holds up to ``block_parallel`` blocks in memory: as many in flight as the budget allows.
        large = threading.BoundedSemaphore(max(1, ctx.memory_limit // (ctx.chunk_size * ctx.block_parallel)))
        with tempfile.TemporaryDirectory(prefix="mlpipe-copy-") as scratch:

            def copy_one(task: FileTask) -> None:
                with large if task.size > ctx.chunk_size else contextlib.nullcontext():
                    self._copy(task, ctx, scratch)

            run_in_threads(tasks, ctx, copy_one, self._copy_many(ctx))

    def _copy_many(self, ctx: CopyContext) -> CopyMany | None:
        """Server-side copies within one S3 store as coroutines on s3fs's own loop, as its batch ``copy`` runs
        them: threads each waiting on one blocking ``cp_file`` made 1,000 small copies 2x slower on moto."""
        fs = self.dst.fs
        if self.method != "server-side" or _protocol(self.dst) != "s3" or not getattr(fs, "async_impl", False):
            return None

        def copy_many(batch: list[FileTask]) -> list[FileTask]:
            from fsspec.asyn import sync

            async def copy_all() -> list[BaseException | None]:
                import asyncio

                gate = asyncio.Semaphore(max(1, ctx.workers))

                async def one(task: FileTask) -> BaseException | None:
                    async with gate:
                        try:
                            await fs._cp_file(task.src, task.dst)
                        except Exception as exc:  # copied again alone, with retries and the error's side
                            return exc
                        return None

                return await asyncio.gather(*(one(task) for task in batch))

            outcomes = sync(fs.loop, copy_all)
            fs.invalidate_cache()
            return [task for task, outcome in zip(batch, outcomes, strict=True) if outcome is not None]

        return copy_many

    def _copy(self, task: FileTask, ctx: CopyContext, scratch: str) -> None:
        if self.method == "server-side":
            with on_side(task, "destination"):
                if _protocol(self.dst) == "abfs":
                    _azure_server_copy(self.dst.fs, task.src, task.dst)
                else:
                    self.dst.fs.cp_file(task.src, task.dst)
        elif self.dst.protocol == "file":
            with on_side(task, "destination"), local_target(task, ctx.atomic) as target:
                if self.src.protocol == "file":
                    with _library_call(task, "destination", task.src):
                        shutil.copy2(task.src, target)
                else:
                    with _library_call(task, "source", target):
                        self.src.fs.get_file(task.src, target, **_block_options(self.src, ctx))
        elif self.src.protocol == "file":
            self._upload(task, task.src, ctx)
        else:
            staged = os.path.join(scratch, uuid.uuid4().hex)
            try:
                with _library_call(task, "source", staged):
                    self.src.fs.get_file(task.src, staged, **_block_options(self.src, ctx))
                self._upload(task, staged, ctx)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(staged)

    def _upload(self, task: FileTask, local: str, ctx: CopyContext) -> None:
        extra: dict[str, Any] = {}
        if _protocol(self.dst) == "abfs" and task.size > _azure_single_put(self.dst.fs):
            with on_side(task, "source"):
                md5 = _file_md5(local)
            extra["content_settings"] = {"content_md5": bytearray(md5)}
            ctx.md5s[task.rel] = md5.hex()
        with _library_call(task, "destination", local):
            self.dst.fs.put_file(local, task.dst, **_block_options(self.dst, ctx), **extra)
