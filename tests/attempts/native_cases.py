"""Airflow-native runs on a real scheduler (collected in test_attempts_local.py, on its deployment): a
backfill computes each day (its argument and destination are templated), a repeat backfill reuses every day, the
trigger form's "regenerate outputs" computes anew, a waiting duplicate resumes soon after its result is ready, and
a successful step logs no error."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.reuse.history import StepHistory
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps import records
from tests.attempts.conftest import Deployment
from tests.browser import signed_in_page

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
    # ... in the browser too
    tab = f"{dep.services.url}/dags/{DAILY}/runs/{quote(runs[0], safe='')}/tasks/daily/rendered_templates"
    with signed_in_page(dep.services.url, *dep.services.admin_password) as page:
        page.goto(tab)
        page.get_by_text("arguments", exact=True).first.wait_for()
        page.get_by_text(rendered["arguments"][1]).first.wait_for()
        text = page.locator("main").inner_text() if page.locator("main").count() else page.inner_text("body")
        assert "{{ ds }}" not in text and "days/{{" not in text, text[-2000:]


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
    log = dep.services.task_log(dag, waiter_run, "slow", 1)
    ((seen_at, previous_look),) = re.findall(r"seen by the triggerer at (\S+); its look before began at (\S+)\)", log)
    # The trigger's own poll (every 2 s) saw the result: what used to take 29-34 s. Not a wall-time bound (a loaded
    # machine stretches every poll): the look before the one that saw the entry began before the entry was written,
    # so no look missed it.
    written = dt.datetime.fromtimestamp(dep.store.info(ReuseIndex.path(producer["reuse"]["key"]))["mtime"], dt.UTC)
    seen = dt.datetime.fromisoformat(seen_at)
    if previous_look == "-":  # the trigger's first look saw it (the producer finished while the waiter deferred)
        assert written < seen, f"looked at {seen_at}; the entry was written at {written}"
    else:
        previous = dt.datetime.fromisoformat(previous_look)
        assert previous < written < seen, f"looked at {previous_look} and {seen_at}; the entry was written at {written}"
    waited = (dt.datetime.fromisoformat(decided.decided_at) - ready).total_seconds()
    assert (seen - ready).total_seconds() <= waited, (
        f"the waiter decided again {waited:.1f} s after the result was ready"
    )
    assert f"step run {producer['step_run_id']}" in log and "waits for it" in log, log[-2000:]
    assert not _error_lines(log)


def _backfilled(dep: Deployment) -> list[str]:
    """Executions of the backfilled days (the scheduler also runs the latest interval of the @daily DAG)."""
    return sorted(line for line in dep.executions_of("daily") if line.split()[0].split(":")[1] in DAYS)


def _error_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if "[error" in line.lower() or '"level": "error"' in line.lower()]


def _form_body(conn_id: str, host: str, **extra: Any) -> dict[str, Any]:
    """What the UI's connection form saves and its Test button sends: the URL in the (relabelled) Host field, every
    extra field (empty ones as null), and for Test the unused fields as "" and the hidden port as 0."""
    fields = dict.fromkeys(("endpoint_url", "region_name", "connection_string", "sas_token", "storage_options"))
    fields.update(extra)
    return {
        "connection_id": conn_id,
        "conn_type": "mlpipe_datastore",
        "description": "the team's shared datastore",
        "host": host,
        "login": "",
        "password": "",
        "schema": "",
        "port": 0,
        "extra": json.dumps(fields),
    }


def test_the_connection_test_button_works_for_a_datastore_made_in_the_form(
    local_deployment: Deployment, tmp_path: Path
) -> None:
    dep, folder = local_deployment, tmp_path / "team-store"
    body = _form_body("team_store", folder.as_uri(), region_name="")
    dep.services.api("POST", "/connections", {**body, "port": None})
    stored = dep.services.api("GET", "/connections/team_store")
    assert json.loads(stored["extra"]) == {}  # the empty fields are not saved as nulls
    answer = dep.services.api("POST", "/connections/test", body)
    assert answer == {
        "status": False,
        "message": f"datastore 'team_store': the folder {folder} does not exist; create it or fix the path in the "
        "connection's url",
    }
    assert not folder.exists()  # testing never creates the folder
    folder.mkdir()
    answer = dep.services.api("POST", "/connections/test", body)
    assert answer == {
        "status": True,
        "message": f"The datastore 'team_store' ({folder.as_uri()}) is reachable: its root can be listed",
    }


def test_a_datastore_that_could_never_work_is_refused_at_save(local_deployment: Deployment) -> None:
    """A 400 naming the connection and the field, and nothing saved; other connection types are left alone."""
    dep = local_deployment
    cases = {
        "": "connection 'broken_store': the Datastore URL is required; enter where the data lives",
        "data/store": "connection 'broken_store': the Datastore URL 'data/store' has no scheme",
        "ftp2://box/data": "'broken_store': url 'ftp2://box/data' has scheme 'ftp2://', which is not supported",
    }
    for host, expected in cases.items():
        status, answer = dep.services.api_status("POST", "/connections", _form_body("broken_store", host))
        assert status == 400 and expected in answer["detail"], (host, answer)
    status, answer = dep.services.api_status(
        "POST", "/connections", _form_body("broken_store", "file:///data", storage_options="{not json")
    )
    assert status == 400 and "broken_store" in answer["detail"] and "storage options" in answer["detail"], answer
    status, _ = dep.services.api_status("GET", "/connections/broken_store")
    assert status == 404
    # Editing a saved datastore is checked the same way
    dep.services.api("POST", "/connections", _form_body("edited_store", "file:///data"))
    status, answer = dep.services.api_status("PATCH", "/connections/edited_store", _form_body("edited_store", ""))
    assert status == 400 and "'edited_store': the Datastore URL is required" in answer["detail"]
    assert dep.services.api("GET", "/connections/edited_store")["host"] == "file:///data"
    # Another type's connection saves as Airflow saves it, nulls and all
    other = {"connection_id": "plain_http", "conn_type": "http", "extra": json.dumps({"a": None})}
    dep.services.api("POST", "/connections", other)
    assert json.loads(dep.services.api("GET", "/connections/plain_http")["extra"]) == {"a": None}


def test_the_connection_form_in_a_real_browser(local_deployment: Deployment, tmp_path: Path) -> None:
    """Admin → Connections → Add, as a user does it: the URL is the first field of the form, a URL that could
    never work is refused with the reason shown in the form, the saved extra holds no nulls, and the list's Test
    button reports on the connection by its id without creating the missing folder."""
    dep, folder = local_deployment, tmp_path / "browser-store"
    with signed_in_page(dep.services.url, *dep.services.admin_password) as page:
        page.goto(dep.services.url + "/connections")
        page.get_by_role("button", name="Add Connection").first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_role("combobox").click()
        page.keyboard.type("ML pipeline")
        page.get_by_role("option", name="ML pipeline datastore").click()
        url_field = dialog.get_by_label("Datastore URL (required)")
        url_field.wait_for()
        labels = [label.inner_text().strip() for label in dialog.locator("label").all()]
        standard = labels[labels.index("Description") :]
        assert standard[:2] == ["Description", "Datastore URL (required)"], labels
        assert not any(label.startswith("Port") or label.startswith("Schema") for label in labels), labels
        dialog.get_by_label("Connection ID").fill("browser_store")
        dialog.get_by_label("Description").fill("made in the browser")
        url_field.fill("data/store")
        dialog.get_by_role("button", name="Save").click()
        dialog.get_by_text("has no scheme; write it as az://container/prefix").wait_for()
        url_field.fill(folder.as_uri())
        dialog.get_by_role("button", name="Save").click()
        dialog.wait_for(state="hidden")
        stored = dep.services.api("GET", "/connections/browser_store")
        assert (stored["host"], stored["description"], json.loads(stored["extra"] or "{}")) == (
            folder.as_uri(),
            "made in the browser",
            {},
        )
        row = page.get_by_role("row").filter(has_text="browser_store")
        row.get_by_role("button", name="Test Connection").click()
        page.get_by_text(f"datastore 'browser_store': the folder {folder} does not exist").wait_for()
        assert not folder.exists()
        folder.mkdir()
        row.get_by_role("button", name="Test Connection").click()
        page.get_by_text(f"The datastore 'browser_store' ({folder.as_uri()}) is reachable").wait_for()


def test_the_trigger_form_has_typed_parameters_and_regenerate(local_deployment: Deployment) -> None:
    """Trigger from the UI's form: a choice, number fields with their descriptions, a "Regenerate outputs"
    switch; the values chosen reach the run's conf and the step's arguments."""
    dep = local_deployment
    with signed_in_page(dep.services.url, *dep.services.admin_password) as page:
        page.goto(f"{dep.services.url}/dags/native_form")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Run Parameters").wait_for()
        mode = dialog.locator("#element_mode")
        assert mode.get_by_role("combobox").count() == 1 and "fast" in mode.inner_text()
        pause, epochs = (dialog.locator(f"input[name=element_{name}]") for name in ("pause", "epochs"))
        assert (pause.get_attribute("role"), pause.input_value()) == ("spinbutton", "0.5")
        assert (epochs.get_attribute("role"), epochs.input_value()) == ("spinbutton", "3")
        dialog.get_by_text("seconds to wait").wait_for()  # the parameter's description
        regenerate = dialog.locator("input[name=element_regenerate_outputs]")
        assert regenerate.get_attribute("type") == "checkbox" and not regenerate.is_checked()
        dialog.get_by_text("Compute every mlpipe step of this run anew").wait_for()
        epochs.fill("7")
        dialog.locator("#switch\\:element_regenerate_outputs").click()
        assert regenerate.is_checked()
        dialog.get_by_role("button", name="Trigger").last.click()
        dialog.wait_for(state="hidden")
    (run,) = dep.services.api("GET", "/dags/native_form/dagRuns")["dag_runs"]
    assert run["conf"] == {"mode": "fast", "pause": 0.5, "epochs": 7, "regenerate_outputs": True}, run["conf"]
    run_id = run["dag_run_id"]
    assert dep.services.wait_for_runs("native_form", [run_id], timeout=300)[run_id] == "success"
    record = records.read_record(AttemptId("native_form", run_id, "typed").step_run_id, dep.store)
    params = {
        arg["name"]: arg["value"] for arg in record["arguments"] if isinstance(arg, dict) and arg.get("kind") == "param"
    }
    assert params == {"mode": "fast", "pause": 0.5, "epochs": 7}, record["arguments"]
    assert record["reuse"]["decision"]["reason"] == "regenerate"
