"""The batch-scoring example with its mini-batches on Kubernetes GPU nodes (Azure ML: ParallelRunStep on an
AmlCompute GPU cluster): a pod per mini-batch to compute, from ``node_count`` node tasks at once, each pod
requesting one GPU.

Planning and gathering run on the Airflow worker; each mini-batch's pod runs the step runner, which downloads the
mini-batch's files and the model and calls the entry script's ``init()``/``run()``. As for the other Kubernetes
example, the default datastore must be object storage the pods can reach, with its connection in the Kubernetes
Secret ``mlpipe-datastores`` (see ``ml_pipeline_gpu.py``).
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe import (
    Dataset,
    Datastore,
    KubernetesCompute,
    OutputFileDatasetConfig,
    ParallelRunConfig,
    ParallelRunStep,
)

STEPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "batch_scoring_steps")
FILES = int(os.environ.get("MLPIPE_EXAMPLE_SCORING_FILES", "200"))

gpu_nodes = KubernetesCompute(
    namespace=os.environ.get("MLPIPE_K8S_NAMESPACE", "ml"),
    image=os.environ.get("MLPIPE_STEP_IMAGE", "registry.example.com/ml/mlpipe-step:0.1.0"),
    gpu=1,
    memory="8Gi",
    node_selector={"pool": "gpu"},
    secrets=["mlpipe-datastores"],
    datastore_secrets={"mlpipe_default": "mlpipe-datastores"},
)

with DAG(
    dag_id="mlpipe_example_batch_scoring_gpu",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlpipe", "example", "kubernetes"],
    doc_md=__doc__,
):

    @task
    def land_sample_data() -> None:
        """The files to score and the model (in real life both are already there)."""
        import json

        store = Datastore.get_default()
        store.write_text("samples/scoring_model/model.json", json.dumps({"bias": -0.5, "x1": 0.8, "x2": -0.3}))
        for n in range(FILES):
            store.write_text(f"samples/scoring/part-{n:04d}.csv", f"x1,x2\n{n % 7 - 3},{n % 5 - 2}\n")

    files = Dataset.File.from_files(path=(Datastore.get_default(), "samples/scoring/*.csv"))
    model = Dataset.File.from_files(path=(Datastore.get_default(), "samples/scoring_model/model.json"))
    model_input = model.as_named_input("model").as_download()
    land_sample_data() >> ParallelRunStep(
        name="score",
        parallel_run_config=ParallelRunConfig(
            entry_script="score.py",
            source_directory=STEPS,
            compute_target=gpu_nodes,
            node_count=int(os.environ.get("MLPIPE_GPU_NODES", "4")),
            process_count_per_node=1,  # one process per GPU
            mini_batch_size=int(os.environ.get("MLPIPE_EXAMPLE_MINI_BATCH", "50")),
            error_threshold=0,
            run_invocation_timeout=600,
        ),
        inputs=[files.as_named_input("files")],
        side_inputs=[model_input],
        arguments=["--model", model_input],
        output=OutputFileDatasetConfig(name="scores").register_on_complete(name="scores_gpu"),
    )
