from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe import Dataset, Datastore
from airflow_mlpipe.operators.register_dataset import RegisterDatasetOperator

with DAG("ds_register", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):

    @task
    def make_data() -> None:
        store = Datastore.get_default()
        store.write_text("tests/ds_register/part-0.csv", "a,b\n1,2\n")

    make_data() >> RegisterDatasetOperator(
        task_id="register",
        dataset=Dataset.Tabular.from_delimited_files((Datastore.get_default(), "tests/ds_register/*.csv")),
        name="iris_landing",
    )
