"""Run the user's script as a child process, streaming its output line by line and keeping a copy."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import IO

from airflow_mlpipe.core.secrets import LineScrubber

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A ``preexec_fn`` that has the kernel send ``sig`` to the child when the process that started it dies (on
    Linux; elsewhere nothing): a task killed with ``SIGKILL`` takes its runner, and the runner its script, along
    instead of leaving them to write the attempt's folders behind a retry's back."""
    parent = os.getpid()
    # Looked up here, in the parent: between fork and exec a child of a threaded process may not import or dlopen.
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None

    def preexec() -> None:
        if prctl is None:
            return
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sig)

    return preexec


class ScriptProcess:
    """The script's process; ``terminate`` is safe to call from a signal handler."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.killed_by: int | None = None

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        log: IO[bytes],
        echo: IO[bytes],
        known: Sequence[str] = (),
    ) -> int:
        """Run ``argv``; each line of its output goes to ``log`` as it is and to ``echo`` (the task's or the pod's
        log) scrubbed of credentials (``core.secrets``: patterns and the ``known`` values)."""
        self.proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL) if sys.platform == "linux" else None,
        )
        assert self.proc.stdout is not None
        scrubber = LineScrubber(known)  # a private key printed across lines is masked whole, as in the stored log
        for line in iter(self.proc.stdout.readline, b""):
            log.write(line)
            echo.write(scrubber.bytes(line))
            echo.flush()
        return self.proc.wait()

    def terminate(self, signum: int, _frame: FrameType | None = None) -> None:
        self.killed_by = signum
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)


def install_signal_handlers(process: ScriptProcess) -> None:
    """SIGTERM/SIGINT (Airflow killing the task, a pod being deleted) stop the script; the runner then records
    the run as failed and commits nothing."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, process.terminate)


def stdout_bytes() -> IO[bytes]:
    return sys.stdout.buffer
