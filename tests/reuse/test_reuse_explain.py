"""Explanations in words, the per-step history they compare against, and ``mlpipe reuse explain``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.reuse.explain import explain_changes
from airflow_mlpipe.reuse.history import StepHistory
from airflow_mlpipe.reuse.step_key import StepFingerprint
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.reuse_helpers import fingerprint, history_entry, mlpipe_in_process, output_spec, tree

ENV = {"image": None, "pip_packages": [], "env_vars": {}, "python": "cpython-3.11"}


def _upstream(digest: str, entries: dict[str, str]) -> StepFingerprint:
    """A fingerprint with one upstream input whose marker is faked through its detail."""
    fp = fingerprint()
    key = fp.key.__class__(**{**fp.key.__dict__, "inputs": {"prepped": {"mode": "mount", "content": digest}}})
    details = {**fp.details, "inputs": {"prepped": {"origin": "upstream", "producer": "prep", "entries": entries}}}
    return StepFingerprint(key, details)


def _explain(old: StepFingerprint, new: StepFingerprint, trees: dict[str, Tree] | None = None) -> list[str]:
    return explain_changes(new, history_entry(old, "d.r1.t"), load_tree=(trees or {}).get)


@pytest.mark.parametrize(
    ("old", "new", "lines"),
    [
        pytest.param(
            {"arguments": [{"t": "param", "name": "learning_rate", "value": 0.1}]},
            {"arguments": [{"t": "param", "name": "learning_rate", "value": 0.2}]},
            ["parameter learning_rate 0.1 → 0.2"],
            id="parameter",
        ),
        pytest.param(
            {"arguments": [{"t": "str", "v": "--epochs"}, {"t": "str", "v": "5"}]},
            {"arguments": [{"t": "str", "v": "--epochs"}, {"t": "str", "v": "6"}]},
            ["arguments changed: --epochs 5 → --epochs 6"],
            id="arguments",
        ),
        pytest.param(
            {},
            {"hash_paths": tree(x_py="1")},
            ["hash_paths added"],
            id="hash_paths added",
        ),
        pytest.param(
            {"hash_paths": tree(x_py="1", y_py="1")},
            {"hash_paths": tree(x_py="2", z_py="1")},
            ["hash_paths file x.py changed", "hash_paths file z.py added", "hash_paths file y.py removed"],
            id="hash_paths files",
        ),
        pytest.param(
            {},
            {"outputs": [output_spec("model", "models/{run-id}")]},
            ["output model destination changed"],
            id="output destination",
        ),
        pytest.param(
            {},
            {"outputs": [output_spec("model"), output_spec("metrics")]},
            ["output metrics added"],
            id="output added",
        ),
        pytest.param(
            {},
            {"environment": {**ENV, "pip_packages": ["scikit-learn==1.5.2"]}},
            ["environment changed (pip_packages)"],
            id="environment",
        ),
    ],
)
def test_components_in_words(old: dict[str, Any], new: dict[str, Any], lines: list[str]) -> None:
    assert _explain(fingerprint(**old), fingerprint(**new)) == lines


def test_source_files_by_name_from_the_snapshot_trees() -> None:
    old, new = tree(train_py="v1", util_py="u"), tree(train_py="v2", data_py="d")
    lines = _explain(fingerprint(source=old), fingerprint(source=new), {old.digest: old, new.digest: new})
    assert lines == ["source file train.py changed", "source file data.py added", "source file util.py removed"]
    gone = _explain(fingerprint(source=old), fingerprint(source=new), {new.digest: new})
    assert gone == ["source folder changed (the earlier snapshot's file list is gone)"]


def test_inputs_by_file_and_upstream_outputs() -> None:
    before = _upstream("d1", {"rows.csv": "4:xxh3:a"})
    assert _explain(before, _upstream("d2", {"rows.csv": "4:xxh3:b", "extra.csv": "1:xxh3:c"})) == [
        "input prepped: upstream output changed",
        "input prepped: file rows.csv content changed",
        "input prepped: file extra.csv added",
    ]
    # the same files in another folder: a new run of the upstream step wrote them again
    assert _explain(before, _upstream("d3", {"rows.csv": "4:xxh3:a"})) == [
        "input prepped: upstream output changed (the same files, written anew by a new run of prep)"
    ]


def test_no_earlier_run_and_same_key() -> None:
    assert explain_changes(fingerprint(), None) == ["no earlier run of this step"]
    assert _explain(fingerprint(), fingerprint()) == []


def test_history_finds_the_nearest_earlier_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    history = StepHistory("d", "t", Datastore.get_default())
    fp = fingerprint()
    for run, at in [("d.r1.t", "01"), ("d.r2.t", "02"), ("d.r2.t", "03"), ("d.r3.t", "04")]:
        history.add(history_entry(fp, run, f"2026-01-01T00:00:{at}.000+00:00"))
    assert history.latest().step_run_id == "d.r3.t"  # type: ignore[union-attr]
    assert history.previous("d.r2.t").step_run_id == "d.r1.t"  # type: ignore[union-attr] -- retries skipped
    assert history.previous("d.r4.t").step_run_id == "d.r3.t"  # type: ignore[union-attr]
    assert history.find("d.r2.t").decided_at.endswith("03.000+00:00")  # type: ignore[union-attr]
    assert history.previous("d.r1.t") is None


def test_cli_prints_the_decision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    srid = AttemptId("d", "r1", "t").step_run_id
    entry = history_entry(fingerprint(), srid)
    decision = {**entry.decision, "explanation": ["parameter a 1 → 2"]}
    entry = entry.__class__(**{**entry.__dict__, "run_id": "r1", "decision": decision})
    StepHistory("d", "t", Datastore.get_default()).add(entry)
    human = subprocess.run(
        [sys.executable, "-m", "airflow_mlpipe.cli.main", "reuse", "explain", "d", "t"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert human.returncode == 0, human.stderr
    assert "miss (no_entry)" in human.stdout and "  - parameter a 1 → 2" in human.stdout
    for run in ("r1", srid):  # by the DAG run id, or by the step run id
        code, shown = mlpipe_in_process("reuse", "explain", "d", "t", "--run", run, "--json")
        assert code == 0 and json.loads(shown)["step_run_id"] == srid
        assert json.loads(shown)["explanation"] == ["parameter a 1 → 2"]
    code, missing = mlpipe_in_process("reuse", "explain", "d", "other", "--json")
    assert code == 1 and "no reuse decision" in json.loads(missing)["error"]
