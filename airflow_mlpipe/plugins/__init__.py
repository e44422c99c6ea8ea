"""The Airflow plugin of airflow-mlpipe: what the provider adds to Airflow's API server.

Registered through the ``airflow.plugins`` entry point, so installing the package is enough.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_mlpipe.plugins.connection_form import ConnectionFormMiddleware


class MlpipePlugin(AirflowPlugin):
    name = "mlpipe"
    fastapi_root_middlewares = [
        {"name": "mlpipe datastore connection form", "middleware": ConnectionFormMiddleware},
    ]
