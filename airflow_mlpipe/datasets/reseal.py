"""``mlpipe datasets reseal``: seal again under ``MLPIPE_REGISTRY_KEY`` what was sealed before the key was set.

With the key set, readers refuse plain (keyless) seals on records only a worker writes. Turning the key on after
records exist would refuse them all; this admin command, run once with the key, lists the records and rewrites
each one whose plain seal holds (and that agrees with its file's name) under the key. A record whose seal fails,
or that disagrees with its name, is left as it is and reported. A record a step script forged before the key was
set holds a plain seal too: run it right after setting the key.

It lists the whole registry and reuse index (and with ``runs``, every step run folder: its record, commit and
spec): an admin command, never part of a step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.datasets.registry import _LEGACY_RECORD, seal_legacy_records, verified_record
from airflow_mlpipe.datasets.seal import (
    REGISTRY_SALT,
    SEAL_FIELD,
    SEAL_KEY_ENV,
    is_plain,
    keyed_seal_is_set,
    resealed,
    seal_problem,
)
from airflow_mlpipe.exceptions import ConfigError, DatasetError
from airflow_mlpipe.reuse.index import ENTRY_SALT, INDEX_ROOT
from airflow_mlpipe.steps.record_seals import COMMIT_SALT, RECORD_SALT
from airflow_mlpipe.steps.records import RUNS_ROOT
from airflow_mlpipe.steps.spec_seals import SPEC_SALT
from airflow_mlpipe.storage.datastore import Datastore

_BATCH = 500
# Checks a record against its path beyond its seal; raises ValueError naming what disagrees.
_Check = Callable[[str, bytes], None]


@dataclass
class ResealReport:
    """:param refused: ``{"path", "error"}`` for each record left as it is because its seal or name fails.
    :param unsealed: records without any seal (older code's, read by their date), left as they are."""

    resealed: int = 0
    keyed: int = 0
    unsealed: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"resealed": self.resealed, "keyed": self.keyed, "unsealed": self.unsealed, "refused": self.refused}


def reseal(store: Datastore, *, runs: bool = False) -> ResealReport:
    """Reseal the registry and the reuse index of ``store`` (and with ``runs`` its step run records, commit
    records and specs) under the registry key; ``ConfigError`` when this process has no key."""
    if not keyed_seal_is_set():
        raise ConfigError(
            f"{SEAL_KEY_ENV} is not set: reseal seals records under that key, so run it where the key is set (as on "
            f"the Airflow workers), e.g. {SEAL_KEY_ENV}=... mlpipe datasets reseal"
        )
    seal_legacy_records(store)  # a registry never sealed is sealed now (under the key), as any first read does
    report = ResealReport()
    registry = (p for p in _listed(store, "_mlpipe/registry") if _LEGACY_RECORD.match(p))
    _reseal(store, registry, report, lambda p: REGISTRY_SALT, _registry_check)
    index = (p for p in _listed(store, INDEX_ROOT) if p.endswith(".json"))
    _reseal(store, index, report, lambda p: ENTRY_SALT, _named("key", lambda p: p.rsplit("/", 1)[-1][:-5]))
    if runs:
        salts = {"record.json": RECORD_SALT, "commit.json": COMMIT_SALT, "spec.json": SPEC_SALT}
        found = (f"{folder}/{name}" for folder in _listed(store, RUNS_ROOT, recursive=False) for name in salts)
        _reseal(store, found, report, lambda p: salts[p.rsplit("/", 1)[-1]],
                _named("step_run_id", lambda p: p.split("/")[2]))  # fmt: skip
    return report


def _listed(store: Datastore, folder: str, *, recursive: bool = True) -> Iterator[str]:
    try:
        yield from store.list(folder, recursive=recursive)
    except FileNotFoundError:
        return


def _reseal(
    store: Datastore, paths: Iterator[str], report: ResealReport, salt_of: Callable[[str], bytes], check: _Check
) -> None:
    batch: list[str] = []
    for path in paths:
        batch.append(path)
        if len(batch) >= _BATCH:
            _reseal_batch(store, batch, report, salt_of, check)
            batch = []
    _reseal_batch(store, batch, report, salt_of, check)


def _reseal_batch(
    store: Datastore, paths: list[str], report: ResealReport, salt_of: Callable[[str], bytes], check: _Check
) -> None:
    for path, body in store.read_many(paths).items():
        if isinstance(body, FileNotFoundError):  # a step run without a commit
            continue
        try:
            if isinstance(body, Exception):
                raise body
            data = json.loads(body)
            if not isinstance(data, Mapping):
                raise ValueError(f"it holds {type(data).__name__}, not a record")
        except (OSError, ValueError) as exc:
            report.refused.append({"path": path, "error": f"unreadable: {exc}"})
            continue
        salt = salt_of(path)
        if SEAL_FIELD not in data:
            report.unsealed += 1
            continue
        sealed = resealed(data, salt)
        if sealed is None:
            # a container runner's record or commit carries its step run's attempt seal, which the key checks
            attempt_sealed = salt in (RECORD_SALT, COMMIT_SALT)
            problem = seal_problem(data, salt, keyless_writer=is_plain(data), attempt_sealed=attempt_sealed)
            if problem is None and not is_plain(data):
                report.keyed += 1
            else:
                report.refused.append({"path": path, "error": problem or "its plain seal does not hold"})
            continue
        try:
            check(path, sealed)
        except (ValueError, KeyError, TypeError) as exc:
            report.refused.append({"path": path, "error": str(exc)})
            continue
        store.write_bytes(path, sealed)
        report.resealed += 1


def _registry_check(path: str, sealed: bytes) -> None:
    """The record names its file's dataset and version, and its manifest agrees with its digest."""
    match = _LEGACY_RECORD.match(path)
    assert match is not None
    name = path.rsplit("/", 2)[-2]
    try:
        verified_record(sealed, name, int(match[1]), where=repr(path))
    except DatasetError as exc:
        raise ValueError(str(exc)) from None


def _named(field_name: str, expected: Callable[[str], str]) -> _Check:
    def check(path: str, sealed: bytes) -> None:
        named = json.loads(sealed).get(field_name)
        if named != expected(path):
            raise ValueError(
                f"its {field_name} {named!r} is not its file's {expected(path)!r}: copied under another name"
            )

    return check
