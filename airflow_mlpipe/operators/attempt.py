"""The life of one attempt of a step, shared by ``PythonScriptOperator`` and ``DataTransferOperator``.

States (docs/reuse.md, "What a step run is"):

    planned ─► decided ─► hit ──────────────────────────────► Reused
                    └───► miss ─► claimed ─► launched ─► committed ─► Completed
                              └─► waiting (ReuseTrigger) ─► decided again
    launched ─► failed (no commit) ─► Failed

1. **planned**: before anything else the attempt's predecessor (the try before it) is settled: a predecessor
   killed after committing is finished now; one that succeeded makes this attempt a rerun, which computes anew.
   Then the step's work pins its inputs, snapshot, environment and outputs and derives the reuse key from exactly
   these; the spec is written once. An attempt resumed in the same try (after a wait or a deferred pod) reads
   its spec back and never plans again.
2. **decided**: hit or miss for the spec's key, kept in the step's history and said in the log.
3. a hit finishes at once (``finish_reused``); a miss claims the key's lease (or waits for the run holding it),
   launches the work, and finishes from the commit (``finish_committed``), indexing under the spec's key.

The step's own work (``StepWork``) only plans and launches; everything else happens here, once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.core.faults import fault_point
from airflow_mlpipe.core.jsonsafe import strict_json
from airflow_mlpipe.core.secrets import scrub
from airflow_mlpipe.exceptions import LeaseLostError, MlpipeError, TamperedRecordError, step_failed_error
from airflow_mlpipe.hooks.datastore import DatastoreHook
from airflow_mlpipe.operators.failures import pushed
from airflow_mlpipe.operators.links import METRICS_KEY, OUTPUTS_KEY, RECORD_URI_KEY, REUSED_FROM_KEY
from airflow_mlpipe.reuse.decide import ReuseDecision, ReusePolicy, decide
from airflow_mlpipe.reuse.dedup import DedupSettings, claim_key
from airflow_mlpipe.reuse.history import HistoryEntry, StepHistory, history_name
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.key import ReuseKey
from airflow_mlpipe.reuse.lease import Lease, LeaseRecord, Leases
from airflow_mlpipe.reuse.step_key import StepFingerprint
from airflow_mlpipe.reuse.wait import lease_from_event
from airflow_mlpipe.runner.claims import is_fixed
from airflow_mlpipe.runner.writer_lease import acquire_writer_lease, writer_lease_key
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.finish import finish_committed, finish_reused
from airflow_mlpipe.steps.spec import StepSpec

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context

    from airflow_mlpipe.fingerprint.tree import Tree

XCOM_METRICS_LIMIT = 50
REGENERATE_CONF_KEY = "regenerate_outputs"
RESUME_AFTER_WAIT = "resume_after_reuse_wait"
# "ready" then a miss again means the entry was dropped as stale between two looks: claim again, a few times.
MAX_CLAIMS = 3
_T = TypeVar("_T")


class StepWork(Protocol):
    """What a kind of step adds to an attempt: planning its spec and launching it (which ends in a commit)."""

    def plan(self, attempt: StepAttempt, policy: ReusePolicy) -> StepSpec: ...

    def launch(self, attempt: StepAttempt, spec: StepSpec, lease: Lease | None) -> None: ...

    def resume(self, attempt: StepAttempt, spec: StepSpec, event: Mapping[str, Any]) -> None: ...

    def ran(self) -> str | None:
        """The step run whose spec the launched process ran, when not this attempt's (a reattached pod)."""
        ...

    def result(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """What the task returns beyond the common fields."""
        ...


class StepAttempt:
    def __init__(self, operator: BaseOperator, context: Context, work: StepWork) -> None:
        self.op = operator
        self.context = context
        self.work = work
        self.log = operator.log
        self.attempt = AttemptId.of(context["ti"])
        self.srid = self.attempt.step_run_id
        self.store = DatastoreHook.get_datastore()
        self.started_at = records.now_iso()
        # The scanned source tree, so that a miss names changed files before the snapshot is uploaded.
        self.source_tree: Tree | None = None
        self.decision: ReuseDecision | None = None
        self.spec: StepSpec | None = None

    # -- entry points -----------------------------------------------------------------------------------------
    def execute(self, *, take_over: LeaseRecord | None = None) -> dict[str, Any]:
        spec = self._or_fail(lambda: records.read_spec(self.srid, self.store))
        if spec is None:
            spec = self._plan()
        else:
            self.log.info("Step run %s: continuing from its spec (reuse key %s)", self.srid, spec.key or "-")
        self.spec = spec
        record = records.find_record(self.srid, self.store)
        if record is not None and record.get("status") in records.SUCCEEDED:
            return self.publish(record)
        if self._or_fail(lambda: records.read_commit(self.srid, self.store)) is not None:
            return self._finish(spec)
        if not spec.key:  # nothing to key (a single file copied): no reuse, no lease
            return self.compute(spec, None)
        decision = self.decide(spec)
        if decision.hit:
            return self.reuse(spec, decision)
        if decision.reason == "disabled":  # allow_reuse=False: nothing to share, no lease
            return self.compute(spec, None)
        return self._compute_once(spec, decision, take_over)

    def resume_after_wait(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """After ``ReuseTrigger``: decide again (a ``ready`` key is a hit now), taking over a lease that went
        stale. The spec written before the wait is the attempt's: nothing is planned again."""
        status = event.get("status")
        if status == "ready":
            self.log.info(
                "Step run %s of the same reuse key has finished (seen by the triggerer at %s; its look before "
                "began at %s): looking again",
                event.get("step_run_id"),
                event.get("seen_at"),
                event.get("previous_look_at", "-"),
            )
        else:
            self.log.info("The run computing this step's reuse key went away (%s): looking again", status)
        return self.execute(take_over=lease_from_event(event))

    def resume_launched(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """After the launched work deferred (a pod awaited in the triggerer): finish from the spec written before
        launching, keeping the lease (heartbeaten by the triggerer meanwhile) alive until the index is written."""
        spec = self._or_fail(lambda: records.read_spec(self.srid, self.store))
        if spec is None:
            raise step_failed_error(f"step {self.op.task_id!r}: step run {self.srid} has no spec to resume from")
        self.spec = spec
        lease = self._or_fail(lambda: self._held_lease(spec))
        if lease is None and spec.key:
            self.log.warning("The lease on reuse key %s was released or taken over while the pod ran", spec.key)
        if lease is None:
            self.work.resume(self, spec, event)
            return self.finish_launched(spec)
        with lease.keep_alive(release_on_exit=True):
            self.work.resume(self, spec, event)
            return self.finish_launched(spec)

    def _held_lease(self, spec: StepSpec) -> Lease | None:
        """The lease this step run took before it deferred: on its reuse key, or on itself (``runner.writer_lease``)."""
        leases = Leases(self.store)
        for key in (spec.key, writer_lease_key(self.srid)):
            lease = leases.adopt(key, step_run_id=self.srid) if key else None
            if lease is not None:
                return lease
        return None

    # -- planning ---------------------------------------------------------------------------------------------
    def _plan(self) -> StepSpec:
        return self.write_spec(self.plan_spec())

    def plan_spec(self) -> StepSpec:
        """This attempt's spec, with its reuse key and policy, written nowhere yet."""
        rerun_of, announced = self._settle_predecessor()
        policy = self.policy(rerun_of=rerun_of)
        spec = self._or_fail(lambda: self.work.plan(self, policy))
        if spec.reuse:  # whether Airflow recorded the earlier try's asset events (a hit on it then adds none)
            spec = dataclasses.replace(
                spec, reuse={**spec.reuse, "policy": {**spec.policy, "earlier_try_announced": announced}}
            )
        return spec

    def write_spec(self, spec: StepSpec) -> StepSpec:
        """Write the spec (put-if-absent: an attempt has one spec; the one found wins)."""
        if not records.write_spec(spec, self.store):  # the one found wins, once its seal holds
            spec = self._or_fail(records.read_spec, self.srid, self.store) or spec
        fault_point("planned", self.attempt.dag_id, self.attempt.run_id)
        return spec

    def policy(self, *, rerun_of: str | None = None) -> ReusePolicy:
        op: Any = self.op
        return ReusePolicy(
            allow_reuse=bool(getattr(op, "allow_reuse", True)),
            regenerate=regenerate_requested(self.context),
            ttl=getattr(op, "reuse_ttl", None),
            rerun_of=rerun_of,
        )

    def _settle_predecessor(self) -> tuple[str | None, bool]:
        """Settle the tries before this one: the step run this try reruns (if any), and whether Airflow saw the
        latest earlier try succeed (then it recorded that try's asset events).

        - A try that committed and was killed before finishing is finished now (its outputs are whole and its key
          is known); this try then usually reuses them, and announces the versions that try added.
        - A successful try followed by a clear of the task (Airflow raises ``max_tries`` when it clears) makes this
          try a rerun: it computes anew. A backfill that reprocesses the DAG run clears it too, but asks for the
          day to be processed again, not for new results: unchanged steps are reused (the backfill's conf
          ``{"regenerate_outputs": true}`` computes them anew). A successful try whose task died before Airflow
          saw it succeed is not a clear either.
        - A rerun's later tries stay reruns (a cleared task that failed and is retried must not reuse what the
          clear asked to replace). Tries that died before planning are skipped over.
        """
        max_tries = self._max_tries()
        previous = self.attempt.previous()
        while previous is not None:
            earlier = previous.step_run_id
            spec = self._or_fail(self._earlier_spec, earlier, previous.try_number)
            if spec is None:  # died before planning (or its spec failed its seal): nothing of it to settle
                previous = previous.previous()
                continue
            record = records.find_record(earlier, self.store) or {}
            if record.get("status") in records.SUCCEEDED:
                before = spec.extra.get("max_tries")
                if max_tries is not None and before is not None and max_tries <= int(before):
                    self.log.info(
                        "Try %d (step run %s) finished its step but its task did not end (killed?): it may be reused",
                        previous.try_number,
                        earlier,
                    )
                    return None, False
                if self._reprocessed_by_backfill():
                    self.log.info(
                        "A backfill reprocesses this DAG run: the step is reused if nothing it depends on changed "
                        "(regenerate_outputs in the backfill's conf computes it anew)"
                    )
                    return None, True
                self.log.info(
                    "Try %d of this task succeeded (step run %s, %s) and the task was cleared: computing anew, "
                    "without reusing or overwriting that try's outputs",
                    previous.try_number,
                    earlier,
                    record.get("status"),
                )
                return earlier, True
            if self._or_fail(self._earlier_commit, earlier) is not None:
                self.log.info(
                    "Try %d (step run %s) committed its outputs but did not finish (its task was killed): "
                    "finishing it now from its spec",
                    previous.try_number,
                    earlier,
                )
                self._or_fail(finish_committed, spec, self.store, finished_by=self.srid)
                return None, False
            rerun_of = spec.policy.get("rerun_of")
            if rerun_of:
                self.log.info("Try %d was a rerun of step run %s: so is this try", previous.try_number, rerun_of)
            return (str(rerun_of) if rerun_of else None), False
        return None, False

    def _earlier_spec(self, earlier: str, try_number: int) -> StepSpec | None:
        """An earlier try's spec; one that failed its seal says nothing of that try (a script may have written it
        before the try planned, which then failed on it): nothing of it is settled, finished or rerun."""
        try:
            return records.read_spec(earlier, self.store)
        except TamperedRecordError as exc:
            self.log.warning("Try %d: %s; nothing of that try is settled", try_number, exc)
            return None

    def _earlier_commit(self, earlier: str) -> dict[str, Any] | None:
        """An earlier try's commit record; one that failed its seal is neither finished nor handed on: this try
        computes its own outputs."""
        try:
            return records.read_commit(earlier, self.store)
        except TamperedRecordError as exc:
            self.log.warning("%s; this try computes its own outputs", exc)
            return None

    def _reprocessed_by_backfill(self) -> bool:
        run_type = getattr(self.context.get("dag_run"), "run_type", None)
        return str(getattr(run_type, "value", run_type)) == "backfill"

    def _max_tries(self) -> int | None:
        value = getattr(self.context["ti"], "max_tries", None)
        return int(value) if isinstance(value, int) else None

    # -- deciding ---------------------------------------------------------------------------------------------
    def decide(self, spec: StepSpec) -> ReuseDecision:
        """Decide for the spec's key, keep the decision in the step's history and say it in the task log."""
        fingerprint = StepFingerprint(
            ReuseKey.from_components(spec.reuse["components"]), spec.reuse.get("details") or {}, self.source_tree
        )
        history = self.history()
        policy = ReusePolicy.from_dict(spec.policy)
        decision = decide(
            fingerprint, step_run_id=self.srid, index=ReuseIndex(self.store), policy=policy, history=history
        )
        history.add(
            HistoryEntry(
                step_run_id=self.srid,
                dag_id=self.attempt.dag_id,
                run_id=self.attempt.run_id,
                task_id=history.task_id,
                decided_at=decision.decided_at,
                key=decision.key,
                components=fingerprint.key.components(),
                details=fingerprint.details,
                decision=decision.to_dict(),
            )
        )
        self.decision = decision
        verdict = "hit" if decision.hit else "miss"
        self.log.info("Reuse %s (key %s): %s", verdict, decision.key, "; ".join(decision.explanation))
        for name, detail in (fingerprint.details.get("inputs") or {}).items():
            if detail.get("read_to_hash"):
                self.log.warning(
                    "Input %s: its store keeps no hash for %d files; they were read to fingerprint them",
                    name,
                    detail["read_to_hash"],
                )
        return decision

    def history(self) -> StepHistory:
        """The step's reuse decisions; one per map index where the operator asks for it (``ParallelRunStep``)."""
        mapped = getattr(self.op, "reuse_history_per_map_index", False)
        task = history_name(self.attempt.task_id, self.attempt.map_index if mapped else -1)
        return StepHistory(self.attempt.dag_id, task, self.store)

    # -- a hit ------------------------------------------------------------------------------------------------
    def reuse(self, spec: StepSpec, decision: ReuseDecision) -> dict[str, Any]:
        entry = decision.entry
        assert entry is not None
        reuse = reuse_block(spec, decision)
        record = self._or_fail(lambda: finish_reused(spec, entry, self.store, reuse=reuse, started_at=self.started_at))
        return self.publish(record)

    # -- a miss -----------------------------------------------------------------------------------------------
    def _compute_once(self, spec: StepSpec, decision: ReuseDecision, take_over: LeaseRecord | None) -> dict[str, Any]:
        """Compute the key under its lease, or wait (deferred) for the run computing it, or reuse an entry that
        has just appeared (see ``reuse.dedup.claim_key``)."""
        fresh = decision.reason in ("regenerate", "rerun")
        for _ in range(MAX_CLAIMS):
            claim = claim_key(
                spec.key,
                step_run_id=self.srid,
                try_number=self.attempt.try_number,
                info={**self.attempt.to_dict()},
                store=self.store,
                take_over=take_over,
                accept_entry=not fresh,
            )
            self.log.info("%s", claim.describe())
            if claim.lease is not None:
                return self._produce(spec, claim.lease)
            if claim.outcome == "wait":
                if fresh:  # asked for fresh outputs: never wait for another run's
                    self.log.info("Computing anyway: this run asks for fresh outputs")
                    return self.compute(spec, None)
                from airflow_mlpipe.triggers.reuse import ReuseTrigger

                trigger = ReuseTrigger(**claim.trigger_kwargs())
                if not getattr(self.op, "deferrable", True):
                    self.log.info("Waiting in the worker (deferrable=False)")
                    return self.resume_after_wait(trigger.wait_in_worker())
                self.op.defer(trigger=trigger, method_name=RESUME_AFTER_WAIT)
            decision = self.decide(spec)  # verifies the new entry's outputs, as every hit does
            if decision.hit:
                return self.reuse(spec, decision)
            take_over = None
        return self.compute(spec, None)

    def _produce(self, spec: StepSpec, lease: Lease) -> dict[str, Any]:
        """Compute with the lease kept alive; release it once the index entry is written, or when the step fails
        (waiters then take over at once). A deferring pod step hands the lease's heartbeat to the triggerer."""
        deferred = False
        with lease.keep_alive(release_on_exit=False) as keeper:
            try:
                return self.compute(spec, lease)
            except BaseException as exc:
                deferred = type(exc).__name__ == "TaskDeferred"
                raise
            finally:
                keeper.stop()
                if keeper.lost.is_set():
                    self.log.warning(
                        "Lease on reuse key %s was taken over while computing: another run may compute it too",
                        lease.key,
                    )
                elif deferred:
                    _hand_over(self.log, lease)
                else:
                    _release(self.log, lease)

    def compute(self, spec: StepSpec, lease: Lease | None) -> dict[str, Any]:
        if lease is None and any(is_fixed(output) for output in spec.outputs):
            # Its claims on fixed destinations rest on a lease it holds while it may write: with none on the reuse
            # key, one on the step run itself, so that another DAG run can tell when this one was killed.
            lease = self._or_fail(lambda: acquire_writer_lease(self.attempt, self.store))
            self.log.info(
                "Step run %s writes a fixed destination: it holds lease %s while it runs", self.srid, lease.key
            )
            return self._produce(spec, lease)
        fault_point("launching", self.attempt.dag_id, self.attempt.run_id)
        self.work.launch(self, spec, lease)
        return self.finish_launched(spec)

    def finish_launched(self, spec: StepSpec) -> dict[str, Any]:
        """Finish after the work ran: from this attempt's commit, or from the attempt whose process actually ran
        (Kubernetes reattached to the pod of an earlier try), indexed under that attempt's own key."""
        ran = self.work.ran()
        if ran is not None and ran != self.srid:
            return self._adopt(ran)
        return self._finish(spec)

    def _finish(self, spec: StepSpec) -> dict[str, Any]:
        if self._or_fail(lambda: records.read_commit(self.srid, self.store)) is None:
            raise self._failure()
        reuse = self._reuse_block(spec)
        record = self._or_fail(lambda: finish_committed(spec, self.store, finished_by=self.srid, reuse=reuse))
        self.log.info("Step run %s: outputs committed, registered and indexed under reuse key %s", self.srid, spec.key)
        return self.publish(record)

    def _reuse_block(self, spec: StepSpec) -> dict[str, Any] | None:
        """The record's ``reuse`` block: with this attempt's decision (kept in the step's history when the task
        was resumed in another process)."""
        if not spec.key:
            return None
        decision = self.decision
        if decision is None:
            entry = self.history().find(self.srid)
            if entry is None:
                return None
            decision = ReuseDecision.from_dict(entry.decision)
        return reuse_block(spec, decision)

    def _adopt(self, ran: str) -> dict[str, Any]:
        """This try's pod operator reattached to the pod of an earlier try, which ran that try's spec: finish that
        try (indexed under its own key), and record this try as having taken its outputs."""
        spec = self._or_fail(lambda: records.read_spec(ran, self.store))
        if spec is None or self._or_fail(lambda: records.read_commit(ran, self.store)) is None:
            raise self._failure(ran)
        self.log.info("The process that ran was step run %s's (an earlier try's pod, reattached): finishing it", ran)
        earlier = self._or_fail(lambda: finish_committed(spec, self.store, finished_by=self.srid))
        record = {
            **earlier,
            "step_run_id": self.srid,
            **self.attempt.to_dict(),
            "created_at": self.spec.created_at if self.spec is not None else self.started_at,
            "started_at": self.started_at,
            "finished_at": records.now_iso(),
            "adopted_from": ran,
        }
        record.pop("finished_by", None)
        records.write_record(record, self.store)
        return self.publish(record)

    def _failure(self, ran: str | None = None) -> Exception:
        srid = ran or self.srid
        record = records.find_record(srid, self.store) or {}
        where = records.record_path(srid)
        if not record:
            return step_failed_error(
                f"step {self.op.task_id!r}: the step runner stopped before writing its run record ({where}); nothing "
                "was committed or registered; see the log above"
            )
        tail = (record.get("log_tail") or "")[-1500:]
        error = record.get("error") or f"exit code {record.get('exit_code')}"
        self.context["ti"].xcom_push(key=RECORD_URI_KEY, value=self.store.uri(where))
        pushed(self.op, RECORD_URI_KEY)
        return step_failed_error(
            f"step {self.op.task_id!r} failed: {error}; nothing was committed or registered. Run record: {where}\n"
            f"--- last lines ---\n{tail}"
        )

    def _or_fail(self, step: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        try:
            return step(*args, **kwargs)
        except (MlpipeError, FileNotFoundError, FileExistsError) as exc:
            raise step_failed_error(f"step {self.op.task_id!r} cannot run: {exc}") from None

    # -- the task's result ------------------------------------------------------------------------------------
    def publish(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """XComs (the record, outputs' locations, a metrics summary), asset events for the dataset versions this
        attempt added, and the task's result."""
        from airflow_mlpipe.assets import dataset_asset
        from airflow_mlpipe.operators.step_fields import keep_outlets

        ti = self.context["ti"]
        reused = record.get("status") == records.REUSED
        outputs = {
            o["name"]: {"datastore": o["datastore"], "path": o["path"], "uri": o.get("uri")}
            for o in record.get("outputs", [])
        }
        metrics = summarize_metrics(record.get("metrics") or {})
        ti.xcom_push(key=RECORD_URI_KEY, value=self.store.uri(records.record_path(self.srid)))
        # Pushed empty for a step that ran: the UI's "Reused step run" link then shows nothing, and finds its XCom.
        earlier = record.get("reused_from") if reused else None
        ti.xcom_push(key=REUSED_FROM_KEY, value=self.store.uri(records.record_path(earlier)) if earlier else "")
        ti.xcom_push(key=OUTPUTS_KEY, value=outputs)
        ti.xcom_push(key=METRICS_KEY, value=metrics)
        created = []
        for out in record.get("outputs", []):
            reg = out.get("registered")
            if reg and reg.get("created"):
                extra = {
                    "dataset": reg["name"],
                    "version": reg["version"],
                    "manifest": out.get("manifest"),
                    "producer": {**self.attempt.to_dict(), "step_run_id": self.srid},
                }
                if reused:
                    extra["reused_from"] = record.get("reused_from")
                self.context["outlet_events"][dataset_asset(reg["name"])].extra = extra
                created.append(reg["name"])
        keep_outlets(self.op, created)
        if self.spec is not None:  # for OpenLineage (operators.lineage), asked for after the task succeeds
            from airflow_mlpipe.operators.lineage import locations

            self.op._mlpipe_lineage = locations(self.spec, record)
        return strict_json(
            {
                "step_run_id": self.srid,
                "status": record["status"],
                "reused": reused,
                "reused_from": record.get("reused_from") if reused else None,
                "outputs": outputs,
                "metrics": metrics,
                "registered": [o["registered"] for o in record.get("outputs", []) if o.get("registered")],
                **self.work.result(record),
            }
        )


def regenerate_requested(context: Mapping[str, Any]) -> bool:
    """The trigger conf's ``{"regenerate_outputs": true}`` (the trigger form's "Regenerate outputs" box, a DAG
    param of every DAG with steps): every step of this DAG run computes anew."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    params = context.get("params") or {}
    value = conf.get(REGENERATE_CONF_KEY) if isinstance(conf, Mapping) else None
    if value is None and isinstance(params, Mapping):
        value = params.get(REGENERATE_CONF_KEY)
    # Conf typed in the UI's JSON editor or passed through a shell arrives as a bool, a number or a string.
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def reuse_block(spec: StepSpec, decision: ReuseDecision) -> dict[str, Any]:
    """``record["reuse"]``: the key, its components, the policy, the decision and its explanation."""
    return {
        "key": spec.key,
        "components": dict(spec.reuse.get("components") or {}),
        "policy": dict(spec.policy),
        "decision": decision.to_dict(),
        "explanation": list(decision.explanation),
    }


def summarize_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Scalars (and the last value of series) only, at most a few dozen: XCom is not a metrics store."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if isinstance(value, list) and value and all(isinstance(v, (int, float)) for v in value):
            value = value[-1]
        if isinstance(value, (int, float, str, bool)):
            out[name] = strict_json(value)  # a NaN loss is pushed as null: XCom takes strict JSON only
        if len(out) >= XCOM_METRICS_LIMIT:
            break
    return dict(scrub(out, names=False))  # a text metric may quote a URL with its signature


def _hand_over(log: Any, lease: Lease) -> None:
    """The worker's last beat before the triggerer takes the heartbeats over: with the hand-over grace, so that a
    triggerer slow to pick the trigger up does not let identical steps take the key over meanwhile."""
    grace = DedupSettings.from_env().handoff  # a bad setting fails the step, as it does for every lease setting
    try:
        lease.heartbeat(handoff=grace)
    except (MlpipeError, LeaseLostError, OSError) as exc:  # the triggerer's first beat tries again
        log.warning("Could not renew the lease on reuse key %s before deferring: %s", lease.key, exc)


def _release(log: Any, lease: Lease) -> None:
    try:
        lease.release()
    except (MlpipeError, LeaseLostError, OSError) as exc:  # never hide the step's outcome; waiters take over later
        log.warning("Could not release the lease on reuse key %s: %s", lease.key, exc)
