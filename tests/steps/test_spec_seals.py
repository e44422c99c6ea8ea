"""Step specs are sealed: a spec a step script wrote before its step run was planned (step run ids are
predictable), one changed or copied under another step run, is refused and never run; specs older code wrote are
still read. On the local store (and moto for the dated upgrade)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets import seal_dates
from airflow_mlpipe.datasets.reseal import reseal
from airflow_mlpipe.datasets.seal import SEAL_FIELD, SEAL_KEY_ENV, sealed_bytes
from airflow_mlpipe.exceptions import TamperedRecordError
from airflow_mlpipe.gc import scan
from airflow_mlpipe.runner import claims
from airflow_mlpipe.runner.__main__ import main as runner_main
from airflow_mlpipe.steps import record_seals, records, spec_seals
from airflow_mlpipe.steps.spec import SpecError, StepSpec
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_s3_datastore
from tests.steps.test_record_seals import DAG_ID, TASK, _attempt, _srid, _stored, _write_raw

KEY = "worker-secret"


def _spec(try_number: int = 1, *, script: str = "train.py", output_path: str | None = None) -> StepSpec:
    attempt = AttemptId(DAG_ID, "r1", TASK, try_number=try_number)
    path = output_path or f"dataset/{attempt.step_run_id}/model"
    out = {"name": "model", "datastore": "mlpipe_default", "path": path, "path_template": "dataset/{run-id}/model"}
    return StepSpec(attempt=attempt, script_name=script, outputs=(out,), created_at="2026-01-01T00:00:00.000+00:00")


def _refused(store: Datastore, srid: str, why: str) -> None:
    path = records.spec_path(srid)
    with pytest.raises(TamperedRecordError, match=f"its spec '{path}' in datastore .* failed its seal") as caught:
        records.read_spec(srid, store)
    assert why in str(caught.value) and "delete it, then clear the task" in str(caught.value)


# -- spec.json --------------------------------------------------------------------------------------------------
def test_a_spec_is_sealed_and_read_back(local_default: Datastore) -> None:
    spec = _spec()
    assert records.write_spec(spec, local_default)
    assert _stored(local_default, records.spec_path(_srid()))[SEAL_FIELD]["alg"] == "sha256"
    assert records.read_spec(_srid(), local_default) == spec
    assert local_default.exists(spec_seals.SPEC_MARKER)
    assert not records.write_spec(_spec(script="other.py"), local_default)  # written once
    assert records.read_spec(_srid(), local_default) == spec


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        pytest.param(lambda d: {**d, "script_name": "evil.py"}, "does not match its seal", id="rewritten"),
        pytest.param(lambda d: {k: v for k, v in d.items() if k != SEAL_FIELD}, "carries no seal", id="unsealed"),
        pytest.param(lambda d: {**d, SEAL_FIELD: {"alg": "sha256", "value": "0" * 64}}, "does not match", id="made-up"),
        pytest.param(
            lambda d: {**d, SEAL_FIELD: {"alg": "hmac-sha256-attempt", "value": "0" * 64}},
            "unknown algorithm",
            id="attempt-seal",
        ),
    ],
)
def test_a_changed_spec_is_refused(local_default: Datastore, tamper: Any, why: str) -> None:
    records.write_spec(_spec(), local_default)
    path = records.spec_path(_srid())
    _write_raw(local_default, path, tamper(_stored(local_default, path)))
    _refused(local_default, _srid(), why)


def test_a_spec_copied_under_another_step_run_is_refused(local_default: Datastore) -> None:
    records.write_spec(_spec(1), local_default)
    local_default.write_bytes(records.spec_path(_srid(2)), local_default.read_bytes(records.spec_path(_srid(1))))
    _refused(local_default, _srid(2), "copied under another name")


def test_a_record_seal_is_no_spec_seal(local_default: Datastore) -> None:
    """A salt per kind: a spec body sealed as a run record does not pass for a spec."""
    records.write_spec(_spec(2), local_default)  # the marker
    body = _spec(1).to_dict()
    local_default.write_bytes(records.spec_path(_srid(1)), sealed_bytes(body, record_seals.RECORD_SALT))
    _refused(local_default, _srid(1), "does not match its seal")


# -- with MLPIPE_REGISTRY_KEY -----------------------------------------------------------------------------------
def test_with_the_key_a_spec_is_keyed_and_a_plain_one_is_refused_by_a_worker_not_by_a_container_runner(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a worker writes specs: where the key is set, a plain seal is a forger's. A container's runner holds
    no key: it checks everything but the HMAC."""
    forged = sealed_bytes(_spec(2, script="evil.py").to_dict(), spec_seals.SPEC_SALT)  # a plain seal that holds
    monkeypatch.setenv(SEAL_KEY_ENV, KEY)
    records.write_spec(_spec(1), local_default)
    assert _stored(local_default, records.spec_path(_srid(1)))[SEAL_FIELD]["alg"] == "hmac-sha256"
    assert records.read_spec(_srid(1), local_default) == _spec(1)
    local_default.write_bytes(records.spec_path(_srid(2)), forged)  # after the marker
    _refused(local_default, _srid(2), "sealed without the registry key")

    monkeypatch.delenv(SEAL_KEY_ENV)  # a container's runner
    spec = records.read_spec(_srid(2), local_default)
    assert spec is not None and spec.script_name == "evil.py"
    assert records.read_spec(_srid(1), local_default) is not None  # the keyed one: all but the HMAC checked
    path = records.spec_path(_srid(1))
    _write_raw(local_default, path, {**_stored(local_default, path), "step_run_id": _srid(3)})
    _refused(local_default, _srid(1), "copied under another name")


def test_with_the_key_a_spec_sealed_under_a_guessed_key_is_refused(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEAL_KEY_ENV, "a-guess")
    records.write_spec(_spec(1), local_default)
    monkeypatch.setenv(SEAL_KEY_ENV, KEY)
    _refused(local_default, _srid(1), "does not match its seal")


# -- specs older code wrote -------------------------------------------------------------------------------------
@pytest.fixture(params=["local", "moto"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Datastore]:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    if request.param == "moto":
        yield make_s3_datastore(request.getfixturevalue("moto_s3"))
    else:
        yield Datastore.get_default()


def test_unsealed_specs_from_before_the_marker_are_read_and_ones_from_after_are_not(store: Datastore) -> None:
    """A run in flight across the upgrade finishes (its spec is read, not rewritten), even where run records were
    sealed already (specs have a marker of their own); an unsealed spec the store dates after it is refused."""
    records.write_record({"step_run_id": _srid(9), "status": records.FAILED}, store)  # records sealed before
    store.write_json(records.spec_path(_srid(1)), _spec(1).to_dict())  # as older code wrote it
    assert records.read_spec(_srid(1), store) == _spec(1)  # no spec sealed here yet
    time.sleep(1.1)  # object stores keep whole seconds
    records.write_spec(_spec(3), store)  # the first sealed spec
    store.write_json(records.spec_path(_srid(2)), _spec(2).to_dict())

    assert records.read_spec(_srid(1), store) == _spec(1)
    assert SEAL_FIELD not in _stored(store, records.spec_path(_srid(1)))
    _refused(store, _srid(2), "carries no seal")


# -- what reads specs -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keyed", [pytest.param(False, id="no-key"), pytest.param(True, id="key")])
def test_a_spec_forged_before_planning_is_never_run_and_the_next_try_plans_its_own(
    local_default: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyed: bool
) -> None:
    """A script wrote try 1's spec before try 1 planned (unsealed; with the key, under a plain seal that holds):
    try 1 fails naming it and runs nothing; try 2 warns, settles nothing of try 1 and runs its own spec."""
    records.write_spec(_spec(5), local_default)  # specs are sealed in this store
    forged = _spec(1, script="evil.py", output_path="victim/model").to_dict()
    path = records.spec_path(_srid(1))
    if keyed:
        local_default.write_bytes(path, sealed_bytes(forged, spec_seals.SPEC_SALT))
        monkeypatch.setenv(SEAL_KEY_ENV, KEY)
    else:
        _write_raw(local_default, path, forged)

    first, work = _attempt(tmp_path, local_default, try_number=1)
    with pytest.raises(Exception, match=f"cannot run: .*its spec '{path}' .* failed its seal") as caught:
        first.execute()
    assert type(caught.value).__name__ == "StepFailedError" and "clear the task" in str(caught.value)
    assert work.launched == 0
    assert records.find_record(_srid(1), local_default) is None
    assert not local_default.exists("victim/model/model.txt")

    second, work = _attempt(tmp_path, local_default, try_number=2)
    result = second.execute()
    assert work.launched == 1 and result["status"] == records.COMPLETED
    assert result["outputs"]["model"]["path"] == f"dataset/{_srid(2)}/model"


def test_the_runner_refuses_a_forged_spec_in_one_line(
    local_default: Datastore, capsys: pytest.CaptureFixture[str]
) -> None:
    records.write_spec(_spec(5), local_default)
    path = records.spec_path(_srid(1))
    _write_raw(local_default, path, _spec(1, script="evil.py").to_dict())
    assert runner_main(["--spec", path]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"step runner: step run {_srid(1)}: its spec '{path}'") and err.count("\n") == 1
    assert not local_default.exists(records.record_path(_srid(1)))  # nothing ran
    with pytest.raises(SpecError, match="is not the path of a step spec"):
        records.read_spec_at("_mlpipe/runs/x/record.json", local_default)


def test_a_container_runner_runs_only_the_spec_its_worker_launched(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A runner without the registry key cannot check a keyed seal: a spec a script put in place of the launched
    one (deleted, then written under a made-up keyed seal) before the runner started is refused by its digest."""
    monkeypatch.setenv(SEAL_KEY_ENV, KEY)
    records.write_spec(_spec(1), local_default)
    launched = spec_seals.digest(_spec(1))
    assert spec_seals.digest(records.read_spec(_srid(1), local_default)) == launched  # type: ignore[arg-type]
    monkeypatch.delenv(SEAL_KEY_ENV)  # the container's runner
    path = records.spec_path(_srid(1))
    local_default.delete(path)
    made_up = {"alg": "hmac-sha256", "value": "0" * 64}
    _write_raw(local_default, path, {**_spec(1, script="evil.py").to_dict(), SEAL_FIELD: made_up})
    assert records.read_spec_at(path, local_default).script_name == "evil.py"  # all but the HMAC holds
    monkeypatch.setenv(spec_seals.SPEC_DIGEST_ENV, launched)
    assert runner_main(["--spec", path]) == 2
    err = capsys.readouterr().err
    assert f"its spec '{path}' in datastore" in err and "is not the one its worker launched" in err
    assert not local_default.exists(records.record_path(_srid(1)))  # nothing ran


def test_gc_takes_nothing_from_a_forged_spec(local_default: Datastore) -> None:
    """A forged spec neither dates its run (which stays, as one with an unreadable record) nor names folders
    to delete."""
    records.write_spec(_spec(5), local_default)
    _write_raw(local_default, records.spec_path(_srid(1)), _spec(1, output_path="victim/model").to_dict())
    runs = scan.scan_runs(local_default)
    assert runs[_srid(1)].created is None and runs[_srid(5)].created is not None
    found = scan.read_specs(local_default, runs.values())
    assert _srid(1) not in found and [o["path"] for o in found[_srid(5)]] == [f"dataset/{_srid(5)}/model"]


def test_a_claim_takes_no_lease_from_a_forged_spec(local_default: Datastore) -> None:
    """Whether a claim's holder has stopped is judged by its own lease alone when its spec failed its seal."""
    records.write_spec(_spec(5), local_default)
    _write_raw(local_default, records.spec_path(_srid(1)), {**_spec(1).to_dict(), "reuse": {"key": "k" * 64}})
    assert [what for _, what in claims._writer_leases(_srid(1))] == [f"step run {_srid(1)} itself"]


def test_reseal_seals_specs_again_under_the_key(local_default: Datastore, monkeypatch: pytest.MonkeyPatch) -> None:
    records.write_spec(_spec(1), local_default)
    copied = _spec(1).to_dict()
    local_default.write_bytes(records.spec_path(_srid(2)), sealed_bytes(copied, spec_seals.SPEC_SALT))
    monkeypatch.setenv(SEAL_KEY_ENV, KEY)
    report = reseal(local_default, runs=True)
    assert report.resealed == 1
    assert [r["path"] for r in report.refused] == [records.spec_path(_srid(2))]
    assert "copied under another name" in report.refused[0]["error"]
    assert _stored(local_default, records.spec_path(_srid(1)))[SEAL_FIELD]["alg"] == "hmac-sha256"
    assert records.read_spec(_srid(1), local_default) == _spec(1)


@pytest.fixture(autouse=True)
def _fresh_markers() -> Iterator[None]:
    """Each test's store has markers of its own (their times are remembered by the datastore's URL)."""
    seal_dates._SINCE.clear()
    yield
    seal_dates._SINCE.clear()
