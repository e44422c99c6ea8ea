"""``mlpipe datasets reseal``: turning MLPIPE_REGISTRY_KEY on after records exist. Records whose plain seal holds are
sealed again under the key (and read with it); a record whose seal fails is left as it is and listed; without the
key the command refuses to run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.datasets import seal
from airflow_mlpipe.datasets.registry import REGISTRY_ROOT, DatasetRegistry
from airflow_mlpipe.datasets.seal import SEAL_FIELD, SEAL_KEY_ENV
from airflow_mlpipe.exceptions import TamperedRecordError
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.lease_helpers import entry_for
from tests.security.test_cli_inputs import Result, mlpipe  # noqa: F401 (the fixture: mlpipe ARGS in this process)

KEY = "c" * 32


def _alg(store: Datastore, path: str) -> Any:
    return json.loads(store.read_bytes(path))[SEAL_FIELD]["alg"]


def test_reseal_seals_again_under_the_key_what_was_sealed_before_it(
    mlpipe: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local_default = Datastore.get_default()
    for name in ("kept", "changed"):
        local_default.write_text(f"data/{name}.csv", "v\n1\n")
        Dataset.File.from_files((local_default, f"data/{name}.csv")).register(name)
    ReuseIndex(local_default).put(entry_for(KEY))
    srid = "d.r.t.t1.000000000000"
    records.write_record({"step_run_id": srid, "status": records.COMPLETED}, local_default)
    pod = "d.r.pod.t1.000000000001"  # a pod's runner, whose worker held the key: its commit has an attempt seal
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    attempt = seal.attempt_seal_key(pod)
    monkeypatch.delenv(SEAL_KEY_ENV)
    assert attempt is not None
    monkeypatch.setattr(seal, "_attempt", (pod, attempt.encode()))
    assert records.write_commit(pod, [], local_default)
    monkeypatch.setattr(seal, "_attempt", None)
    changed = f"{REGISTRY_ROOT}/changed/1.json"
    stored = json.loads(local_default.read_bytes(changed))
    local_default.write_bytes(changed, json.dumps({**stored, "description": "rewritten"}).encode())

    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    with pytest.raises(TamperedRecordError, match="sealed without the registry key"):
        DatasetRegistry(local_default).get("kept")  # what turning the key on does without reseal
    shown: Result = mlpipe("datasets", "reseal", "--runs", "--json")
    report = json.loads(shown.out)
    assert shown.code == 1 and shown.err == ""
    assert (report["resealed"], report["keyed"]) == (3, 1)  # kept's record, the index entry, the run record
    assert [r["path"] for r in report["refused"]] == [changed]
    assert "does not match its seal" in report["refused"][0]["error"]

    assert DatasetRegistry(local_default).get("kept").version == 1
    assert _alg(local_default, f"{REGISTRY_ROOT}/kept/1.json") == "hmac-sha256"
    assert ReuseIndex(local_default).get(KEY) is not None
    assert records.read_record(srid, local_default)["status"] == records.COMPLETED
    assert records.read_commit(pod, local_default) is not None
    assert json.loads(local_default.read_bytes(changed))[SEAL_FIELD]["alg"] == "sha256"  # left as it was
    with pytest.raises(TamperedRecordError):
        DatasetRegistry(local_default).get("changed")

    again: Result = mlpipe("datasets", "reseal")  # nothing left to do
    assert again.code == 1 and again.out.startswith("resealed 0 records under MLPIPE_REGISTRY_KEY; 2 were sealed")
    assert changed in again.out


def test_reseal_refuses_to_run_without_the_key(mlpipe: Any, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv(SEAL_KEY_ENV, raising=False)
    shown: Result = mlpipe("datasets", "reseal")
    assert shown.code == 2 and shown.out == ""
    assert shown.err.startswith(f"error: {SEAL_KEY_ENV} is not set: reseal seals records under that key")
    assert shown.err.count("\n") == 1


def test_reseal_help_says_it_reads_the_whole_registry(
    mlpipe: Any,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown: Result = mlpipe("datasets", "reseal", "--help")
    text = " ".join((shown.out + shown.err + capsys.readouterr().out).split())
    assert "reads the whole registry and reuse index" in text and "--runs" in text
