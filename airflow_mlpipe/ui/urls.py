"""Addresses of the ML pages, relative to the Airflow UI's base URL (``[api] base_url``), for links and tabs.

The pages are served by the plugin's FastAPI app at ``<base>/mlpipe/...``; inside Airflow's own frame they are
reached through the "ML pipelines" nav entry at ``<base>/plugin/ml-pipelines/<page's path>``.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

APP_PREFIX = "/mlpipe"
NAV_ROUTE = "ml-pipelines"


def base_path() -> str:
    """The path part of Airflow's ``[api] base_url`` without its trailing slash ("" at the root)."""
    try:
        from airflow.configuration import conf

        base_url = conf.get("api", "base_url", fallback="") or ""
    except Exception:
        base_url = ""
    return urlsplit(base_url).path.rstrip("/")


def app_path(path: str = "") -> str:
    """The app's own address of ``path`` (``/mlpipe/runs/...``), under the base URL."""
    return f"{base_path()}{APP_PREFIX}{path}"


def step_run_path(step_run_id: str) -> str:
    return f"/runs/{quote(step_run_id, safe='')}"


def step_run_page(step_run_id: str) -> str:
    """The step run's page inside the Airflow UI (its nav frame): what an extra link opens."""
    return f"{base_path()}/plugin/{NAV_ROUTE}{APP_PREFIX}{step_run_path(step_run_id)}"


def dataset_page(name: str, version: int | None = None) -> str:
    """A dataset's page (a version's, when given) inside the Airflow UI: named in each asset event's ``extra``,
    since Airflow 3.3 offers plugins no tab on an asset's page."""
    query = f"?version={version}" if version is not None else ""
    return f"{base_path()}/plugin/{NAV_ROUTE}{APP_PREFIX}/datasets/{quote(name, safe='')}{query}"


def step_run_id_of_record_uri(uri: str) -> str | None:
    """``.../_mlpipe/runs/<step_run_id>/record.json`` → ``<step_run_id>`` (None for another address)."""
    parts = uri.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-1] == "record.json" and parts[-3] == "runs":
        return parts[-2] or None
    return None
