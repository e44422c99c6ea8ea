"""What every attempt test checks: an attempt's folders, commit, registrations and index entry agree."""

from __future__ import annotations

from typing import Any

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.dataset import FileDataset
from airflow_mlpipe.datasets.registry import DatasetRecord, DatasetRegistry
from airflow_mlpipe.reuse.decide import verify_outputs
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore

DAG = "attempt_steps"
DATASET = "attempts_report"
# Where a test kills a step: in the task process before launch, in the runner up to its commit, in the runner
# right after its commit, in the task process while finishing (see docs/reuse.md, "What a step run is").
BEFORE_COMMIT = (
    "planned",
    "snapshot_stored",
    "launching",
    "runner_started",
    "staged_model",
    "staged_report",
    "before_commit",
)
AFTER_COMMIT = ("registered_report", "marked_model", "marked_report", "indexed")
KILL_PHASES = (*BEFORE_COMMIT, "committed", *AFTER_COMMIT)
# The local deployment kills at every boundary; pods on object storage at one or two of each group (each boundary
# is the same code on every store): before the pod, with one of two outputs staged, just before and just after the
# commit, registered but not marked, one of two outputs marked, and indexed.
POD_KILL_PHASES = (
    "snapshot_stored",
    "launching",
    "staged_model",
    "before_commit",
    "committed",
    "registered_report",
    "marked_model",
    "indexed",
)
# The phases at which the script had already run in the killed try.
SCRIPT_RAN = ("staged_model", "staged_report", "before_commit", "committed", *AFTER_COMMIT, "fail_once")


def attempt(run_id: str, try_number: int, dag_id: str = DAG, task_id: str = "train") -> str:
    return AttemptId(dag_id, run_id, task_id, try_number=try_number).step_run_id


def registered_versions_of(store: Datastore, run_id: str, dataset: str = DATASET) -> list[DatasetRecord]:
    registry = DatasetRegistry(store)
    found = [registry.get(dataset, v) for v in registry.versions(dataset)]
    return [r for r in found if r.lineage.get("run_id") == run_id]


def assert_attempt_consistent(store: Datastore, srid: str) -> None:
    """An attempt's output folders are marked complete only if it committed, with the committed manifest (and
    all of them once it is finished); every registered version that names the attempt is of a committed (or
    reusing) attempt, and its files are intact."""
    spec = records.read_spec(srid, store)
    if spec is None:
        return
    commit = records.read_commit(srid, store)
    committed = {o["name"]: o for o in (commit or {}).get("outputs", [])}
    finished = (records.find_record(srid, store) or {}).get("status") == "Completed"
    for out in spec.outputs:
        out_store = Datastore.get(str(out["datastore"]))
        if commit is None:
            assert not out_store.is_complete(out["path"]), f"{srid}: {out['path']} is marked complete without a commit"
            continue
        if not finished and not out_store.is_complete(out["path"]):
            continue  # committed, not yet finished: whoever finishes it writes the marker
        marker = out_store.read_marker(out["path"])
        assert marker["digest"] == committed[out["name"]]["manifest"]["digest"] and marker["step_run_id"] == srid
    for version in DatasetRegistry(store).versions(DATASET):
        record = DatasetRegistry(store).get(DATASET, version)
        if record.lineage.get("step_run_id") == srid:
            reused = (records.find_record(srid, store) or {}).get("status") == "Reused"
            assert commit is not None or reused, f"{srid} registered version {version} without a commit"
            FileDataset(record=record).verified_entries()  # raises if a file changed


def assert_kill_outcome(dep: Any, run_id: str, phase: str) -> None:
    store = dep.store
    ti = dep.services.task_instance(DAG, run_id, "train")
    first, second = attempt(run_id, 1), attempt(run_id, 2)
    ran_twice = phase in SCRIPT_RAN and phase not in ("committed", *AFTER_COMMIT)
    if phase == "committed":  # the runner died after its commit: the task finished the attempt itself
        assert ti["try_number"] == 1, (phase, ti)
        producer = first
        assert records.read_record(first, store)["status"] == "Completed"
    elif phase in AFTER_COMMIT:  # the retry finished the committed try, then reused its outputs
        assert ti["try_number"] == 2, (phase, ti)
        producer = first
        done = records.read_record(first, store)
        assert (done["status"], done.get("finished_by")) == ("Completed", second), (phase, done)
        retry = records.read_record(second, store)
        assert (retry["status"], retry["reused_from"]) == ("Reused", first), (phase, retry)
    else:  # nothing of the killed try counts: the retry computed
        assert ti["try_number"] == 2, (phase, ti)
        producer = second
        assert records.read_commit(first, store) is None, phase
        killed = records.find_record(first, store)
        assert killed is None or killed["status"] in ("Running", "Failed"), (phase, killed)
        assert records.read_record(second, store)["status"] == "Completed", phase
    case = "fail_once" if phase == "fail_once" else phase
    expected = ["try1", "try2"] if ran_twice else (["try1"] if producer == first else ["try2"])
    assert dep.executions(case) == expected, (phase, dep.executions(case))
    for srid in (first, second):
        assert_attempt_consistent(store, srid)
    (version,) = registered_versions_of(store, run_id)
    assert version.lineage["step_run_id"] == producer, (phase, version.lineage)
    spec = records.read_spec(producer, store)
    assert spec is not None
    entry = ReuseIndex(store).get(spec.key)
    assert entry is not None and entry.step_run_id == producer and verify_outputs(entry) is None, (phase, entry)


def version_events(dep: Any, dataset: str = DATASET) -> dict[int, int]:
    """How many asset events Airflow recorded for each version of ``dataset``."""
    assets = dep.services.api("GET", f"/assets?uri_pattern={dataset}&only_active=false")["assets"]
    counts: dict[int, int] = {}
    for asset in assets:
        if asset["uri"] != f"mlpipe://datasets/{dataset}":
            continue
        for event in dep.services.api("GET", f"/assets/events?asset_id={asset['id']}&limit=1000")["asset_events"]:
            version = int((event.get("extra") or {}).get("version", 0))
            counts[version] = counts.get(version, 0) + 1
    return counts


def run_kill_matrix(dep: Any, phases: tuple[str, ...] = KILL_PHASES) -> None:
    """One DAG run per phase boundary in ``phases``, each killed there once (``SIGKILL``) and retried at once, and
    one run whose script fails on its first try; all at the same time. Every run must end well, with nothing
    partial left."""
    runs = {}
    for phase in phases:
        run_id = f"kill-{phase}"
        dep.arm(run_id, phase)
        runs[phase] = dep.services.trigger(DAG, run_id, {"case": phase})
    runs["fail_once"] = dep.services.trigger(DAG, "fail-once", {"case": "fail_once"})
    states = dep.services.wait_for_runs(DAG, list(runs.values()), timeout=900)
    assert set(states.values()) == {"success"}, states
    for phase, run_id in runs.items():
        assert_kill_outcome(dep, run_id, phase)
    assert [p.name for p in dep.faults.iterdir() if not p.name.endswith(".fired")] == []  # every fault fired
    events = version_events(dep)
    for phase, run_id in runs.items():  # each run's version announced once, also where a retry finished the try
        (version,) = registered_versions_of(dep.store, run_id)
        assert events.get(version.version) == 1, (phase, version.version, events)
