"""Who may see what: the API server's own login and Airflow's DAG read permission, nothing of our own.

Every route depends on :data:`UserDep` (Airflow's ``get_user``: the UI's session cookie or a bearer token; none
is refused with 401). A page of one DAG's step runs checks that DAG; a step run page checks the DAG of its
record; listings across DAGs keep only the rows of DAGs the user may read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from airflow.api_fastapi.core_api.security import get_user
from fastapi import Depends, HTTPException, status

UserDep = Annotated[Any, Depends(get_user)]


def can_read_dag(user: Any, dag_id: str) -> bool:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.models.dag import DagModel

    team = DagModel.get_team_name(dag_id) if dag_id else None
    return bool(
        get_auth_manager().is_authorized_dag(method="GET", details=DagDetails(id=dag_id, team_name=team), user=user)
    )


def require_dag(user: Any, dag_id: str | None) -> None:
    """403 unless ``user`` may read DAG ``dag_id``."""
    if not dag_id or not can_read_dag(user, str(dag_id)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"you may not read the DAG {dag_id!r}")


def readable_dags(user: Any) -> Callable[[str], bool]:
    """A test for the DAGs ``user`` may read, asking the auth manager once per DAG (a page names a few)."""
    answers: dict[str, bool] = {}

    def readable(dag_id: str) -> bool:
        if dag_id not in answers:
            answers[dag_id] = can_read_dag(user, dag_id)
        return answers[dag_id]

    return readable


def require_assets(user: Any) -> None:
    """403 unless ``user`` may read assets (datasets are Airflow assets)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AssetDetails

    if not get_auth_manager().is_authorized_asset(method="GET", details=AssetDetails(), user=user):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "you may not read assets")
