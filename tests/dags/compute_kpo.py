"""A step on KubernetesCompute in a real DAG run; tests/compute/test_kubernetes_dag.py points it at kmock.

The task delegates to a KubernetesPodOperator built at run time, as a step operator does, so parsing this file
imports neither the provider nor kubernetes."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, get_current_context, task

# The DAG knows the datastore's url only; its credentials live in the cluster's Secret.
PROBE = (
    "import json, os; from airflow_mlpipe.storage.config import config_from_env; "
    "c = config_from_env('mlpipe_default'); "
    "json.dump({'url': c.url, 'has_secret': bool(c.secret_values)}, open(os.environ['OUT'], 'w'))"
)

with DAG("compute_kpo", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def probe() -> None:
        from airflow_mlpipe.compute import KubernetesCompute, StepLaunch
        from airflow_mlpipe.compute.delegate import execute_delegated
        from airflow_mlpipe.compute.kubernetes import build_pod_operator
        from airflow_mlpipe.storage.config import config_from_fields

        store = config_from_fields("mlpipe_default", conn_type=None, extra={"url": "s3://mlpipe-test-bucket/steps"})
        operator = build_pod_operator(
            KubernetesCompute(
                namespace=os.environ["MLPIPE_TEST_K8S_NAMESPACE"],
                image="python:3.11-slim",
                secrets=["mlpipe-datastores"],
                datastore_secrets={"mlpipe_default": "mlpipe-datastores"},
            ),
            task_id="probe",
            launch=StepLaunch(
                step_name="probe",
                args=("-c", PROBE),
                env={"OUT": os.environ["MLPIPE_TEST_PROBE_OUT"]},
                datastores=("mlpipe_default",),
            ),
            datastores={"mlpipe_default": store},
            dag_id="compute_kpo",
            config_file=os.environ["MLPIPE_TEST_KUBECONFIG"],
            get_logs=False,
            log_events_on_startup=False,
            base_container_status_polling_interval=0.1,
        )
        execute_delegated(operator, get_current_context())

    probe()
