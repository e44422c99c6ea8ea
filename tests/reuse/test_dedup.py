"""``claim_key``: produce, wait or ready, take-overs, retries of the same step run, and the settings."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from airflow.sdk.exceptions import TaskDeferred

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.attempt import RESUME_AFTER_WAIT, StepAttempt
from airflow_mlpipe.reuse.dedup import DedupSettings, claim_key
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import Leases
from airflow_mlpipe.reuse.wait import lease_from_event
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.triggers.reuse import ReuseTrigger
from tests.reuse.lease_helpers import entry_for, use_local_default

KEY = "ef" * 16
SETTINGS = DedupSettings(lease_ttl=30, clock_skew=0, poll_interval=0.05)


@pytest.fixture
def leases(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Leases:
    return Leases(use_local_default(monkeypatch, tmp_path))


def test_the_first_run_produces_and_the_second_waits_with_trigger_kwargs(leases: Leases) -> None:
    first = claim_key(KEY, step_run_id="d.run1.t", settings=SETTINGS, info={"dag_id": "d"})
    assert first.outcome == "produce" and first.lease is not None
    record = leases.read(KEY)
    assert record is not None and record.info["step_run_id"] == "d.run1.t" and record.info["dag_id"] == "d"
    second = claim_key(KEY, step_run_id="d.run2.t", settings=SETTINGS)
    assert second.outcome == "wait" and second.holder == record
    assert "Step run d.run1.t is computing" in second.describe() and "this run waits for it" in second.describe()
    kwargs = second.trigger_kwargs()
    assert ReuseTrigger(**kwargs).serialize()[1]["poll_interval"] == 0.05  # the trigger takes them as they are


def test_an_entry_written_just_before_the_lease_is_reused(leases: Leases) -> None:
    ReuseIndex().put(entry_for(KEY, "d.run1.t"))
    claim = claim_key(KEY, step_run_id="d.run2.t", settings=SETTINGS)
    assert claim.outcome == "ready" and claim.entry is not None and claim.entry.step_run_id == "d.run1.t"
    assert leases.read(KEY).released  # type: ignore[union-attr]  # it let the lease go again


def test_producing_under_keep_alive_then_a_waiter_gets_ready(leases: Leases) -> None:
    claim = claim_key(KEY, step_run_id="d.run1.t", settings=SETTINGS)
    assert claim.lease is not None
    with claim.lease.keep_alive():
        assert claim_key(KEY, step_run_id="d.run2.t", settings=SETTINGS).outcome == "wait"
        ReuseIndex().put(entry_for(KEY, "d.run1.t"))
    assert claim_key(KEY, step_run_id="d.run2.t", settings=SETTINGS).outcome == "ready"


def test_a_waiter_takes_over_what_the_trigger_saw_go_stale(leases: Leases) -> None:
    dead = claim_key(KEY, step_run_id="d.run1.t", settings=DedupSettings(lease_ttl=0.2, clock_skew=60))
    assert dead.outcome == "produce"

    async def first_event() -> dict[str, object]:
        async for event in ReuseTrigger(KEY, poll_interval=0.05, clock_skew=60).run():
            return dict(event.payload)
        raise AssertionError("no event")

    event = asyncio.run(first_event())
    assert event["status"] == "lease_expired" and event["reason"] == "stale"
    # by its own timestamps (60 s of margin) the lease is still held: only the watched record allows the take-over
    settings = DedupSettings(lease_ttl=30, clock_skew=60)
    assert claim_key(KEY, step_run_id="d.run2.t", settings=settings).outcome == "wait"
    claim = claim_key(KEY, step_run_id="d.run2.t", settings=settings, take_over=lease_from_event(event))
    assert claim.outcome == "produce" and claim.lease is not None and claim.lease.record.generation == 2


def test_a_retry_of_the_same_step_run_does_not_wait_for_its_dead_try(leases: Leases) -> None:
    first_try = claim_key(KEY, step_run_id="d.run1.t", try_number=1, settings=SETTINGS)
    assert first_try.outcome == "produce"
    retry = claim_key(KEY, step_run_id="d.run1.t", try_number=2, settings=SETTINGS)
    assert retry.outcome == "produce" and retry.lease is not None and retry.lease.record.generation == 2
    # another step run still waits for the retry
    assert claim_key(KEY, step_run_id="d.run2.t", settings=SETTINGS).outcome == "wait"


def test_a_retry_is_its_own_step_run_and_still_takes_over_its_dead_try(leases: Leases) -> None:
    tries = [AttemptId("d", "run1", "t", map_index=3, try_number=n) for n in (1, 2)]
    first = claim_key(KEY, step_run_id=tries[0].step_run_id, try_number=1, info=tries[0].to_dict(), settings=SETTINGS)
    assert first.outcome == "produce"
    other_index = AttemptId("d", "run1", "t", map_index=4, try_number=2)
    waits = claim_key(KEY, step_run_id=other_index.step_run_id, try_number=2, info=other_index.to_dict())
    assert waits.outcome == "wait"  # another mapped task instance is not an earlier try of this one
    retry = claim_key(KEY, step_run_id=tries[1].step_run_id, try_number=2, info=tries[1].to_dict(), settings=SETTINGS)
    assert retry.outcome == "produce" and retry.lease is not None and retry.lease.record.generation == 2


def test_settings_from_the_environment() -> None:
    env = {"MLPIPE_REUSE_LEASE_TTL": "12", "MLPIPE_REUSE_CLOCK_SKEW": "0", "MLPIPE_REUSE_POLL_INTERVAL": "0.5"}
    assert DedupSettings.from_env(env) == DedupSettings(lease_ttl=12, clock_skew=0, poll_interval=0.5)
    assert DedupSettings.from_env({}) == DedupSettings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("MLPIPE_REUSE_LEASE_TTL", "0", id="zero-ttl"),
        pytest.param("MLPIPE_REUSE_POLL_INTERVAL", "soon", id="not-a-number"),
        pytest.param("MLPIPE_REUSE_CLOCK_SKEW", "-1", id="negative"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}={value!r}"):
        DedupSettings.from_env({name: value})


class FakeExecution(StepAttempt):
    """A ``StepAttempt`` whose compute, decide and reuse are stand-ins: what ``_compute_once`` does with them."""

    def __init__(self, store: object, run: str, *, fail: bool = False) -> None:
        ti = SimpleNamespace(try_number=1, dag_id="d", run_id=run, task_id="t", map_index=-1)
        self.deferred: list[tuple[object, str]] = []
        op = SimpleNamespace(defer=self._defer, log=logging.getLogger("fake-step"))
        super().__init__(op, {"ti": ti}, None)  # type: ignore[arg-type]
        self.store = store  # type: ignore[assignment]
        self.fail = fail
        self.held_while_computing: bool | None = None

    def _defer(self, *, trigger: object, method_name: str) -> None:
        self.deferred.append((trigger, method_name))
        raise TaskDeferred(trigger=trigger, method_name=method_name)  # type: ignore[arg-type]

    def compute(self, plan: object, decision: object) -> dict[str, object]:  # type: ignore[override]
        record = Leases(self.store).read(KEY)  # type: ignore[arg-type]
        self.held_while_computing = record is not None and not record.released and srid_of(record) == self.srid
        if self.fail:
            raise RuntimeError("script failed")
        ReuseIndex(self.store).put(entry_for(KEY, self.srid))  # type: ignore[arg-type]
        return {"computed": self.srid}

    def decide(self, plan: object) -> object:  # type: ignore[override]
        entry = ReuseIndex(self.store).get(KEY)  # type: ignore[arg-type]
        return SimpleNamespace(hit=entry is not None, key=KEY, reason="hit" if entry else "no_entry", entry=entry)

    def reuse(self, plan: object, decision: object) -> dict[str, object]:  # type: ignore[override]
        return {"reused": decision.entry.step_run_id}  # type: ignore[attr-defined]


def srid_of(record: object) -> object:
    return record.info.get("step_run_id")  # type: ignore[attr-defined]


MISS = SimpleNamespace(key=KEY, reason="no_entry", hit=False)
SPEC = StepSpec(attempt=AttemptId("d", "r", "t"), reuse={"key": KEY})


def compute_once(execution: FakeExecution, spec: object, decision: object) -> object:
    return execution._compute_once(SPEC, decision, None)  # type: ignore[arg-type]


def test_the_operator_side_computes_under_the_lease_then_releases(leases: Leases) -> None:
    producer = FakeExecution(leases.store, "run1")
    assert compute_once(producer, None, MISS) == {"computed": producer.srid}  # type: ignore[arg-type]
    assert producer.held_while_computing is True
    assert leases.read(KEY).released  # type: ignore[union-attr]
    # a later run's claim finds the entry (its decide would have hit first in the operator)
    assert compute_once(FakeExecution(leases.store, "run2"), None, MISS) == {"reused": producer.srid}


def test_a_failing_producer_releases_so_waiters_take_over_at_once(leases: Leases) -> None:
    with pytest.raises(RuntimeError, match="script failed"):
        compute_once(FakeExecution(leases.store, "run1", fail=True), None, MISS)
    record = leases.read(KEY)
    assert record is not None and record.released
    second = FakeExecution(leases.store, "run2")
    assert compute_once(second, None, MISS) == {"computed": second.srid}


def test_a_held_key_defers_to_the_resume_method_of_the_operator(leases: Leases) -> None:
    from airflow_mlpipe.operators.python_script import PythonScriptOperator

    assert claim_key(KEY, step_run_id="d.run1.t", settings=SETTINGS).outcome == "produce"
    waiter = FakeExecution(leases.store, "run2")
    with pytest.raises(TaskDeferred):
        compute_once(waiter, None, MISS)
    ((trigger, method),) = waiter.deferred
    assert isinstance(trigger, ReuseTrigger) and trigger.key == KEY
    assert method == RESUME_AFTER_WAIT and callable(getattr(PythonScriptOperator, method))
    # regenerate_outputs (and a cleared task's rerun) never waits: it computes alongside
    for reason in ("regenerate", "rerun"):
        other = FakeExecution(leases.store, f"run-{reason}")
        assert compute_once(other, None, SimpleNamespace(key=KEY, reason=reason, hit=False)) == {"computed": other.srid}
        assert other.deferred == [] and other.held_while_computing is False
