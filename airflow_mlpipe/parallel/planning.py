"""Cutting a pinned input into mini-batches, deterministically and without reading a byte of data.

Items are the files of the input's pinned manifest (path, size, content identity as the store keeps them), in
path order. A File dataset's mini-batch holds ``mini_batch_size`` files; a Tabular dataset's holds files up to
``mini_batch_size`` bytes (at least one file). Only paths and sizes place an item, never its content, so a
changed file stays in its mini-batch (only that mini-batch's reuse key changes), and a file added after the
last path only changes the last mini-batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
from airflow_mlpipe.exceptions import DatasetError

MINI_BATCH_INPUT = "mini_batch"
_T = TypeVar("_T")


@dataclass(frozen=True)
class MiniBatch:
    """One mini-batch: which input it comes from and its files; ``spec`` is the step input it becomes."""

    index: int
    input_name: str
    entries: tuple[ManifestEntry, ...]

    @property
    def items(self) -> int:
        return len(self.entries)

    @property
    def manifest(self) -> Manifest:
        return Manifest.of(self.entries)


def cut(entries: Sequence[ManifestEntry], *, kind: str, size: int) -> list[tuple[ManifestEntry, ...]]:
    """Consecutive runs of ``entries`` (already in manifest order): ``size`` files each, or for ``tabular`` files
    adding up to at most ``size`` bytes (a larger file is a mini-batch of its own)."""
    batches: list[tuple[ManifestEntry, ...]] = []
    current: list[ManifestEntry] = []
    used = 0
    for entry in entries:
        weight = entry.identity.size if kind == "tabular" else 1
        if current and used + weight > size:
            batches.append(tuple(current))
            current, used = [], 0
        current.append(entry)
        used += weight
    if current:
        batches.append(tuple(current))
    return batches


def plan_mini_batches(
    step: str, pinned_inputs: Sequence[Mapping[str, Any]], sizes: Mapping[str, int]
) -> list[MiniBatch]:
    """Mini-batches over every input in turn (a mini-batch never mixes inputs), numbered from 0.

    :param pinned_inputs: input specs with their ``pin`` (``reuse.inputs.pin_input``).
    :param sizes: per input kind (``file``, ``tabular``), the mini-batch size.
    """
    out: list[MiniBatch] = []
    for spec in pinned_inputs:
        manifest = Manifest.from_dict(spec["pin"]["manifest"])
        kind = str(spec["pin"].get("kind") or "file")
        for entries in cut(manifest.entries, kind=kind, size=sizes[kind]):
            out.append(MiniBatch(len(out), str(spec["name"]), entries))
    if not out:
        names = ", ".join(repr(str(s["name"])) for s in pinned_inputs) or "(none given)"
        raise DatasetError(f"step {step!r}: its inputs {names} hold no files: there is nothing to score")
    return out


def mini_batch_input(spec: Mapping[str, Any], batch: MiniBatch) -> dict[str, Any]:
    """The step input of one mini-batch: the input's spec pinned to the mini-batch's files only, so its reuse key
    covers exactly their content (and the runner downloads exactly them)."""
    pin = {**spec["pin"], "manifest": batch.manifest.to_dict()}
    return {
        "name": MINI_BATCH_INPUT,
        "mode": "download",
        "source": dict(spec["source"]),
        "pin": pin,
        "parallel": {"index": batch.index, "input": batch.input_name, "items": batch.items},
    }


def shares(items: Sequence[_T], count: int) -> list[list[_T]]:
    """``items`` in at most ``count`` consecutive shares of nearly equal length (none empty)."""
    count = max(1, min(int(count), len(items)))
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for n in range(count):
        end = start + size + (1 if n < extra else 0)
        out.append(list(items[start:end]))
        start = end
    return [share for share in out if share]
