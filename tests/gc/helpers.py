"""Step runs written as the runner and the finish path write them (spec, commit, outputs with their markers,
record and summaries, reuse index entry, history, registration), dated as a test needs, in a local datastore."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.manifest import Manifest
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.reuse.decide import ReuseDecision
from airflow_mlpipe.reuse.history import HistoryEntry, StepHistory
from airflow_mlpipe.reuse.index import ReuseEntry, ReuseIndex
from airflow_mlpipe.reuse.step_key import StepFingerprint
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.reuse_helpers import committed_output, fingerprint, output_spec

NOW = dt.datetime.now(dt.UTC)


def ago(**delta: float) -> str:
    return (NOW - dt.timedelta(**delta)).isoformat(timespec="milliseconds")


@dataclass
class MadeRun:
    srid: str
    spec: StepSpec
    fp: StepFingerprint
    output_path: str
    record: dict[str, Any]


class Runs:
    """Makes step runs in ``store`` (the default datastore) with snapshots from small source folders."""

    def __init__(self, store: Datastore, tmp_path: Path) -> None:
        self.store = store
        self.tmp_path = tmp_path
        self._sources: dict[str, str] = {}

    def snapshot(self, text: str, *, large: bool = False) -> str:
        """Store the snapshot of a source folder holding ``train.py`` = ``text``, as every step does (a tree
        stored before costs one check)."""
        if text not in self._sources:
            source = self.tmp_path / f"src-{len(self._sources)}"
            source.mkdir()
            (source / "train.py").write_text(text)
            if large:  # a file outside the pack: a content object of its own
                (source / "weights.bin").write_bytes(text.encode() * (1024 * 1024 // len(text) + 1))
            self._sources[text] = str(source)
        tree = scan_source(self._sources[text])
        store_snapshot(self._sources[text], tree, self.store)
        return tree.digest

    def make(
        self,
        dag: str,
        task: str,
        run_id: str,
        *,
        created: str,
        status: str = records.COMPLETED,
        register: str | None = None,
        source: str = "print('v1')",
        try_number: int = 1,
        ttl: float | None = None,
        reads: MadeRun | None = None,
    ) -> MadeRun:
        attempt = AttemptId(dag, run_id, task, try_number=try_number)
        srid = attempt.step_run_id
        path = f"dataset/{srid}/model"
        fp = fingerprint(arguments=[{"t": "str", "v": f"{dag}/{task}/{run_id}"}], outputs=[output_spec("model")])
        out = {"name": "model", "datastore": self.store.name, "path": path, "mode": "mount"}
        policy = {"ttl": ttl} if ttl is not None else {}
        spec = StepSpec(
            attempt=attempt,
            script_name="train.py",
            snapshot=self.snapshot(source),
            outputs=(out,),
            reuse={"key": fp.digest, "components": fp.key.components(), "details": {}, "policy": policy},
            created_at=created,
        )
        assert records.write_spec(spec, self.store)
        record: dict[str, Any] = {**records.record_base(spec), "status": status, "started_at": created}
        if reads is not None:  # an input taken from an earlier step's output folder
            record["inputs"] = [
                {"name": "data", "mode": "mount", "datastore": self.store.name, "path": reads.output_path}
            ]
        if status in (records.COMPLETED, records.FAILED):
            record["finished_at"] = created
        if status == records.COMPLETED:
            output = committed_output(self.store, "model", path, {"part-0.csv": f"{srid}\n"}, self.tmp_path)
            manifest = Manifest.from_dict(self.store.read_marker(path))
            records.write_commit(srid, [{**output, "manifest": manifest.to_dict()}], self.store)
            self.store.mark_complete(path, {**self.store.read_marker(path), "step_run_id": srid})
            if register:
                version, _ = DatasetRegistry(self.store).register(
                    name=register,
                    kind="file",
                    definition={"paths": [{"datastore": self.store.name, "path": path}], "options": {}},
                    manifest=manifest,
                    lineage={**attempt.to_dict(), "step_run_id": srid},
                )
                output["registered"] = {"name": register, "version": version.version, "created": True}
            record["outputs"] = [output]
        elif status == records.FAILED:  # what a killed attempt leaves: files staged without a marker, staging
            self.store.write_text(f"{path}/part-0.csv", "half")
            self.store.write_text(f"dataset/{srid}/.model.staging-0a1b2c3d/part-1.csv", "half")
        records.write_record(record, self.store)
        decision = ReuseDecision(False, fp.digest, "no_entry", ("no earlier run of this step",), created)
        entry = HistoryEntry(srid, dag, run_id, task, created, fp.digest, fp.key.components(), {}, decision.to_dict())
        StepHistory(dag, task, self.store).add(entry)
        if status == records.COMPLETED:
            ReuseIndex(self.store).put(
                ReuseEntry(fp.digest, srid, dag, task, created, tuple(record["outputs"]), fp.key.components())
            )
        return MadeRun(srid, spec, fp, path, record)


def files(store: Datastore) -> set[str]:
    """Every file in the datastore (relative paths; local temporary files excluded)."""
    root = store.full_path("")
    found = set()
    for dirpath, _, names in os.walk(root):
        for name in names:
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            found.add(rel)
    return found


def age_files(store: Datastore, *, days: float) -> None:
    """Date every file in the local datastore ``days`` back, as if written then."""
    moment = (NOW - dt.timedelta(days=days)).timestamp()
    for rel in files(store):
        os.utime(store.full_path(rel), (moment, moment))


def under(paths: set[str], prefixes: Iterator[str] | list[str]) -> set[str]:
    wanted = list(prefixes)
    return {p for p in paths if any(p == w or p.startswith(w.rstrip("/") + "/") for w in wanted)}
