"""SDK v1's ``Workspace`` and ``Experiment``: placeholders for the Airflow deployment and a DAG."""

from __future__ import annotations

from typing import Any

from airflow_mlpipe.compat.data import V1Datastore
from airflow_mlpipe.storage.datastore import Datastore as _Datastore

DEFAULT_WORKSPACE = "airflow"


class Workspace:
    """The Airflow deployment: its datastores are Airflow connections, its runs DAG runs. Subscription, resource
    group and authentication are accepted and ignored: Airflow's connections and secrets backends hold access."""

    def __init__(
        self,
        subscription_id: str | None = None,
        resource_group: str | None = None,
        workspace_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        self.subscription_id = subscription_id
        self.resource_group = resource_group
        self.name = workspace_name or DEFAULT_WORKSPACE

    @classmethod
    def from_config(
        cls, path: str | None = None, auth: Any = None, _logger: Any = None, _file_name: Any = None
    ) -> Workspace:
        """The deployment (no ``config.json`` is read)."""
        return cls()

    @classmethod
    def get(cls, name: str = DEFAULT_WORKSPACE, **kwargs: Any) -> Workspace:
        return cls(workspace_name=name)

    def get_default_datastore(self) -> V1Datastore:
        return V1Datastore.of(_Datastore.get_default())

    def set_default_datastore(self, name: str) -> None:
        from airflow_mlpipe.exceptions import ConfigError

        raise ConfigError(
            f"set_default_datastore({name!r}): the default datastore is the Airflow connection 'mlpipe_default'; "
            "point that connection at the store instead"
        )

    @property
    def datastores(self) -> dict[str, V1Datastore]:
        """The default datastore (other datastores are looked up by name: ``Datastore.get(ws, name)``)."""
        default = self.get_default_datastore()
        return {default.name: default}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Workspace) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"Workspace(name={self.name!r})"


class Experiment:
    """In a step script: the DAG the step belongs to (``run.experiment.name`` is the DAG id)."""

    def __init__(self, workspace: Workspace, name: str, **kwargs: Any) -> None:
        self.workspace = workspace
        self.name = name

    def __repr__(self) -> str:
        return f"Experiment(name={self.name!r}, workspace={self.workspace.name!r})"
