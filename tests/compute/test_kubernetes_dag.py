"""A DAG run (dag.test) whose task runs a pod operator built by build_pod_operator on the kmock cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_mlpipe.compute.kubernetes import datastore_secret_manifest
from tests.compute.conftest import KubernetesEnv
from tests.compute.helpers import SECRET_KEY, s3_config
from tests.dags import compute_kpo


@pytest.mark.usefixtures("airflow_db")
def test_pod_step_in_a_dag_run(kubernetes_env: KubernetesEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = kubernetes_env.new_namespace()
    kubernetes_env.create_secret(datastore_secret_manifest("mlpipe-datastores", [s3_config()], namespace=namespace))
    out = tmp_path / "probe.json"
    monkeypatch.setenv("MLPIPE_TEST_K8S_NAMESPACE", namespace)
    monkeypatch.setenv("MLPIPE_TEST_KUBECONFIG", str(kubernetes_env.kubeconfig))
    monkeypatch.setenv("MLPIPE_TEST_PROBE_OUT", str(out))

    run = compute_kpo.dag.test()

    assert run.state == "success"
    assert json.loads(out.read_text()) == {"url": "s3://mlpipe-test-bucket/steps", "has_secret": True}
    (pod,) = kubernetes_env.kubelet.runs_in(namespace)
    assert SECRET_KEY not in json.dumps(pod.manifest)
    assert pod.manifest["metadata"]["labels"]["dag_id"] == "compute_kpo"
