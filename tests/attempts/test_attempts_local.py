"""Attempts on a real scheduler with the local default datastore: kills at every phase boundary followed by the
retry, a failed try, a killed task taking its runner along, a clear after success, and a mapped step."""

from __future__ import annotations

import json
import os
import time

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.steps import records
from tests.attempts.checks import assert_attempt_consistent, registered_versions_of, run_kill_matrix
from tests.attempts.conftest import Deployment

# The Airflow-native cases (backfills, the trigger and connection forms, a waiting duplicate) run on this module's
# deployment too: one scheduler, api-server, dag-processor and triggerer for both sets (a second deployment cost
# about a minute of CPU to start and keep running).
from tests.attempts.native_cases import (  # noqa: F401  (collected here)
    test_a_backfill_computes_each_day_and_a_repeat_reuses_them,
    test_a_datastore_that_could_never_work_is_refused_at_save,
    test_a_waiting_duplicate_resumes_soon_after_the_result_is_ready,
    test_regenerate_outputs_from_the_trigger_form_computes_anew,
    test_the_connection_form_in_a_real_browser,
    test_the_connection_test_button_works_for_a_datastore_made_in_the_form,
    test_the_trigger_form_has_typed_parameters_and_regenerate,
)
from tests.reuse.reuse_helpers import mlpipe_in_process

DAG = "attempt_steps"


def test_a_kill_at_every_phase_boundary_then_the_retry(local_deployment: Deployment) -> None:
    run_kill_matrix(local_deployment)


def test_a_killed_task_takes_its_runner_and_script_along(local_deployment: Deployment) -> None:
    dep = local_deployment
    run_id = dep.services.trigger(DAG, "slow", {"case": "slow"})
    pid_file = dep.pids / "slow.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    script_pid, runner_pid = map(int, pid_file.read_text().split())
    ti = dep.services.task_instance(DAG, run_id, "train")
    assert dep.services.kill_task_process(ti["id"]), "the task process was found and killed"
    deadline = time.monotonic() + 30
    while (_alive(script_pid) or _alive(runner_pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(runner_pid) and not _alive(script_pid)
    assert dep.services.wait_for_runs(DAG, [run_id])[run_id] == "success"
    first = AttemptId(DAG, run_id, "train", try_number=1).step_run_id
    record = records.read_record(first, dep.store)
    assert record["status"] == "Failed" and "stopped by signal" in record["error"]
    assert records.read_commit(first, dep.store) is None
    assert dep.executions("slow") == ["try1", "try2"]
    assert_attempt_consistent(dep.store, first)
    assert [v.lineage["try_number"] for v in registered_versions_of(dep.store, run_id)] == [2]


def test_a_cleared_task_computes_anew_and_leaves_its_earlier_try_alone(local_deployment: Deployment) -> None:
    dep = local_deployment
    run_id = dep.services.trigger(DAG, "clear", {"case": "clear"})
    assert dep.services.wait_for_runs(DAG, [run_id])[run_id] == "success"
    first = AttemptId(DAG, run_id, "train", try_number=1).step_run_id
    before = records.read_record(first, dep.store)
    (version,) = registered_versions_of(dep.store, run_id)
    events = _report_events(dep)
    assert events >= 1  # the first try's version was announced

    dep.services.clear(DAG, run_id, ["train"])
    dep.services.wait_for_task_state(DAG, run_id, "train", ("running", "queued", "scheduled", "success"))
    assert dep.services.wait_for_runs(DAG, [run_id])[run_id] == "success"

    second = AttemptId(DAG, run_id, "train", try_number=2).step_run_id
    after = records.read_record(second, dep.store)
    assert dep.executions("clear") == ["try1", "try2"]  # computed anew, not reused
    assert after["status"] == "Completed" and after["reuse"]["decision"]["reason"] == "rerun"
    assert records.read_record(first, dep.store) == before  # the earlier try's record is untouched
    assert {o["path"] for o in after["outputs"]}.isdisjoint({o["path"] for o in before["outputs"]})
    for out in before["outputs"]:  # and its committed folders still hold what they held
        assert dep.store.read_marker(out["path"])["digest"] == out["manifest"]["digest"]
    # byte-identical content: the latest version stands, no new version and no asset event
    report = next(o for o in after["outputs"] if o["name"] == "report")
    assert report["registered"] == {"name": "attempts_report", "version": version.version, "created": False}
    assert _report_events(dep) == events
    code, shown = mlpipe_in_process("reuse", "explain", DAG, "train", "--run", run_id, "--json")
    assert code == 0 and json.loads(shown)["reason"] == "rerun", shown
    assert "cleared after its earlier try succeeded" in json.loads(shown)["explanation"][0]
    log = dep.services.task_log(DAG, run_id, "train", 2)
    assert "and the task was cleared: computing anew" in log


def test_a_mapped_step_is_one_step_run_per_map_index(local_deployment: Deployment) -> None:
    dep = local_deployment
    run_id = dep.services.trigger("attempt_mapped", "mapped")
    assert dep.services.wait_for_runs("attempt_mapped", [run_id])[run_id] == "success"
    tis = [t for t in dep.services.task_instances("attempt_mapped", run_id) if t["task_id"] == "score"]
    assert sorted(t["map_index"] for t in tis) == [0, 1, 2] and {t["state"] for t in tis} == {"success"}
    seen = {}
    for index in range(3):
        srid = AttemptId("attempt_mapped", run_id, "score", map_index=index).step_run_id
        record = records.read_record(srid, dep.store)
        (out,) = record["outputs"]
        seen[index] = (record["reuse"]["key"], out["path"])
        assert dep.store.read_text(out["path"] + "/score.txt") == f"x={index + 1}\n"
        assert record["metrics"] == {"x": float(index + 1)}
    assert len({key for key, _ in seen.values()}) == 3 and len({path for _, path in seen.values()}) == 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead, only not yet reaped
        return fh.read().split(")")[-1].split()[0] != "Z"


def _report_events(dep: Deployment) -> int:
    assets = dep.services.api("GET", "/assets?uri_pattern=attempts_report&only_active=false")["assets"]
    if not assets:
        return 0
    answer = dep.services.api("GET", f"/assets/events?asset_id={assets[0]['id']}&limit=1000")
    return int(answer["total_entries"])


def test_a_rerun_stays_a_rerun_through_its_retries(local_deployment: Deployment) -> None:
    """Cleared after success, the rerun fails once; its automatic retry must compute too, never reuse the try the
    clear asked to replace."""
    dep = local_deployment
    run_id = dep.services.trigger(DAG, "fail-second", {"case": "fail_second"})
    assert dep.services.wait_for_runs(DAG, [run_id])[run_id] == "success"
    dep.services.clear(DAG, run_id, ["train"])
    dep.services.wait_for_task_state(
        DAG, run_id, "train", ("running", "queued", "scheduled", "up_for_retry", "success")
    )
    assert dep.services.wait_for_runs(DAG, [run_id])[run_id] == "success"
    assert dep.services.task_instance(DAG, run_id, "train")["try_number"] == 3
    assert dep.executions("fail_second") == ["try1", "try2", "try3"]
    third = records.read_record(AttemptId(DAG, run_id, "train", try_number=3).step_run_id, dep.store)
    assert third["status"] == "Completed" and third["reuse"]["decision"]["reason"] == "rerun"


def test_a_consumer_writing_over_its_mounted_input_leaves_the_producer_intact(local_deployment: Deployment) -> None:
    dep, dag = local_deployment, "attempt_scribble"
    first = dep.services.trigger(dag, "scribble-1")
    assert dep.services.wait_for_runs(dag, [first])[first] == "success"
    produced = records.read_record(AttemptId(dag, first, "produce").step_run_id, dep.store)
    model = next(o for o in produced["outputs"] if o["name"] == "model")
    assert dep.store.read_text(model["path"] + "/weights.txt") == "weights for scribble\n"
    seen = records.read_record(AttemptId(dag, first, "consume").step_run_id, dep.store)["outputs"][0]
    assert dep.store.read_text(seen["path"] + "/weights.txt") == "weights for scribble\n"
    # the producer's committed files are whole, so the next run reuses them
    second = dep.services.trigger(dag, "scribble-2")
    assert dep.services.wait_for_runs(dag, [second])[second] == "success"
    again = records.read_record(AttemptId(dag, second, "produce").step_run_id, dep.store)
    assert (again["status"], again["reused_from"]) == ("Reused", produced["step_run_id"])


def test_a_fixed_destination_holding_a_committed_output_is_never_written_again(local_deployment: Deployment) -> None:
    dep, dag = local_deployment, "attempt_fixed"
    first = dep.services.trigger(dag, "fixed-1")
    assert dep.services.wait_for_runs(dag, [first])[first] == "success"
    marker = dep.store.read_marker("fixed/model")
    second = dep.services.trigger(dag, "fixed-2", {"regenerate_outputs": True})
    assert dep.services.wait_for_runs(dag, [second])[second] == "failed"
    log = dep.services.task_log(dag, second, "train", 1)
    assert "already holds the committed output of" in log and "add {run-id} to the destination" in log
    assert dep.store.read_marker("fixed/model") == marker  # untouched
    assert dep.store.read_text("fixed/model/weights.txt") == "weights for fixed\n"


def test_a_transfer_killed_then_retried(local_deployment: Deployment) -> None:
    dep, dag = local_deployment, "attempt_transfer"
    runs = {"launching": "copy-launching", "marked_copied": "copy-marked"}
    for phase, run_id in runs.items():  # one after the other, each on other data (else one would reuse the other)
        for n in range(3):
            dep.store.write_text(f"landing/part-{n}.csv", f"{phase}\n{n}\n")
        dep.arm(run_id, phase, dag_id=dag)
        assert dep.services.wait_for_runs(dag, [dep.services.trigger(dag, run_id)], timeout=300)[run_id] == "success"
    for phase, run_id in runs.items():
        first, second = (AttemptId(dag, run_id, "copy", try_number=n).step_run_id for n in (1, 2))
        assert dep.services.task_instance(dag, run_id, "copy")["try_number"] == 2
        producer = first if phase == "marked_copied" else second
        (version,) = registered_versions_of(dep.store, run_id, "attempts_copied")
        assert version.lineage["step_run_id"] == producer, (phase, version.lineage)
        for srid in (first, second):
            assert_attempt_consistent(dep.store, srid)
        record = records.read_record(producer, dep.store)
        assert record["status"] == "Completed" and dep.store.is_complete(record["outputs"][0]["path"])
