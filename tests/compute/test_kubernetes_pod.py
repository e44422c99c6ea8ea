"""KubernetesCompute -> the provider's real V1Pod, validated strictly; and every bad input refused before a pod."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.cncf.kubernetes.secret import Secret
from kubernetes.client import models as k8s

from airflow_mlpipe.compute import WORKLOAD_IDENTITY, Environment, KubernetesCompute, RunConfiguration, StepLaunch
from airflow_mlpipe.compute.kubernetes import (
    build_pod_operator,
    check_datastores_reachable_from_pod,
    datastore_secret_manifest,
)
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import config_from_fields
from tests.compute.helpers import LAUNCH, SECRET_KEY, container, env_of, local_config, pod_manifest, s3_config

IMAGE = "ghcr.io/example/train:1.4"
DS: dict[str, Any] = {"secrets": ["mlpipe-datastores"], "datastore_secrets": {"mlpipe_default": "mlpipe-datastores"}}


def compute(**kwargs: Any) -> KubernetesCompute:
    return KubernetesCompute(**{"namespace": "ml", "image": IMAGE, **DS, **kwargs})


def test_cpu_step_has_no_gpu_and_no_tolerations() -> None:
    pod = pod_manifest(compute(cpu="500m", memory="1Gi"))
    base = container(pod)
    assert base["image"] == IMAGE
    assert base["command"] == ["python"]
    assert base["args"] == list(LAUNCH.args)
    assert base["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    }
    assert pod["spec"].get("tolerations", []) == []
    assert pod["metadata"]["namespace"] == "ml"


def test_gpu_step_requests_and_limits_gpus_and_tolerates_the_gpu_taint() -> None:
    pod = pod_manifest(compute(gpu=2, cpu=4, memory="16Gi"))
    resources = container(pod)["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "2"
    assert resources["requests"]["nvidia.com/gpu"] == "2"
    assert resources["limits"]["cpu"] == "4"
    assert pod["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_other_gpu_resource_names_its_own_taint() -> None:
    pod = pod_manifest(compute(gpu=1, gpu_resource="amd.com/gpu"))
    assert container(pod)["resources"]["limits"] == {"amd.com/gpu": "1"}
    assert pod["spec"]["tolerations"] == [{"key": "amd.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_given_tolerations_replace_the_default_and_accept_client_objects() -> None:
    tolerations = [
        {"key": "sku", "operator": "Equal", "value": "a100", "effect": "NoSchedule"},
        k8s.V1Toleration(key="spot", operator="Exists", effect="NoExecute", toleration_seconds=60),
    ]
    pod = pod_manifest(compute(gpu=1, tolerations=tolerations))
    assert pod["spec"]["tolerations"] == [
        {"key": "sku", "operator": "Equal", "value": "a100", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60},
    ]
    assert pod_manifest(compute(gpu=1, tolerations=[]))["spec"].get("tolerations", []) == []


AFFINITY = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu-sku", "operator": "In", "values": ["a100"]}]}]
        }
    }
}


@pytest.mark.parametrize(
    "affinity",
    [
        pytest.param(AFFINITY, id="manifest-dict"),
        pytest.param(
            k8s.V1Affinity(
                node_affinity=k8s.V1NodeAffinity(
                    required_during_scheduling_ignored_during_execution=k8s.V1NodeSelector(
                        node_selector_terms=[
                            k8s.V1NodeSelectorTerm(
                                match_expressions=[
                                    k8s.V1NodeSelectorRequirement(key="gpu-sku", operator="In", values=["a100"])
                                ]
                            )
                        ]
                    )
                )
            ),
            id="client-object",
        ),
    ],
)
def test_node_selector_and_affinity(affinity: Any) -> None:
    pod = pod_manifest(compute(node_selector={"agentpool": "gpu", "kubernetes.io/os": "linux"}, affinity=affinity))
    assert pod["spec"]["nodeSelector"] == {"agentpool": "gpu", "kubernetes.io/os": "linux"}
    assert pod["spec"]["affinity"] == AFFINITY


def test_service_account_and_image_pull_secrets() -> None:
    pod = pod_manifest(compute(service_account="trainer", image_pull_secrets="regcred,mirror"))
    assert pod["spec"]["serviceAccountName"] == "trainer"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}, {"name": "mirror"}]
    assert pod_manifest(compute(image_pull_secrets=["regcred"]))["spec"]["imagePullSecrets"] == [{"name": "regcred"}]


def test_datastore_secret_per_datastore_is_a_secret_key_ref() -> None:
    env = env_of(pod_manifest(compute()))
    assert env["AIRFLOW_CONN_MLPIPE_DEFAULT"] == {
        "secretKeyRef": {"name": "mlpipe-datastores", "key": "AIRFLOW_CONN_MLPIPE_DEFAULT"}
    }


def test_datastore_secret_with_its_own_key() -> None:
    pod = pod_manifest(
        compute(secrets=["store-conn"], datastore_secrets={"mlpipe_default": ("store-conn", "connection")})
    )
    assert env_of(pod)["AIRFLOW_CONN_MLPIPE_DEFAULT"] == {"secretKeyRef": {"name": "store-conn", "key": "connection"}}


def test_one_secret_for_all_datastores_is_env_from() -> None:
    extra = s3_config("features")
    launch = StepLaunch(step_name="train", args=LAUNCH.args, datastores=("mlpipe_default", "features"))
    pod = pod_manifest(
        compute(datastore_secrets="mlpipe-datastores"),
        launch=launch,
        datastores={"mlpipe_default": s3_config(), "features": extra},
    )
    assert container(pod)["envFrom"] == [{"secretRef": {"name": "mlpipe-datastores"}}]
    assert not [name for name in env_of(pod) if name.startswith("AIRFLOW_CONN_")]


def test_provider_secret_objects_are_declared_and_attached() -> None:
    secrets = [
        "mlpipe-datastores",
        Secret("env", "WANDB_API_KEY", "wandb", "api-key"),
        Secret("volume", "/var/run/certs", "ca-bundle"),
    ]
    pod = pod_manifest(compute(secrets=secrets))
    assert env_of(pod)["WANDB_API_KEY"] == {"secretKeyRef": {"name": "wandb", "key": "api-key"}}
    (volume,) = [v for v in pod["spec"]["volumes"] if "secret" in v]
    assert volume["secret"] == {"secretName": "ca-bundle"}
    assert {"mountPath": "/var/run/certs", "name": volume["name"], "readOnly": True} in container(pod)["volumeMounts"]


def test_workload_identity_passes_a_credential_free_connection() -> None:
    keyless = config_from_fields(
        "mlpipe_default", conn_type="mlpipe_datastore", extra={"url": "az://data/steps", "account_name": "acct"}
    )
    target = KubernetesCompute(
        image=IMAGE,
        service_account="mlpipe-wi",
        labels={"azure.workload.identity/use": "true"},
        datastore_secrets={"mlpipe_default": WORKLOAD_IDENTITY},
    )
    pod = pod_manifest(target, datastores={"mlpipe_default": keyless})
    conn = env_of(pod)["AIRFLOW_CONN_MLPIPE_DEFAULT"]
    assert '"url": "az://data/steps"' in conn and "account_key" not in conn
    assert pod["spec"]["serviceAccountName"] == "mlpipe-wi"
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"


def test_labels_annotations_and_our_own_labels() -> None:
    pod = pod_manifest(compute(labels={"team": "vision"}, annotations={"owner": "Vision team <v@example.com>"}))
    labels = pod["metadata"]["labels"]
    assert labels["team"] == "vision"
    assert labels["app.kubernetes.io/managed-by"] == "airflow-mlpipe"
    assert labels["airflow-mlpipe/step"] == "train"
    assert labels["airflow-mlpipe/task"] == "train"
    assert labels["airflow-mlpipe/dag"] == "ml_pipeline"
    assert pod["metadata"]["annotations"] == {"owner": "Vision team <v@example.com>"}


def test_long_or_odd_identifiers_become_valid_label_values() -> None:
    launch = StepLaunch(
        step_name="Train model / fold 3 " + "x" * 80, args=("-c", "pass"), datastores=("mlpipe_default",)
    )
    labels = pod_manifest(compute(), launch=launch)["metadata"]["labels"]
    assert len(labels["airflow-mlpipe/step"]) <= 63 and labels["airflow-mlpipe/step"].startswith("Train-model-fold-3")


def test_environment_sets_image_interpreter_and_env_vars() -> None:
    env = Environment(
        name="torch",
        image="pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
        python="python3",
        env_vars={"TORCH_HOME": "/cache"},
    )
    pod = pod_manifest(compute(env={"TORCH_HOME": "/tmp", "TEAM": "vision"}), environment=env)
    base = container(pod)
    assert base["image"] == "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime"
    assert base["command"] == ["python3"]
    assert {k: v for k, v in env_of(pod).items() if isinstance(v, str)} == {
        "TORCH_HOME": "/cache",
        "TEAM": "vision",
        "MLPIPE_STEP": "train",
    }


def test_compute_settings_reach_the_operator() -> None:
    target = compute(deferrable=True, startup_timeout=900, kubernetes_conn_id="aks", in_cluster=False)
    operator = build_pod_operator(target, task_id="train", launch=LAUNCH, datastores={"mlpipe_default": s3_config()})
    assert operator.deferrable is True
    assert operator.startup_timeout_seconds == 900
    assert operator.kubernetes_conn_id == "aks"
    assert operator.in_cluster is False
    assert operator.do_xcom_push is False


def test_describe_is_json_and_names_secrets_only() -> None:
    import json

    target = compute(secrets=["mlpipe-datastores", Secret("env", "TOKEN", "api", "token")], gpu=1)
    text = json.dumps(target.describe())
    assert '"gpu": 1' in text and "mlpipe-datastores" in text
    assert hash(target) == hash(compute(secrets=["mlpipe-datastores", Secret("env", "TOKEN", "api", "token")], gpu=1))
    assert RunConfiguration(target=target).to_dict()["target"]["kind"] == "kubernetes"


def test_datastore_secret_manifest_holds_the_connection() -> None:
    import kubernetes_validate
    from kubernetes_validate.utils import latest_version

    manifest = datastore_secret_manifest("mlpipe-datastores", [s3_config()], namespace="ml")
    kubernetes_validate.validate(manifest, latest_version(), strict=True)
    value = manifest["stringData"]["AIRFLOW_CONN_MLPIPE_DEFAULT"]
    assert SECRET_KEY in value and '"conn_type": "mlpipe_datastore"' in value


def test_module_import_stays_light() -> None:
    code = (
        "import sys, airflow_mlpipe.compute.kubernetes, airflow_mlpipe.compute.docker;"
        "heavy = [m for m in ('kubernetes', 'docker', 'airflow.providers.cncf') if m in sys.modules];"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- bad input: refused in the DAG file, when the compute target is built -----------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"gpu": -1}, "gpu count -1 is not a non-negative integer", id="gpu-negative"),
        pytest.param({"gpu": 1.5}, "gpu count 1.5 is not a non-negative integer", id="gpu-fraction"),
        pytest.param({"gpu": "2"}, "gpu count '2' is not a non-negative integer", id="gpu-string"),
        pytest.param({"gpu": True}, "gpu count True is not", id="gpu-bool"),
        pytest.param({"cpu": "2 cores"}, r"cpu '2 cores' is not a Kubernetes quantity.*Ki, Mi, Gi", id="cpu-units"),
        pytest.param({"memory": "4GB"}, r"memory '4GB' is not a Kubernetes quantity.*'4Gi'", id="memory-units"),
        pytest.param({"memory": "-1Gi"}, "memory '-1Gi' is not a Kubernetes quantity", id="memory-negative"),
        pytest.param({"image": "Ubuntu:Latest"}, "must be lowercase", id="image-uppercase"),
        pytest.param({"image": "python:3.11 slim"}, "not a valid image reference", id="image-space"),
        pytest.param({"image": "ghcr.io/org/img:"}, "not a valid image reference", id="image-empty-tag"),
        pytest.param({"image": ""}, "not a non-empty string", id="image-empty"),
        pytest.param({"namespace": "ML_Team"}, "namespace 'ML_Team' is not a valid name", id="namespace"),
        pytest.param(
            {"gpu_resource": "gpu"}, "gpu_resource 'gpu' is not a valid key: write domain/name", id="gpu-resource"
        ),
        pytest.param({"tolerations": [{"keyy": "a"}]}, r"unknown fields \['keyy'\]", id="toleration-field"),
        pytest.param(
            {"tolerations": [{"key": "a", "operator": "Exists", "value": "b"}]},
            "takes no value",
            id="toleration-exists-value",
        ),
        pytest.param({"tolerations": [{"key": "a", "effect": "NoRun"}]}, "effect 'NoRun'", id="toleration-effect"),
        pytest.param(
            {"tolerations": [{"key": "a", "effect": "NoSchedule", "tolerationSeconds": 5}]},
            "only to effect 'NoExecute'",
            id="toleration-seconds",
        ),
        pytest.param({"tolerations": {"key": "a"}}, "must be a list of tolerations", id="tolerations-not-list"),
        pytest.param({"affinity": {"nodeAfinity": {}}}, r"unknown fields \['nodeAfinity'\]", id="affinity-typo"),
        pytest.param({"node_selector": {"pool": "gpu nodes"}}, "not a valid label value", id="node-selector-value"),
        pytest.param({"labels": {"bad key!": "x"}}, "not a valid key", id="label-key"),
        pytest.param(
            {"service_account": "Trainer"},
            "service_account 'Trainer' is not a valid Kubernetes object name",
            id="service-account",
        ),
        pytest.param(
            {"secrets": None}, "refers to Secret 'mlpipe-datastores', which is not declared", id="secret-undeclared"
        ),
        pytest.param(
            {"datastore_secrets": "all-stores"},
            "refers to Secret 'all-stores', which is not declared",
            id="secret-undeclared-env-from",
        ),
        pytest.param(
            {"datastore_secrets": {"mlpipe_default": WORKLOAD_IDENTITY}},
            "needs the service account",
            id="workload-identity-no-sa",
        ),
        pytest.param(
            {"datastore_secrets": {"mlpipe_default": 42}},
            "must be a Secret name, a .secret, key. pair",
            id="datastore-secret-type",
        ),
        pytest.param(
            {"env": {"AIRFLOW_CONN_MLPIPE_DEFAULT": "{}"}},
            "is a connection, and connections carry credentials",
            id="env-connection",
        ),
        pytest.param({"env": {"N": 1}}, r"env\['N'\] must be a string", id="env-value"),
        pytest.param({"startup_timeout": 0}, "startup_timeout 0 is not a positive integer", id="startup-timeout"),
    ],
)
def test_bad_compute_settings_fail_at_parse_time(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        compute(**kwargs)


# -- bad input: refused by build_pod_operator, before any pod exists ----------------------------------------------
def _build(target: KubernetesCompute, **kwargs: Any) -> None:
    kwargs.setdefault("launch", LAUNCH)
    kwargs.setdefault("datastores", {"mlpipe_default": s3_config()})
    build_pod_operator(target, task_id="train", **kwargs)


@pytest.mark.parametrize(
    ("target", "kwargs", "match"),
    [
        pytest.param(
            compute(),
            {"datastores": {"mlpipe_default": local_config(Path("/srv/mlpipe"))}},
            r"is a local folder \(file:///srv/mlpipe\), which a pod cannot reach.*AIRFLOW_CONN_MLPIPE_DEFAULT",
            id="local-datastore",
        ),
        pytest.param(
            compute(),
            {
                "datastores": {
                    "mlpipe_default": config_from_fields("mlpipe_default", conn_type=None, extra={"url": "memory://x"})
                }
            },
            "in-memory store",
            id="memory-datastore",
        ),
        pytest.param(
            compute(secrets=["other"], datastore_secrets={"features": "other"}),
            {},
            r"datastore 'mlpipe_default' has no entry in datastore_secrets.*kubectl create secret generic",
            id="datastore-without-secret",
        ),
        pytest.param(compute(), {"datastores": {}}, "no settings were given for them", id="datastore-settings-missing"),
        pytest.param(
            KubernetesCompute(
                service_account="wi", datastore_secrets={"mlpipe_default": WORKLOAD_IDENTITY}, image=IMAGE
            ),
            {},
            r"uses WORKLOAD_IDENTITY, but its connection holds credentials \(key, secret\)",
            id="workload-identity-with-credentials",
        ),
        pytest.param(KubernetesCompute(**DS), {}, "no image to run the step in", id="no-image"),
        pytest.param(
            compute(),
            {"environment": Environment(pip_packages=["torch==2.5.1"])},
            "asks for pip packages .'torch==2.5.1'., but a kubernetes step runs its image as it is",
            id="pip-packages-in-pod",
        ),
        pytest.param(
            compute(),
            {"launch": StepLaunch(step_name="train", args=("--key", SECRET_KEY), datastores=("mlpipe_default",))},
            "a credential of datastore 'mlpipe_default' appears in the container's command",
            id="credential-in-args",
        ),
        pytest.param(
            compute(),
            {
                "launch": StepLaunch(
                    step_name="t", args=(), env={"AIRFLOW_CONN_X": "{}"}, datastores=("mlpipe_default",)
                )
            },
            "'AIRFLOW_CONN_X' is a connection",
            id="connection-in-launch-env",
        ),
        pytest.param(
            compute(affinity={"nodeAffinity": {"requiredDuringScheduling": {}}}),
            {},
            r"fields Kubernetes does not know: \['nodeAffinity.requiredDuringScheduling'\]",
            id="affinity-nested-typo",
        ),
    ],
)
def test_bad_step_inputs_fail_before_any_pod(target: KubernetesCompute, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match) as info:
        _build(target, **kwargs)
    assert SECRET_KEY not in str(info.value)


def test_parse_time_reachability_check(tmp_path: Path) -> None:
    target = compute()
    check_datastores_reachable_from_pod(target, {"mlpipe_default": s3_config()})
    check_datastores_reachable_from_pod(target, [s3_config()])
    with pytest.raises(ConfigError, match="a pod cannot reach"):
        check_datastores_reachable_from_pod(target, [local_config(tmp_path)])
    with pytest.raises(ConfigError, match="no entry in datastore_secrets"):
        check_datastores_reachable_from_pod(target, [s3_config("features")])
