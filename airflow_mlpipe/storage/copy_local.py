"""Local folder to local folder: the kernel copies (``copy_file_range``, a reflink on XFS/btrfs), Python only asks.

No byte passes through Python; the source's mtime is kept so that a later transfer's quick check (size and
mtime, as rsync) recognises the copy without reading it.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Sequence

from airflow_mlpipe.storage.copy_common import (
    CopyContext,
    local_target,
    make_local_parents,
    on_side,
    run_in_threads,
)
from airflow_mlpipe.storage.transfer_plan import FileTask

# Report progress this often inside a large file.
_STEP = 64 * 1024 * 1024
# copy_file_range refuses some pairs (across filesystems on older kernels, special files): copy in user space then.
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ETXTBSY, errno.EPERM})


def _user_space_copy(fd_in: int, fd_out: int, offset: int, on_bytes: Callable[[int], None]) -> None:
    os.lseek(fd_in, offset, os.SEEK_SET)
    os.lseek(fd_out, offset, os.SEEK_SET)
    while chunk := os.read(fd_in, 1024 * 1024):
        os.write(fd_out, chunk)
        on_bytes(len(chunk))


def kernel_copy(fd_in: int, fd_out: int, size: int, on_bytes: Callable[[int], None]) -> None:
    """Copy ``size`` bytes (or up to the source's end, if it shrank) from ``fd_in`` to ``fd_out``."""
    done = 0
    while done < size:
        try:
            n = os.copy_file_range(fd_in, fd_out, min(_STEP, size - done))
        except OSError as exc:
            if exc.errno not in _NO_KERNEL_COPY:
                raise
            _user_space_copy(fd_in, fd_out, done, on_bytes)
            return
        if n == 0:
            return
        done += n
        if size > _STEP:
            on_bytes(n)


def copy_local_file(task: FileTask, *, atomic: bool, on_bytes: Callable[[int], None]) -> None:
    with on_side(task, "source"):
        fd_in = os.open(task.src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with on_side(task, "destination"), local_target(task, atomic) as target:
            fd_out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            try:
                st = os.fstat(fd_in)
                kernel_copy(fd_in, fd_out, st.st_size, on_bytes)
                os.utime(fd_out, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(fd_out)
    finally:
        os.close(fd_in)


class LocalCopier:
    """Two threads by default: a second one overlaps one file's metadata syscalls with another's copy."""

    method = "local"

    def run(self, tasks: Sequence[FileTask], ctx: CopyContext) -> None:
        make_local_parents(tasks)
        run_in_threads(tasks, ctx, lambda task, on_bytes: copy_local_file(task, atomic=ctx.atomic, on_bytes=on_bytes))
