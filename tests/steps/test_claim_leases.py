"""A fixed destination's claim rests on a lease its holder keeps while it may write, whatever its reuse settings:
a holder killed with SIGKILL (its record left saying Running) loses the claim once its lease's ttl has passed; a
live one keeps it however long it runs; one that was only paused and wakes up after losing it commits nothing.

The holder is a real process that does what the task does for a step with reuse disabled: it takes the step run's
own lease (``runner.writer_lease``), keeps it alive from a thread and runs the step. Leases live 2 s here
(``MLPIPE_REUSE_LEASE_TTL``, no clock-skew margin)."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.exceptions import StepFailedError
from airflow_mlpipe.operators.attempt import StepAttempt
from airflow_mlpipe.reuse.lease import Lease, Leases
from airflow_mlpipe.runner import execute
from airflow_mlpipe.runner.claims import DestinationClaimedError, claim
from airflow_mlpipe.runner.writer_lease import writer_lease_key
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore
from tests.steps.test_commit_guards import FIXED, SLOW_WRITER, _wait_for

TTL = 2.0
# What the task does for a step without a lease on its reuse key: the step run's own lease, kept alive by a thread
# of the process that runs the step.
HOLDER = """
import sys
from airflow_mlpipe.runner import execute
from airflow_mlpipe.runner.writer_lease import acquire_writer_lease
from airflow_mlpipe.steps import records
spec = records.read_spec(sys.argv[1])
with acquire_writer_lease(spec.attempt).keep_alive():
    code = execute.run_step(records.spec_path(spec.step_run_id))
sys.exit(code)
"""


@pytest.fixture(autouse=True)
def _short_leases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_REUSE_LEASE_TTL", str(TTL))
    monkeypatch.setenv("MLPIPE_REUSE_CLOCK_SKEW", "0")
    # The runner's SIGTERM/SIGINT handlers would outlive it in this process: pytest keeps its own.
    monkeypatch.setattr(execute, "install_signal_handlers", lambda process: None)


def _writer(store: Datastore, tmp_path: Path, run: str) -> StepSpec:
    """A step of DAG run ``run`` writing ``models/latest``; its script waits for the file ``go-<run>``."""
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    (source / "step.py").write_text(SLOW_WRITER)
    tree = scan_source(str(source))
    store_snapshot(str(source), tree, store)
    outputs = ({"name": "model", "datastore": store.name, "path": FIXED, "path_template": FIXED, "mode": "mount"},)
    arguments = (
        {"t": "output", "name": "model"},
        {"t": "str", "v": str(tmp_path / f"go-{run}")},
        {"t": "str", "v": run},
    )
    spec = StepSpec(
        attempt=AttemptId("d", run, "t"), script_name="step.py", snapshot=tree.digest, outputs=outputs,
        arguments=arguments,
    )  # fmt: skip
    assert records.write_spec(spec, store)
    return spec


@pytest.fixture
def holder(local_default: Datastore, tmp_path: Path) -> Iterator[tuple[StepSpec, subprocess.Popen[bytes]]]:
    """The first DAG run's step, running in a process of its own: its script runs (it holds the claim)."""
    spec = _writer(local_default, tmp_path, "first")
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, spec.step_run_id],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy(),
    )  # fmt: skip
    try:
        _wait_for(tmp_path / "go-first.started")
        yield spec, proc
    finally:
        proc.kill()
        proc.wait(timeout=60)


def _run(store: Datastore, spec: StepSpec) -> tuple[int, dict[str, Any]]:
    code = execute.run_step(records.spec_path(spec.step_run_id))
    return code, records.read_record(spec.step_run_id, store)


def _until_expired(spec: StepSpec) -> None:
    """Until the holder's lease is past its ttl by this process's clock."""
    leases = Leases(clock_skew=0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lease = leases.read(writer_lease_key(spec.step_run_id))
        assert lease is not None
        if lease.expired(leases.clock(), 0):
            return
        time.sleep(0.1)
    raise AssertionError("the holder's lease never expired")


def test_a_killed_holder_with_reuse_disabled_loses_its_claim_after_the_ttl(
    local_default: Datastore, tmp_path: Path, holder: tuple[StepSpec, subprocess.Popen[bytes]],
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    first, proc = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert records.read_record(first.step_run_id, local_default)["status"] == records.RUNNING  # as it was left
    second = _writer(local_default, tmp_path, "second")
    with pytest.raises(DestinationClaimedError, match=f"claimed by step run {first.step_run_id} .*which writes it now"):
        claim("model", local_default, FIXED, second.attempt)  # its lease is still live: it may be writing

    _until_expired(first)
    (tmp_path / "go-second").touch()
    with caplog.at_level(logging.INFO, logger="airflow_mlpipe.runner.claims"):
        code, record = _run(local_default, second)
    assert code == 0 and record["status"] == records.COMMITTED
    why = f"its lease on step run {first.step_run_id} itself expired: no heartbeat for"
    assert f"taking over the claim on '{FIXED}' from step run {first.step_run_id}" in caplog.text and why in caplog.text
    assert local_default.read_text(f"{FIXED}/weights.txt") == "by second"


def test_a_live_holder_with_reuse_disabled_keeps_its_claim(
    local_default: Datastore, tmp_path: Path, holder: tuple[StepSpec, subprocess.Popen[bytes]]
) -> None:
    first, proc = holder
    second = _writer(local_default, tmp_path, "second")
    started = time.monotonic()
    while time.monotonic() - started < 2.5 * TTL:  # its heartbeats keep the lease live, however long it runs
        with pytest.raises(DestinationClaimedError, match="which writes it now"):
            claim("model", local_default, FIXED, second.attempt)
        time.sleep(0.2)
    (tmp_path / "go-second").touch()
    code, record = _run(local_default, second)
    assert code == 1 and f"is claimed by step run {first.step_run_id}" in record["error"]

    (tmp_path / "go-first").touch()
    assert proc.wait(timeout=60) == 0
    assert records.read_commit(first.step_run_id, local_default) is not None
    assert local_default.read_text(f"{FIXED}/weights.txt") == "by first"
    lease = Leases().read(writer_lease_key(first.step_run_id))
    assert lease is not None and lease.released  # let go when the step ended


def test_a_holder_that_wakes_up_after_losing_its_claim_commits_nothing(
    local_default: Datastore, tmp_path: Path, holder: tuple[StepSpec, subprocess.Popen[bytes]]
) -> None:
    first, proc = holder
    proc.send_signal(signal.SIGSTOP)  # paused (its script runs on, waiting): no heartbeat
    try:
        _until_expired(first)
        second = _writer(local_default, tmp_path, "second")
        (tmp_path / "go-second").touch()
        assert _run(local_default, second)[0] == 0
    finally:
        proc.send_signal(signal.SIGCONT)
    (tmp_path / "go-first").touch()
    assert proc.wait(timeout=60) == 1
    record = records.read_record(first.step_run_id, local_default)
    assert record["status"] == records.FAILED and "nothing was committed" in record["error"]
    assert f"no longer this step run's to write (step run {second.step_run_id} took it over)" in record["error"]
    assert records.read_commit(first.step_run_id, local_default) is None
    assert local_default.read_text(f"{FIXED}/weights.txt") == "by second"


# -- the task takes the lease -----------------------------------------------------------------------------------------
class _Work:
    """A step's work that records the lease it was launched under and commits nothing."""

    def __init__(self) -> None:
        self.lease: Lease | None = None
        self.live_while_running = False

    def launch(self, attempt: StepAttempt, spec: StepSpec, lease: Lease | None) -> None:
        self.lease = lease
        record = Leases().read(lease.key) if lease is not None else None
        self.live_while_running = record is not None and not Leases(clock_skew=0).is_free(record)

    def ran(self) -> str | None:
        return None


@pytest.mark.parametrize(
    ("template", "leased"),
    [pytest.param(FIXED, True, id="fixed destination"), pytest.param("out/{run-id}", False, id="run's own folder")],
)
def test_a_step_without_a_reuse_lease_holds_its_own_while_it_writes_a_fixed_destination(
    local_default: Datastore, template: str, leased: bool
) -> None:
    ti = SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=-1, try_number=1)
    operator: Any = SimpleNamespace(task_id="t", log=logging.getLogger("test"))
    context: Any = {"ti": ti}
    work = _Work()
    attempt = StepAttempt(operator, context, work)  # type: ignore[arg-type]
    output = {"name": "model", "datastore": local_default.name, "path": "out/x", "path_template": template}
    spec = StepSpec(attempt=attempt.attempt, script_name="s.py", outputs=(output,))
    with pytest.raises(StepFailedError, match="stopped before writing its run record"):
        attempt.compute(spec, None)  # as for allow_reuse=False
    assert (work.lease is not None) == leased
    if work.lease is not None:
        assert work.lease.key == writer_lease_key(attempt.srid) and work.live_while_running
        after = Leases().read(work.lease.key)
        assert after is not None and after.released  # the step failed: its claims pass on at once


# -- a lease on the reuse key that passed to another run ---------------------------------------------------------------
def test_a_holder_whose_reuse_lease_passed_to_another_run_loses_its_claim(local_default: Datastore) -> None:
    """The run that took the key's lease over (the holder had stopped renewing it) may claim the destination; a
    holder that never held the key's lease (written by older code, reuse disabled) keeps its claim."""
    from tests.reuse.reuse_helpers import fingerprint

    fp = fingerprint(outputs=[])  # a key whose components the specs below pin (no input, no output)
    holder, taker, never = AttemptId("d", "r1", "t"), AttemptId("d", "r2", "t"), AttemptId("d", "r3", "t")
    for attempt in (holder, never):
        spec = StepSpec(attempt=attempt, kind="gather", script_name="g", reuse={"key": fp.digest,
                        "components": fp.key.components()})  # fmt: skip
        assert records.write_spec(spec, local_default)
        records.write_record({"step_run_id": attempt.step_run_id, "status": records.RUNNING}, local_default)
    leases = Leases(local_default, clock_skew=0)
    dead = leases.acquire(fp.digest, "worker-1", ttl=300, info={"step_run_id": holder.step_run_id})
    assert dead is not None
    claim("model", local_default, FIXED, holder)
    assert leases.acquire(fp.digest, "worker-2", ttl=300, info={"step_run_id": taker.step_run_id},
                          take_over=dead.record) is not None  # fmt: skip
    claim("model", local_default, FIXED, taker)
    claim("other", local_default, "models/other", never)
    with pytest.raises(DestinationClaimedError, match="which writes it now"):
        claim("other", local_default, "models/other", taker)
