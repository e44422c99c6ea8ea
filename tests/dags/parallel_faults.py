"""A ParallelRunStep whose entry script fails as the DAG param ``fault`` says (tests/parallel)."""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Dataset, Datastore, OutputFileDatasetConfig, ParallelRunConfig, ParallelRunStep
from airflow_mlpipe.steps.params import PipelineParameter

with DAG(
    dag_id="parallel_faults",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
):
    fault = PipelineParameter(name="fault", default_value="none")
    config = ParallelRunConfig(
        entry_script="faulty.py",
        source_directory=os.path.join(os.path.dirname(os.path.abspath(__file__)), "parallel_steps"),
        mini_batch_size=2,
        error_threshold=1,
        output_action="append_row",
        node_count=2,
        run_invocation_timeout=1,
        run_max_try=1,
    )
    ParallelRunStep(
        name="score",
        parallel_run_config=config,
        inputs=[Dataset.File.from_files(path=(Datastore.get_default(), "faults/*.txt")).as_named_input("items")],
        arguments=["--fault", fault],
        output=OutputFileDatasetConfig(name="scored").register_on_complete(name="fault_scores"),
        retries=1,
        retry_delay=dt.timedelta(seconds=0),
    )
