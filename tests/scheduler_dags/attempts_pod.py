"""Pod steps for the attempt tests on a real scheduler (tests/attempts/test_attempts_azure.py), on the in-memory
Kubernetes API server whose test kubelet runs each pod's command. Each DAG has its own namespace: the test
API server ignores label selectors, so a namespace holds only that DAG's pods.

``attempt_pod_lease``: a deferrable pod step that runs longer than a lease ttl (two runs at once: one pod).
``attempt_pod_latest``: a deferrable pod step reading the latest version of ``pod_input``, which it bumps.
``attempt_pod_reattach``: a pod step waited for on the worker, with one retry (its task is killed mid-pod).
``attempt_pod_env``: two pod steps that differ only in an environment variable of the pods.
"""

from __future__ import annotations

import datetime as dt
import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Dataset, KubernetesCompute, OutputFileDatasetConfig, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")
START = pendulum.datetime(2026, 1, 1, tz="UTC")
# Set by the deployment whose default datastore a pod can reach (Azurite); without it these DAGs are not defined.
NAMESPACE = os.environ.get("MLPIPE_TEST_K8S_NAMESPACE", "")


def pods(suffix: str, *, deferrable: bool, env: dict[str, str] | None = None) -> KubernetesCompute:
    return KubernetesCompute(
        namespace=f"{NAMESPACE}-{suffix}",
        image="python:3.11-slim",
        secrets=["mlpipe-datastores"],
        datastore_secrets={"mlpipe_default": "mlpipe-datastores"},
        deferrable=deferrable,
        env=env,
    )


if NAMESPACE:
    with DAG("attempt_pod_lease", schedule=None, start_date=START, catchup=False):
        PythonScriptOperator(
            task_id="train",
            script_name="pod_step.py",
            source_directory=STEPS,
            arguments=["--sleep", "16", "--out", OutputFileDatasetConfig(name="model")],
            compute_target=pods("lease", deferrable=True),
        )

    with DAG("attempt_pod_latest", schedule=None, start_date=START, catchup=False):
        data = Dataset.get_by_name("pod_input")
        PythonScriptOperator(
            task_id="train",
            script_name="pod_step.py",
            source_directory=STEPS,
            # A few seconds of sleep: a pod done before the executor has seen the task defer trips a LocalExecutor
            # race (the deferring process's exit, reported late, fails the resumed task).
            arguments=[
                "--sleep",
                "5",
                "--data",
                data.as_named_input("data").as_download(),
                "--bump",
                "pod_input",
                "--out",
                OutputFileDatasetConfig(name="model"),
            ],
            compute_target=pods("latest", deferrable=True),
        )

    with DAG("attempt_pod_reattach", schedule=None, start_date=START, catchup=False):
        PythonScriptOperator(
            task_id="train",
            script_name="pod_step.py",
            source_directory=STEPS,
            arguments=["--sleep", "20", "--out", OutputFileDatasetConfig(name="model")],
            compute_target=pods("reattach", deferrable=False),
            retries=1,
            retry_delay=dt.timedelta(seconds=0),
        )

    with DAG("attempt_pod_env", schedule=None, start_date=START, catchup=False):
        # The same step twice but for an environment variable of the pods: the second must not reuse the first.
        trains = [
            PythonScriptOperator(
                task_id=f"epochs_{epochs}",
                script_name="pod_step.py",
                source_directory=STEPS,
                arguments=["--out", OutputFileDatasetConfig(name="model")],
                compute_target=pods("env", deferrable=False, env={"EPOCHS": epochs}),
            )
            for epochs in ("100", "10")
        ]
        trains[0] >> trains[1]
