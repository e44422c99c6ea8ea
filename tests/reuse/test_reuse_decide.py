"""The reuse decision: a hit only for outputs that still exist, are complete and match their manifests."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_mlpipe.reuse.decide import ReusePolicy, decide, find_reusable
from airflow_mlpipe.reuse.history import StepHistory
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.indexing import index_run, unindexable
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.reuse_helpers import (
    committed_output,
    fingerprint,
    history_entry,
    index_completed,
    output_spec,
    use_default_store,
)

RUN = "d.r1.t"


@pytest.fixture(params=["local", "azurite"])
def default_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Datastore]:
    yield from use_default_store(request, monkeypatch, tmp_path)


def _indexed(store: Datastore, tmp_path: Path) -> tuple[str, dict]:
    """A fingerprint whose run committed output ``model`` under ``out/m`` and was indexed; (key, output)."""
    output = committed_output(store, "model", "out/m", {"model.json": "{}", "sub/w": "01"}, tmp_path)
    fp = fingerprint()
    index_completed(store, fp, RUN, [output])
    return fp.digest, output


def test_a_complete_earlier_output_is_a_hit(default_store: Datastore, tmp_path: Path) -> None:
    _, output = _indexed(default_store, tmp_path)
    decision = decide(fingerprint(), step_run_id="d.r2.t", index=ReuseIndex(default_store))
    assert decision.hit and decision.reused_from == RUN and decision.reason == "hit"
    assert decision.entry is not None and decision.entry.outputs[0]["path"] == output["path"]
    assert f"reused the outputs of step run {RUN}" in decision.explanation[0]
    assert decision.to_dict()["reused_from"] == RUN


DAMAGE: dict[str, tuple[Callable[[Datastore], None], str]] = {
    "folder gone": (lambda s: s.delete("out/m", recursive=True), "earlier outputs are gone (out/m missing)"),
    "file gone": (lambda s: s.delete("out/m/sub/w"), "earlier outputs are gone (out/m/sub/w missing)"),
    "size": (
        lambda s: s.write_text("out/m/sub/w", "012"),
        "earlier output model changed since (out/m/sub/w has another size)",
    ),
    "marker gone": (
        lambda s: s.clear_complete("out/m"),
        "earlier output model is incomplete (out/m has no completion marker)",
    ),
    "overwritten": (
        lambda s: s.mark_complete("out/m", {"digest": "x"}),
        "earlier output model was overwritten since (out/m holds other content)",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_outputs_are_a_miss_and_the_entry_is_dropped(
    default_store: Datastore, tmp_path: Path, damage: str
) -> None:
    key, _ = _indexed(default_store, tmp_path)
    harm, expected = DAMAGE[damage]
    harm(default_store)
    decision = decide(fingerprint(), step_run_id="d.r2.t", index=ReuseIndex(default_store))
    assert not decision.hit and decision.reason == "stale"
    assert decision.explanation[0] == expected
    assert ReuseIndex(default_store).get(key) is None


def test_same_size_other_content_is_caught_on_every_store(default_store: Datastore, tmp_path: Path) -> None:
    """A same-size rewrite in place is seen: locally by the content hash (the stat cache re-hashes only files
    whose stat changed), on object stores by the MD5 or ETag their listing carries."""
    _indexed(default_store, tmp_path)
    default_store.write_text("out/m/sub/w", "10")
    lookup = find_reusable(ReuseIndex(default_store), fingerprint().digest)
    assert lookup.reason == "stale" and "has other content" in str(lookup.problem)


def test_reuse_ttl(default_store: Datastore, tmp_path: Path) -> None:
    key, _ = _indexed(default_store, tmp_path)
    index = ReuseIndex(default_store)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    assert find_reusable(index, key, ttl=3600 * 3, now=later).entry is not None
    expired = decide(fingerprint(), step_run_id="x", index=index, policy=ReusePolicy(ttl=3600), now=later)
    assert not expired.hit and expired.reason == "expired"
    assert "older than reuse_ttl (3600 s)" in expired.explanation[0]
    assert index.get(key) is not None  # kept: a step with a longer ttl may still use it


def test_a_corrupt_entry_is_ignored_with_a_warning_and_overwritten(
    default_store: Datastore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key, output = _indexed(default_store, tmp_path)
    index = ReuseIndex(default_store)
    default_store.write_text(index.path(key), '{"format": 1, "key": ')
    with caplog.at_level(logging.WARNING):
        decision = decide(fingerprint(), step_run_id="d.r2.t", index=index)
    assert not decision.hit and decision.reason == "corrupt"
    assert decision.explanation[0].startswith("the reuse index entry for this key is corrupt")
    assert f"ignoring the reuse index entry {key}" in caplog.text
    index_completed(default_store, fingerprint(), "d.r2.t", [output])
    assert decide(fingerprint(), step_run_id="d.r3.t", index=index).reused_from == "d.r2.t"


@pytest.mark.parametrize(
    ("policy", "line"),
    [
        pytest.param(ReusePolicy(allow_reuse=False), "reuse disabled (allow_reuse=False)", id="disabled"),
        pytest.param(ReusePolicy(regenerate=True), "regenerate_outputs requested in the trigger conf", id="regenerate"),
    ],
)
def test_disabled_and_regenerate_always_miss(
    default_store: Datastore, tmp_path: Path, policy: ReusePolicy, line: str
) -> None:
    _indexed(default_store, tmp_path)
    decision = decide(fingerprint(), step_run_id="x", index=ReuseIndex(default_store), policy=policy)
    assert not decision.hit and decision.explanation == (line,)


def test_a_miss_is_compared_with_the_nearest_earlier_run(default_store: Datastore, tmp_path: Path) -> None:
    history = StepHistory("d", "t", default_store)
    index = ReuseIndex(default_store)
    first = decide(fingerprint(), step_run_id="d.r1.t", index=index, history=history)
    assert first.explanation == ("no earlier run of this step",) and first.compared_with is None
    history.add(history_entry(fingerprint(), "d.r1.t"))
    # the earlier run had the same key but left nothing to reuse (it failed)
    same = decide(fingerprint(), step_run_id="d.r2.t", index=index, history=history)
    assert same.compared_with == "d.r1.t"
    assert same.explanation[0].startswith("the earlier run d.r1.t had the same reuse key but left no reusable outputs")
    changed = fingerprint(arguments=[{"t": "param", "name": "learning_rate", "value": 0.2}])
    assert decide(changed, step_run_id="d.r2.t", index=index, history=history).explanation == (
        "parameter learning_rate 0.1 → 0.2",
    )


def test_only_complete_and_registered_runs_are_indexed(default_store: Datastore, tmp_path: Path) -> None:
    output = committed_output(default_store, "model", "out/m", {"m": "1"}, tmp_path)
    fp = fingerprint(outputs=[output_spec("model", registration="models")])
    record = {"step_run_id": RUN, "dag_id": "d", "task_id": "t", "status": "Completed", "outputs": [output]}
    assert unindexable(fp.key, record) == "output model was not registered as dataset 'models'"
    assert index_run(ReuseIndex(default_store), fp.key, record) is None
    registered = {**output, "registered": {"name": "models", "version": 1, "created": True}}
    assert unindexable(fp.key, {**record, "status": "Failed", "outputs": [registered]}) == "its status is 'Failed'"
    default_store.clear_complete(output["path"])
    assert "is not complete" in str(unindexable(fp.key, {**record, "outputs": [registered]}))
