"""KubernetesPodOperators built by build_pod_operator, run end to end against an in-memory API server whose test
kubelet runs each pod's container as a local process; and, opt-in, against a real cluster (KUBECONFIG)."""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowException
from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import TaskDeferred

from airflow_mlpipe.compute import KubernetesCompute, StepLaunch
from airflow_mlpipe.compute.delegate import execute_delegated
from airflow_mlpipe.compute.kubernetes import build_pod_operator, datastore_secret_manifest
from airflow_mlpipe.storage.config import DatastoreConfig
from tests.compute.conftest import KubernetesEnv
from tests.compute.helpers import ACCESS_KEY, SECRET_KEY, s3_config

# The step: reads a plain variable and the secret-fed datastore connection, proves the connection parses as the
# step runner would parse it, and writes what it saw to a file.
PROBE = textwrap.dedent(
    """
    import json, os, sys
    from airflow_mlpipe.storage.config import config_from_env
    store = config_from_env("mlpipe_default")
    seen = {"greeting": os.environ["GREETING"], "url": store.url, "has_secret": bool(store.secret_values)}
    with open(os.environ["MLPIPE_PROBE_OUT"], "w") as f:
        json.dump(seen, f)
    sys.exit(int(os.environ.get("EXIT_CODE", "0")))
    """
)


class FakeTaskInstance:
    """What the provider's operator reads from ``context["ti"]`` in a task run."""

    def __init__(self, task_id: str) -> None:
        self.dag_id, self.task_id, self.try_number, self.map_index = "compute_e2e", task_id, 1, -1
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


def minimal_context(task_id: str) -> Any:
    return {"ti": FakeTaskInstance(task_id), "run_id": "manual__e2e", "dag": SimpleNamespace(dag_id="compute_e2e")}


def setup_namespace(env: KubernetesEnv, config: DatastoreConfig) -> str:
    namespace = env.new_namespace()
    env.create_secret(datastore_secret_manifest("mlpipe-datastores", [config], namespace=namespace))
    return namespace


def probe_operator(
    env: KubernetesEnv, namespace: str, out: Path, *, exit_code: int = 0, deferrable: bool = False
) -> Any:
    target = KubernetesCompute(
        namespace=namespace,
        image="python:3.11-slim",
        env={"GREETING": "hello from the pod"},
        secrets=["mlpipe-datastores"],
        datastore_secrets={"mlpipe_default": "mlpipe-datastores"},
        deferrable=deferrable,
    )
    launch = StepLaunch(
        step_name="probe",
        args=("-c", PROBE),
        env={"MLPIPE_PROBE_OUT": str(out), "EXIT_CODE": str(exit_code)},
        datastores=("mlpipe_default",),
    )
    return build_pod_operator(
        target,
        task_id="probe",
        launch=launch,
        datastores={"mlpipe_default": s3_config()},
        config_file=str(env.kubeconfig),
        # kmock serves no pod logs and no exec: read the result from the file the step writes.
        get_logs=False,
        do_xcom_push=False,
        log_events_on_startup=False,
        startup_check_interval_seconds=1,
        base_container_status_polling_interval=0.1,
        poll_interval=0.2,
    )


def assert_pod_saw_its_settings(env: KubernetesEnv, namespace: str, out: Path) -> None:
    assert json.loads(out.read_text()) == {
        "greeting": "hello from the pod",
        "url": "s3://mlpipe-test-bucket/steps",
        "has_secret": True,
    }
    (run,) = env.kubelet.runs_in(namespace)
    assert run.env["AIRFLOW_CONN_MLPIPE_DEFAULT"].count(SECRET_KEY) == 1  # delivered through the Secret...
    spec = json.dumps(run.manifest)
    assert SECRET_KEY not in spec and ACCESS_KEY not in spec  # ...and absent from the pod the API server stored
    assert run.manifest["metadata"]["labels"]["airflow-mlpipe/step"] == "probe"


def test_pod_runs_the_step_with_plain_and_secret_env(kubernetes_env: KubernetesEnv, tmp_path: Path) -> None:
    namespace = setup_namespace(kubernetes_env, s3_config())
    out = tmp_path / "probe.json"
    context = minimal_context("probe")
    operator = probe_operator(kubernetes_env, namespace, out)

    assert execute_delegated(operator, context) is None

    assert_pod_saw_its_settings(kubernetes_env, namespace, out)
    assert context["ti"].xcoms["pod_namespace"] == namespace
    assert kubernetes_env.api.list_namespaced_pod(namespace).items == []  # the provider cleaned up


def test_a_failing_step_fails_the_operator(kubernetes_env: KubernetesEnv, tmp_path: Path) -> None:
    namespace = setup_namespace(kubernetes_env, s3_config())
    out = tmp_path / "probe.json"
    operator = probe_operator(kubernetes_env, namespace, out, exit_code=3)

    with pytest.raises(AirflowException, match="returned a failure"):
        execute_delegated(operator, minimal_context("probe"))

    (run,) = kubernetes_env.kubelet.runs_in(namespace)
    assert run.returncode == 3 and out.exists()


def test_a_missing_secret_fails_the_pod(kubernetes_env: KubernetesEnv, tmp_path: Path) -> None:
    namespace = kubernetes_env.new_namespace()  # no Secret created
    operator = probe_operator(kubernetes_env, namespace, tmp_path / "probe.json")

    with pytest.raises(AirflowException):
        execute_delegated(operator, minimal_context("probe"))

    (run,) = kubernetes_env.kubelet.runs_in(namespace)
    assert "secret 'mlpipe-datastores' not found" in run.stderr


class StepOnPod(BaseOperator):
    """How an operator delegates to the pod operator, deferrable mode included: ``execute`` and
    ``trigger_reentry`` (the method the provider defers to) each build the pod operator and forward."""

    def __init__(self, *, env: KubernetesEnv, namespace: str, out: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.env, self.namespace, self.out = env, namespace, out

    def _pod_operator(self) -> Any:
        return probe_operator(self.env, self.namespace, Path(self.out), deferrable=True)

    def execute(self, context: Any) -> Any:
        return execute_delegated(self._pod_operator(), context)

    def trigger_reentry(self, context: Any, event: dict[str, Any]) -> Any:
        return self._pod_operator().trigger_reentry(context, event)


def test_deferrable_pod_resumes_through_the_delegating_operator(kubernetes_env: KubernetesEnv, tmp_path: Path) -> None:
    namespace = setup_namespace(kubernetes_env, s3_config())
    out = tmp_path / "probe.json"
    context = minimal_context("probe")

    with pytest.raises(TaskDeferred) as deferred:
        StepOnPod(task_id="probe", env=kubernetes_env, namespace=namespace, out=str(out)).execute(context)
    assert deferred.value.method_name == "trigger_reentry"

    # What the triggerer does: run the trigger until its first event.
    async def first_event() -> dict[str, Any]:
        async for event in deferred.value.trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    event = asyncio.run(asyncio.wait_for(first_event(), timeout=60))
    assert event["status"] == "success"

    # What the task runner does on resume: a fresh operator instance, the recorded method and kwargs.
    task = StepOnPod(task_id="probe", env=kubernetes_env, namespace=namespace, out=str(out))
    task.resume_execution(deferred.value.method_name, {**(deferred.value.kwargs or {}), "event": event}, context)

    assert_pod_saw_its_settings(kubernetes_env, namespace, out)
    assert kubernetes_env.api.list_namespaced_pod(namespace).items == []


# -- opt-in: a real cluster ---------------------------------------------------------------------------------------
@pytest.mark.skipif(
    not os.environ.get("KUBECONFIG"), reason="set KUBECONFIG (and MLPIPE_TEST_K8S_NAMESPACE) to run on a real cluster"
)
def test_pod_on_a_real_cluster() -> None:
    """Runs a pod with a Secret-fed datastore connection on the cluster of $KUBECONFIG and reads its XCom."""
    from kubernetes import client, config

    namespace = os.environ.get("MLPIPE_TEST_K8S_NAMESPACE", "default")
    image = os.environ.get("MLPIPE_TEST_K8S_IMAGE", "python:3.11-slim")
    secret_name = f"mlpipe-test-{uuid.uuid4().hex[:8]}"
    config.load_kube_config()
    api = client.CoreV1Api()
    manifest = datastore_secret_manifest(secret_name, [s3_config()], namespace=namespace)
    api.create_namespaced_secret(namespace, manifest)
    code = (
        "import json, os; os.makedirs('/airflow/xcom', exist_ok=True); "
        "c = json.loads(os.environ['AIRFLOW_CONN_MLPIPE_DEFAULT']); "
        "seen = {'greeting': os.environ['GREETING'], 'url': c['extra']['url']}; "
        "json.dump(seen, open('/airflow/xcom/return.json', 'w'))"
    )
    target = KubernetesCompute(
        namespace=namespace,
        image=image,
        env={"GREETING": "hello"},
        secrets=[secret_name],
        datastore_secrets={"mlpipe_default": secret_name},
    )
    launch = StepLaunch(step_name="probe", args=("-c", code), datastores=("mlpipe_default",))
    try:
        operator = build_pod_operator(
            target, task_id="probe", launch=launch, datastores={"mlpipe_default": s3_config()}, do_xcom_push=True
        )
        result = execute_delegated(operator, minimal_context("probe"))
    finally:
        api.delete_namespaced_secret(secret_name, namespace)
    assert result == {"greeting": "hello", "url": "s3://mlpipe-test-bucket/steps"}
