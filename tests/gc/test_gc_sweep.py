"""The sweep: it deletes exactly what the plan lists, reuse index entries first, so that a rerun of a swept step
is a miss (never a hit on missing files); an interrupted gc or two at once leave a consistent store."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.gc import GcSettings, collect_garbage, make_plan
from airflow_mlpipe.gc import sweep as sweep_module
from airflow_mlpipe.gc.sweep import sweep
from airflow_mlpipe.reuse.decide import ReusePolicy, decide
from airflow_mlpipe.reuse.history import StepHistory
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import download_snapshot, pack_path, tree_path
from airflow_mlpipe.storage.datastore import Datastore
from tests.gc.helpers import MadeRun, Runs, age_files, ago, files, under

OLD = GcSettings.of(older_than="30d")


def _decide(store: Datastore, run: MadeRun, new: str = "rerun"):
    return decide(
        run.fp,
        step_run_id=new,
        index=ReuseIndex(store),
        policy=ReusePolicy(),
        history=StepHistory(run.spec.dag_id, run.spec.task_id, store),
    )


def _store_with_runs(store: Datastore, runs: Runs) -> tuple[MadeRun, MadeRun, MadeRun, MadeRun]:
    old = runs.make("train", "fit", "r1", created=ago(days=60), source="print('old')")
    failed = runs.make("train", "fit", "r2", created=ago(days=55), status=records.FAILED, source="print('old')")
    registered = runs.make("train", "fit", "r3", created=ago(days=50), register="model_v", source="print('reg')")
    recent = runs.make("train", "fit", "r4", created=ago(days=5), source="print('new')")
    age_files(store, days=60)
    return old, failed, registered, recent


def test_dry_run_deletes_nothing(store: Datastore, runs: Runs) -> None:
    _store_with_runs(store, runs)
    before = files(store)

    report = collect_garbage(GcSettings.of(older_than="30d", dry_run=True))

    assert report.dry_run and report.plan.items and report.deleted == 0
    assert files(store) == before


def test_sweep_removes_exactly_the_plan_and_reuse_still_works(store: Datastore, runs: Runs) -> None:
    old, failed, registered, recent = _store_with_runs(store, runs)
    before = files(store)
    plan = make_plan(store, OLD)
    planned = under(before, [p for item in plan.items for p in item.paths])

    report = sweep(plan, store)

    assert report.errors == [] and report.deleted == len(plan.items)
    assert files(store) == before - planned
    assert report.bytes_reclaimed == plan.bytes > 0
    assert not store.exists(f"dataset/{old.srid}") and not store.exists(records.run_folder(old.srid))
    assert not store.exists(f"dataset/{failed.srid}")  # its files and its staging leftovers
    # the registered version still reads back and verifies, though its step run is older than 30 days
    version = DatasetRegistry(store).get("model_v")
    assert version.lineage["step_run_id"] == registered.srid
    assert store.read_marker(registered.output_path)["digest"] == version.manifest.digest
    assert _decide(store, registered).hit
    # a rerun of the swept run computes (a miss that says why), a rerun of the kept one reuses
    miss = _decide(store, old)
    assert not miss.hit and miss.reason == "no_entry" and miss.explanation
    assert _decide(store, recent).hit


def test_a_hit_on_outputs_deleted_behind_its_back_is_a_miss(store: Datastore, runs: Runs) -> None:
    """A store's own lifecycle rule (or a gc killed between its steps) removed outputs but not the entry."""
    old, *_ = _store_with_runs(store, runs)
    store.delete(old.output_path, recursive=True)

    decision = _decide(store, old)

    assert not decision.hit and decision.reason == "stale"
    assert "gone" in decision.explanation[0] or "incomplete" in decision.explanation[0]


def test_an_interrupted_gc_is_finished_by_the_next(
    store: Datastore, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, _, registered, recent = _store_with_runs(store, runs)
    before = files(store)
    expected = before - under(before, [p for i in make_plan(store, OLD).items for p in i.paths])
    real = sweep_module._delete_items

    def killed_after_the_index(items, stores, report, *, batch_size):  # type: ignore[no-untyped-def]
        if items and items[0].kind != "reuse index entry":
            raise KeyboardInterrupt("killed")
        return real(items, stores, report, batch_size=batch_size)

    monkeypatch.setattr(sweep_module, "_delete_items", killed_after_the_index)
    with pytest.raises(KeyboardInterrupt):
        collect_garbage(OLD)
    monkeypatch.setattr(sweep_module, "_delete_items", real)

    # consistent meanwhile: the swept run is still on record, but no decision can reuse it
    assert store.exists(records.record_path(old.srid)) and not store.exists(ReuseIndex.path(old.fp.digest))
    assert not _decide(store, old).hit

    report = collect_garbage(OLD)

    assert report.errors == []
    assert files(store) == expected
    assert _decide(store, recent).hit and _decide(store, registered).hit


def test_two_gcs_at_once_do_not_trip(store: Datastore, runs: Runs) -> None:
    _store_with_runs(store, runs)
    before = files(store)
    first, second = make_plan(store, OLD), make_plan(store, OLD)

    one, two = sweep(first, store), sweep(second, store)

    assert one.errors == [] and two.errors == []
    assert files(store) == before - under(before, [p for i in first.items for p in i.paths])


def test_a_swept_run_or_snapshot_used_meanwhile_is_spared(store: Datastore, runs: Runs) -> None:
    old, *_ = _store_with_runs(store, runs)
    plan = make_plan(store, OLD)
    # after the plan, a new step run reuses the old run's outputs (its Reused record names it)
    hit = _decide(store, old, new="new-run")
    assert hit.hit
    reusing = runs.make("train", "fit", "r9", created=ago(minutes=1), status=records.RUNNING, source="print('old')")
    records.write_record({**reusing.record, "status": records.REUSED, "reused_from": old.srid}, store)
    assert [i.kind for i in plan.items].count("snapshot") == 1  # the old runs' snapshot, which r9 uses too

    report = sweep(plan, store)

    assert any(old.srid in line for line in report.spared)
    assert any(old.spec.snapshot in line for line in report.spared) and store.exists(tree_path(str(old.spec.snapshot)))
    assert store.is_complete(old.output_path) and store.exists(records.record_path(old.srid))
    assert not store.exists(ReuseIndex.path(old.fp.digest))  # no new hit on it: the next success indexes anew


def test_gc_racing_a_pipeline_loses_nothing_it_needs(store: Datastore, runs: Runs) -> None:
    """Steps start, reuse and commit on a thread while gc plans and sweeps on this one."""
    old, _, registered, recent = _store_with_runs(store, runs)
    made: list[MadeRun] = []
    decisions: list[bool] = []
    failures: list[BaseException] = []

    def pipeline() -> None:
        try:
            for n in range(4):
                made.append(runs.make("train", "fit", f"live{n}", created=ago(seconds=1), source="print('new')"))
                decisions.append(_decide(store, recent, new=f"live{n}").hit)
        except BaseException as exc:  # reported below
            failures.append(exc)

    worker = threading.Thread(target=pipeline)
    worker.start()
    report = collect_garbage(OLD)
    worker.join()

    assert failures == [] and report.errors == [] and all(decisions)
    for run in [*made, registered, recent]:
        assert store.is_complete(run.output_path) and store.exists(records.record_path(run.srid))
        assert _decide(store, run, new="after").hit
    assert store.exists(tree_path(str(made[0].spec.snapshot)))
    assert not store.exists(records.record_path(old.srid)) or old.srid in " ".join(report.spared)


def test_a_snapshot_stored_again_during_the_sweep_keeps_its_pack(
    store: Datastore, runs: Runs, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    old, *_ = _store_with_runs(store, runs)
    plan = make_plan(store, OLD)
    real = sweep_module._delete_items

    def and_a_step_stores_it(items, stores, report, *, batch_size):  # type: ignore[no-untyped-def]
        kept = real(items, stores, report, batch_size=batch_size)
        if items and items[0].kind == "snapshot" and items[0].paths[-1].endswith(".json"):
            runs.snapshot("print('old')")  # finds no record: writes it again (its pack is still there)
        return kept

    monkeypatch.setattr(sweep_module, "_delete_items", and_a_step_stores_it)
    report = sweep(plan, store)

    digest = str(old.spec.snapshot)
    assert any("stored again" in line and digest in line for line in report.spared)
    assert download_snapshot(digest, store, str(tmp_path / "fetched")).digest == digest


def test_a_snapshot_left_half_deleted_is_finished(store: Datastore, runs: Runs) -> None:
    old, *_ = _store_with_runs(store, runs)
    store.delete(tree_path(str(old.spec.snapshot)))  # a gc killed between the record and the pack

    report = collect_garbage(OLD)

    assert report.errors == [] and not store.exists(pack_path(str(old.spec.snapshot)))
