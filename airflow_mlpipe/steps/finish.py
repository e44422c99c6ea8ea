"""How every attempt ends: one finish path for a committed attempt and one for a reuse hit. No Airflow import.

A committed attempt (its ``commit.json`` exists) is finished by ``finish_committed``, whoever gets there: the task
that launched it, the task resumed after its pod ran in the triggerer, a retry that reattached to its pod, or a
later try of the task instance whose predecessor was killed after committing. Each step is idempotent, so a
finish that is itself killed is completed by the next one:

1. register each output as the spec asks (the latest version with equal content is taken, none added);
2. mark each output complete (its marker holds the committed manifest and the step run id), only once every
   registration succeeded: a failed one leaves every output unmarked (``RegistrationFailedError``);
3. index the outputs under the reuse key written in the spec (never one worked out again);
4. write the final record (``Completed``): the attempt is finished.

A reuse hit ends in ``finish_reused``: the earlier run's outputs, registered as this step asks, and a ``Reused``
record. Neither writes into any folder of an earlier attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.core.faults import fault_point
from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.datasets.paths import DataPath
from airflow_mlpipe.datasets.registry import DatasetRecord, DatasetRegistry
from airflow_mlpipe.exceptions import MlpipeError
from airflow_mlpipe.reuse.index import ReuseEntry, ReuseIndex
from airflow_mlpipe.reuse.indexing import index_run
from airflow_mlpipe.reuse.key import ReuseKey
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore

log = logging.getLogger(__name__)

# The commit time is taken on the runner's machine, registrations on the worker's: allow for their clocks.
CLOCK_MARGIN_MINUTES = 10


class NotCommittedError(MlpipeError):
    """An attempt without a commit: its runner failed, was killed, or is still running."""


class RegistrationFailedError(MlpipeError):
    """Registering a committed output failed: no output was marked complete, so no reader takes any of them."""


def lineage(spec: StepSpec, **more: Any) -> dict[str, Any]:
    """What a registered version records about the attempt that produced (or reused) it."""
    return {**spec.attempt.to_dict(), "step_run_id": spec.step_run_id, **more}


def register_committed(
    declared: Mapping[str, Any],
    datastore: str,
    path: str,
    manifest: Manifest,
    produced_by: Mapping[str, Any],
    *,
    since: str | None = None,
) -> dict[str, Any] | None:
    """Register the folder ``datastore:path`` holding ``manifest`` as the dataset ``declared`` names (None when
    it asks for none). ``created``: whether the version is this attempt's own (True also when an earlier finish
    of the same attempt created it and died before saying so: then this one announces it).

    :param since: when the attempt committed: a version it registered since then (a finish killed after
        registering) is taken as it is, never registered twice."""
    registration = declared.get("registration")
    if not registration:
        return None
    registry = DatasetRegistry()
    if since is not None:
        earlier = registry.registered_by(str(registration["name"]), str(produced_by["step_run_id"]), since=since)
        if earlier is not None:
            return _registered(earlier, produced_by)
    record, _ = registry.register(
        name=str(registration["name"]),
        kind="file",
        definition={"paths": [DataPath(datastore, path).to_dict()], "options": {}},
        manifest=manifest,
        description=registration.get("description"),
        tags=registration.get("tags") or {},
        lineage=produced_by,
    )
    return _registered(record, produced_by)


def _registered(record: DatasetRecord, produced_by: Mapping[str, Any]) -> dict[str, Any]:
    own = record.lineage.get("step_run_id") == produced_by.get("step_run_id")
    return {"name": record.name, "version": record.version, "created": own}


def finish_committed(
    spec: StepSpec,
    store: Datastore,
    *,
    finished_by: str | None = None,
    reuse: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Finish the committed attempt ``spec`` (see the module's notes); returns its final record.

    :param finished_by: the attempt finishing it, when another than itself (a later try).
    :param reuse: the record's ``reuse`` block with the attempt's decision, when the caller knows it."""
    commit = records.read_commit(spec.step_run_id, store)
    if commit is None:
        raise NotCommittedError(f"step run {spec.step_run_id} has no commit: it failed, was killed or still runs")
    record = records.find_record(spec.step_run_id, store) or {**records.record_base(spec)}
    produced_by = lineage(spec, inputs=record.get("inputs") or [])
    since = _minutes_before(str(commit["committed_at"]), CLOCK_MARGIN_MINUTES)
    outputs = []
    for out in commit["outputs"]:
        manifest = Manifest.from_dict(out["manifest"])
        declared = spec.output(out["name"])
        try:
            registered = register_committed(declared, out["datastore"], out["path"], manifest, produced_by, since=since)
        except (MlpipeError, OSError) as exc:
            raise RegistrationFailedError(
                f"output {out['name']!r} of step run {spec.step_run_id}: registering it as dataset "
                f"{declared['registration']['name']!r} failed ({exc}); no output of the step run was marked "
                "complete, so nothing was committed for any reader (a later try of the task registers and marks "
                "them)"
            ) from None
        if registered is not None:
            fault_point(f"registered_{out['name']}", spec.dag_id, spec.run_id)
        outputs.append(
            {
                "name": out["name"],
                "datastore": out["datastore"],
                "path": out["path"],
                "uri": out["uri"],
                "manifest": manifest.summary(),
                "registered": registered,
            }
        )
    for out in commit["outputs"]:
        if spec.output(out["name"]).get("file"):  # a single copied file: no folder to mark
            continue
        marker = {**out.get("marker", {}), "step_output": out["name"], "step_run_id": spec.step_run_id}
        registered = next(o["registered"] for o in outputs if o["name"] == out["name"])
        if registered is not None:  # named when a later step run is refused this folder
            marker["registered"] = {"name": registered["name"], "version": registered["version"]}
        Datastore.get(out["datastore"]).mark_complete(out["path"], {**marker, **out["manifest"]})
        fault_point(f"marked_{out['name']}", spec.dag_id, spec.run_id)
    record.update(
        status=records.COMPLETED,
        outputs=outputs,
        committed_at=commit.get("committed_at"),
        finished_at=records.now_iso(),
    )
    if finished_by and finished_by != spec.step_run_id:
        record["finished_by"] = finished_by
    if reuse:
        record["reuse"] = dict(reuse)
    index_attempt(spec, record, store)
    fault_point("indexed", spec.dag_id, spec.run_id)
    records.write_record(record, store)
    return record


def index_attempt(spec: StepSpec, record: Mapping[str, Any], store: Datastore) -> ReuseEntry | None:
    """Index the attempt's outputs under the key its spec holds (a transfer or a step without a key: none)."""
    if not spec.key:
        return None
    try:
        key = ReuseKey.from_components(spec.reuse["components"])
        return index_run(ReuseIndex(store), key, record)
    except (MlpipeError, OSError) as exc:  # the step succeeded; only later reuse of it is lost
        log.warning("could not index step run %s for reuse: %s", spec.step_run_id, exc)
        return None


def finish_reused(
    spec: StepSpec, entry: ReuseEntry, store: Datastore, *, reuse: Mapping[str, Any], started_at: str
) -> dict[str, Any]:
    """The final record of a hit: the earlier run's outputs (registered as this step asks) and its arguments,
    inputs and metrics, which produced them. Outputs of an earlier try of this same task instance keep the
    registration that try made: one task instance registers its result once (and announces it once)."""
    declared = {str(o["name"]): o for o in spec.outputs}
    produced_by = lineage(spec, reused_from=entry.step_run_id)
    before = records.find_record(entry.step_run_id, store) or {}
    own_try = _same_task_instance(before, spec)
    outputs = []
    for earlier in entry.outputs:
        out = {k: v for k, v in earlier.items() if k != "registered"}
        wanted = declared.get(str(out["name"])) or {}
        if wanted.get("registration") and own_try and earlier.get("registered"):
            # Unless Airflow saw that try succeed (a backfill reprocessing the run), it recorded none of its asset
            # events: a version that try created is announced by this one.
            announced = bool(spec.policy.get("earlier_try_announced"))
            out["registered"] = {**earlier["registered"], "created": earlier["registered"]["created"] and not announced}
        elif wanted.get("registration"):
            manifest = Manifest.from_dict(_marker_of(out))
            out["registered"] = register_committed(
                wanted, str(out["datastore"]), str(out["path"]), manifest, produced_by
            )
        outputs.append(out)
    record = {
        **records.record_base(spec),
        "status": records.REUSED,
        "started_at": started_at,
        "finished_at": records.now_iso(),
        "reused_from": entry.step_run_id,
        "arguments": before.get("arguments", []),
        "inputs": before.get("inputs", []),
        "metrics": before.get("metrics", {}),
        "outputs": outputs,
        "reuse": dict(reuse),
    }
    records.write_record(record, store)
    return record


def _same_task_instance(record: Mapping[str, Any], spec: StepSpec) -> bool:
    mine = spec.attempt.task_instance
    return (record.get("dag_id"), record.get("run_id"), record.get("task_id"), record.get("map_index", -1)) == mine


def _minutes_before(iso: str, minutes: int) -> str:
    moment = dt.datetime.fromisoformat(iso) - dt.timedelta(minutes=minutes)
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")


def _marker_of(output: Mapping[str, Any]) -> dict[str, Any]:
    """The committed manifest of an earlier output (its completion marker; the hit was verified against it)."""
    return Datastore.get(str(output["datastore"])).read_marker(str(output["path"]))
