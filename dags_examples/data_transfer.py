"""Azure ML's ``DataTransferStep``: copy landed files into the team's datastore, register them, train on them.

Here both ends are folders of the default datastore so the example runs anywhere; in real life the source is
another datastore, e.g. ``(Datastore.get("landing_s3"), "exports/2026")`` and the destination Azure Blob. The
copy is verified and incremental: a re-run copies only what changed, and a folder is marked complete only after
every file arrived.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe import Datastore, DataTransferOperator, OutputFileDatasetConfig, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ml_pipeline_steps")

with DAG(
    dag_id="mlpipe_example_transfer",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlpipe", "example"],
    doc_md=__doc__,
):

    @task
    def land_files() -> None:
        from airflow_mlpipe.examples_data import iris_csv

        store = Datastore.get_default()
        for part in range(3):
            store.write_text(f"landing/iris/part-{part}.csv", iris_csv(per_species=10, seed=part))

    curated = OutputFileDatasetConfig(name="curated_iris", destination=(Datastore.get_default(), "curated/iris"))
    copy = DataTransferOperator(
        task_id="copy_to_curated",
        source_data_reference=(Datastore.get_default(), "landing/iris"),
        destination_data_reference=curated,
        source_reference_type="directory",
        overwrite=True,
        register_on_complete="iris_curated",
    )
    prepped = OutputFileDatasetConfig(name="prepped")
    prep = PythonScriptOperator(
        task_id="data_prep",
        script_name="data_prep.py",
        source_directory=STEPS,
        arguments=["--raw", curated.as_input(), "--prepped", prepped],
    )
    land_files() >> copy
