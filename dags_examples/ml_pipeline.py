"""The Azure ML "data prep → train → compare" pipeline as an Airflow DAG.

Azure ML SDK v1 wrote it with ``PythonScriptStep``s, ``OutputFileDatasetConfig``s and a ``PipelineParameter``;
the DAG below uses the same names. Outputs passed from one step to the next order the steps by themselves (no
``>>``). The best model is registered as a new version of dataset ``iris_model`` each time it changes. Try
"Trigger DAG w/ config" with ``{"learning_rate": 0.5}``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe import (
    Dataset,
    Datastore,
    OutputFileDatasetConfig,
    PipelineParameter,
    PythonScriptOperator,
)

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ml_pipeline_steps")

with DAG(
    dag_id="mlpipe_example_pipeline",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlpipe", "example"],
    doc_md=__doc__,
):

    @task
    def land_sample_data() -> str:
        """Put the sample data into the default datastore once (in real life it is already there)."""
        from airflow_mlpipe.examples_data import iris_csv

        store = Datastore.get_default()
        if not store.exists("samples/iris/iris.csv"):
            store.write_text("samples/iris/iris.csv", iris_csv())
        return store.uri("samples/iris/iris.csv")

    iris = Dataset.Tabular.from_delimited_files(path=(Datastore.get_default(), "samples/iris/*.csv"))
    learning_rate = PipelineParameter(name="learning_rate", default_value=0.1)

    prepped = OutputFileDatasetConfig(name="prepped")
    model = OutputFileDatasetConfig(name="model")
    best_model = OutputFileDatasetConfig(name="best_model").register_on_complete(
        name="iris_model", description="the best iris classifier so far"
    )

    data_prep = PythonScriptOperator(
        task_id="data_prep",
        script_name="data_prep.py",
        source_directory=STEPS,
        arguments=["--raw", iris.as_named_input("iris_raw").as_download(), "--prepped", prepped],
        allow_reuse=True,
    )
    train = PythonScriptOperator(
        task_id="train",
        script_name="train.py",
        source_directory=STEPS,
        arguments=["--training-data", prepped.as_input(), "--model", model, "--learning-rate", learning_rate],
        allow_reuse=True,
    )
    compare = PythonScriptOperator(
        task_id="compare",
        script_name="compare.py",
        source_directory=STEPS,
        arguments=["--model", model.as_input(), "--test-data", prepped.as_input(), "--best-model", best_model],
        allow_reuse=True,
    )

    land_sample_data() >> data_prep
