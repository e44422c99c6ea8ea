"""The batch-scoring GPU example: one pod per mini-batch through KubernetesPodOperator, on the kmock API server
whose test kubelet runs each pod's command as a local process; the datastore is Azurite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_mlpipe.compute.kubernetes import datastore_secret_manifest
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.steps.records import read_record
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import EXAMPLES, airflow_dags_test, last_run_states, last_run_xcom
from tests.conftest import make_azurite_datastore
from tests.kubernetes_env import KubernetesEnv

DAG_ID = "mlpipe_example_batch_scoring_gpu"


@pytest.mark.usefixtures("airflow_db")
def test_each_mini_batch_runs_in_a_gpu_pod(kubernetes_env: KubernetesEnv, azurite: Any, monkeypatch) -> None:
    store = make_azurite_datastore(azurite, name="mlpipe_default")
    conn = {"conn_type": "mlpipe_datastore", "extra": {"url": store.config.url, **store.config.storage_options}}
    namespace = kubernetes_env.new_namespace()
    kubernetes_env.create_secret(datastore_secret_manifest("mlpipe-datastores", [store.config], namespace=namespace))
    env = {
        "AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps(conn),
        "MLPIPE_K8S_NAMESPACE": namespace,
        "KUBECONFIG": str(kubernetes_env.kubeconfig),
        "MLPIPE_EXAMPLE_SCORING_FILES": "6",
        "MLPIPE_EXAMPLE_MINI_BATCH": "3",
        "MLPIPE_GPU_NODES": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resolve.clear_cache()
    proc = airflow_dags_test(DAG_ID, dags_folder=EXAMPLES / "kubernetes", env=env, check=False)
    _, tasks = last_run_states(DAG_ID)
    assert set(tasks.values()) == {"success"}, proc.stdout[-4000:] + proc.stderr[-4000:]
    pods = kubernetes_env.kubelet.runs_in(namespace)
    assert len(pods) == 2  # one per mini-batch
    for pod in pods:
        container = pod.manifest["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert container["args"][:3] == ["-m", "airflow_mlpipe.runner", "--spec"]
    result = last_run_xcom(DAG_ID, "score.gather")
    where = result["outputs"]["scores"]
    lines = Datastore.get_default().read_text(f"{where['path']}/parallel_run_step.txt").splitlines()
    assert [line.split(",")[0] for line in lines] == [f"part-{n:04d}.csv" for n in range(6)]
    assert DatasetRegistry().get("scores_gpu").version == 1
    batch = read_record(pods[0].manifest["spec"]["containers"][0]["args"][3].rstrip("/").split("/")[-2])
    assert batch["compute"]["kind"] == "kubernetes" and batch["status"] == "Completed"
