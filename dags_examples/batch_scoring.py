"""Batch scoring: Azure ML's ``ParallelRunStep`` on Airflow, with reuse per mini-batch.

A small logistic model scores 200 CSV files (2,000 rows) that the first task lands in the default datastore.
``ParallelRunStep`` makes a task group ``score`` of three tasks: ``plan`` cuts the files into mini-batches of 20
(by content identity, nothing downloaded) and reuses every mini-batch it can, ``mini_batch`` computes the rest in
``node_count`` task instances (dynamic task mapping; ``init()``/``run()`` in ``process_count_per_node`` processes
per mini-batch), and ``gather`` writes every
result line in mini-batch order to ``parallel_run_step.txt`` and registers the output as dataset ``scores``.
Change one CSV and trigger again: only its mini-batch is scored again. The GPU variant is
``kubernetes/batch_scoring_gpu.py``.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe import Dataset, Datastore, OutputFileDatasetConfig, ParallelRunConfig, ParallelRunStep

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch_scoring_steps")
# The tests score fewer files (MLPIPE_EXAMPLE_SCORING_FILES) to stay fast.
FILES, ROWS = int(os.environ.get("MLPIPE_EXAMPLE_SCORING_FILES", "200")), 10

with DAG(
    dag_id="mlpipe_example_batch_scoring",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlpipe", "example"],
    doc_md=__doc__,
):

    @task
    def land_sample_data() -> int:
        """The files to score and the model (in real life both are already there)."""
        import json
        import random

        store = Datastore.get_default()
        if not store.exists("samples/scoring_model/model.json"):
            store.write_text("samples/scoring_model/model.json", json.dumps({"bias": -0.5, "x1": 0.8, "x2": -0.3}))
        if store.exists(f"samples/scoring/part-{FILES - 1:04d}.csv"):
            return FILES
        rng = random.Random(7)
        for n in range(FILES):
            rows = "".join(f"{rng.uniform(-2, 2):.4f},{rng.uniform(-2, 2):.4f}\n" for _ in range(ROWS))
            store.write_text(f"samples/scoring/part-{n:04d}.csv", "x1,x2\n" + rows)
        return FILES

    files = Dataset.File.from_files(path=(Datastore.get_default(), "samples/scoring/*.csv"))
    model = Dataset.File.from_files(path=(Datastore.get_default(), "samples/scoring_model/model.json"))
    config = ParallelRunConfig(
        entry_script="score.py",
        source_directory=STEPS,
        mini_batch_size=20,
        error_threshold=0,
        output_action="append_row",
        node_count=2,
        process_count_per_node=2,
        run_invocation_timeout=120,
    )
    model_input = model.as_named_input("model").as_download()
    scoring = ParallelRunStep(
        name="score",
        parallel_run_config=config,
        inputs=[files.as_named_input("files")],
        side_inputs=[model_input],
        arguments=["--model", model_input],
        output=OutputFileDatasetConfig(name="scores").register_on_complete(name="scores"),
    )
    land_sample_data() >> scoring
