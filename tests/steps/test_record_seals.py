"""Step run records and commit records are sealed: one a step script wrote or changed, or one copied under another
step run, is refused and never acted on (no forged commit is handed on, no claim taken over on a forged status);
records older code wrote are still read. On the local store (and Azurite and moto for the dated upgrade)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_mlpipe import PythonScriptOperator
from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets import seal, seal_dates
from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.datasets.seal import SEAL_FIELD, SEAL_KEY_ENV, sealed_bytes
from airflow_mlpipe.exceptions import TamperedRecordError
from airflow_mlpipe.operators.attempt import StepAttempt
from airflow_mlpipe.runner import claims
from airflow_mlpipe.steps import record_seals, records, run_index
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.ui.views import NotFound, step_run
from tests.conftest import make_azurite_datastore, make_s3_datastore
from tests.security.test_cli_inputs import mlpipe  # noqa: F401 (the fixture: mlpipe ARGS in this process)

DAG_ID, TASK = "seals", "train"


def _srid(try_number: int = 1, run_id: str = "r1") -> str:
    return AttemptId(DAG_ID, run_id, TASK, try_number=try_number).step_run_id


def _stored(store: Datastore, path: str) -> dict[str, Any]:
    return dict(json.loads(store.read_bytes(path)))


def _write_raw(store: Datastore, path: str, data: dict[str, Any]) -> None:
    """What a step script holding the store's credentials can do: write any bytes anywhere."""
    store.write_bytes(path, json.dumps(data).encode())


def _record(srid: str, status: str = records.FAILED) -> dict[str, Any]:
    return {"step_run_id": srid, "dag_id": DAG_ID, "run_id": "r1", "task_id": TASK, "status": status,
            "created_at": "2026-01-01T00:00:00.000+00:00"}  # fmt: skip


def _spec(try_number: int, *, compute: str = "local", output_path: str | None = None) -> StepSpec:
    attempt = AttemptId(DAG_ID, "r1", TASK, try_number=try_number)
    path = output_path or f"dataset/{attempt.step_run_id}/model"
    out = {"name": "model", "datastore": "mlpipe_default", "path": path, "path_template": "dataset/{run-id}/model"}
    return StepSpec(attempt=attempt, outputs=(out,), compute={"kind": compute}, created_at=records.now_iso())


def _commit_output(store: Datastore, path: str, text: str) -> dict[str, Any]:
    store.write_text(f"{path}/model.txt", text)
    return {"name": "model", "datastore": store.name, "path": path, "uri": store.uri(path),
            "manifest": Manifest.of([]).to_dict()}  # fmt: skip


# -- record.json ------------------------------------------------------------------------------------------------
def test_a_record_is_sealed_and_read_back(local_default: Datastore) -> None:
    records.write_record(_record(_srid()), local_default)
    assert _stored(local_default, records.record_path(_srid()))[SEAL_FIELD]["alg"] == "sha256"
    assert records.read_record(_srid(), local_default)["status"] == records.FAILED
    assert local_default.exists(record_seals.SEALED_MARKER)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda d: {**d, "status": records.COMPLETED}, id="rewritten"),
        pytest.param(lambda d: {k: v for k, v in d.items() if k != SEAL_FIELD}, id="unsealed"),
        pytest.param(lambda d: {**d, SEAL_FIELD: {"alg": "sha256", "value": "0" * 64}}, id="forged-seal"),
    ],
)
def test_a_changed_record_is_refused(local_default: Datastore, tamper: Callable[[dict], dict]) -> None:
    records.write_record(_record(_srid()), local_default)
    path = records.record_path(_srid())
    _write_raw(local_default, path, tamper(_stored(local_default, path)))
    with pytest.raises(TamperedRecordError, match=f"its record '{path}' in datastore .* failed its seal"):
        records.read_record(_srid(), local_default)
    assert records.find_record(_srid(), local_default) is None


def test_a_record_copied_under_another_step_run_is_refused(local_default: Datastore) -> None:
    records.write_record(_record(_srid(1)), local_default)
    local_default.write_bytes(records.record_path(_srid(2)), local_default.read_bytes(records.record_path(_srid(1))))
    with pytest.raises(TamperedRecordError, match="copied under another name"):
        records.read_record(_srid(2), local_default)


# -- commit.json ------------------------------------------------------------------------------------------------
def test_a_commit_is_sealed_and_a_changed_or_copied_one_is_refused(local_default: Datastore) -> None:
    assert records.write_commit(_srid(1), [], local_default)
    assert records.read_commit(_srid(1), local_default)["outputs"] == []  # type: ignore[index]
    path = records.commit_path(_srid(1))
    stored = _stored(local_default, path)
    _write_raw(local_default, path, {**stored, "outputs": [{"name": "model", "path": "elsewhere"}]})
    with pytest.raises(TamperedRecordError, match=f"its commit record '{path}' .* failed its seal"):
        records.read_commit(_srid(1), local_default)
    _write_raw(local_default, records.commit_path(_srid(2)), stored)  # a valid commit, under another step run
    with pytest.raises(TamperedRecordError, match="copied under another name"):
        records.read_commit(_srid(2), local_default)


def test_a_record_seal_is_no_commit_seal(local_default: Datastore) -> None:
    """A salt per kind: a sealed record.json body put in commit.json does not pass for a commit."""
    body = {"format": records.COMMIT_FORMAT, "step_run_id": _srid(), "committed_at": "x", "outputs": []}
    local_default.write_bytes(records.commit_path(_srid()), sealed_bytes(body, record_seals.RECORD_SALT))
    with pytest.raises(TamperedRecordError, match="does not match its seal"):
        records.read_commit(_srid(), local_default)


# -- records older code wrote -----------------------------------------------------------------------------------
@pytest.fixture(params=["local", "azurite", "moto"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Datastore]:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    if request.param == "azurite":
        yield make_azurite_datastore(request.getfixturevalue("azurite"))
    elif request.param == "moto":
        yield make_s3_datastore(request.getfixturevalue("moto_s3"))
    else:
        yield Datastore.get_default()


def test_unsealed_records_from_before_the_marker_are_read_and_ones_from_after_are_not(store: Datastore) -> None:
    """Upgrading keeps `mlpipe runs` and committed attempts readable, and rewrites nothing; an unsealed record the
    store dates after the first sealed write (by the store's clock) is refused."""
    old = {"format": records.COMMIT_FORMAT, "step_run_id": _srid(1), "committed_at": "x", "outputs": []}
    store.write_json(records.commit_path(_srid(1)), old)  # as older code wrote them
    store.write_json(records.record_path(_srid(1)), _record(_srid(1), records.COMPLETED))
    assert records.read_record(_srid(1), store)["status"] == records.COMPLETED  # nothing sealed yet
    time.sleep(1.1)  # object stores keep whole seconds
    records.write_record(_record(_srid(3)), store)  # the first sealed write: records are sealed from now on
    store.write_json(records.record_path(_srid(2)), _record(_srid(2), records.COMPLETED))
    store.write_json(records.commit_path(_srid(2)), {**old, "step_run_id": _srid(2)})

    assert records.read_record(_srid(1), store)["status"] == records.COMPLETED
    assert records.read_commit(_srid(1), store) == old
    assert SEAL_FIELD not in _stored(store, records.record_path(_srid(1)))  # read, not rewritten
    with pytest.raises(TamperedRecordError, match="carries no seal"):
        records.read_record(_srid(2), store)
    with pytest.raises(TamperedRecordError, match="carries no seal"):
        records.read_commit(_srid(2), store)


# -- with MLPIPE_REGISTRY_KEY -----------------------------------------------------------------------------------
@pytest.mark.parametrize("compute", ["kubernetes", "local"])
def test_with_the_key_a_plain_seal_is_refused_whoever_wrote_it(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch, compute: str
) -> None:
    """Every writer holds a key where the registry key is set (a container's runner its step run's own)."""
    records.write_spec(_spec(1, compute=compute), local_default)
    records.write_record(_record(_srid(1), records.FAILED), local_default)  # no key here: a plain seal
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    found, refused = records.record_or_refusal(_srid(1), local_default)
    assert found is None and "sealed without the registry key" in str(refused)
    records.write_record(_record(_srid(1), records.FAILED), local_default)
    assert _stored(local_default, records.record_path(_srid(1)))[SEAL_FIELD]["alg"] == "hmac-sha256"
    assert records.find_record(_srid(1), local_default) is not None


@pytest.fixture
def attempt_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This process as a container's runner would be: no registry key, its step run's attempt key in use."""
    monkeypatch.setattr(seal, "_attempt", None)  # and back to None after the test
    yield


def test_with_the_key_a_container_runners_records_sealed_with_its_attempt_key_are_read(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch, attempt_key: None
) -> None:
    """A pod's runner never holds the key: the worker derives one for its step run, which the runner seals its
    record and commit with; a reader with the key reads them (the commit is handed on)."""
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    given = seal.attempt_seal_key(_srid(1))
    assert given is not None and given != seal.attempt_seal_key(_srid(2))
    monkeypatch.delenv(SEAL_KEY_ENV)
    seal.use_attempt_key(_srid(1), given)  # the runner, without the registry key
    records.write_spec(_spec(1, compute="kubernetes"), local_default)
    assert records.write_commit(_srid(1), [], local_default)
    records.write_record(_record(_srid(1), records.COMMITTED), local_default)
    assert _stored(local_default, records.commit_path(_srid(1)))[SEAL_FIELD]["alg"] == "hmac-sha256-attempt"
    # another step run's records, written by that runner (its script holds the same key), get no attempt seal
    records.write_record(_record(_srid(2), records.FAILED), local_default)
    assert _stored(local_default, records.record_path(_srid(2)))[SEAL_FIELD]["alg"] == "sha256"

    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    assert records.read_commit(_srid(1), local_default) is not None
    assert records.read_record(_srid(1), local_default)["status"] == records.COMMITTED
    with pytest.raises(TamperedRecordError, match="sealed without the registry key"):
        records.read_record(_srid(2), local_default)
    # one step run's attempt key cannot seal another's record: its seal is checked with the other's key
    body = {**_record(_srid(2), records.FAILED)}
    forged = hmac.new(given.encode(), seal._canonical(body, record_seals.RECORD_SALT), hashlib.sha256).hexdigest()
    _write_raw(
        local_default,
        records.record_path(_srid(2)),
        {**body, SEAL_FIELD: {"alg": "hmac-sha256-attempt", "value": forged}},
    )
    with pytest.raises(TamperedRecordError, match="does not match its seal"):
        records.read_record(_srid(2), local_default)
    # and a registry record never takes an attempt seal
    assert "unknown algorithm" in str(
        seal.seal_problem({"a": 1, SEAL_FIELD: {"alg": "hmac-sha256-attempt", "value": forged}})
    )


def test_with_the_key_a_forged_commit_of_a_local_step_is_refused(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    records.write_spec(_spec(1, compute="local"), local_default)
    body = {"format": records.COMMIT_FORMAT, "step_run_id": _srid(1), "committed_at": "x", "outputs": []}
    local_default.write_bytes(records.commit_path(_srid(1)), sealed_bytes(body, record_seals.COMMIT_SALT))
    monkeypatch.setenv(SEAL_KEY_ENV, "a-guess")
    with pytest.raises(TamperedRecordError, match="does not match its seal"):
        records.read_commit(_srid(1), local_default)


# -- what acts on records ---------------------------------------------------------------------------------------
def test_a_claim_is_not_taken_over_on_a_forged_failed_record(local_default: Datastore) -> None:
    holder = AttemptId(DAG_ID, "r1", TASK)
    claims.claim("model", local_default, "models/latest", holder)
    records.write_record(_record(holder.step_run_id, records.RUNNING), local_default)
    path = records.record_path(holder.step_run_id)
    _write_raw(local_default, path, {**_stored(local_default, path), "status": records.FAILED})

    other = AttemptId(DAG_ID, "r2", TASK)
    with pytest.raises(claims.DestinationClaimedError, match="its run record failed its seal"):
        claims.claim("model", local_default, "models/latest", other)


class _Work:
    """A step's work that commits one output of its own."""

    def __init__(self, store: Datastore) -> None:
        self.store, self.launched = store, 0

    def plan(self, attempt: StepAttempt, policy: Any) -> StepSpec:
        return _spec(attempt.attempt.try_number)

    def launch(self, attempt: StepAttempt, spec: StepSpec, lease: Any) -> None:
        self.launched += 1
        output = _commit_output(self.store, str(spec.outputs[0]["path"]), "computed")
        assert records.write_commit(spec.step_run_id, [output], self.store)

    def resume(self, attempt: StepAttempt, spec: StepSpec, event: Any) -> None:
        raise AssertionError("never deferred here")

    def ran(self) -> str | None:
        return None

    def result(self, record: Any) -> dict[str, Any]:
        return {}


def _attempt(tmp_path: Path, store: Datastore, try_number: int) -> tuple[StepAttempt, _Work]:
    with DAG(DAG_ID, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
        op = PythonScriptOperator(task_id=TASK, script_name="s.py", source_directory=str(tmp_path))
    xcoms: dict[str, Any] = {}
    ti = SimpleNamespace(dag_id=DAG_ID, run_id="r1", task_id=TASK, map_index=-1, try_number=try_number,
                         max_tries=3, xcom_push=lambda key, value: xcoms.__setitem__(key, value))  # fmt: skip
    work = _Work(store)
    return StepAttempt(op, {"ti": ti, "outlet_events": {}, "params": {}}, work), work  # type: ignore[arg-type]


def _forge_commit(store: Datastore, srid: str) -> str:
    """A step script's forged commit for ``srid``: outputs it wrote itself, under a seal it made up."""
    forged = _commit_output(store, "forged/model", "forged")
    body = {"format": records.COMMIT_FORMAT, "step_run_id": srid, "committed_at": records.now_iso(),
            "outputs": [forged], SEAL_FIELD: {"alg": "sha256", "value": "0" * 64}}  # fmt: skip
    _write_raw(store, records.commit_path(srid), body)
    return records.commit_path(srid)


def test_a_forged_commit_of_an_earlier_try_is_never_handed_on(local_default: Datastore, tmp_path: Path) -> None:
    """Try 1 was planned and killed; a script forged its commit (and a Completed record). Try 2 neither finishes
    nor publishes try 1's forged outputs: it computes its own."""
    records.write_spec(_spec(1), local_default)
    where = _forge_commit(local_default, _srid(1))
    forged_record = {**_record(_srid(1), records.COMPLETED), "outputs": [{"name": "model", "path": "forged/model"}]}
    _write_raw(local_default, records.record_path(_srid(1)), forged_record)

    attempt, work = _attempt(tmp_path, local_default, try_number=2)
    result = attempt.execute()
    assert work.launched == 1
    assert result["status"] == records.COMPLETED
    assert result["outputs"]["model"]["path"] == f"dataset/{_srid(2)}/model"
    assert json.loads(local_default.read_bytes(where))[SEAL_FIELD]["value"] == "0" * 64  # left as it was, unused
    assert not local_default.is_complete("forged/model")


def test_a_forged_commit_of_the_attempt_itself_fails_it_clearly(local_default: Datastore, tmp_path: Path) -> None:
    records.write_spec(_spec(1), local_default)
    where = _forge_commit(local_default, _srid(1))
    attempt, work = _attempt(tmp_path, local_default, try_number=1)
    with pytest.raises(Exception, match=f"cannot run: .*its commit record '{where}' .* failed its seal") as caught:
        attempt.execute()
    assert type(caught.value).__name__ == "StepFailedError"
    assert work.launched == 0
    assert records.find_record(_srid(1), local_default) is None


# -- listings ---------------------------------------------------------------------------------------------------
def _summary_path(store: Datastore, srid: str) -> str:
    """The run's summary in the listing of all runs (once the index holds every record)."""
    run_index.ensure_indexed(store)
    (path,) = [p for p in store.list(run_index.scope_folder(), recursive=True) if srid in p]
    return str(path)


def test_a_listing_shows_a_changed_summary_as_a_row_with_its_error(local_default: Datastore) -> None:
    for n in (1, 2):
        records.write_record({**_record(_srid(n)), "created_at": f"2026-01-0{n}T00:00:00.000+00:00"}, local_default)
    run_index.ensure_indexed(local_default)
    path = _summary_path(local_default, _srid(2))
    _write_raw(local_default, path, {**_stored(local_default, path), "status": records.COMPLETED})

    rows = run_index.list_runs(local_default, limit=10).rows
    assert [r["step_run_id"] for r in rows] == [_srid(2), _srid(1)]
    assert rows[0]["status"] is None and f"run summary {path} failed its seal" in rows[0]["error"]
    assert rows[1]["status"] == records.FAILED and rows[1]["error"] is None
    with pytest.raises(NotFound, match="failed its seal"):  # the record behind a row, opened in the UI
        _write_raw(local_default, records.record_path(_srid(1)), _record(_srid(1), records.COMPLETED))
        step_run(local_default, _srid(1))


def test_an_unsealed_summary_from_before_the_marker_is_listed(local_default: Datastore) -> None:
    records.write_record(_record(_srid(1)), local_default)
    path = _summary_path(local_default, _srid(1))
    legacy = {k: v for k, v in _stored(local_default, path).items() if k != SEAL_FIELD}
    local_default.delete(record_seals.SEALED_MARKER)
    seal_dates._SINCE.clear()
    local_default.write_json(path, legacy)  # as older code wrote it
    time.sleep(0.05)
    records.write_record(_record(_srid(3)), local_default)  # the first sealed write
    assert [r.get("error") for r in run_index.list_runs(local_default).rows if r["step_run_id"] == _srid(1)] == [None]
    local_default.write_json(path, {**legacy, "status": records.COMPLETED})  # changed after the marker
    (row,) = [r for r in run_index.list_runs(local_default).rows if r["step_run_id"] == _srid(1)]
    assert "carries no seal" in row["error"]


def test_runs_show_prints_a_record_that_failed_its_seal_in_one_line(mlpipe: Any) -> None:  # noqa: F811
    store = Datastore.get_default()
    records.write_record(_record(_srid(1)), store)
    path = records.record_path(_srid(1))
    _write_raw(store, path, {**_stored(store, path), "status": records.COMPLETED})
    shown = mlpipe("runs", "show", _srid(1))
    assert shown.code == 1 and shown.out == "" and shown.err.count("\n") == 1
    assert shown.err.startswith(f"error: step run {_srid(1)}: its record '{path}' in datastore")
    assert "failed its seal" in shown.err
