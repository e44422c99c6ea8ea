"""The example pipeline with its training step on a Kubernetes GPU node (Azure ML: an AmlCompute GPU cluster).

Data prep runs on the Airflow worker (``LocalCompute``); training runs in a pod through the cncf-kubernetes
provider's KubernetesPodOperator, set up as a PyTorch training job usually is:

- one GPU of a chosen model (``gpu_type``: a node affinity on NVIDIA's ``nvidia.com/gpu.product`` node label), and
  the GPU node pool's taint tolerated;
- a large ``/dev/shm`` (``shm_size``): the data loader's worker processes share batches through it, and die with
  "bus error" on the container runtime's 64 MB;
- a PersistentVolumeClaim ``mlpipe-model-cache`` mounted at ``/cache`` for downloaded weights and tokenizers
  (``HF_HOME``, ``TORCH_HOME``), so each run does not fetch them again;
- a non-root security context and a PriorityClass, as platform teams usually require for GPU pools.

The cluster needs the NVIDIA device plugin (or the GPU operator), the claim and the PriorityClass, RBAC for the
Airflow worker and triggerer to manage pods in the namespace, and a default datastore the pod can reach (Azure
Blob, S3: not a local folder); the pod reads that datastore's connection from the Kubernetes Secret
``mlpipe-datastores``:

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
    gpu_type=os.environ.get("MLPIPE_GPU_TYPE", "NVIDIA-A100-SXM4-80GB").split(","),
    cpu="8",
    memory="48Gi",  # /dev/shm below counts against it
    shm_size="16Gi",
    volumes=[{"name": "model-cache", "persistentVolumeClaim": {"claimName": "mlpipe-model-cache"}}],
    volume_mounts=[{"name": "model-cache", "mountPath": "/cache"}],
    env={"HF_HOME": "/cache/huggingface", "TORCH_HOME": "/cache/torch"},
    security_context={"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000, "runAsNonRoot": True},
    priority_class_name=os.environ.get("MLPIPE_PRIORITY_CLASS", "ml-training"),
    startup_timeout_seconds=1800,  # a GPU node may have to scale up first
    secrets=["mlpipe-datastores"],
    datastore_secrets={"mlpipe_default": "mlpipe-datastores"},
    # any other KubernetesPodOperator argument, checked against the installed provider when this file is parsed
    operator_kwargs={"termination_grace_period": 120, "active_deadline_seconds": 6 * 3600},
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
        # wait for the pod in the triggerer instead of holding a worker slot (default: [operators] default_deferrable)
        deferrable=os.environ.get("MLPIPE_K8S_DEFERRABLE", "1") == "1",
    )
