"""Airflow-native runs on a real scheduler: a backfill computes each day (its argument and destination are
templated), a repeat backfill reuses every day, the trigger form's "regenerate outputs" computes anew, a waiting
duplicate resumes soon after its result is ready, and a successful step logs no error."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.reuse.history import StepHistory
from airflow_mlpipe.steps import records
from tests.attempts.conftest import Deployment

DAILY = "native_daily"
DAYS = ("2026-01-02", "2026-01-03", "2026-01-04")


def _backfill(dep: Deployment, reprocess: str, conf: dict[str, Any] | None = None) -> list[str]:
    body = {
        "dag_id": DAILY,
        "from_date": "2026-01-02T00:00:00Z",
        "to_date": "2026-01-04T00:00:00Z",
        "reprocess_behavior": reprocess,
        "max_active_runs": 3,
        "dag_run_conf": conf or {},
    }
    backfill = dep.services.api("POST", "/backfills", body)
    runs = dep.services.api("GET", f"/dags/{DAILY}/dagRuns?limit=100")["dag_runs"]
    ours = [r["dag_run_id"] for r in runs if r.get("run_type") == "backfill"]
    assert len(ours) == 3, (backfill, runs)
    assert set(dep.services.wait_for_runs(DAILY, ours, timeout=300).values()) == {"success"}
    deadline = time.monotonic() + 60  # the scheduler closes a backfill once its runs are done
    while not dep.services.api("GET", f"/backfills/{backfill['id']}").get("completed_at"):
        assert time.monotonic() < deadline, "the backfill was never marked complete"
        time.sleep(1)
    return ours


def test_a_backfill_computes_each_day_and_a_repeat_reuses_them(local_deployment: Deployment) -> None:
    dep = local_deployment
    runs = _backfill(dep, "none")
    assert _backfilled(dep) == [f"daily:{d} try1" for d in DAYS]
    first = {}
    for run_id in runs:
        record = records.read_record(AttemptId(DAILY, run_id, "daily").step_run_id, dep.store)
        day = record["airflow"]["logical_date"][:10]
        first[day] = record
        assert record["status"] == "Completed" and record["arguments"][1] == f"{day}"  # the rendered argument
        (out,) = record["outputs"]
        assert out["path"].startswith(f"days/{day}/") and dep.store.read_text(out["path"] + "/day.txt").startswith(day)
    assert sorted(first) == list(DAYS) and len({r["reuse"]["key"] for r in first.values()}) == 3

    # the same days again: every step is reused, none runs
    again = _backfill(dep, "completed")
    assert _backfilled(dep) == [f"daily:{d} try1" for d in DAYS]  # nothing ran again
    for run_id in again:
        ti = dep.services.task_instance(DAILY, run_id, "daily")
        record = records.read_record(
            AttemptId(DAILY, run_id, "daily", try_number=ti["try_number"]).step_run_id, dep.store
        )
        assert record["status"] == "Reused", record
        assert record["reused_from"] == first[record["airflow"]["logical_date"][:10]]["step_run_id"]
        assert not _error_lines(dep.services.task_log(DAILY, run_id, "daily", ti["try_number"]))

    # the Rendered Templates tab shows the rendered arguments
    ti = dep.services.task_instance(DAILY, runs[0], "daily")
    rendered = ti["rendered_fields"]
    assert "{{" not in json.dumps(rendered["arguments"]) and rendered["arguments"][1] in DAYS, rendered


def test_regenerate_outputs_from_the_trigger_form_computes_anew(local_deployment: Deployment) -> None:
    dep, dag = local_deployment, "native_dedup"
    first = dep.services.trigger(dag, "plain-1")
    assert dep.services.wait_for_runs(dag, [first], timeout=300)[first] == "success"
    params = dep.services.api("GET", f"/dags/{dag}/details")["params"]
    assert (
        params["regenerate_outputs"]["value"] is False and params["regenerate_outputs"]["schema"]["type"] == "boolean"
    )
    fresh = dep.services.trigger(dag, "fresh-1", {"regenerate_outputs": True})
    assert dep.services.wait_for_runs(dag, [fresh], timeout=300)[fresh] == "success"
    record = records.read_record(AttemptId(dag, fresh, "slow").step_run_id, dep.store)
    assert record["status"] == "Completed" and record["reuse"]["decision"]["reason"] == "regenerate"
    assert not _error_lines(dep.services.task_log(dag, fresh, "slow", 1))


def test_a_waiting_duplicate_resumes_soon_after_the_result_is_ready(local_deployment: Deployment) -> None:
    dep, dag = local_deployment, "native_dedup"
    producer_run = dep.services.trigger(dag, "dup-a", {"tag": "dup"})  # a key no earlier run computed
    dep.services.wait_for_task_state(dag, producer_run, "slow", ("running",), timeout=120)
    waiter_run = dep.services.trigger(dag, "dup-b", {"tag": "dup"})
    dep.services.wait_for_task_state(dag, waiter_run, "slow", ("deferred",), timeout=120)
    states = dep.services.wait_for_runs(dag, [producer_run, waiter_run], timeout=300)
    assert states == {producer_run: "success", waiter_run: "success"}
    producer = records.read_record(AttemptId(dag, producer_run, "slow").step_run_id, dep.store)
    waiter = records.read_record(AttemptId(dag, waiter_run, "slow").step_run_id, dep.store)
    assert (waiter["status"], waiter["reused_from"]) == ("Reused", producer["step_run_id"])
    ready = dt.datetime.fromisoformat(producer["finished_at"])
    decided = StepHistory(dag, "slow", dep.store).find(waiter["step_run_id"])
    assert decided is not None
    waited = (dt.datetime.fromisoformat(decided.decided_at) - ready).total_seconds()
    assert 0 < waited < 5, f"the waiter decided again {waited:.1f} s after the result was ready"
    log = dep.services.task_log(dag, waiter_run, "slow", 1)
    assert f"step run {producer['step_run_id']}" in log and "waits for it" in log, log[-2000:]
    assert not _error_lines(log)


def _backfilled(dep: Deployment) -> list[str]:
    """Executions of the backfilled days (the scheduler also runs the latest interval of the @daily DAG)."""
    return sorted(line for line in dep.executions_of("daily") if line.split()[0].split(":")[1] in DAYS)


def _error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "[error" in line.lower() or '"level": "error"' in line.lower()]


def test_the_connection_test_button_works_for_a_datastore_made_in_the_form(
    local_deployment: Deployment, tmp_path: Path
) -> None:
    """What the UI's connection form sends: the URL in the (relabelled) Host field, empty extra fields as null."""
    dep, folder = local_deployment, tmp_path / "team-store"
    body = {
        "connection_id": "team_store",
        "conn_type": "mlpipe_datastore",
        "description": "the team's shared datastore",
        "host": folder.as_uri(),
        "port": None,
        "extra": json.dumps(dict.fromkeys(("endpoint_url", "region_name", "connection_string", "sas_token"))),
    }
    dep.services.api("POST", "/connections", body)
    answer = dep.services.api("POST", "/connections/test", body)
    assert answer["status"] is False and f"{folder} does not exist; create it or fix the path" in answer["message"]
    assert not folder.exists()  # testing never creates the folder
    folder.mkdir()
    answer = dep.services.api("POST", "/connections/test", body)
    assert answer == {
        "status": True,
        "message": f"The datastore at {folder.as_uri()} is reachable: its root can be listed",
    }
