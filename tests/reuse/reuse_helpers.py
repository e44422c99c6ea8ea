"""Helpers of the reuse key and decision tests: default datastores, committed outputs, fingerprints, history."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.fingerprint.tree import Tree, TreeEntry
from airflow_mlpipe.reuse.decide import ReuseDecision
from airflow_mlpipe.reuse.history import HistoryEntry
from airflow_mlpipe.reuse.index import ReuseEntry, ReuseIndex
from airflow_mlpipe.reuse.indexing import index_run
from airflow_mlpipe.reuse.step_key import StepFingerprint, fingerprint_step
from airflow_mlpipe.runner.outputs import OutputPlan, stage
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.conftest import make_azurite_datastore


def use_default_store(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Datastore]:
    """For a fixture with params ``local`` and ``azurite``: the default datastore on a local folder or on Azurite
    (whose listings carry ETags)."""
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    if request.param == "azurite":
        store = make_azurite_datastore(request.getfixturevalue("azurite"), name="mlpipe_default")
        extra = {"url": store.config.url, **dict(store.config.storage_options)}
        monkeypatch.setenv("AIRFLOW_CONN_MLPIPE_DEFAULT", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    yield Datastore.get_default()
    resolve.clear_cache()


def committed_output(
    store: Datastore, name: str, path: str, files: Mapping[str, str], tmp_path: Path
) -> dict[str, Any]:
    """Write ``files`` to ``path``, stage them as the runner does and mark them complete as the finish path does;
    returns the run record's output entry."""
    staging = tmp_path / f"staging-{name}-{abs(hash(path))}"
    staging.mkdir(parents=True)
    for rel, text in files.items():
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(text)
    manifest = stage(OutputPlan(name, store, path, "upload", (), str(staging)))
    store.mark_complete(path, {"step_output": name, **manifest.to_dict()})
    return {"name": name, "datastore": store.name, "path": path, "uri": store.uri(path), "manifest": manifest.summary()}


def tree(**files: str) -> Tree:
    """A source tree of files ``name=content`` (dots in names as ``_``: ``train_py`` is ``train.py``)."""
    return Tree({n.replace("_", "."): TreeEntry(len(c), f"d-{c}") for n, c in files.items()})


def fingerprint(
    *,
    source: Tree | None = None,
    arguments: list[dict[str, Any]] | None = None,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
    environment: dict[str, Any] | None = None,
    hash_paths: Tree | None = None,
) -> StepFingerprint:
    return fingerprint_step(
        script_name="train.py",
        source=source if source is not None else tree(train_py="v1"),
        hash_paths=hash_paths,
        arguments=arguments if arguments is not None else [{"t": "param", "name": "learning_rate", "value": 0.1}],
        inputs=inputs or [],
        outputs=outputs if outputs is not None else [output_spec("model")],
        environment=environment or {"image": None, "pip_packages": [], "env_vars": {}, "python": "cpython-3.11"},
    )


def output_spec(
    name: str, template: str = "dataset/{run-id}/{output-name}", registration: str | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "datastore": "mlpipe_default",
        "path_template": template,
        "mode": "mount",
        "overwrite": False,
        "source_globs": [],
        "registration": {"name": registration, "description": "", "tags": {}} if registration else None,
        "path": template.replace("{run-id}", "some-run").replace("{output-name}", name),
    }


def index_completed(store: Datastore, fp: StepFingerprint, run: str, outputs: list[dict[str, Any]]) -> ReuseEntry:
    record = {"step_run_id": run, "dag_id": "d", "task_id": "t", "status": "Completed", "outputs": outputs}
    entry = index_run(ReuseIndex(store), fp.key, record)
    assert entry is not None
    return entry


def history_entry(fp: StepFingerprint, run: str, decided_at: str = "2026-01-01T00:00:00.000+00:00") -> HistoryEntry:
    decision = ReuseDecision(False, fp.digest, "no_entry", (), decided_at)
    return HistoryEntry(
        step_run_id=run,
        dag_id="d",
        run_id=run,
        task_id="t",
        decided_at=decided_at,
        key=fp.digest,
        components=fp.key.components(),
        details=fp.details,
        decision=decision.to_dict(),
    )


def mlpipe_in_process(*args: str) -> tuple[int, str]:
    """``mlpipe ARGS`` in this process: (exit code, what it printed). The CLI writes to the stdout it saw when it
    was imported, so that is swapped for a buffer meanwhile."""
    from typer.testing import CliRunner

    from airflow_mlpipe.cli import output
    from airflow_mlpipe.cli.main import app

    buffer, saved = io.StringIO(), output._STDOUT
    output._STDOUT = buffer
    try:
        result = CliRunner().invoke(app, list(args))
    finally:
        output._STDOUT = saved
    return result.exit_code, buffer.getvalue() or result.output


def local_file(store: Datastore, path: str) -> str:
    return os.path.join(store.full_path(""), *path.split("/"))
