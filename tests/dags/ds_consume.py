from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe.assets import dataset_asset

with DAG(
    "ds_consume", schedule=[dataset_asset("iris_landing")], start_date=pendulum.datetime(2026, 1, 1), catchup=False
):

    @task
    def read() -> None:
        pass

    read()
