"""The checks of ``transfer()``'s arguments, all made before its first storage call: each failure names the
argument, the value and the fix (``"no"`` is truthy, ``"3"`` is not a number of workers, a string of files is
not a list of them), so that a wrong call writes nothing. No Airflow import."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_mlpipe.core.checks import (
    check_bool,
    check_choice,
    check_instance,
    check_positive_number,
    check_str_list,
    check_str_mapping,
    check_whole_number,
    shown,
)
from airflow_mlpipe.core.paths import check_user_path
from airflow_mlpipe.exceptions import ConfigError, PathOutsideDatastoreError
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.retry import RetryPolicy

OWNER = "transfer()"
# The keys mlpipe itself writes into a completion marker (a transfer's manifest, a step's commit, the version
# registered from the folder, the folder's content manifest): a caller's ``marker_extra`` may not set them, since
# the reuse index, gc and later transfers trust them (a forged ``step_run_id`` or ``registered`` would make a plain
# copy pass for a committed step output or a registered version).
RESERVED_MARKER_KEYS = frozenset(
    {"transfer", "step_run_id", "step_output", "registered", "files", "bytes", "digest", "entries"}
)


def store_of(argument: str, value: object) -> Datastore:
    """A ``Datastore``, or the one a datastore name (its Airflow connection id) names."""
    if isinstance(value, Datastore):
        return value
    if isinstance(value, str) and value.strip():
        return Datastore.get(value)
    raise ConfigError(
        f"{OWNER}: {argument} {shown(value)} must be a Datastore or a datastore name (an Airflow connection id), "
        f"not {type(value).__name__}; e.g. transfer(Datastore.get('lake'), 'in', 'lake', 'out')"
    )


def refused_paths(
    folder: str, rels: Iterable[str], *, argument: str, datastore: str
) -> list[tuple[str, PathOutsideDatastoreError]]:
    """The files (paths relative to ``folder``, a datastore path) that would be written at a path a user could not
    give (``check_user_path``: below a folder named ``_mlpipe`` at any depth, a marker's or journal's name, both as
    stores keep names, a backslash, a control character, a name too long), each with its error: the copies of a
    transfer's source files, the files a step's script wrote for an output."""
    refused = []
    for rel in rels:
        try:
            check_user_path("/".join(p for p in (folder.strip("/"), rel) if p), argument=argument, datastore=datastore)
        except PathOutsideDatastoreError as exc:
            refused.append((rel, exc))
    return refused


def check_path(argument: str, value: object) -> str:
    if not isinstance(value, str):
        raise ConfigError(
            f"{OWNER}: {argument} {shown(value)} must be a path relative to the datastore root (a string), not "
            f"{type(value).__name__}; e.g. 'data/in' ('' for the root)"
        )
    return value


def check_arguments(
    *,
    kind: object,
    overwrite: object,
    verify: object,
    files: object,
    progress: object,
    progress_interval: object,
    max_workers: object,
    retry: object,
    chunk_size: object,
    block_parallel: object,
    memory_limit: object,
    marker_extra: object,
    mark_complete: object,
    mirror: object,
    option_words: object,
) -> tuple[str, ...] | None:
    """Every argument but the stores and paths, as ``transfer()`` documents it; ``ConfigError`` otherwise.
    Returns ``files`` as a tuple (an iterator given is read once, here)."""
    check_choice(OWNER, "kind", kind, ("directory", "file"))
    for name, flag in (
        ("overwrite", overwrite),
        ("verify", verify),
        ("mark_complete", mark_complete),
        ("mirror", mirror),
    ):
        check_bool(OWNER, name, flag)
    listed = None if files is None else check_str_list(OWNER, "files", files, example="data/part-0.csv")
    if progress is not None and not callable(progress):
        raise ConfigError(
            f"{OWNER}: progress {shown(progress)} must be a function taking a TransferProgress (or None), e.g. "
            "progress=lambda p: print(p)"
        )
    check_positive_number(OWNER, "progress_interval", progress_interval, allow_zero=True)  # 0: every change
    if max_workers is not None:
        check_whole_number(OWNER, "max_workers", max_workers, minimum=1, example=8)
    check_instance(OWNER, "retry", retry, RetryPolicy, fix="give retry=RetryPolicy(attempts=3), or None")
    check_whole_number(OWNER, "chunk_size", chunk_size, minimum=1, example=8 * 1024 * 1024)
    check_whole_number(OWNER, "block_parallel", block_parallel, minimum=1, example=4)
    check_whole_number(OWNER, "memory_limit", memory_limit, minimum=1, example=256 * 1024 * 1024)
    check_marker_extra(marker_extra)
    check_str_mapping(OWNER, "option_words", option_words, example="{'overwrite': 'pass --overwrite'}")
    return listed


def check_marker_extra(value: object) -> dict[str, Any]:
    """A mapping of string keys to JSON values, none of them a key mlpipe writes itself."""
    if value is None:
        return {}
    example = "{'dataset': 'train', 'version': 3}"
    if not isinstance(value, Mapping) or not all(isinstance(key, str) and key for key in value):
        raise ConfigError(
            f"{OWNER}: marker_extra {shown(value)} must be a dict with string keys (or None), e.g. "
            f"marker_extra={example}"
        )
    reserved = sorted(RESERVED_MARKER_KEYS.intersection(value))
    if reserved:
        raise ConfigError(
            f"{OWNER}: marker_extra sets {', '.join(map(repr, reserved))}, which mlpipe writes into a completion "
            "marker itself (a transfer's manifest, a step's commit, a registered version) and which gc, reuse and "
            f"later transfers trust; choose other keys, e.g. marker_extra={example}"
        )
    try:
        json.dumps(dict(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"{OWNER}: marker_extra {shown(value)} must hold JSON values only (strings, numbers, True/False, None, "
            f"lists and dicts of them): {exc}; e.g. marker_extra={example}"
        ) from None
    return dict(value)
