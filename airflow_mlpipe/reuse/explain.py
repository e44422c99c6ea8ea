"""Why a step's reuse key differs from the nearest earlier run's, in words, component by component.

Lines read as users think of their step: "source file train.py changed", "parameter learning_rate 0.1 → 0.2",
"input iris_raw: file part-0.csv content changed", "input prepped: upstream output changed", "environment
changed (pip_packages)". File-level lines come from tree and manifest entries kept next to the key; where they
were too many to keep, the line gives counts instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from airflow_mlpipe.fingerprint.tree import Tree, TreeDiff, diff
from airflow_mlpipe.reuse.history import HistoryEntry
from airflow_mlpipe.reuse.key import ReuseKey
from airflow_mlpipe.reuse.step_key import StepFingerprint
from airflow_mlpipe.storage.datastore import Datastore

NO_EARLIER_RUN = "no earlier run of this step"
FILE_LINES_LIMIT = 10

TreeLoader = Callable[[str], Tree | None]


def mutable_image_note(image: str | None) -> str | None:
    """The line an explanation adds for a step whose image is named by a tag, not pinned by digest."""
    if not image or "@sha256:" in str(image):
        return None
    return (
        f"image {image} is a tag and is keyed as written: reuse assumes the tag still names the same software "
        "(pin the image by digest, repo@sha256:..., to key its content)"
    )


def rerun_line(earlier: str) -> str:
    return (
        f"this task instance was cleared after its earlier try succeeded (step run {earlier}): it computes anew, "
        "as Airflow's clear asks, and neither reuses nor overwrites that try's outputs"
    )


def explain_changes(
    current: StepFingerprint, previous: HistoryEntry | None, *, load_tree: TreeLoader | None = None
) -> list[str]:
    """What differs from ``previous`` (empty when its key is the same); ``load_tree(digest)`` reads a source tree
    (default: the snapshot's tree record in the default datastore)."""
    if previous is None:
        return [NO_EARLIER_RUN]
    if previous.key == current.digest:
        return []
    try:
        before = ReuseKey.from_components(previous.components)
    except (KeyError, TypeError, ValueError):
        return [f"the earlier run {previous.step_run_id} kept no readable reuse key; cannot compare"]
    now, old_details, new_details = current.key, previous.details, current.details
    loader = _tree_loader(current, load_tree)
    lines: list[str] = []
    if before.script != now.script:
        lines.append(f"script changed: {before.script} → {now.script}")
    if before.source != now.source:
        lines += _source_lines(before.source, now.source, loader)
    lines += _hash_paths_lines(before.hash_paths, now.hash_paths, old_details, new_details)
    lines += _argument_lines(before, now)
    lines += _input_lines(before, now, old_details, new_details)
    lines += _output_lines(before.outputs, now.outputs)
    changed_env = sorted(
        k for k in {*before.environment, *now.environment} if before.environment.get(k) != now.environment.get(k)
    )
    if changed_env:
        lines.append(f"environment changed ({', '.join(changed_env)})")
    return lines or ["the reuse key's format changed since the earlier run"]


# -- source and hash_paths ------------------------------------------------------------------------------------
def _tree_loader(current: StepFingerprint, load_tree: TreeLoader | None) -> TreeLoader:
    def load(digest: str) -> Tree | None:
        if current.source_tree is not None and current.source_tree.digest == digest:
            return current.source_tree
        if load_tree is not None:
            return load_tree(digest)
        return load_snapshot_tree(digest)

    return load


def load_snapshot_tree(digest: str, store: Datastore | None = None) -> Tree | None:
    from airflow_mlpipe.steps.snapshot import tree_path

    try:
        return Tree.from_dict((store or Datastore.get_default()).read_json(tree_path(digest)))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def _source_lines(old: str, new: str, load: TreeLoader) -> list[str]:
    old_tree, new_tree = load(old), load(new)
    if old_tree is None or new_tree is None:
        return ["source folder changed (the earlier snapshot's file list is gone)"]
    return diff(old_tree, new_tree).describe("source file", limit=FILE_LINES_LIMIT)


def _hash_paths_lines(
    old: str | None, new: str | None, old_details: Mapping[str, Any], new_details: Mapping[str, Any]
) -> list[str]:
    if old == new:
        return []
    if old is None:
        return ["hash_paths added"]
    if new is None:
        return ["hash_paths removed"]
    before = (old_details.get("hash_paths") or {}).get("entries")
    after = (new_details.get("hash_paths") or {}).get("entries")
    if before is None or after is None:
        return ["hash_paths content changed (too many files to name them)"]
    return _entries_diff(before, after).describe("hash_paths file", limit=FILE_LINES_LIMIT)


def _entries_diff(before: Mapping[str, str], after: Mapping[str, str]) -> TreeDiff:
    return TreeDiff(
        added=tuple(sorted(p for p in after if p not in before)),
        removed=tuple(sorted(p for p in before if p not in after)),
        changed=tuple(sorted(p for p in after if p in before and before[p] != after[p])),
    )


# -- arguments ------------------------------------------------------------------------------------------------
def _argument_lines(before: ReuseKey, now: ReuseKey) -> list[str]:
    lines = []
    old_params, new_params = _params(before), _params(now)
    for name in sorted({*old_params, *new_params}):
        if name not in old_params:
            lines.append(f"parameter {name} added ({_show(new_params[name])})")
        elif name not in new_params:
            lines.append(f"parameter {name} removed")
        elif old_params[name] != new_params[name]:
            lines.append(f"parameter {name} {_show(old_params[name])} → {_show(new_params[name])}")
    if _command_line(before) != _command_line(now):
        lines.append(f"arguments changed: {_command_line(before)} → {_command_line(now)}")
    return lines


def _params(key: ReuseKey) -> dict[str, Any]:
    return {str(a["name"]): a.get("value") for a in key.arguments if a.get("t") == "param"}


def _command_line(key: ReuseKey) -> str:
    """The arguments with parameters, inputs and outputs as named placeholders (their values are compared
    apart)."""
    shown = {"param": "{{{}}}", "input": "<input {}>", "output": "<output {}>"}
    return " ".join(
        str(a.get("v")) if a.get("t") == "str" else shown.get(str(a.get("t")), "{}").format(a.get("name"))
        for a in key.arguments
    )


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# -- inputs -------------------------------------------------------------------------------------------------
def _input_lines(
    before: ReuseKey, now: ReuseKey, old_details: Mapping[str, Any], new_details: Mapping[str, Any]
) -> list[str]:
    lines = []
    old_inputs = old_details.get("inputs") or {}
    new_inputs = new_details.get("inputs") or {}
    for name in sorted({*before.inputs, *now.inputs}):
        if name not in before.inputs:
            lines.append(f"input {name} added")
            continue
        if name not in now.inputs:
            lines.append(f"input {name} removed")
            continue
        old, new = before.inputs[name], now.inputs[name]
        for field_name in ("mode", "path_on_compute", "kind"):
            if old.get(field_name) != new.get(field_name):
                lines.append(f"input {name}: {field_name} {old.get(field_name)} → {new.get(field_name)}")
        if old.get("options") != new.get("options"):
            lines.append(f"input {name}: read options changed")
        if old.get("content") != new.get("content"):
            lines += _content_lines(name, old_inputs.get(name) or {}, new_inputs.get(name) or {})
    return lines


def _content_lines(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    before, after = old.get("entries"), new.get("entries")
    files = []
    if before is not None and after is not None:
        changes = _entries_diff(before, after)
        files = changes.describe(f"input {name}: file", limit=FILE_LINES_LIMIT, changed="content changed")
    if new.get("origin") == "upstream":
        if files:
            return [f"input {name}: upstream output changed", *files]
        producer = new.get("producer") or "the upstream step"
        return [f"input {name}: upstream output changed (the same files, written anew by a new run of {producer})"]
    lines = []
    if old.get("dataset") != new.get("dataset") and new.get("dataset"):
        lines.append(f"input {name}: dataset {old.get('dataset') or 'definition'} → {new['dataset']}")
    if files:
        return lines + files
    return [*lines, f"input {name}: content changed ({old.get('files')} → {new.get('files')} files)"]


# -- outputs ------------------------------------------------------------------------------------------------
_OUTPUT_FIELDS = {
    "destination": "destination",
    "datastore": "datastore",
    "mode": "mode",
    "overwrite": "upload settings",
    "source_globs": "upload settings",
    "registration": "registration",
}


def _output_lines(before: Mapping[str, Mapping[str, Any]], now: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = []
    for name in sorted({*before, *now}):
        if name not in before:
            lines.append(f"output {name} added")
        elif name not in now:
            lines.append(f"output {name} removed")
        else:
            changed = dict.fromkeys(
                label for key, label in _OUTPUT_FIELDS.items() if before[name].get(key) != now[name].get(key)
            )
            lines += [f"output {name} {label} changed" for label in changed]
    return lines
