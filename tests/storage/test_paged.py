"""Newest-first paged listings on every backend: step run summaries and the reuse history read a page, never all."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_mlpipe.reuse.history import LEGACY_ROOT, HistoryEntry, StepHistory
from airflow_mlpipe.steps import records, run_index
from airflow_mlpipe.steps.run_index import list_runs
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.paged import list_page, newest_first_name

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _record(i: int, *, dag: str = "d", task: str | None = None, spacing_h: float = 7) -> dict[str, Any]:
    at = (BASE + dt.timedelta(hours=i * spacing_h)).isoformat(timespec="milliseconds")
    task = task or f"t{i % 3}"
    return {
        "step_run_id": f"{dag}.r{i:04d}.{task}",
        "dag_id": dag,
        "run_id": f"r{i:04d}",
        "task_id": task,
        "status": records.COMPLETED,
        "created_at": at,
        "started_at": at,
        "metrics": {"m": i},
    }


def _ids(rows: Any) -> list[str]:
    return [str(r["step_run_id"]) for r in rows]


def _all_pages(store: Datastore, limit: int, **scope: Any) -> Iterator[list[str]]:
    token = None
    while True:
        page = list_runs(store, limit=limit, token=token, **scope)
        yield _ids(page.rows)
        if page.next_token is None:
            return
        token = page.next_token


def test_newest_first_names_sort_later_moments_first() -> None:
    names = [newest_first_name(BASE + dt.timedelta(milliseconds=ms), "x") for ms in (0, 1, 86_400_000, 10**11)]
    assert names == sorted(names, reverse=True)
    assert newest_first_name("2026-01-01T00:00:00+00:00", "a") < newest_first_name("2025-12-31T23:59:59+00:00", "a")


def test_pages_are_newest_first_and_complete(datastore: Datastore) -> None:
    for i in range(23):
        records.write_record(_record(i), datastore)
    pages = list(_all_pages(datastore, 5))
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    flat = [srid for page in pages for srid in page]
    assert flat == [_record(i)["step_run_id"] for i in reversed(range(23))]
    task_page = list_runs(datastore, dag_id="d", task_id="t1", limit=4)
    assert _ids(task_page.rows) == [_record(i)["step_run_id"] for i in (22, 19, 16, 13)]
    row = list_runs(datastore, limit=1).rows[0]
    assert row["status"] == "Completed" and row["metrics"] == 1 and row["task_id"] == "t1"


def test_a_page_costs_one_listing_and_at_most_one_batch_of_reads(
    datastore: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(12):
        records.write_record(_record(i), datastore)
    run_index.ensure_indexed(datastore)
    reads: list[list[str]] = []
    real = datastore.read_many

    def counting(paths: Any) -> Any:
        reads.append(list(paths))
        return real(paths)

    monkeypatch.setattr(datastore, "read_many", counting)
    page = list_runs(datastore, limit=10)
    assert len(page.rows) == 10 and page.rows[0]["metrics"] == 1
    if datastore.protocol == "abfs":
        assert reads == [[]]  # Azure lists the summaries' bodies with their names
    else:
        assert [len(r) for r in reads] == [10]


def test_a_rewritten_record_keeps_its_place_and_shows_its_last_status(datastore: Datastore) -> None:
    for i in range(4):
        records.write_record({**_record(i), "status": records.RUNNING}, datastore)
    records.write_record({**_record(1), "status": records.FAILED, "error": "boom"}, datastore)
    rows = list_runs(datastore, limit=10).rows
    assert _ids(rows) == [_record(i)["step_run_id"] for i in (3, 2, 1, 0)]
    assert rows[2]["status"] == records.FAILED and rows[2]["error"] == "boom"


def test_paging_is_stable_under_concurrent_writes(datastore: Datastore) -> None:
    """Runs started while a reader pages through appear before its first page, never inside or between pages: every
    older run is read exactly once."""
    for i in range(30):
        records.write_record(_record(i), datastore)
    stop = threading.Event()

    def writer() -> None:
        i = 1000
        while not stop.is_set() and i < 1040:
            records.write_record(_record(i), datastore)
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        first = list_runs(datastore, limit=4)
        seen = _ids(first.rows)
        token = first.next_token
        while token is not None:
            page = list_runs(datastore, limit=4, token=token)
            seen += _ids(page.rows)
            token = page.next_token
    finally:
        stop.set()
        thread.join()
    older = [srid for srid in seen if not srid.startswith("d.r1")]
    assert older == [_record(i)["step_run_id"] for i in reversed(range(30))]
    assert len(seen) == len(set(seen))


def test_a_corrupt_summary_is_a_row_with_its_error(datastore: Datastore) -> None:
    for i in range(3):
        records.write_record(_record(i), datastore)
    run_index.ensure_indexed(datastore)  # (a reindex would rewrite the summary)
    (broken,) = [p for p in run_index.summary_paths(_record(1)) if "/all/" in p]
    datastore.write_bytes(broken, b"{not json")
    rows = list_runs(datastore, limit=10).rows
    assert _ids(rows) == [_record(i)["step_run_id"] for i in (2, 1, 0)]
    assert rows[1]["status"] is None and "unreadable run summary" in rows[1]["error"]


def test_records_written_before_the_index_are_indexed_once(datastore: Datastore) -> None:
    for i in range(6):  # the layout of today's main: a record folder per step run, no summaries
        record = {k: v for k, v in _record(i).items() if k != "created_at"}
        datastore.write_json(records.record_path(record["step_run_id"]), record)
    page = list_runs(datastore, limit=4)
    assert _ids(page.rows) == [_record(i)["step_run_id"] for i in (5, 4, 3, 2)]
    assert datastore.exists(run_index.INDEXED_MARKER)
    assert run_index.ensure_indexed(datastore) == 0
    assert [r["step_run_id"] for r in records.iter_records(datastore, dag_id="d")][:2] == _ids(page.rows)[:2]


def test_an_unreadable_record_met_while_indexing_is_named_not_dropped_silently(
    datastore: Datastore, caplog: pytest.LogCaptureFixture
) -> None:
    for i in range(3):
        record = _record(i)
        datastore.write_json(records.record_path(record["step_run_id"]), record)
    bad = _record(9)["step_run_id"]
    datastore.write_text(records.record_path(bad), "{not json")
    assert run_index.reindex(datastore) == 3
    assert "1 step run records cannot be read and are listed as rows with their errors" in caplog.text
    assert bad in caplog.text
    assert datastore.read_json(run_index.INDEXED_MARKER)["unreadable"][0].startswith(f"step run {bad}: its record")
    rows = {row["step_run_id"]: row for row in run_index.list_runs(datastore).rows}
    assert len(rows) == 4 and rows[bad]["status"] is None and "is corrupt (it is not JSON" in rows[bad]["error"]


def test_a_page_of_sparse_runs_is_one_listing_on_object_stores(datastore: Datastore) -> None:
    """Runs days apart sit in different day folders: a page still takes them all, in order."""
    for i in range(12):
        records.write_record(_record(i, spacing_h=24 * 9), datastore)
    page = list_page(datastore, run_index.scope_folder(), limit=10)
    assert len(page.paths) == 10 and page.next_token is not None
    assert [p.rsplit("_", 1)[-1] for p in page.paths] == [f"{_record(i)['step_run_id']}.json" for i in range(11, 1, -1)]


# -- the reuse history --------------------------------------------------------------------------------------------
def _entry(srid: str, at: str, run_id: str = "r") -> HistoryEntry:
    return HistoryEntry(srid, "d", run_id, "t", at, "k" * 64, {"c": 1}, {}, {"hit": False})


def test_history_pages_newest_first_and_reads_one_page(datastore: Datastore, monkeypatch: pytest.MonkeyPatch) -> None:
    history = StepHistory("d", "t", datastore)
    for i in range(120):
        at = (BASE + dt.timedelta(minutes=i)).isoformat(timespec="milliseconds")
        history.add(_entry(f"d.r{i:04d}.t", at, run_id=f"r{i:04d}"))
    listed: list[int] = []
    real = datastore.read_many

    def counting(paths: Any) -> Any:
        paths = list(paths)
        listed.append(len(paths))
        return real(paths)

    monkeypatch.setattr(datastore, "read_many", counting)
    assert history.latest().step_run_id == "d.r0119.t"  # type: ignore[union-attr]
    assert history.previous("d.r0120.t").step_run_id == "d.r0119.t"  # type: ignore[union-attr]
    assert sum(listed[1:]) <= 3, listed  # a miss reads its own decision (absent) and the first entries, not a page
    assert history.previous("d.r0119.t").step_run_id == "d.r0118.t"  # type: ignore[union-attr]
    assert history.find("d.r0042.t").run_id == "r0042"  # type: ignore[union-attr]
    assert history.find_run("r0100").step_run_id == "d.r0100.t"  # type: ignore[union-attr]
    assert max(listed) <= 50 and sum(listed) <= 5 * 50


def test_history_of_the_older_layout_is_still_read(datastore: Datastore) -> None:
    folder = f"{LEGACY_ROOT}/d/t"
    for i, stamp in enumerate(["20260101T000001000Z", "20260101T000002000Z"]):
        entry = _entry(f"d.r{i}.t", f"2026-01-01T00:00:0{i + 1}.000+00:00", run_id=f"r{i}")
        datastore.write_bytes(f"{folder}/{stamp}_d.r{i}.t.json", json.dumps(entry.to_dict()).encode())
    history = StepHistory("d", "t", datastore)
    assert history.previous("d.r9.t").step_run_id == "d.r1.t"  # type: ignore[union-attr]
    assert history.find("d.r0.t").run_id == "r0"  # type: ignore[union-attr]
    history.add(_entry("d.r9.t", "2026-01-02T00:00:00.000+00:00", run_id="r9"))
    assert history.latest().step_run_id == "d.r9.t"  # type: ignore[union-attr]
    assert history.previous("d.r10.t").step_run_id == "d.r9.t"  # type: ignore[union-attr]
    assert history.previous("d.r9.t").step_run_id == "d.r1.t"  # type: ignore[union-attr] -- on into the older
