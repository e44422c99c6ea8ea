"""Objects that never change, kept in the API server's memory so a page viewed again reads only what is new.

A listing row is the summary of a step run; once its status is final (``Completed``, ``Reused``, ``Failed``) the
summary is never written again, and a dataset version's record never changes. The first view of a page reads them
(one batch); later views read only the rows not yet final. Bounded: the oldest entries go first.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore

LIMIT = 50_000
FINAL = (records.COMPLETED, records.REUSED, records.FAILED)

_lock = threading.Lock()
_kept: OrderedDict[tuple[str, str], Any] = OrderedDict()


def read_json_many(
    store: Datastore, paths: Iterable[str], *, final: Callable[[Any], bool]
) -> dict[str, Any | Exception]:
    """Each path's parsed JSON (or the error reading or parsing it raised), from memory where an earlier read
    found it ``final``, the rest read in one batch."""
    wanted = list(paths)
    found: dict[str, Any | Exception] = {}
    with _lock:
        for path in wanted:
            key = (store.url, path)
            if key in _kept:
                _kept.move_to_end(key)
                found[path] = _kept[key]
    missing = [p for p in wanted if p not in found]
    for path, body in store.read_many(missing).items():
        if isinstance(body, Exception):
            found[path] = body
            continue
        try:
            value = json.loads(body)
        except ValueError as exc:
            found[path] = exc
            continue
        found[path] = value
        if final(value):
            _keep((store.url, path), value)
    return found


def _keep(key: tuple[str, str], value: Any) -> None:
    with _lock:
        _kept[key] = value
        _kept.move_to_end(key)
        while len(_kept) > LIMIT:
            _kept.popitem(last=False)


def clear() -> None:
    with _lock:
        _kept.clear()


def final_summary(value: Any) -> bool:
    return isinstance(value, dict) and value.get("status") in FINAL


def always(value: Any) -> bool:
    return True
