"""The plan: which step runs stay (the roots) and what else is garbage, decided from the records alone."""

from __future__ import annotations

import json

import pytest

from airflow_mlpipe.gc import GcSettings, make_plan
from airflow_mlpipe.gc.model import parse_duration
from airflow_mlpipe.gc.scan import FilesUnder
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import Leases
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.paged import newest_first_name
from tests.gc.helpers import Runs, age_files, ago


def _swept(plan) -> set[str]:
    return plan.swept_runs


def test_roots_keep_registered_recent_and_grace_runs(store: Datastore, runs: Runs) -> None:
    old = runs.make("train", "fit", "r1", created=ago(days=60))
    registered = runs.make("train", "fit", "r2", created=ago(days=50), register="model_v")
    recent = runs.make("train", "fit", "r3", created=ago(days=5), source="print('v2')")
    fresh = runs.make("train", "fit", "r4", created=ago(minutes=10), source="print('v2')")
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="30d"))

    assert _swept(plan) == {old.srid}
    paths = {p for item in plan.items for p in item.paths}
    assert ReuseIndex.path(old.fp.digest) in paths
    assert f"{old.output_path}/part-0.csv" in paths and not any(registered.srid in p for p in paths)
    assert not any(recent.srid in p or fresh.srid in p for p in paths)
    kinds = {item.kind for item in plan.items if item.step_run_id == old.srid}
    assert kinds == {"reuse index entry", "history entry", "run summary", "output", "step run"}
    assert plan.kept == {
        "newer than 30d": 1,
        "within the grace period": 1,
        "produced a registered dataset version": 1,
    }
    # the snapshot of r1 and r2 stays: the registered run is kept and uses it
    assert not [i for i in plan.items if i.kind == "snapshot"]
    # the reuse index entry comes before the output it points at
    order = [i.kind for i in plan.items]
    assert order.index("reuse index entry") < order.index("output") < order.index("step run")


def test_keep_last_counts_dag_runs_of_each_task_and_skips_failures(store: Datastore, runs: Runs) -> None:
    made = [runs.make("train", "fit", f"r{n}", created=ago(days=60 - n)) for n in range(3)]
    failed = runs.make("train", "fit", "r9", created=ago(days=40), status=records.FAILED)
    other_task = runs.make("train", "score", "r0", created=ago(days=60))
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="30d", keep_last=2))

    assert _swept(plan) == {made[0].srid, failed.srid}
    assert plan.kept == {"among the last 2 of its task": 3}
    assert other_task.srid not in _swept(plan)
    leftovers = {i.kind for i in plan.items if i.step_run_id == failed.srid}
    assert {"output", "staging leftover", "step run"} <= leftovers


def test_dag_filter_leaves_other_dags_alone(store: Datastore, runs: Runs) -> None:
    mine = runs.make("train", "fit", "r1", created=ago(days=60))
    theirs = runs.make("score", "fit", "r1", created=ago(days=60), source="print('other')")
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="30d", dag_id="train"))

    assert _swept(plan) == {mine.srid}
    assert {i.dag_id for i in plan.items} <= {"train", None}
    assert not any(theirs.srid in p for i in plan.items for p in i.paths)
    snapshots = [i for i in plan.items if i.kind == "snapshot"]
    assert [s.rule for s in snapshots] == ["used by swept step runs only"]
    assert not [i for i in plan.items if i.kind == "content object"]


def test_held_lease_and_running_dag_run_are_kept(store: Datastore, runs: Runs) -> None:
    leased = runs.make("train", "fit", "r1", created=ago(days=60))
    running = runs.make("train", "fit", "r2", created=ago(days=2), status=records.RUNNING)
    sibling = runs.make("train", "prep", "r2", created=ago(days=3))
    stale = runs.make("train", "fit", "r0", created=ago(days=61))
    lease = Leases(store).acquire(leased.fp.digest, "holder", info={"step_run_id": leased.srid, "dag_id": "train"})
    assert lease is not None
    old_lease = Leases(store).acquire(stale.fp.digest, "gone", info={"dag_id": "train"})
    assert old_lease is not None
    old_lease.release()
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="1d"))

    assert _swept(plan) == {stale.srid}
    assert ReuseIndex.path(leased.fp.digest) not in {p for i in plan.items for p in i.paths}
    assert plan.kept["holds a lease"] == 1
    assert plan.kept["unfinished (may still be running)"] == 1
    assert plan.kept["its DAG run is still running"] == 1
    assert [i.paths for i in plan.items if i.kind == "lease"] == [(Leases.folder(stale.fp.digest),)]
    assert running.srid not in _swept(plan) and sibling.srid not in _swept(plan)


def test_a_record_that_failed_its_seal_is_not_taken(store: Datastore, runs: Runs) -> None:
    """A record a step script rewrote (as Reused, so that gc would leave the run's output folder alone) is refused:
    gc judges the run by its spec, and collects its output as any old run's."""
    old = runs.make("train", "fit", "r1", created=ago(days=60))
    path = records.record_path(old.srid)
    store.write_bytes(path, json.dumps({**store.read_json(path), "status": records.REUSED}).encode())
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="30d"))

    assert old.srid in _swept(plan)
    assert f"{old.output_path}/part-0.csv" in {p for item in plan.items for p in item.paths}


def test_a_kept_run_keeps_what_it_read_and_reused(store: Datastore, runs: Runs) -> None:
    producer = runs.make("train", "prep", "r1", created=ago(days=60))
    source = runs.make("train", "fit", "r1", created=ago(days=60))
    reader = runs.make("train", "score", "r2", created=ago(days=5), reads=producer)
    reused = runs.make("train", "fit", "r2", created=ago(days=5), status=records.RUNNING)
    records.write_record({**reused.record, "status": records.REUSED, "reused_from": source.srid}, store)
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="30d"))

    assert plan.swept_runs == set()
    assert plan.kept["read by a kept step run"] == 1 and plan.kept["reused by a kept step run"] == 1
    assert reader.srid not in plan.swept_runs


def test_pointers_to_swept_or_gone_runs_and_nothing_else(store: Datastore, runs: Runs) -> None:
    old = runs.make("train", "fit", "r1", created=ago(days=60))
    lineage = f"_mlpipe/index/lineage/raw/1/{newest_first_name(ago(days=60), old.srid)}"
    gone = f"_mlpipe/index/runs/all/{newest_first_name(ago(days=70), 'train.r0.fit.t1.0123456789ab')}"
    other = f"_mlpipe/index/models/{newest_first_name(ago(days=70), 'some-model')}"
    mine = "notes/2024/000_keep.json"  # written by someone else, under no mlpipe record
    for path in (lineage, gone, other, mine):
        store.write_json(path, {})
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="30d"))

    by_path = {p: i for i in plan.items for p in i.paths}
    assert by_path[lineage].kind == "lineage entry" and by_path[lineage].rule == "points at a swept step run"
    assert by_path[gone].kind == "run summary" and by_path[gone].rule == "points at a step run that is gone"
    assert other not in by_path and mine not in by_path


def test_unreferenced_snapshots_and_content_objects(store: Datastore, runs: Runs) -> None:
    old = runs.make("train", "fit", "r1", created=ago(days=60), source="print('big')")
    runs.snapshot("print('big')")
    runs.snapshot("print('orphan')", large=True)
    age_files(store, days=60)

    plan = make_plan(store, GcSettings.of(older_than="30d"))

    rules = sorted(i.rule for i in plan.items if i.kind == "snapshot")
    assert rules == ["used by no step run", "used by swept step runs only"]
    assert [i.kind for i in plan.items].count("content object") == 1
    snapshot = next(i for i in plan.items if i.kind == "snapshot" and i.rule.startswith("used by swept"))
    assert snapshot.paths[0].endswith(".json")  # the record (commit point) before the pack
    assert old.srid in plan.swept_runs


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("30d", 30 * 86400, id="days"),
        pytest.param("12h", 12 * 3600, id="hours"),
        pytest.param("90m", 5400, id="minutes"),
        pytest.param("2w", 14 * 86400, id="weeks"),
        pytest.param("45s", 45, id="seconds"),
        pytest.param(45, 45, id="python-number-is-seconds"),
        pytest.param(1.5, 1.5, id="python-float-is-seconds"),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "1.5", " 7 "])
def test_a_text_without_a_unit_is_refused(text: str) -> None:
    """A bare number in a text could be seconds or days: which one is never guessed."""
    with pytest.raises(ValueError, match=f"older_than '{text}' has no unit, and a bare number could mean seconds"):
        GcSettings.of(older_than=text)


@pytest.mark.parametrize("dag_id", ["", "../x", "a b"])
def test_a_dag_id_that_airflow_does_not_allow_is_refused(dag_id: str) -> None:
    """'' never means every DAG: collecting everything is dag_id=None."""
    with pytest.raises(ValueError, match=f"dag_id '{dag_id}' is not a valid DAG id"):
        GcSettings.of(dag_id=dag_id)


def test_a_bad_duration_names_the_fix() -> None:
    with pytest.raises(ValueError, match="'30 days' is not a duration"):
        GcSettings.of(older_than="30 days")


def test_output_files_are_found_with_one_listing_of_a_busy_top_folder(store: Datastore) -> None:
    for path in ("dataset/a/m/x", "dataset/a/m/_MLPIPE_COMPLETE", "dataset/a/m2/y", "dataset/b/m/z", "other/c"):
        store.write_text(path, "1")
    folders = ["dataset/a/m", "dataset/b/m", "dataset/none"]

    whole, alone = FilesUnder(store, folders, whole_from=2), FilesUnder(store, folders, whole_from=99)

    for found in (whole, alone):
        assert [f.path for f in found.files("dataset/a/m")] == ["dataset/a/m/_MLPIPE_COMPLETE", "dataset/a/m/x"]
        assert [f.path for f in found.files("dataset/b/m")] == ["dataset/b/m/z"]
        assert found.files("dataset/none") == []
