"""Register a dataset when new data lands, and let other DAGs run on each new version.

Azure ML: ``Dataset.Tabular.from_delimited_files(...).register(ws, "iris_raw", create_new_version=True)``.
Here the registration is a task; each new version is an Airflow asset event on ``mlpipe://datasets/iris_raw``
(see ``dataset_consumer.py``, scheduled on it). Registering unchanged data adds no version and no event.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe import Dataset, Datastore
from airflow_mlpipe.operators.register_dataset import RegisterDatasetOperator

with DAG(
    dag_id="mlpipe_dataset_producer",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlpipe", "example"],
    doc_md=__doc__,
):

    @task
    def land_sample_data() -> str:
        """Write a small CSV into the default datastore (in real life: files arrive from elsewhere)."""
        from airflow_mlpipe.examples_data import iris_csv

        store = Datastore.get_default()
        store.write_text("landing/iris/iris.csv", iris_csv())
        return store.uri("landing/iris/iris.csv")

    register = RegisterDatasetOperator(
        task_id="register_iris",
        dataset=Dataset.Tabular.from_delimited_files(path=(Datastore.get_default(), "landing/iris/*.csv")),
        name="iris_raw",
        description="Iris measurements as landed",
        tags={"source": "example"},
    )

    land_sample_data() >> register
