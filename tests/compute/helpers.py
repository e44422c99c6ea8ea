"""Shared test values (datastore settings with recognisable credentials, a step launch) and the real pod of a
KubernetesPodOperator, checked as the API server would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airflow_mlpipe.compute.base import StepLaunch
from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.compute.kubernetes import KubernetesCompute, build_pod_operator
from airflow_mlpipe.storage.config import DatastoreConfig, config_from_fields

# Credentials no real store has: tests search for them in everything that must not hold one.
SECRET_KEY = "MLPIPE-TEST-SECRET-d41d8cd98f00b204"
ACCESS_KEY = "AKIAMLPIPETESTKEY01"


def s3_config(name: str = "mlpipe_default") -> DatastoreConfig:
    return config_from_fields(
        name,
        conn_type="mlpipe_datastore",
        login=ACCESS_KEY,
        password=SECRET_KEY,
        extra={"url": "s3://mlpipe-test-bucket/steps", "region_name": "eu-west-1"},
    )


def local_config(path: Path, name: str = "mlpipe_default") -> DatastoreConfig:
    return config_from_fields(name, conn_type="mlpipe_datastore", extra={"url": path.as_uri()})


LAUNCH = StepLaunch(
    step_name="train",
    args=("-m", "airflow_mlpipe.runner", "--spec", "s3://mlpipe-test-bucket/steps/spec.json"),
    env={"MLPIPE_STEP": "train"},
    datastores=("mlpipe_default",),
)


def pod_manifest(
    compute: KubernetesCompute,
    *,
    launch: StepLaunch = LAUNCH,
    datastores: dict[str, DatastoreConfig] | None = None,
    environment: Environment | None = None,
    **operator_kwargs: Any,
) -> dict[str, Any]:
    """The pod the provider would create, serialised, validated strictly against the newest bundled schema,
    and checked to contain no credential."""
    import kubernetes_validate
    from kubernetes.client import ApiClient
    from kubernetes_validate.utils import latest_version

    operator = build_pod_operator(
        compute,
        task_id="train",
        launch=launch,
        datastores=datastores if datastores is not None else {"mlpipe_default": s3_config()},
        environment=environment,
        dag_id="ml_pipeline",
        **operator_kwargs,
    )
    pod = operator.build_pod_request_obj(dry_run=True)
    manifest: dict[str, Any] = ApiClient().sanitize_for_serialization(pod)
    kubernetes_validate.validate(manifest, latest_version(), strict=True)
    text = json.dumps(manifest)
    assert SECRET_KEY not in text and ACCESS_KEY not in text, "a credential leaked into the pod spec"
    return manifest


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    (base,) = [c for c in manifest["spec"]["containers"] if c["name"] == "base"]
    return base


def env_of(manifest: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(manifest).get("env", [])}
