"""Large files in blocks: several blocks read and uploaded at once, memory bounded by ``parallel * block``.

The destination assembles the blocks itself (Azure staged blocks, S3 multipart parts), so nothing is visible
there until the final commit: a failed copy leaves no partial object. The MD5 of the whole file is computed on
the way, in order, and given to Azure at commit, so the blob keeps a Content-MD5 that later runs can compare.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from airflow_mlpipe.storage.copy_common import CopyContext, CopyFailure, on_side
from airflow_mlpipe.storage.transfer_plan import FileTask

ReadRange = Callable[[int, int], Awaitable[bytes]]

_S3_MIN_PART = 5 * 1024 * 1024
_S3_MAX_PARTS = 10_000
_AZURE_MAX_BLOCKS = 50_000


class BlockSink(Protocol):
    def block_size(self, size: int, wanted: int) -> int: ...

    async def start(self) -> None: ...

    async def put(self, index: int, data: bytes) -> None: ...

    async def commit(self, md5: bytes | None) -> None: ...

    async def abort(self) -> None: ...


class AzureBlockSink:
    """Staged blocks, committed as one block list (with the file's Content-MD5)."""

    def __init__(self, fs: Any, path: str) -> None:
        self._fs = fs
        self._path = path
        container, blob, _ = fs.split_path(path)
        self._client = fs.service_client.get_blob_client(container, blob)
        # Block ids are private to this upload, so a concurrent writer's uncommitted blocks never mix in.
        self._prefix = uuid.uuid4().hex[:16]
        self._ids: dict[int, str] = {}

    def block_size(self, size: int, wanted: int) -> int:
        return max(wanted, math.ceil(size / _AZURE_MAX_BLOCKS))

    async def start(self) -> None:
        return None

    async def put(self, index: int, data: bytes) -> None:
        block_id = f"{self._prefix}{index:08d}"
        await self._client.stage_block(block_id, data, length=len(data))
        self._ids[index] = block_id

    async def commit(self, md5: bytes | None) -> None:
        from azure.storage.blob import BlobBlock, ContentSettings

        blocks = [BlobBlock(block_id=self._ids[i]) for i in sorted(self._ids)]
        settings = ContentSettings(content_md5=bytearray(md5)) if md5 else None
        await self._client.commit_block_list(blocks, content_settings=settings, metadata={"is_directory": "false"})
        await self._client.close()
        self._fs.invalidate_cache(self._path)

    async def abort(self) -> None:
        # Uncommitted blocks are never visible and the service drops them after a week.
        await self._client.close()


class S3MultipartSink:
    """An S3 multipart upload; aborted on failure so no parts linger (and cost) in the bucket."""

    def __init__(self, fs: Any, path: str) -> None:
        self._fs = fs
        self._path = path
        self._bucket, self._key, _ = fs.split_path(path)
        self._upload_id = ""
        self._etags: dict[int, str] = {}

    def block_size(self, size: int, wanted: int) -> int:
        return max(wanted, _S3_MIN_PART, math.ceil(size / _S3_MAX_PARTS))

    async def start(self) -> None:
        mpu = await self._fs._call_s3("create_multipart_upload", Bucket=self._bucket, Key=self._key)
        self._upload_id = mpu["UploadId"]

    async def put(self, index: int, data: bytes) -> None:
        out = await self._fs._call_s3(
            "upload_part",
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=index + 1,
            Body=data,
        )
        self._etags[index] = out["ETag"]

    async def commit(self, md5: bytes | None) -> None:
        parts = [{"PartNumber": i + 1, "ETag": self._etags[i]} for i in sorted(self._etags)]
        await self._fs._call_s3(
            "complete_multipart_upload",
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": parts},
        )
        self._fs.invalidate_cache(self._path)

    async def abort(self) -> None:
        if self._upload_id:
            await self._fs._call_s3(
                "abort_multipart_upload", Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )


def block_sink(fs: Any, path: str) -> BlockSink | None:
    """A block sink for the stores that take uploads in blocks; None for the rest (they stream instead)."""
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("abfs", "az", "abfss") and hasattr(fs, "service_client"):
        return AzureBlockSink(fs, path)
    if protocol in ("s3", "s3a") and hasattr(fs, "_call_s3"):
        return S3MultipartSink(fs, path)
    return None


def first_error(exc: BaseException) -> BaseException:
    """The first real error inside (nested) exception groups, so retry rules and messages see it."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def copy_in_blocks(
    task: FileTask,
    read: ReadRange,
    sink: BlockSink,
    *,
    ctx: CopyContext,
    on_bytes: Callable[[int], None],
) -> str:
    """Copy ``task.size`` bytes from ``read`` into ``sink``, ``ctx.block_parallel`` blocks at once; returns the
    content MD5 (hex)."""
    size = task.size
    block = sink.block_size(size, ctx.chunk_size)
    count = max(1, math.ceil(size / block))
    md5 = hashlib.md5()
    slots = asyncio.Semaphore(ctx.block_parallel)
    turn = asyncio.Condition()
    hashed = 0

    async def one(index: int) -> None:
        nonlocal hashed
        try:
            start, end = index * block, min(size, (index + 1) * block)
            with on_side(task, "source"):
                data = await read(start, end)
                if len(data) != end - start:
                    raise OSError(f"read {len(data)} bytes at offset {start}, expected {end - start}: it changed")
            # MD5 must see the blocks in order; slots are taken in order, so the next block is always running.
            async with turn:
                await turn.wait_for(lambda: hashed == index)
            await asyncio.to_thread(md5.update, data)
            async with turn:
                hashed += 1
                turn.notify_all()
            with on_side(task, "destination"):
                await sink.put(index, data)
            on_bytes(len(data))
        finally:
            slots.release()

    with on_side(task, "destination"):
        await sink.start()
    try:
        async with asyncio.TaskGroup() as group:
            for index in range(count):
                await slots.acquire()
                group.create_task(one(index))
        with on_side(task, "destination"):
            await sink.commit(md5.digest())
    except BaseException as exc:
        with contextlib.suppress(Exception):
            await asyncio.shield(sink.abort())
        error = first_error(exc)
        if error is not exc and isinstance(error, CopyFailure):
            raise error from error.__cause__  # keep the storage error that the retry rule looks at
        raise
    return md5.hexdigest()
