"""A reuse miss in ``PythonScriptOperator``: compute the key under its lease, or wait for the run computing it.

``compute_once`` follows ``claim_key`` (``airflow_mlpipe/reuse/dedup.py``): produce (compute with a heartbeat,
index the outputs, release), wait (defer to ``ReuseTrigger``; Airflow resumes the task with
``PythonScriptOperator.resume_after_reuse_wait``), or reuse an entry that has just appeared. Its name differs
from the pod operator's ``trigger_reentry``: a Kubernetes step may defer for its pod as well.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlpipe.reuse.dedup import claim_key
from airflow_mlpipe.reuse.lease import Lease, LeaseRecord

if TYPE_CHECKING:
    from airflow_mlpipe.operators.step_execution import StepExecution, StepPlan
    from airflow_mlpipe.reuse.decide import ReuseDecision

RESUME_METHOD = "resume_after_reuse_wait"
# "ready" then a miss again means the entry was dropped as stale between two looks: claim again, a few times.
MAX_CLAIMS = 3


def compute_once(
    execution: StepExecution,
    plan: StepPlan,
    decision: ReuseDecision,
    *,
    take_over: LeaseRecord | None = None,
) -> dict[str, Any]:
    """The outcome of a miss: this run's result, computed or reused; or ``TaskDeferred`` while another run
    computes the same key."""
    ti = execution.context["ti"]
    regenerate = decision.reason == "regenerate"
    for _ in range(MAX_CLAIMS):
        claim = claim_key(
            decision.key,
            step_run_id=execution.srid,
            try_number=int(ti.try_number or 1),
            info={"dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": ti.task_id},
            store=execution.store,
            take_over=take_over,
            accept_entry=not regenerate,
        )
        if claim.lease is not None:
            execution.log.info("%s", claim.describe())
            return _produce(execution, plan, decision, claim.lease)
        if claim.outcome == "wait":
            if regenerate:  # asked for fresh outputs: never wait for another run's
                execution.log.info("%s; regenerate_outputs: computing anyway", claim.describe())
                return execution.compute(plan, decision)
            execution.log.info("%s", claim.describe())
            from airflow_mlpipe.triggers.reuse import ReuseTrigger

            execution.op.defer(trigger=ReuseTrigger(**claim.trigger_kwargs()), method_name=RESUME_METHOD)
        execution.log.info("%s", claim.describe())
        decision = execution.decide(plan)  # verifies the new entry's outputs, as every hit does
        if decision.hit:
            return execution.reuse(plan, decision)
        take_over = None
    return execution.compute(plan, decision)


def _produce(execution: StepExecution, plan: StepPlan, decision: ReuseDecision, lease: Lease) -> dict[str, Any]:
    """Compute with the lease kept alive; release it after the index entry is written, or when the step fails
    (waiters then take over rather than wait for a ttl)."""
    deferred = False
    with lease.keep_alive(release_on_exit=False) as keeper:
        try:
            return execution.compute(plan, decision)
        except BaseException as exc:
            # A pod step deferring keeps the lease unreleased (no heartbeat while deferred): waiters take it over
            # after its ttl rather than at once.
            deferred = type(exc).__name__ == "TaskDeferred"
            raise
        finally:
            keeper.stop()
            if keeper.lost.is_set():
                execution.log.warning(
                    "Lease on reuse key %s was taken over while computing: another run may compute it too",
                    lease.key,
                )
            elif not deferred:
                _release(execution, lease)


def _release(execution: StepExecution, lease: Lease) -> None:
    try:
        lease.release()
    except Exception as exc:  # never hide the step's own outcome; waiters take over after the ttl
        execution.log.warning("Could not release the lease on reuse key %s: %s", lease.key, exc)
