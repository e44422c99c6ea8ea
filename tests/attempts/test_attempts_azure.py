"""Attempts on a real scheduler with the default datastore on Azurite and pod steps on the in-memory Kubernetes
API server: kills in each phase (before the pod, in the pod's runner, around the commit, while finishing), a
deferred pod keeping its lease, a pod resumed with a dataset's ``latest`` moved on meanwhile, and a retry that
Kubernetes reattached to the killed try's pod."""

from __future__ import annotations

import time

from airflow_mlpipe import Dataset, Datastore
from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.reuse.index import ReuseIndex
from airflow_mlpipe.reuse.lease import Leases
from airflow_mlpipe.steps import records
from tests.attempts.checks import POD_KILL_PHASES, run_kill_matrix
from tests.attempts.conftest import Deployment
from tests.kubernetes_env import KubernetesEnv


def test_a_kill_in_each_phase_then_the_retry(azure_deployment: Deployment) -> None:
    run_kill_matrix(azure_deployment, POD_KILL_PHASES)


def test_a_deferred_pod_keeps_its_lease_and_the_identical_run_waits(
    azure_deployment: Deployment, kubernetes_env: KubernetesEnv
) -> None:
    """The pod runs 16 s, the lease lives 6 s without a heartbeat: only the triggerer's heartbeats keep the
    waiting run from taking the key over and computing it too."""
    dep, dag = azure_deployment, "attempt_pod_lease"
    first = dep.services.trigger(dag, "lease-a")
    dep.services.wait_for_task_state(dag, first, "train", ("deferred",), timeout=120)
    second = dep.services.trigger(dag, "lease-b")
    assert dep.services.wait_for_runs(dag, [first, second], timeout=300) == {first: "success", second: "success"}
    a, b = (AttemptId(dag, run, "train").step_run_id for run in (first, second))
    producer = records.read_record(a, dep.store)
    waiter = records.read_record(b, dep.store)
    assert producer["status"] == "Completed"
    assert (waiter["status"], waiter["reused_from"]) == ("Reused", a), waiter
    key = producer["reuse"]["key"]
    assert Leases(dep.store).generations(key) == [1]  # never taken over
    assert Leases(dep.store).read(key).released  # type: ignore[union-attr]
    assert len(kubernetes_env.kubelet.runs_in(f"{dep.services.env['MLPIPE_TEST_K8S_NAMESPACE']}-lease")) == 1


def test_a_pod_resumed_after_latest_moved_is_indexed_under_the_key_it_ran(
    azure_deployment: Deployment, kubernetes_env: KubernetesEnv
) -> None:
    """The step reads ``pod_input`` (latest = version 1) and, while its pod runs, version 2 is registered. The
    resumed task must index the outputs under version 1's key: the next run (latest = 2) computes again."""
    dep, dag = azure_deployment, "attempt_pod_latest"
    store = Datastore.get_default()
    store.write_text("pod_input/part-0.csv", "x\n0\n")
    assert Dataset.File.from_files(path=(store, "pod_input/*.csv")).register("pod_input").version == 1
    first = dep.services.trigger(dag, "latest-1")
    assert dep.services.wait_for_runs(dag, [first], timeout=300)[first] == "success"
    srid = AttemptId(dag, first, "train").step_run_id
    spec = records.read_spec(srid, dep.store)
    assert spec is not None and spec.inputs[0]["source"]["dataset"]["version"] == 1
    assert Dataset.get_by_name("pod_input").version == 2  # registered while the pod ran
    entry = ReuseIndex(dep.store).get(spec.key)
    assert entry is not None and entry.step_run_id == srid
    assert records.read_record(srid, dep.store)["reuse"]["key"] == spec.key

    second = dep.services.trigger(dag, "latest-2")
    assert dep.services.wait_for_runs(dag, [second], timeout=300)[second] == "success"
    again = records.read_record(AttemptId(dag, second, "train").step_run_id, dep.store)
    assert again["status"] == "Completed" and again["reuse"]["key"] != spec.key  # computed on version 2
    assert again["inputs"][0]["dataset"]["version"] == 2
    namespace = f"{dep.services.env['MLPIPE_TEST_K8S_NAMESPACE']}-latest"
    assert len(kubernetes_env.kubelet.runs_in(namespace)) == 2


def test_a_retry_reattached_to_the_killed_trys_pod_finishes_that_try(
    azure_deployment: Deployment, kubernetes_env: KubernetesEnv
) -> None:
    dep, dag = azure_deployment, "attempt_pod_reattach"
    namespace = f"{dep.services.env['MLPIPE_TEST_K8S_NAMESPACE']}-reattach"
    run_id = dep.services.trigger(dag, "reattach")
    deadline = time.monotonic() + 120
    while not kubernetes_env.kubelet.runs_in(namespace) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert kubernetes_env.kubelet.runs_in(namespace), "the pod never started"
    ti = dep.services.task_instance(dag, run_id, "train")
    assert ti["try_number"] == 1 and dep.services.kill_task_process(ti["id"])
    assert dep.services.wait_for_runs(dag, [run_id], timeout=300)[run_id] == "success"
    assert dep.services.task_instance(dag, run_id, "train")["try_number"] == 2
    first, second = (AttemptId(dag, run_id, "train", try_number=n).step_run_id for n in (1, 2))
    finished = records.read_record(first, dep.store)
    assert (finished["status"], finished["finished_by"]) == ("Completed", second), finished
    adopted = records.read_record(second, dep.store)
    assert (adopted["status"], adopted["adopted_from"]) == ("Completed", first), adopted
    assert adopted["outputs"] == finished["outputs"]
    spec = records.read_spec(first, dep.store)
    assert spec is not None
    entry = ReuseIndex(dep.store).get(spec.key)
    assert entry is not None and entry.step_run_id == first  # indexed under the key of the try that ran
    assert len(kubernetes_env.kubelet.runs_in(namespace)) == 1  # one pod: the retry reattached to it


def test_an_environment_variable_of_the_pods_is_part_of_the_key(
    azure_deployment: Deployment, kubernetes_env: KubernetesEnv
) -> None:
    dep, dag = azure_deployment, "attempt_pod_env"
    run_id = dep.services.trigger(dag, "env")
    assert dep.services.wait_for_runs(dag, [run_id], timeout=300)[run_id] == "success"
    hundred, ten = (
        records.read_record(AttemptId(dag, run_id, task).step_run_id, dep.store) for task in ("epochs_100", "epochs_10")
    )
    assert hundred["status"] == ten["status"] == "Completed"  # EPOCHS=10 computed, it did not reuse EPOCHS=100
    assert hundred["reuse"]["key"] != ten["reuse"]["key"]
    assert (hundred["environment"]["env_vars"], ten["environment"]["env_vars"]) == ({"EPOCHS": "100"}, {"EPOCHS": "10"})
    assert len(kubernetes_env.kubelet.runs_in(f"{dep.services.env['MLPIPE_TEST_K8S_NAMESPACE']}-env")) == 2
