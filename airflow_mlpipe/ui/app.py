"""The FastAPI app of the ML pages, mounted by the plugin on Airflow's API server at ``/mlpipe``.

HTML pages (``/runs``, ``/runs/{id}``, ``/datasets``, ``/datasets/{name}``, ``/compare``, and the tabs under
``/tabs``) and the same data as JSON under ``/api``. Every route needs Airflow's login (``access.UserDep``); the
datastore is read on the server, so no datastore credential or address beyond the record's own reaches a page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.core.jsonsafe import strict_json
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.ui import urls, views
from airflow_mlpipe.ui.access import UserDep, readable_dags, require_assets, require_dag

HERE = Path(__file__).resolve().parent
STATUSES = (records.RUNNING, records.COMMITTED, records.COMPLETED, records.REUSED, records.FAILED)
CHUNK = 1 << 20

templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.globals["url"] = urls.app_path
templates.env.filters["tojson_attr"] = lambda v: json.dumps(strict_json(v), default=str, allow_nan=False)


def _store() -> Datastore:
    return Datastore.get_default()


def _html(request: Request, template: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {"statuses": STATUSES, **context})


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(f"{request.scope.get('root_path', '')}/api/") or "/api/" in request.url.path


def create_app() -> FastAPI:
    app = FastAPI(title="airflow-mlpipe ML pages", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static"), check_dir=False), name="static")

    @app.exception_handler(HTTPException)
    async def refused(request: Request, exc: HTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return templates.TemplateResponse(
            request, "error.html", {"status": exc.status_code, "detail": exc.detail}, status_code=exc.status_code
        )

    @app.exception_handler(views.NotFound)
    async def not_found(request: Request, exc: views.NotFound) -> Response:
        return await refused(request, HTTPException(status.HTTP_404_NOT_FOUND, str(exc)))

    @app.exception_handler(views.BadRequest)
    async def bad_request(request: Request, exc: views.BadRequest) -> Response:
        return await refused(request, HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)))

    # -- step runs --------------------------------------------------------------------------------------------
    def runs_data(
        user: Any,
        dag_id: str | None,
        task_id: str | None,
        run_id: str | None,
        status_: str | None,
        reused: str | None,
        token: str | None,
        limit: int,
    ) -> dict[str, Any]:
        dag_id, task_id, run_id = dag_id or None, task_id or None, run_id or None
        if dag_id:
            require_dag(user, dag_id)
        allowed = None if dag_id else readable_dags(user)
        page = views.step_runs(
            _store(),
            dag_id=dag_id,
            task_id=task_id,
            run_id=run_id,
            status=status_ or None,
            reused={"yes": True, "no": False}.get(reused or ""),
            limit=limit,
            token=token or None,
            allowed=allowed,
        )
        filters = {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "status": status_, "reused": reused}
        return {**page, "filters": {k: v for k, v in filters.items() if v}}

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse(urls.app_path("/runs"))

    @app.get("/api/runs")
    def api_runs(
        user: UserDep,
        dag_id: str | None = None,
        task_id: str | None = None,
        run_id: str | None = None,
        status: str | None = None,
        reused: str | None = None,
        token: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = views.PAGE,
    ) -> dict[str, Any]:
        return runs_data(user, dag_id, task_id, run_id, status, reused, token, limit)

    @app.get("/runs", response_class=HTMLResponse)
    def runs_page(
        request: Request,
        user: UserDep,
        dag_id: str | None = None,
        task_id: str | None = None,
        run_id: str | None = None,
        status: str | None = None,
        reused: str | None = None,
        token: str | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = views.PAGE,
    ) -> HTMLResponse:
        data = runs_data(user, dag_id, task_id, run_id, status, reused, token, limit)
        following = None
        if data["next_token"]:
            following = urls.app_path("/runs?" + urlencode({**data["filters"], "token": data["next_token"]}))
        return _html(request, "runs.html", page=data, next_url=following, title="Step runs")

    def run_data(user: Any, step_run_id: str) -> dict[str, Any]:
        data = views.step_run(_store(), step_run_id)
        require_dag(user, data["record"].get("dag_id"))
        return data

    @app.get("/api/runs/{step_run_id}")
    def api_run(user: UserDep, step_run_id: str) -> dict[str, Any]:
        return run_data(user, step_run_id)

    @app.get("/runs/{step_run_id}", response_class=HTMLResponse)
    def run_page(request: Request, user: UserDep, step_run_id: str) -> HTMLResponse:
        data = run_data(user, step_run_id)
        return _html(request, "run.html", run=data, title=f"Step run {data['record'].get('task_id')}")

    @app.get("/runs/{step_run_id}/files/{kind}/{name:path}")
    def run_file(user: UserDep, step_run_id: str, kind: str, name: str) -> StreamingResponse:
        store = _store()
        record, refused = records.record_or_why(views.check_step_run_id(step_run_id), store)
        if record is None:
            raise views.NotFound(refused or f"no step run {step_run_id!r}")
        require_dag(user, record.get("dag_id"))
        path = views.file_path(record, kind, name)
        media = _media_type(name)
        disposition = "inline" if media.startswith(("image/", "text/plain")) else "attachment"
        filename = name.rsplit("/", 1)[-1].replace('"', "")
        return StreamingResponse(
            _chunks(store, path),
            media_type=media,
            headers={
                "Content-Disposition": f'{disposition}; filename="{filename}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'",
            },
        )

    # -- compare ----------------------------------------------------------------------------------------------
    def compare_data(user: Any, ids: list[str]) -> dict[str, Any]:
        data = views.compare(_store(), ids)
        for run in data["runs"]:
            require_dag(user, run.get("dag_id"))
        return data

    @app.get("/api/compare")
    def api_compare(user: UserDep, ids: Annotated[list[str], Query()]) -> dict[str, Any]:
        return compare_data(user, ids)

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request, user: UserDep, ids: Annotated[list[str] | None, Query()] = None) -> HTMLResponse:
        if not ids or len(ids) < 2:
            return _html(request, "compare.html", compare=None, title="Compare step runs")
        return _html(request, "compare.html", compare=compare_data(user, ids), title="Compare step runs")

    # -- datasets ---------------------------------------------------------------------------------------------
    def dataset_data(user: Any, name: str, version: int | None, before: int | None) -> dict[str, Any]:
        require_assets(user)
        data = views.dataset(_store(), name, version=version, before=before)
        allowed = readable_dags(user)
        data["readers"] = [r for r in data["readers"] if allowed(str(r.get("dag_id")))]
        return data

    @app.get("/api/datasets")
    def api_datasets(user: UserDep, start_after: str = "") -> dict[str, Any]:
        require_assets(user)
        return views.datasets(_store(), start_after=start_after)

    @app.get("/datasets", response_class=HTMLResponse)
    def datasets_page(request: Request, user: UserDep, start_after: str = "") -> HTMLResponse:
        require_assets(user)
        data = views.datasets(_store(), start_after=start_after)
        return _html(request, "datasets.html", page=data, title="Datasets")

    @app.get("/api/datasets/{name}")
    def api_dataset(user: UserDep, name: str, version: int | None = None, before: int | None = None) -> dict[str, Any]:
        return dataset_data(user, name, version, before)

    @app.get("/datasets/{name}", response_class=HTMLResponse)
    def dataset_page(
        request: Request, user: UserDep, name: str, version: int | None = None, before: int | None = None
    ) -> HTMLResponse:
        data = dataset_data(user, name, version, before)
        return _html(request, "dataset.html", ds=data, title=f"Dataset {name}")

    # -- tabs in Airflow's DAG, DAG run and task instance pages ----------------------------------------------
    @app.get("/tabs/dag", response_class=HTMLResponse)
    def dag_tab(user: UserDep, dag_id: str) -> RedirectResponse:
        require_dag(user, dag_id)
        return RedirectResponse(urls.app_path("/runs?" + urlencode({"dag_id": dag_id})))

    @app.get("/tabs/dag-run", response_class=HTMLResponse)
    def dag_run_tab(request: Request, user: UserDep, dag_id: str, run_id: str) -> HTMLResponse:
        require_dag(user, dag_id)
        rows = _dag_run_records(dag_id, run_id)
        page = {"rows": rows, "next_token": None, "filters": {"dag_id": dag_id, "run_id": run_id}}
        return _html(request, "runs.html", page=page, next_url=None, title=f"Step runs of {run_id}", tab=True)

    @app.get("/tabs/task", response_class=HTMLResponse)
    def task_tab(
        request: Request, user: UserDep, dag_id: str, run_id: str, task_id: str, map_index: str = "-1"
    ) -> HTMLResponse:
        require_dag(user, dag_id)
        index = int(map_index) if map_index.lstrip("-").isdigit() else -1
        step_run_id = _task_step_run(dag_id, run_id, task_id, index)
        if step_run_id is None:
            return _html(request, "none.html", title="No step run", dag_id=dag_id, run_id=run_id, task_id=task_id)
        data = run_data(user, step_run_id)
        return _html(request, "run.html", run=data, title=f"Step run {task_id}", tab=True)

    return app


def _media_type(name: str) -> str:
    import mimetypes

    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    # Never let a stored file run as a page of this origin.
    if guessed in ("text/html", "application/xhtml+xml", "image/svg+xml", "application/javascript", "text/javascript"):
        return "text/plain"
    return guessed


def _chunks(store: Datastore, path: str) -> Iterator[bytes]:
    try:
        handle = store.open(path, "rb")
    except FileNotFoundError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{path} is gone") from None
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _task_instances(dag_id: str, run_id: str, task_id: str | None = None) -> list[tuple[str, int, int]]:
    """(task_id, map_index, try_number) of the DAG run's task instances, from Airflow's metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.try_number).where(
        TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
    )
    if task_id is not None:
        query = query.where(TaskInstance.task_id == task_id)
    with create_session() as session:
        return [(str(t), int(m), int(n or 0)) for t, m, n in session.execute(query)]


def _latest_records(dag_id: str, run_id: str, tis: list[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """The record of each task instance's latest try that has one (a try that never started has none)."""
    candidates: dict[tuple[str, int], list[str]] = {}
    for task_id, map_index, try_number in tis:
        tries = range(max(try_number, 1), 0, -1)
        ids = [AttemptId(dag_id, run_id, task_id, map_index, t).step_run_id for t in tries]
        candidates[(task_id, map_index)] = ids
    paths = [records.record_path(i) for ids in candidates.values() for i in ids]
    store = _store()
    bodies = store.read_many(paths)
    found = []
    for ids in candidates.values():
        for step_run_id in ids:
            body = bodies.get(records.record_path(step_run_id))
            if isinstance(body, bytes):
                try:
                    found.append(records.verified_record(step_run_id, body, store))
                except ValueError as exc:  # unreadable, or failed its seal: a row with its error
                    found.append({"step_run_id": step_run_id, "error": str(exc)})
                break
    return found


def _dag_run_records(dag_id: str, run_id: str) -> list[dict[str, Any]]:
    from airflow_mlpipe.steps.run_index import summary_of

    found = _latest_records(dag_id, run_id, _task_instances(dag_id, run_id))
    return sorted((summary_of(r) for r in found), key=lambda r: str(r.get("created_at") or ""), reverse=True)


def _task_step_run(dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    tis = [ti for ti in _task_instances(dag_id, run_id, task_id) if ti[1] == map_index]
    found = _latest_records(dag_id, run_id, tis)
    return str(found[0]["step_run_id"]) if found else None


app = create_app()
