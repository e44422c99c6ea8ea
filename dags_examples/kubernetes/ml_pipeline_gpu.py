"""The example pipeline with its training step on a Kubernetes GPU node (Azure ML: an AmlCompute GPU cluster).

Data prep runs on the Airflow worker (``LocalCompute``); training runs in a pod that requests one GPU, through
the cncf-kubernetes provider's KubernetesPodOperator. The pod needs a default datastore it can reach (Azure Blob,
S3: not a local folder) and reads that datastore's connection from the Kubernetes Secret ``mlpipe-datastores``:

    mlpipe's helper ``airflow_mlpipe.compute.kubernetes.datastore_secret_manifest`` writes it, or
    kubectl -n ml create secret generic mlpipe-datastores --from-literal=AIRFLOW_CONN_MLPIPE_DEFAULT='{...}'

This folder is listed in ``dags_examples/.airflowignore`` so that the local demo (whose default datastore is a
local folder, which no pod can reach) does not show it as a broken DAG: remove that line once ``mlpipe_default``
points at object storage and the cluster settings below are yours.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import (
    Dataset,
    Datastore,
    KubernetesCompute,
    OutputFileDatasetConfig,
    PipelineParameter,
    PythonScriptOperator,
)

STEPS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "ml_pipeline_steps")

gpu_pool = KubernetesCompute(
    namespace=os.environ.get("MLPIPE_K8S_NAMESPACE", "ml"),
    image=os.environ.get("MLPIPE_STEP_IMAGE", "registry.example.com/ml/mlpipe-step:0.1.0"),
    gpu=1,
    memory="4Gi",
    node_selector={"pool": "gpu"},
    secrets=["mlpipe-datastores"],
    datastore_secrets={"mlpipe_default": "mlpipe-datastores"},
    # wait for the pod in the triggerer instead of holding a worker slot
    deferrable=os.environ.get("MLPIPE_K8S_DEFERRABLE", "1") == "1",
)

with DAG(
    dag_id="mlpipe_example_pipeline_gpu",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlpipe", "example", "kubernetes"],
    doc_md=__doc__,
):
    iris = Dataset.Tabular.from_delimited_files(path=(Datastore.get_default(), "samples/iris/*.csv"))
    learning_rate = PipelineParameter(name="learning_rate", default_value=0.1)
    prepped = OutputFileDatasetConfig(name="prepped")
    model = OutputFileDatasetConfig(name="model").register_on_complete(name="iris_model_gpu")

    data_prep = PythonScriptOperator(
        task_id="data_prep",
        script_name="data_prep.py",
        source_directory=STEPS,
        arguments=["--raw", iris.as_named_input("iris_raw").as_download(), "--prepped", prepped],
    )
    train = PythonScriptOperator(
        task_id="train",
        script_name="train.py",
        source_directory=STEPS,
        arguments=["--training-data", prepped.as_input(), "--model", model, "--learning-rate", learning_rate],
        compute_target=gpu_pool,
    )
