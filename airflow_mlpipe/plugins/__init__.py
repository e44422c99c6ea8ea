"""The Airflow plugin of airflow-mlpipe: what the provider adds to Airflow's API server.

Registered through the ``airflow.plugins`` entry point, so installing the package is enough: the datastore
connection form's checks, the "ML pipelines" pages (a FastAPI app at ``/mlpipe``, a top-level nav entry and tabs
on the DAG, DAG run and task instance pages, ``airflow_mlpipe.ui``). Which step runs read which dataset version is
written by the steps themselves (``steps.readers``), so lineage needs no listener in the task's process.
"""

from __future__ import annotations

import sys
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_mlpipe.plugins.connection_form import ConnectionFormMiddleware
from airflow_mlpipe.ui.urls import APP_PREFIX, NAV_ROUTE, app_path

# The pages' app (FastAPI, templates) is built in the API server only, as Airflow's edge3 provider does: every
# other process that loads plugins (workers, the scheduler) has no use for it.
RUNNING_ON_API_SERVER = len(sys.argv) > 1 and sys.argv[1] == "api-server"


def _pages_app() -> dict[str, Any]:
    from airflow_mlpipe.ui.app import create_app

    return {"app": create_app(), "url_prefix": APP_PREFIX, "name": "mlpipe ML pipelines"}


def _tab(name: str, destination: str, path: str, url_route: str) -> dict[str, Any]:
    return {
        "name": name,
        "href": app_path(path),
        "destination": destination,
        "url_route": url_route,
        "icon": app_path("/static/icon.svg"),
        "icon_dark_mode": app_path("/static/icon-dark.svg"),
    }


def external_views() -> list[dict[str, Any]]:
    """The nav entry and the tabs. Tab addresses take Airflow's ``{DAG_ID}``, ``{RUN_ID}``, ``{TASK_ID}`` and
    ``{MAP_INDEX}`` placeholders as query parameters (a run id may hold a ``/``)."""
    return [
        {**_tab("ML pipelines", "nav", "/runs", NAV_ROUTE), "nav_top_level": True},
        _tab("ML step runs", "dag", "/tabs/dag?dag_id={DAG_ID}", "mlpipe-dag"),
        _tab("ML step runs", "dag_run", "/tabs/dag-run?dag_id={DAG_ID}&run_id={RUN_ID}", "mlpipe-dag-run"),
        _tab(
            "ML step run",
            "task_instance",
            "/tabs/task?dag_id={DAG_ID}&run_id={RUN_ID}&task_id={TASK_ID}&map_index={MAP_INDEX}",
            "mlpipe-task",
        ),
    ]


class MlpipePlugin(AirflowPlugin):
    name = "mlpipe"
    fastapi_root_middlewares = [
        {"name": "mlpipe datastore connection form", "middleware": ConnectionFormMiddleware},
    ]
    fastapi_apps = [_pages_app()] if RUNNING_ON_API_SERVER else []
    external_views = external_views()
