"""The GPU example: data prep on the worker, training in a pod through KubernetesPodOperator, on the kmock API
server whose test kubelet runs the pod's exact command and environment as a local process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from airflow_mlpipe.compute.kubernetes import datastore_secret_manifest
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.examples_data import iris_csv
from airflow_mlpipe.steps.records import read_record
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore
from tests.airflow_utils import EXAMPLES, airflow_dags_test, last_run_states, last_run_xcom
from tests.compute.conftest import KubernetesEnv
from tests.conftest import make_azurite_datastore

DAG_ID = "mlpipe_example_pipeline_gpu"


def _setup(kubernetes_env: KubernetesEnv, azurite, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], str]:
    store = make_azurite_datastore(azurite, name="mlpipe_default")
    store.write_text("samples/iris/iris.csv", iris_csv())
    conn = json.dumps(
        {"conn_type": "mlpipe_datastore", "extra": {"url": store.config.url, **store.config.storage_options}}
    )
    namespace = kubernetes_env.new_namespace()
    kubernetes_env.create_secret(datastore_secret_manifest("mlpipe-datastores", [store.config], namespace=namespace))
    env = {
        "AIRFLOW_CONN_MLPIPE_DEFAULT": conn,
        "MLPIPE_K8S_NAMESPACE": namespace,
        "KUBECONFIG": str(kubernetes_env.kubeconfig),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    resolve.clear_cache()
    return env, namespace


@pytest.mark.usefixtures("airflow_db")
def test_gpu_step_runs_in_a_pod_and_registers_its_output(kubernetes_env: KubernetesEnv, azurite, monkeypatch) -> None:
    env, namespace = _setup(kubernetes_env, azurite, monkeypatch)
    proc = airflow_dags_test(DAG_ID, dags_folder=EXAMPLES / "kubernetes", env=env, check=False)
    _state, tasks = last_run_states(DAG_ID)
    assert tasks == {"data_prep": "success", "train": "success"}, proc.stdout[-4000:] + proc.stderr[-4000:]
    output = proc.stdout + proc.stderr
    assert "TaskDeferred" in output or "deferred" in output.lower(), output[-3000:]  # waited in the triggerer
    (pod,) = kubernetes_env.kubelet.runs_in(namespace)
    container = pod.manifest["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["args"][:3] == ["-m", "airflow_mlpipe.runner", "--spec"]
    assert azurite.connection_string not in json.dumps(pod.manifest)  # credentials only by secret reference
    record = read_record(last_run_xcom(DAG_ID, "train")["step_run_id"])
    assert record["status"] == "Completed" and record["compute"]["kind"] == "kubernetes"
    assert record["metrics"]["learning_rate"] == 0.1 and record["metrics"]["train_accuracy"] > 0.8
    registered = DatasetRegistry().get("iris_model_gpu")
    assert registered.lineage["task_id"] == "train"
    assert Datastore.get_default().is_complete(record["outputs"][0]["path"])


@pytest.mark.usefixtures("airflow_db")
def test_failing_script_in_a_pod_fails_the_task(
    kubernetes_env: KubernetesEnv, azurite, monkeypatch, tmp_path: Path
) -> None:
    env, _namespace = _setup(kubernetes_env, azurite, monkeypatch)
    broken = tmp_path / "kubernetes"
    shutil.copytree(EXAMPLES / "kubernetes", broken)
    steps = tmp_path / "ml_pipeline_steps"
    shutil.copytree(EXAMPLES / "ml_pipeline_steps", steps)
    (steps / "train.py").write_text("import sys\nprint('training blew up')\nsys.exit(7)\n")
    proc = airflow_dags_test(DAG_ID, dags_folder=broken, env=env, check=False)
    assert last_run_states(DAG_ID)[1]["train"] == "failed"
    assert "script exited with code 7" in proc.stdout + proc.stderr
    assert DatasetRegistry().versions("iris_model_gpu") == []
