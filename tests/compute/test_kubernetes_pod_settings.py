"""KubernetesCompute's pod-level conveniences and its pass-through: the provider's real V1Pod, validated strictly
against the Kubernetes schema; bad settings refused when the compute target is created (at DAG parse)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import models as k8s

from airflow_mlpipe.compute import KubernetesCompute
from airflow_mlpipe.exceptions import ConfigError
from tests.compute.helpers import container, pod_manifest
from tests.kubernetes_env import KubernetesEnv

IMAGE = "ghcr.io/example/train:1.4"
DS: dict[str, Any] = {"secrets": ["mlpipe-datastores"], "datastore_secrets": {"mlpipe_default": "mlpipe-datastores"}}
CACHE = {"name": "cache", "persistentVolumeClaim": {"claimName": "hf-cache"}}
CACHE_MOUNT = {"name": "cache", "mountPath": "/cache"}
A100 = "NVIDIA-A100-SXM4-80GB"


def compute(**kwargs: Any) -> KubernetesCompute:
    return KubernetesCompute(**{"namespace": "ml", "image": IMAGE, **DS, **kwargs})


def volumes_by_name(pod: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v for v in pod["spec"].get("volumes", [])}


def mounts_by_name(pod: dict[str, Any]) -> dict[str, Any]:
    return {m["name"]: m for m in container(pod).get("volumeMounts", [])}


def required_terms(pod: dict[str, Any]) -> list[dict[str, Any]]:
    node = pod["spec"]["affinity"]["nodeAffinity"]
    terms: list[dict[str, Any]] = node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    return terms


def test_shm_size_is_a_memory_backed_empty_dir_at_dev_shm() -> None:
    pod = pod_manifest(compute(gpu=1, memory="32Gi", shm_size="8Gi"))
    assert volumes_by_name(pod)["dshm"] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}}
    assert mounts_by_name(pod)["dshm"] == {"name": "dshm", "mountPath": "/dev/shm"}


def test_gpu_type_requires_the_gpu_product_label() -> None:
    pod = pod_manifest(compute(gpu=1, gpu_type=[A100, "NVIDIA-H100-80GB-HBM3"]))
    expression = {"key": "nvidia.com/gpu.product", "operator": "In", "values": [A100, "NVIDIA-H100-80GB-HBM3"]}
    assert required_terms(pod) == [{"matchExpressions": [expression]}]
    gke = pod_manifest(compute(gpu=1, gpu_type="nvidia-l4", gpu_type_label="cloud.google.com/gke-accelerator"))
    assert required_terms(gke)[0]["matchExpressions"][0]["key"] == "cloud.google.com/gke-accelerator"


def test_gpu_type_is_added_to_every_term_of_a_given_affinity() -> None:
    zone = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["westeurope-1"]}
    spot = {"key": "kubernetes.azure.com/scalesetpriority", "operator": "In", "values": ["spot"]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [zone]}, {"matchExpressions": [spot]}]
            }
        }
    }
    gpu = {"key": "nvidia.com/gpu.product", "operator": "In", "values": [A100]}
    pod = pod_manifest(compute(gpu=1, gpu_type=A100, affinity=affinity))
    assert required_terms(pod) == [{"matchExpressions": [zone, gpu]}, {"matchExpressions": [spot, gpu]}]
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0] == {
        "matchExpressions": [zone]
    }, "the user's affinity is not changed"


@pytest.mark.parametrize(
    ("volume", "mount"),
    [
        pytest.param(CACHE, CACHE_MOUNT, id="pvc"),
        pytest.param(
            {"name": "cfg", "configMap": {"name": "train-config", "items": [{"key": "hp.yaml", "path": "hp.yaml"}]}},
            {"name": "cfg", "mountPath": "/etc/train", "readOnly": True},
            id="configmap",
        ),
        pytest.param(
            {"name": "certs", "secret": {"secretName": "mlpipe-datastores", "defaultMode": 0o400}},
            {"name": "certs", "mountPath": "/etc/certs", "readOnly": True},
            id="secret",
        ),
        pytest.param(
            k8s.V1Volume(name="cache", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource("hf-cache")),
            k8s.V1VolumeMount(name="cache", mount_path="/cache", sub_path="hf"),
            id="client-objects",
        ),
    ],
)
def test_volumes_and_mounts(volume: Any, mount: Any) -> None:
    pod = pod_manifest(compute(volumes=[volume], volume_mounts=[mount]))
    name = volume["name"] if isinstance(volume, dict) else volume.name
    assert set(volumes_by_name(pod)) == {name}
    assert mounts_by_name(pod)[name]["mountPath"] == (mount["mountPath"] if isinstance(mount, dict) else "/cache")


def test_security_context_priority_class_and_pull_policy() -> None:
    pod = pod_manifest(
        compute(
            security_context={"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 1000},
            priority_class_name="training-high",
            image_pull_policy="Always",
            startup_timeout_seconds=1200,
        )
    )
    assert pod["spec"]["securityContext"] == {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 1000}
    assert pod["spec"]["priorityClassName"] == "training-high"
    assert container(pod)["imagePullPolicy"] == "Always"


def test_pass_through_reaches_the_pod() -> None:
    options = {
        "termination_grace_period": 45,
        "active_deadline_seconds": 86400,
        "container_security_context": {"allowPrivilegeEscalation": False},
        "hostname": "trainer",
    }
    target = compute(operator_kwargs=options)
    pod = pod_manifest(target)
    assert pod["spec"]["terminationGracePeriodSeconds"] == 45
    assert pod["spec"]["activeDeadlineSeconds"] == 86400
    assert pod["spec"]["hostname"] == "trainer"
    assert container(pod)["securityContext"] == {"allowPrivilegeEscalation": False}
    assert target.describe()["operator_kwargs"] == options


def test_pod_template_file_is_the_base_of_the_pod(tmp_path: Path) -> None:
    template = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "platform-template"},
        "spec": {
            "containers": [{"name": "base"}],
            "dnsPolicy": "ClusterFirstWithHostNet",
            "volumes": [{"name": "team-scratch", "emptyDir": {}}],
        },
    }
    path = tmp_path / "pod_template.yaml"
    path.write_text(yaml.safe_dump(template))
    pod = pod_manifest(compute(pod_template_file=str(path), shm_size="2Gi", gpu=1))
    assert pod["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"
    assert {"team-scratch", "dshm"} <= set(volumes_by_name(pod))
    assert container(pod)["image"] == IMAGE


def test_full_pod_spec_is_merged_under_our_settings() -> None:
    spec = k8s.V1Pod(spec=k8s.V1PodSpec(containers=[k8s.V1Container(name="base")], scheduler_name="volcano"))
    pod = pod_manifest(compute(full_pod_spec=spec, priority_class_name="batch"))
    assert pod["spec"]["schedulerName"] == "volcano"
    assert pod["spec"]["priorityClassName"] == "batch"


def test_training_pod_is_accepted_by_the_api_server(kubernetes_env: KubernetesEnv) -> None:
    """Every convenience together, created on the in-memory API server and read back as it stored it."""
    namespace = kubernetes_env.new_namespace()
    target = compute(
        namespace=namespace,
        gpu=1,
        gpu_type=A100,
        cpu="8",
        memory="64Gi",
        shm_size="16Gi",
        volumes=[CACHE],
        volume_mounts=[CACHE_MOUNT],
        security_context={"runAsUser": 1000, "fsGroup": 1000},
        priority_class_name="training-high",
        operator_kwargs={"termination_grace_period": 60},
    )
    body = pod_manifest(target)
    body["metadata"]["name"] = "train-gpu"
    kubernetes_env.api.create_namespaced_pod(namespace, body)
    stored = kubernetes_env.api.read_namespaced_pod("train-gpu", namespace)
    assert stored.spec.priority_class_name == "training-high"
    assert {v.name for v in stored.spec.volumes} == {"cache", "dshm"}
    assert stored.spec.volumes[-1].empty_dir.size_limit == "16Gi"
    assert stored.spec.affinity.node_affinity is not None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"operator_kwargs": {"termination_grace": 30}},
            r"'termination_grace' is not an argument of the "
            r"installed KubernetesPodOperator; did you mean 'termination_grace_period'",
            id="unknown-kwarg",
        ),
        pytest.param(
            {"operator_kwargs": {"volumes": []}}, r"'volumes' is set by KubernetesCompute\(volumes=", id="owned"
        ),
        pytest.param({"operator_kwargs": {"retries": 2}}, r"set it on the step's operator", id="base-operator"),
        pytest.param({"operator_kwargs": ["hostname"]}, "must be a mapping", id="kwargs-not-mapping"),
        pytest.param({"shm_size": "-1Gi"}, "shm_size '-1Gi' is negative", id="negative-shm"),
        pytest.param({"shm_size": -5}, "shm_size -5 is negative", id="negative-shm-bytes"),
        pytest.param({"shm_size": "0Gi"}, "shm_size '0Gi' is zero", id="zero-shm"),
        pytest.param({"shm_size": "8GB"}, "not a Kubernetes quantity", id="bad-shm"),
        pytest.param({"gpu_type": A100}, "requests no GPU", id="gpu-type-without-gpu"),
        pytest.param({"gpu": 1, "gpu_type": "A100 80GB"}, "not a valid label value", id="bad-gpu-type"),
        pytest.param(
            {"volume_mounts": [CACHE_MOUNT]},
            "mounts volume 'cache', which is not among the volumes",
            id="mount-without-volume",
        ),
        pytest.param(
            {"volumes": [CACHE], "volume_mounts": [{"name": "cache", "mountPath": "cache"}]},
            "must be an absolute path",
            id="relative-mount",
        ),
        pytest.param({"volumes": [CACHE, CACHE]}, "used twice", id="duplicate-volume"),
        pytest.param({"volumes": [{"name": "cache"}]}, "must have one source", id="volume-without-source"),
        pytest.param(
            {"volumes": [{"name": "cache", "persistentVolumeClaim": {}}]}, "claimName None", id="pvc-without-claim"
        ),
        pytest.param(
            {"volumes": [{"name": "k", "secret": {"secretName": "other"}}]},
            "Secret 'other', which is not declared",
            id="undeclared-secret-volume",
        ),
        pytest.param(
            {"volumes": [{"name": "dshm", "emptyDir": {}}], "shm_size": "1Gi"}, "taken by shm_size", id="shm-name-taken"
        ),
        pytest.param(
            {"volumes": [CACHE], "volume_mounts": [{"name": "cache", "mountPath": "/dev/shm"}], "shm_size": "1Gi"},
            "mounted at /dev/shm",
            id="shm-path-taken",
        ),
        pytest.param({"volumes": CACHE}, "must be a list of volumes", id="volumes-not-list"),
        pytest.param({"image_pull_policy": "always"}, "must be one of", id="pull-policy"),
        pytest.param({"priority_class_name": "High"}, "not a valid Kubernetes object name", id="priority-class"),
        pytest.param({"pod_template_file": "template.txt"}, "path of a pod manifest", id="template-file"),
        pytest.param({"startup_timeout": 60, "startup_timeout_seconds": 90}, "disagree", id="two-timeouts"),
        pytest.param({"startup_timeout_seconds": 0}, "startup_timeout_seconds 0 is not a positive", id="timeout"),
        pytest.param({"deferrable": "yes"}, "must be True, False or None", id="deferrable"),
    ],
)
def test_bad_pod_settings_fail_at_parse_time(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        compute(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"volumes": [{"name": "c", "persistentVolumeClaim": {"claim": "x", "claimName": "x"}}]},
            r"volume 'c' has fields Kubernetes does not know: \['persistentVolumeClaim.claim'\]",
            id="volume",
        ),
        pytest.param({"security_context": {"runAsUserId": 1}}, r"\['runAsUserId'\]", id="security-context"),
    ],
)
def test_misspelled_manifest_fields_are_refused_before_any_pod(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        pod_manifest(compute(**kwargs))


def test_the_gpu_example_trains_in_a_valid_pod() -> None:
    """The GPU example DAG parses, and its training pod (shm, cache claim, GPU type) passes the strict schema."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.airflow_utils import EXAMPLES

    bag = DagBag(str(EXAMPLES / "kubernetes" / "ml_pipeline_gpu.py"))
    assert bag.import_errors == {}
    train = bag.dags["mlpipe_example_pipeline_gpu"].get_task("train")
    pod = pod_manifest(train.compute_target)
    assert volumes_by_name(pod)["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}
    assert mounts_by_name(pod)["model-cache"]["mountPath"] == "/cache"
    assert required_terms(pod)[0]["matchExpressions"][0]["values"] == ["NVIDIA-A100-SXM4-80GB"]
    assert train.deferrable is True
