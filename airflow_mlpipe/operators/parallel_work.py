"""The gather task's part of an attempt: plan its spec from the mini-batches' committed results, and join them
into the step's output on the worker, ending in the attempt's commit.

Its inputs are the mini-batches' result folders (pinned by their completion markers, so a reused mini-batch
counts by its content, wherever its folder is), its settings are the output action and the error threshold: an
unchanged set of mini-batch results is a hit and nothing is gathered again.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.exceptions import MlpipeError, step_failed_error
from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.parallel.gather import (
    BatchFolder,
    TooManyFailuresError,
    batch_folders,
    check_threshold,
    read_summaries,
    write_output,
)
from airflow_mlpipe.reuse.decide import ReusePolicy
from airflow_mlpipe.reuse.inputs import pin_input
from airflow_mlpipe.reuse.step_key import fingerprint_step
from airflow_mlpipe.runner.outputs import discard, prepare_outputs, stage
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.spec import StepSpec

if TYPE_CHECKING:
    from airflow_mlpipe.operators.attempt import StepAttempt
    from airflow_mlpipe.operators.parallel_run import GatherOperator
    from airflow_mlpipe.reuse.lease import Lease

GATHER_SCRIPT = "(parallel run gather)"


class GatherWork:
    def __init__(self, operator: GatherOperator) -> None:
        self.op = operator

    # -- planning ---------------------------------------------------------------------------------------------
    def plan(self, attempt: StepAttempt, policy: ReusePolicy) -> StepSpec:
        from airflow_mlpipe.operators.parallel_run import BATCH_OUTPUT

        op = self.op
        folders, reused = self._located(attempt)
        inputs = [
            pin_input(
                {
                    "name": f"mini_batch_{f.index:05d}",
                    "mode": "download",
                    "source": {"type": "folder", "datastore": f.datastore, "path": f.path, "producer": BATCH_OUTPUT},
                }
            )
            for f in folders
        ]
        outputs = op.output_specs(attempt.srid)
        config = op.config
        settings = {
            "output_action": config.output_action,
            "append_row_file_name": config.result_file,
            "error_threshold": config.error_threshold,
            "allowed_failed_count": config.allowed_failed_count,
            "allowed_failed_percent": config.allowed_failed_percent,
        }
        arguments = [{"t": "str", "v": f"--{key}={value}"} for key, value in sorted(settings.items())]
        fingerprint = fingerprint_step(
            script_name=GATHER_SCRIPT,
            source=Tree({}),
            hash_paths=None,
            arguments=arguments,
            inputs=inputs,
            outputs=outputs,
            environment={},
        )
        return StepSpec(
            attempt=attempt.attempt,
            kind="gather",
            script_name=GATHER_SCRIPT,
            arguments=tuple(arguments),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            reuse={
                "key": fingerprint.digest,
                "components": fingerprint.key.components(),
                "details": fingerprint.details,
                "policy": policy.to_dict(),
            },
            extra={"gather": {**settings, "reused_mini_batches": reused}, "max_tries": attempt._max_tries()},
            created_at=records.now_iso(),
        )

    def _located(self, attempt: StepAttempt) -> tuple[list[BatchFolder], list[int]]:
        """Each mini-batch's results folder (reused by the planning task or computed by a node) and which were
        reused."""
        from airflow_mlpipe.operators.parallel_run import BATCH_OUTPUT, MINI_BATCHES_KEY

        ti = attempt.context["ti"]
        planned = list(ti.xcom_pull(task_ids=self.op.plan_task_id, key=MINI_BATCHES_KEY) or [])
        nodes = list(ti.xcom_pull(task_ids=self.op.plan_task_id) or [])
        results = [p.get("result") for p in planned]
        if nodes:
            computed = ti.xcom_pull(task_ids=self.op.batch_task_id, map_indexes=list(range(len(nodes))))
            if len(nodes) == 1 and isinstance(computed, list) and computed and isinstance(computed[0], Mapping):
                computed = [computed]  # one map index: its value, not a list of values
            for node in computed or []:
                results += list(node or [])
        folders = attempt._or_fail(lambda: batch_folders(results, len(planned), BATCH_OUTPUT))
        return folders, [f.index for f in folders if f.reused]

    # -- gathering --------------------------------------------------------------------------------------------
    def launch(self, attempt: StepAttempt, spec: StepSpec, lease: Lease | None) -> None:
        config = self.op.config
        record = {**records.record_base(spec), "status": records.RUNNING, "started_at": attempt.started_at}
        records.write_record(record, attempt.store)
        reused = set(spec.extra["gather"].get("reused_mini_batches") or ())
        folders = [
            BatchFolder(n, str(i["source"]["datastore"]), str(i["source"]["path"]), n in reused)
            for n, i in enumerate(spec.inputs)
        ]
        workdir = tempfile.mkdtemp(prefix="mlpipe-gather-")
        plans: dict[str, Any] = {}
        try:
            gathered = read_summaries(folders)
            limit = config.failure_limit(gathered.items)
            record["metrics"] = gathered.metrics()
            attempt.log.info(
                "%d mini-batches: %d items, %d succeeded, %d failed (%d allowed), %d mini-batches reused",
                len(folders),
                gathered.items,
                gathered.succeeded,
                gathered.failed_items,
                -1 if limit is None else limit,
                len(reused),
            )
            check_threshold(self.op.task_id, gathered, limit)
            plans = prepare_outputs(spec.outputs, workdir, spec.attempt)  # a fixed destination is claimed
            (plan,) = plans.values()
            write_output(
                plan.staging,
                folders,
                gathered,
                output_action=config.output_action,
                result_file=config.result_file,
                limit=limit,
            )
            manifest = stage(plan)
            output = {
                "name": plan.name,
                "datastore": plan.store.name,
                "path": plan.path,
                "uri": plan.store.uri(plan.path),
            }
            if not records.write_commit(spec.step_run_id, [{**output, "manifest": manifest.to_dict()}], attempt.store):
                raise MlpipeError(f"step run {spec.step_run_id} was committed already; an attempt commits once")
        except (MlpipeError, OSError, ValueError, KeyError) as exc:
            record.update(status=records.FAILED, error=str(exc), finished_at=records.now_iso())
            records.write_record(record, attempt.store)
            if isinstance(exc, TooManyFailuresError):
                raise step_failed_error(str(exc)) from None
            raise step_failed_error(f"step {self.op.task_id!r}: {exc}; nothing was committed or registered") from None
        finally:
            discard(plans)
            shutil.rmtree(workdir, ignore_errors=True)
        record.update(status=records.COMMITTED, committed_at=records.now_iso())
        records.write_record(record, attempt.store)

    def resume(self, attempt: StepAttempt, spec: StepSpec, event: Mapping[str, Any]) -> None:
        raise step_failed_error(f"step {self.op.task_id!r}: gathering never defers, so it cannot resume")

    def ran(self) -> str | None:
        return None

    def result(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {"summary": dict(record.get("metrics") or {})}
