"""Joining the mini-batches' results into the step's one output, after the error threshold over all items.

Each mini-batch's committed folder holds the driver's ``summary.json``, ``results.txt`` (``append_row``) and
``files/`` (what the script wrote to ``EntryScript().output_dir``). The output gets the result lines in
mini-batch order in ``append_row_file_name``, the scripts' files, and ``parallel_run_summary.json``: counts, each
mini-batch's figures and every failed item with its error. Nothing is written when the failures exceed the
threshold: the error names the failed items and their mini-batches.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.exceptions import MlpipeError
from airflow_mlpipe.parallel.config import APPEND_ROW
from airflow_mlpipe.parallel.driver import FILES_DIR, RESULTS_FILE, SUMMARY_FILE
from airflow_mlpipe.storage.datastore import Datastore

SUMMARY_OUTPUT_FILE = "parallel_run_summary.json"
SHOWN_FAILURES = 10


class TooManyFailuresError(MlpipeError):
    """More failed items than the error threshold allows."""


@dataclass(frozen=True)
class BatchFolder:
    """Where one mini-batch's committed results are."""

    index: int
    datastore: str
    path: str
    reused: bool = False


@dataclass
class Gathered:
    items: int = 0
    succeeded: int = 0
    failed_items: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    batches: list[dict[str, Any]] = field(default_factory=list)

    def summary(self, limit: int | None) -> dict[str, Any]:
        return {
            "mini_batches": len(self.batches),
            "items": self.items,
            "succeeded": self.succeeded,
            "failed": self.failed_items,
            "allowed_failures": limit,
            "failures": self.failures,
            "per_mini_batch": self.batches,
        }

    def metrics(self) -> dict[str, Any]:
        seconds = sum(float(b.get("seconds") or 0) for b in self.batches)
        return {
            "items": self.items,
            "items_succeeded": self.succeeded,
            "items_failed": self.failed_items,
            "mini_batches": len(self.batches),
            "mini_batches_reused": sum(1 for b in self.batches if b.get("reused")),
            "scoring_seconds": round(seconds, 3),
        }


def read_summaries(folders: Sequence[BatchFolder]) -> Gathered:
    out = Gathered()
    for folder in folders:
        summary = json.loads(Datastore.get(folder.datastore).read_text(f"{folder.path.rstrip('/')}/{SUMMARY_FILE}"))
        out.items += int(summary["items"])
        out.succeeded += int(summary["succeeded"])
        out.failed_items += int(summary.get("failed_items", len(summary["failed"])))
        out.failures += [{**f, "mini_batch": folder.index} for f in summary["failed"]]
        out.batches.append(
            {
                "mini_batch": folder.index,
                "items": summary["items"],
                "succeeded": summary["succeeded"],
                "failed": summary.get("failed_items", len(summary["failed"])),
                "seconds": summary.get("seconds"),
                "reused": folder.reused,
            }
        )
    return out


def check_threshold(step: str, gathered: Gathered, limit: int | None) -> None:
    if limit is None or gathered.failed_items <= limit:
        return
    shown = "; ".join(
        f"{f['item']} (mini-batch {f['mini_batch']}): {str(f['error']).splitlines()[0]}"
        for f in gathered.failures[:SHOWN_FAILURES]
    )
    more = len(gathered.failures) - SHOWN_FAILURES
    raise TooManyFailuresError(
        f"step {step!r}: {gathered.failed_items} of {gathered.items} items failed, more than the {limit} allowed "
        f"(error_threshold / allowed_failed_count / allowed_failed_percent): {shown}"
        + (f"; and {more} more" if more > 0 else "")
        + "; nothing was committed or registered"
    )


def write_output(
    staging: str,
    folders: Sequence[BatchFolder],
    gathered: Gathered,
    *,
    output_action: str,
    result_file: str,
    limit: int | None,
) -> None:
    """Fill the output's staging folder: results in mini-batch order, the scripts' files, the summary."""
    os.makedirs(staging, exist_ok=True)
    if output_action == APPEND_ROW:
        with open(os.path.join(staging, result_file), "wb") as out:
            for folder in folders:
                store = Datastore.get(folder.datastore)
                path = f"{folder.path.rstrip('/')}/{RESULTS_FILE}"
                if store.exists(path):
                    with store.open(path, "rb") as fh:
                        shutil.copyfileobj(fh, out)
    for folder in folders:
        _copy_files(folder, staging, reserved={result_file, SUMMARY_OUTPUT_FILE})
    with open(os.path.join(staging, SUMMARY_OUTPUT_FILE), "w", encoding="utf-8") as fh:
        json.dump(gathered.summary(limit), fh, indent=1)


def _copy_files(folder: BatchFolder, staging: str, reserved: set[str]) -> None:
    store = Datastore.get(folder.datastore)
    base = f"{folder.path.rstrip('/')}/{FILES_DIR}"
    if not store.exists(base):
        return
    for path in sorted(store.list(base, recursive=True)):
        rel = path[len(base) + 1 :]
        if rel in reserved:
            raise MlpipeError(f"mini-batch {folder.index} wrote {rel!r} to output_dir, a name the step's output keeps")
        target = os.path.join(staging, *rel.split("/"))
        if os.path.exists(target):
            raise MlpipeError(
                f"mini-batch {folder.index} wrote {rel!r} to output_dir, as an earlier mini-batch did: name the files "
                "after the items they come from"
            )
        os.makedirs(os.path.dirname(target), exist_ok=True)
        store.download(path, target)


def batch_folders(results: Sequence[Mapping[str, Any] | None], count: int, name: str) -> list[BatchFolder]:
    """Every mini-batch's results folder, in mini-batch order, from the results of the mini-batches (reused by
    the planning task or computed by a node; each with its ``index`` and ``outputs``). Each of ``count``
    mini-batches must appear exactly once."""
    found: dict[int, BatchFolder] = {}
    for result in results:
        if not result:
            continue
        index = int(result["index"])
        where = (result.get("outputs") or {}).get(name)
        if not where:
            raise MlpipeError(f"mini-batch {index} published no results (did its task succeed in this DAG run?)")
        if index in found:
            raise MlpipeError(f"mini-batch {index} has two results in this DAG run: planning is not deterministic")
        found[index] = BatchFolder(index, str(where["datastore"]), str(where["path"]), bool(result.get("reused")))
    missing = [n for n in range(count) if n not in found]
    if missing:
        shown = ", ".join(str(n) for n in missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise MlpipeError(
            f"{len(missing)} of {count} mini-batches have no results in this DAG run (mini-batch {shown}): did "
            "every mini_batch task instance succeed?"
        )
    return [found[n] for n in range(count)]
