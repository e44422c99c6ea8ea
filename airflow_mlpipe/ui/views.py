"""What each ML page shows, read from the default datastore. No Airflow import: the app checks permissions.

Every function reads a bounded number of objects, whatever the datastore holds: a page of the run index (one
listing and one batch of summary reads), one record (and the one it reused), one page of dataset names, one
page of a dataset's versions (numbered 1..N without gaps, so a page is a batch of reads by number).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from airflow_mlpipe.datasets.registry import REGISTRY_ROOT, DatasetRecord, DatasetRegistry, verified_record
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.readers import readers_page
from airflow_mlpipe.steps.run_index import ensure_indexed, scope_folder, summary_rows
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.paged import list_page, page_token_problem
from airflow_mlpipe.ui import cache
from airflow_mlpipe.ui.metrics import metrics_view

PAGE = 50
# A filter the index does not key on (run, status, reused) reads up to this many pages to fill one page.
FILTER_PAGES = 4
VERSIONS_PAGE = 20
FILE_KINDS = ("logs", "artifacts")
_SAFE_ID = re.compile(r"[A-Za-z0-9_.\-]{1,255}")
# Fields of a record that are for machines only, or shown elsewhere on the page.
_HIDDEN = ("metric_log", "log_tail")


class NotFound(LookupError):
    """What a page asks for does not exist (or its name is not one that could)."""


class BadRequest(ValueError):
    """A query value no page gave (a made-up page token)."""


def check_step_run_id(step_run_id: str) -> str:
    if not _SAFE_ID.fullmatch(step_run_id) or step_run_id in (".", ".."):
        raise NotFound(f"no step run {step_run_id!r}")
    return step_run_id


# -- step runs --------------------------------------------------------------------------------------------------
def step_runs(
    store: Datastore,
    *,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    status: str | None = None,
    reused: bool | None = None,
    limit: int = PAGE,
    token: str | None = None,
    allowed: Callable[[str], bool] | None = None,
) -> dict[str, Any]:
    """A page of step run summaries, newest first, and the token of the next page.

    ``dag_id`` and ``task_id`` pick the index listed (a ``task_id`` without ``dag_id`` filters instead);
    ``run_id``, ``status`` and ``reused`` filter its rows from ONE listing of ``FILTER_PAGES`` pages' worth (one
    request, where four pages in a row took four round trips); ``allowed(dag_id)`` drops the rows of DAGs the user
    may not read, listing on while it drops rows.
    """
    # A task without its DAG has no index of its own: its rows are picked from all runs' pages.
    task_filter = task_id if task_id and not dag_id else None
    index_task = task_id if dag_id else None

    def keeps(row: Mapping[str, Any]) -> bool:
        return _keeps(row, run_id=run_id, status=status, reused=reused, allowed=allowed, task_id=task_filter)

    if any(v is not None for v in (run_id, status, reused, task_filter)):
        return _filtered_page(store, dag_id, index_task, limit, token, keeps)
    rows: list[dict[str, Any]] = []
    for _ in range(FILTER_PAGES if allowed is not None else 1):
        page, token = _runs_page(store, dag_id, index_task, limit, token)
        rows.extend(row for row in page if keeps(row))
        if token is None or len(rows) >= limit:
            break
    return {"rows": rows, "next_token": token}


def _filtered_page(
    store: Datastore,
    dag_id: str | None,
    task_id: str | None,
    limit: int,
    token: str | None,
    keeps: Callable[[Mapping[str, Any]], bool],
) -> dict[str, Any]:
    """Up to ``limit`` kept rows from one long listing. The token ``+<skip>:<listing token>`` names where that
    listing started and how many of its rows were already seen, so the next page goes on from the very next row
    (an Azure continuation marker cannot point into the middle of a page)."""
    skip, inner = 0, token
    if token is not None and token.startswith("+"):
        head, _, rest = token[1:].partition(":")
        skip, inner = (int(head) if head.isdigit() else 0), (rest or None)
    page, next_inner = _runs_page(store, dag_id, task_id, limit * FILTER_PAGES, inner)
    rows: list[dict[str, Any]] = []
    for seen, row in enumerate(page[skip:], start=skip + 1):
        if keeps(row):
            rows.append(row)
            if len(rows) == limit and seen < len(page):
                return {"rows": rows, "next_token": f"+{seen}:{inner or ''}"}
    return {"rows": rows, "next_token": f"+0:{next_inner}" if next_inner is not None else None}


def _runs_page(
    store: Datastore, dag_id: str | None, task_id: str | None, limit: int, token: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of the run index (``steps.run_index``): the summaries the listing itself returned (Azure), then
    the final ones kept in memory, then one batch of reads for the rest."""
    if token is None:
        ensure_indexed(store)
    folder = scope_folder(dag_id, task_id or None)
    problem = page_token_problem(store, folder, token) if token is not None else None
    if problem:
        raise BadRequest(f"the page token is not one this listing gave ({problem}); open the first page")
    page = list_page(store, folder, limit=limit, token=token)
    bodies: dict[str, Any] = {path: _parsed(body) for path, body in page.inline.items()}
    rest = [p for p in page.paths if p not in bodies]
    bodies.update(cache.read_json_many(store, rest, final=cache.final_summary))
    return summary_rows(store, [(path, bodies.get(path)) for path in page.paths]), page.next_token


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        return exc


def _keeps(
    row: Mapping[str, Any],
    *,
    run_id: str | None,
    status: str | None,
    reused: bool | None,
    allowed: Callable[[str], bool] | None,
    task_id: str | None = None,
) -> bool:
    if task_id is not None and row.get("task_id") != task_id:
        return False
    if allowed is not None and not allowed(str(row.get("dag_id"))):
        return False
    if run_id is not None and row.get("run_id") != run_id:
        return False
    if status is not None and str(row.get("status")).lower() != status.lower():
        return False
    return reused is None or bool(row.get("reused_from")) == reused


def step_run(store: Datastore, step_run_id: str) -> dict[str, Any]:
    """The step run page: the record, the run it reused, its metrics as charts and tables, its files."""
    record, refused = records.record_or_why(check_step_run_id(step_run_id), store)
    if record is None:
        raise NotFound(refused or f"no step run {step_run_id!r}")
    origin = None
    if record.get("reused_from"):
        origin = records.find_record(check_step_run_id(str(record["reused_from"])), store)
    # A reused record holds the metrics of the run it reused; their log (kinds, order, images) is that run's.
    source = origin if origin is not None and not record.get("metric_log") else record
    metrics = metrics_view(record.get("metrics") or {}, source.get("metric_log") or ())
    images_of = str(source.get("step_run_id"))
    shown = {k: v for k, v in record.items() if k not in _HIDDEN}
    shown["inputs"] = [_with_producer_run(i) for i in record.get("inputs") or () if isinstance(i, Mapping)]
    return {
        "record": shown,
        "log_tail": record.get("log_tail") or "",
        "reuse": _reuse(record),
        "origin": _summary(origin) if origin else None,
        "metrics": metrics.to_dict(),
        "images_of": images_of,
        "files": {
            "logs": [p.rsplit("/", 1)[-1] for p in record.get("logs") or ()],
            "artifacts": list(record.get("artifacts") or ()),
        },
        "parameters": _parameters(record),
    }


def _with_producer_run(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An input taken from an earlier step's output, with that step run's id when its folder names it (outputs go
    to ``.../{run-id}/{output-name}`` by default): the page links it."""
    out = dict(entry)
    producer = entry.get("producer")
    if producer and entry.get("path"):
        pattern = re.compile(rf".+\.{re.escape(str(producer))}(\.m\d+)?\.t\d+\.[0-9a-f]{{12}}")
        out["producer_run"] = next((s for s in str(entry["path"]).split("/") if pattern.fullmatch(s)), None)
    return out


def _reuse(record: Mapping[str, Any]) -> dict[str, Any]:
    block = dict(record.get("reuse") or {})
    decision = dict(block.get("decision") or {})
    return {
        "reused": record.get("status") == records.REUSED or bool(record.get("reused_from")),
        "reused_from": record.get("reused_from"),
        "key": block.get("key"),
        "hit": decision.get("hit"),
        "reason": decision.get("reason"),
        "compared_with": decision.get("compared_with"),
        "explanation": list(block.get("explanation") or decision.get("explanation") or ()),
        "policy": dict(block.get("policy") or {}),
    }


def _parameters(record: Mapping[str, Any]) -> dict[str, Any]:
    """The pipeline parameters the step used: its ``param`` arguments, and the DAG run's params."""
    used = {
        str(a.get("name")): a.get("value")
        for a in record.get("arguments") or ()
        if isinstance(a, Mapping) and a.get("kind") == "param"
    }
    run_params = dict((record.get("airflow") or {}).get("params") or {})
    return {"used": used, "run": run_params}


def _summary(record: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("step_run_id", "dag_id", "run_id", "task_id", "map_index", "try_number", "status", "finished_at")
    return {k: record.get(k) for k in keys}


def file_path(record: Mapping[str, Any], kind: str, name: str) -> str:
    """The datastore path of the step run's log or artifact ``name``, only when the record lists it: downloads
    never leave ``_mlpipe/runs/<step_run_id>/logs|artifacts``."""
    step_run_id = check_step_run_id(str(record.get("step_run_id")))
    if kind not in FILE_KINDS or not _plain_relative(name):
        raise NotFound(f"no {kind} file {name!r} in step run {step_run_id}")
    if kind == "logs":
        path = f"{records.run_folder(step_run_id)}/logs/{name}"
        listed = set(record.get("logs") or ())
    else:
        path = f"{records.artifacts_folder(step_run_id)}/{name}"
        listed = {f"{records.artifacts_folder(step_run_id)}/{a}" for a in record.get("artifacts") or ()}
        listed |= {f"{records.artifacts_folder(step_run_id)}/{i}" for i in _image_paths(record)}
    if path not in listed:
        raise NotFound(f"no {kind} file {name!r} in step run {step_run_id}")
    return path


def _image_paths(record: Mapping[str, Any]) -> set[str]:
    return {
        str(e.get("value"))
        for e in record.get("metric_log") or ()
        if isinstance(e, Mapping) and e.get("kind") == "image" and isinstance(e.get("value"), str)
    }


def _plain_relative(name: str) -> bool:
    if not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    normal = posixpath.normpath(name)
    return normal == name and not normal.startswith("..") and ".." not in normal.split("/")


# -- compare ----------------------------------------------------------------------------------------------------
def compare(store: Datastore, step_run_ids: Sequence[str]) -> dict[str, Any]:
    """Two or more step runs of one task side by side: scalar metrics, parameters, the reuse key's parts."""
    ids = [check_step_run_id(i) for i in dict.fromkeys(step_run_ids)]
    if len(ids) < 2:
        raise NotFound("compare needs two or more step runs")
    bodies = store.read_many([records.record_path(i) for i in ids])
    runs = []
    for step_run_id in ids:
        body = bodies.get(records.record_path(step_run_id))
        if not isinstance(body, bytes):
            raise NotFound(f"no step run {step_run_id!r}")
        try:
            runs.append(records.verified_record(step_run_id, body, store))
        except ValueError as exc:  # unreadable, or failed its seal
            raise NotFound(str(exc)) from None
    tasks = {(r.get("dag_id"), r.get("task_id")) for r in runs}
    metrics = [metrics_view(r.get("metrics") or {}, r.get("metric_log") or ()) for r in runs]
    scalar_names = _ordered(s["name"] for m in metrics for s in m.scalars)
    scalars = [
        {"name": n, "values": [next((s["value"] for s in m.scalars if s["name"] == n), None) for m in metrics]}
        for n in scalar_names
    ]
    charts: dict[str, dict[str, Any]] = {}
    for run, view in zip(runs, metrics, strict=True):
        for chart in view.charts:
            for label, values in chart.series.items():
                entry = charts.setdefault(chart.name, {"name": chart.name, "x_label": chart.x_label, "runs": []})
                entry["runs"].append({"step_run_id": run["step_run_id"], "label": label, "x": chart.x, "y": values})
    params = [{**_parameters(r)["run"], **_parameters(r)["used"]} for r in runs]
    components = [dict((r.get("reuse") or {}).get("components") or {}) for r in runs]
    return {
        "runs": [_summary(r) | {"reuse_key": (r.get("reuse") or {}).get("key")} for r in runs],
        "same_task": len(tasks) == 1,
        "scalars": scalars,
        "charts": list(charts.values()),
        "parameters": _diff(params),
        "key": _diff([{k: json.dumps(v, sort_keys=True) for k, v in c.items()} for c in components]),
    }


def _ordered(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _diff(dicts: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    keys = _ordered(k for d in dicts for k in d)
    out = []
    for key in keys:
        values = [d.get(key) for d in dicts]
        same = all(
            json.dumps(v, sort_keys=True, default=str) == json.dumps(values[0], sort_keys=True, default=str)
            for v in values
        )
        out.append({"name": key, "values": values, "same": same})
    return out


# -- datasets ---------------------------------------------------------------------------------------------------
def datasets(store: Datastore, *, start_after: str = "", limit: int = PAGE) -> dict[str, Any]:
    """A page of registered dataset names (one listing request)."""
    names, following = DatasetRegistry(store).names_page(limit=limit, start_after=start_after)
    return {"names": names, "next": following}


def dataset(
    store: Datastore, name: str, *, version: int | None = None, before: int | None = None, readers: int = 20
) -> dict[str, Any]:
    """One dataset: a page of its versions (newest first, ``before`` pages back), the chosen version (latest by
    default) with its files, the step run that produced it and the step runs that read it."""
    registry = DatasetRegistry(store)
    try:
        latest = registry.get(name)
        chosen = latest if version is None or version == latest.version else registry.get(name, version)
    except DatasetError as exc:
        raise NotFound(str(exc)) from None
    top = min(before - 1, latest.version) if before else latest.version
    numbers = list(range(top, max(top - VERSIONS_PAGE, 0), -1))
    paths = {n: f"{REGISTRY_ROOT}/{name}/{n}.json" for n in numbers}
    bodies = cache.read_json_many(store, paths.values(), final=cache.always)  # a version never changes
    versions = []
    for number in numbers:
        body = bodies.get(paths[number])
        versions.append(_version_row(name, number, body))
    return {
        "name": name,
        "latest": latest.version,
        "versions": versions,
        "older": numbers[-1] if numbers and numbers[-1] > 1 else None,
        "version": _version(chosen),
        "readers": readers_page(store, name, chosen.version, limit=readers),
    }


def _version_row(name: str, number: int, body: Any) -> dict[str, Any]:
    if body is None or isinstance(body, Exception):
        return {"version": number, "error": "missing" if body is None else str(body)}
    try:
        record = verified_record(body, name, number, where=f"{REGISTRY_ROOT}/{name}/{number}.json")
    except DatasetError as exc:  # a record that disagrees with its name or seal is shown as refused, not served
        return {"version": number, "error": str(exc)}
    lineage = dict(record.lineage)
    return {
        "version": number,
        "created_at": record.created_at,
        "files": record.manifest.summary().get("files"),
        "bytes": record.manifest.summary().get("bytes"),
        "step_run_id": lineage.get("step_run_id"),
        "dag_id": lineage.get("dag_id"),
    }


def _version(record: DatasetRecord) -> dict[str, Any]:
    lineage = dict(record.lineage)
    entries = [
        {"path": e.path, "datastore": e.datastore, "size": e.identity.size} for e in list(record.manifest.entries)[:200]
    ]
    return {
        "name": record.name,
        "version": record.version,
        "kind": record.kind,
        "description": record.description,
        "tags": dict(record.tags),
        "created_at": record.created_at,
        "definition": dict(record.definition),
        "summary": record.manifest.summary(),
        "files": entries,
        "files_shown": len(entries),
        "produced_by": {k: lineage.get(k) for k in ("step_run_id", "dag_id", "run_id", "task_id", "reused_from")},
        "inputs": [_input(i) for i in lineage.get("inputs") or () if isinstance(i, Mapping)],
    }


def _input(entry: Mapping[str, Any]) -> dict[str, Any]:
    dataset_ref = entry.get("dataset") if isinstance(entry.get("dataset"), Mapping) else None
    return {
        "name": entry.get("name"),
        "dataset": dataset_ref.get("name") if dataset_ref else None,
        "version": dataset_ref.get("version") if dataset_ref else None,
        "path": entry.get("path") or _paths_of(dataset_ref),
        "producer": entry.get("producer"),
    }


def _paths_of(dataset_ref: Mapping[str, Any] | None) -> str | None:
    if not dataset_ref:
        return None
    paths = [f"{p.get('datastore')}:{p.get('path')}" for p in dataset_ref.get("paths") or () if isinstance(p, Mapping)]
    return ", ".join(paths) or None
