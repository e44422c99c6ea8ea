"""The Kubernetes deployment files under deploy/kubernetes: every manifest valid for the newest Kubernetes schema
(strict: no unknown field), the RBAC lets Airflow's workers and triggerer run step pods in the steps' namespace,
and the Helm values wire the datastore Secret, the image and the executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy" / "kubernetes"


def _documents(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


@pytest.mark.parametrize("name", ["rbac.yaml", "datastores-secret.yaml"])
def test_manifests_are_valid_kubernetes(name: str) -> None:
    for document in _documents(name):
        kubernetes_validate.validate(document, latest_version(), strict=True)


def test_the_workers_and_the_triggerer_may_launch_step_pods() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _documents("rbac.yaml")}
    role = docs[("Role", "mlpipe-pod-launcher")]
    pods = next(r for r in role["rules"] if r["resources"] == ["pods"])
    assert {"create", "get", "list", "watch", "delete"} <= set(pods["verbs"])  # what KubernetesPodOperator does
    binding = docs[("RoleBinding", "mlpipe-pod-launcher")]
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    accounts = {values["workers"]["serviceAccount"]["name"], values["triggerer"]["serviceAccount"]["name"]}
    assert {s["name"] for s in binding["subjects"]} == accounts
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "ml"


def test_the_helm_values_wire_the_datastores_and_the_image() -> None:
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    assert values["executor"] in ("KubernetesExecutor", "CeleryExecutor", "CeleryKubernetesExecutor")
    assert "airflow-mlpipe" in values["images"]["airflow"]["repository"]
    (source,) = yaml.safe_load(values["extraEnvFrom"])
    secrets = {d["metadata"]["namespace"]: d for d in _documents("datastores-secret.yaml")}
    assert source["secretRef"]["name"] == secrets["airflow"]["metadata"]["name"] == secrets["ml"]["metadata"]["name"]
    assert "AIRFLOW_CONN_MLPIPE_DEFAULT" in secrets["airflow"]["stringData"]
    assert values["config"]["core"]["test_connection"] == "Enabled"
