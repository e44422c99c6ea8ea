"""The same sweep on Azurite and moto's S3: listings report times their own way and deletes go in batched
requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_mlpipe.gc import GcSettings, collect_garbage, make_plan
from airflow_mlpipe.reuse.decide import find_reusable
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore, make_s3_datastore
from tests.datasets.conftest import use_as_default
from tests.gc.helpers import Runs, ago


@pytest.fixture(params=["azurite", "moto"])
def object_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Datastore]:
    if request.param == "azurite":
        store = make_azurite_datastore(request.getfixturevalue("azurite"), name="mlpipe_default")
    else:
        store = make_s3_datastore(request.getfixturevalue("moto_s3"), name="mlpipe_default")
    yield use_as_default(monkeypatch, store)
    resolve.clear_cache()


def test_sweep_on_an_object_store(object_store: Datastore, tmp_path: Path) -> None:
    store = object_store
    made = Runs(store, tmp_path)
    old = made.make("train", "fit", "r1", created=ago(days=60))
    failed = made.make("train", "fit", "r2", created=ago(days=55), status=records.FAILED)
    new = made.make("train", "fit", "r3", created=ago(days=5))
    plan = make_plan(store, GcSettings.of(older_than="30d"))
    assert plan.swept_runs == {old.srid, failed.srid}
    assert not [i for i in plan.items if i.kind == "snapshot"]  # just written: within the grace period

    report = collect_garbage(GcSettings.of(older_than="30d"))

    assert report.errors == [] and report.deleted == len(plan.items)
    for run in (old, failed):
        assert not store.list(records.run_folder(run.srid), recursive=True)
        assert not store.list(run.output_path, recursive=True)
    assert find_reusable(ReuseIndex(store), old.fp.digest).reason == "no_entry"
    assert find_reusable(ReuseIndex(store), new.fp.digest).entry is not None
