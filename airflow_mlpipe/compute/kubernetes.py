"""``KubernetesCompute``: a step runs as a pod (GPU nodes included) through the provider's KubernetesPodOperator.

We only configure the provider's ``KubernetesPodOperator`` (pod creation, log streaming, deferrable waiting and
cleanup are its own); ``build_pod_operator`` turns a compute target, a step launch and the step's datastores into
one. Nothing here imports ``kubernetes`` or the provider at module level, so DAG files parse fast.

Datastore credentials reach a pod only through Kubernetes Secrets or the pod's workload identity, never as plain
values in the pod spec. Each datastore the step uses must be mapped, in ``datastore_secrets``, in one of three
ways:

* one Secret for all: ``datastore_secrets="mlpipe-datastores"`` adds the Secret with ``envFrom``; it must hold a
  key ``AIRFLOW_CONN_<NAME>`` (the connection's JSON) for every datastore the steps use;
* a Secret per datastore: ``{"mlpipe_default": "mlpipe-datastores"}`` reads key ``AIRFLOW_CONN_MLPIPE_DEFAULT``
  through ``secretKeyRef``; ``{"mlpipe_default": ("my-secret", "connection")}`` names another key;
* workload identity: ``{"mlpipe_default": WORKLOAD_IDENTITY}`` passes the connection as a plain variable, which
  is allowed only when it holds no credential (no account key, SAS token, secret key...): the pod's service
  account (``service_account=``, required) carries the cloud identity (Azure Workload Identity, GKE Workload
  Identity, EKS IRSA). Add the label your platform needs, e.g. ``labels={"azure.workload.identity/use": "true"}``.

Every Secret named in ``datastore_secrets`` must also be declared in ``secrets=[...]``, the one list of Secrets
a step's pods may read. ``datastore_secret_manifest`` writes the Secret for a set of datastores. Other secrets (an
API token) reach the pod as the provider's ``Secret`` objects in ``secrets``; a plain variable named as a
credential (``HF_TOKEN``, in ``env``, the environment's ``env_vars``, ``full_pod_spec`` or ``operator_kwargs``) is
refused, as is any datastore credential in a plain part of the pod.

What ML steps use most has a name here (``gpu``, ``gpu_type``, ``cpu``, ``memory``, ``shm_size``, ``volumes``...);
every other ``KubernetesPodOperator`` argument goes in ``operator_kwargs``, checked against the installed
provider's signature when the compute target is created.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.compute.base import ComputeTarget, StepLaunch
from airflow_mlpipe.compute.containers import (
    ENV_PART,
    MANAGED_BY,
    SECRET_ENV_FIXES,
    assert_no_credentials,
    container_step,
    is_in_process,
    unreachable_message,
)
from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.compute.k8s_pod import (
    GPU_PRODUCT_LABEL,
    check_gpu_type,
    check_image_pull_policy,
    check_pod_template_file,
    check_shm_free,
    check_shm_size,
    check_volume_mounts,
    check_volumes,
    manifest_dict,
    shm_volume,
    to_model,
    with_gpu_type,
)
from airflow_mlpipe.compute.k8s_spec import (
    WORKLOAD_IDENTITY,
    DatastoreAccess,
    DatastoreSecretValue,
    check_affinity,
    check_datastore_secrets,
    check_secrets,
    check_tolerations,
    gpu_toleration,
    secret_name_of,
)
from airflow_mlpipe.compute.passthrough import check_operator_kwargs, describe_value
from airflow_mlpipe.compute.validation import (
    check_annotations,
    check_dns_label,
    check_dns_subdomain,
    check_env,
    check_image,
    check_label_key,
    check_labels,
    check_non_negative_int,
    check_positive_int,
    check_quantity,
    description_hash,
)
from airflow_mlpipe.core.checks import check_list
from airflow_mlpipe.core.secrets import mask_in_task_log, scrubbed_repr
from airflow_mlpipe.datasets.seal import ATTEMPT_KEY_ENV
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import DatastoreConfig, config_to_env_value, env_var_name

if TYPE_CHECKING:
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator

__all__ = [
    "WORKLOAD_IDENTITY",
    "DatastoreAccess",
    "KubernetesCompute",
    "build_pod_operator",
    "check_datastores_reachable_from_pod",
    "datastore_secret_manifest",
]


@scrubbed_repr
@dataclass(frozen=True)
class KubernetesCompute(ComputeTarget):
    """Run steps as Kubernetes pods (Azure ML's AmlCompute cluster, here any cluster with GPU nodes).

    :param namespace: the pods' namespace.
    :param image: the default image (an ``Environment(image=...)`` wins); it must contain Python and
        airflow-mlpipe, e.g. an image built from this project's ``docker/Dockerfile``. None: each step's
        ``Environment(image=...)`` must give one (checked when the step is defined).
    :param gpu: GPUs per pod: requested and limited as ``gpu_resource``; GPU pods also tolerate the
        ``<gpu_resource>:NoSchedule`` taint of GPU node pools unless ``tolerations`` is given.
    :param gpu_resource: the extended resource name: ``nvidia.com/gpu``, ``amd.com/gpu``...
    :param cpu: CPU request and limit, a Kubernetes quantity (``"500m"``, ``"2"``).
    :param memory: memory request and limit (``"512Mi"``, ``"4Gi"``).
    :param node_selector: node labels the pod must match, e.g. ``{"agentpool": "gpu"}``.
    :param tolerations: tolerations as in a pod manifest (dicts) or ``V1Toleration``; ``[]`` for none.
    :param affinity: affinity as in a pod manifest (``{"nodeAffinity": {...}}``) or ``V1Affinity``.
    :param service_account: the pods' service account (needed for workload identity).
    :param image_pull_secrets: names of docker-registry Secrets for private images.
    :param secrets: the Kubernetes Secrets the pods may read: names, or the provider's ``Secret`` objects
        (which are also attached to the pod as the provider does: env var, ``envFrom`` or volume).
    :param env: plain environment variables (no credentials; ``AIRFLOW_CONN_*`` is refused).
    :param kubernetes_conn_id: the Airflow Kubernetes connection; None uses the worker's kubeconfig
        (``KUBECONFIG``, ``~/.kube/config``) or, with ``in_cluster=True``, the in-cluster service account.
    :param in_cluster: use the in-cluster configuration.
    :param labels: extra pod labels; ``annotations``: extra pod annotations.
    :param startup_timeout_seconds: seconds a pod may take to be scheduled and start (GPU nodes may need to scale
        up; default 600). ``startup_timeout`` is its older name.
    :param deferrable: wait for the pod in the triggerer instead of holding a worker slot; None (default) follows
        the step operator's ``deferrable`` (which follows Airflow's ``[operators] default_deferrable``).
    :param datastore_secrets: how the pods get each datastore's connection; see the module's documentation.
    :param gpu_type: GPU models the pod may run on, one or a list (any of them): a required node affinity on
        ``gpu_type_label``, e.g. ``"NVIDIA-A100-SXM4-80GB"``; needs ``gpu`` > 0.
    :param gpu_type_label: the node label that names the GPU model (NVIDIA GPU feature discovery's
        ``nvidia.com/gpu.product`` by default; on GKE ``cloud.google.com/gke-accelerator``).
    :param shm_size: size of ``/dev/shm``, a memory-backed emptyDir (``"8Gi"``, or bytes): PyTorch's data loader
        workers die with "bus error" on the container runtime's 64 MB. It counts against ``memory``.
    :param volumes: pod volumes as in a manifest (``{"name": "cache", "persistentVolumeClaim": {"claimName":
        "hf-cache"}}``, ``configMap``, ``secret``...) or ``V1Volume``; a Secret volume's Secret must be in ``secrets``.
    :param volume_mounts: mounts of those volumes in the step's container (``{"name": "cache", "mountPath":
        "/cache", "readOnly": True}``) or ``V1VolumeMount``.
    :param security_context: the pod's security context as in a manifest (``{"runAsUser": 1000, "fsGroup":
        1000}``) or ``V1PodSecurityContext``.
    :param priority_class_name: the pods' PriorityClass (e.g. to preempt batch work for training).
    :param pod_template_file: a pod manifest the platform team maintains; our settings are merged on top of it.
    :param full_pod_spec: a ``V1Pod`` (or its manifest dict) to start from, merged as the provider does.
    :param image_pull_policy: ``"Always"``, ``"IfNotPresent"`` or ``"Never"``.
    :param operator_kwargs: any other ``KubernetesPodOperator`` argument (``termination_grace_period``,
        ``active_deadline_seconds``, ``container_security_context``, ``init_containers``...), checked against the
        installed provider's signature when this object is created.
    """

    namespace: str = "default"
    image: str | None = None
    gpu: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    cpu: str | float | None = None
    memory: str | int | None = None
    node_selector: Mapping[str, str] | None = None
    tolerations: Sequence[Mapping[str, Any] | Any] | None = None
    affinity: Mapping[str, Any] | Any | None = None
    service_account: str | None = None
    image_pull_secrets: Sequence[str] | str | None = None
    secrets: Sequence[str | Any] | None = None
    env: Mapping[str, str] | None = None
    kubernetes_conn_id: str | None = None
    in_cluster: bool | None = None
    labels: Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    startup_timeout: int | None = None
    deferrable: bool | None = None
    datastore_secrets: Mapping[str, DatastoreSecretValue] | str | None = None
    gpu_type: str | Sequence[str] | None = None
    gpu_type_label: str = GPU_PRODUCT_LABEL
    shm_size: str | int | None = None
    volumes: Sequence[Mapping[str, Any] | Any] = ()
    volume_mounts: Sequence[Mapping[str, Any] | Any] = ()
    security_context: Mapping[str, Any] | Any | None = None
    priority_class_name: str | None = None
    pod_template_file: str | None = None
    full_pod_spec: Mapping[str, Any] | Any | None = None
    image_pull_policy: str | None = None
    startup_timeout_seconds: int | None = None
    operator_kwargs: Mapping[str, Any] | None = None

    kind = "kubernetes"

    def __post_init__(self) -> None:
        what = "KubernetesCompute"
        put = self._put
        put("namespace", check_dns_label(self.namespace, what=f"{what} namespace"))
        if self.image is not None:
            check_image(self.image, what=what)
        put("gpu", check_non_negative_int(self.gpu, what=f"{what} gpu count"))
        put("gpu_resource", check_label_key(self.gpu_resource, what=f"{what} gpu_resource", require_prefix=True))
        put("cpu", check_quantity(self.cpu, what=f"{what} cpu"))
        put("memory", check_quantity(self.memory, what=f"{what} memory"))
        put("node_selector", check_labels(self.node_selector, what=f"{what} node_selector"))
        put("tolerations", check_tolerations(self.tolerations, what=f"{what} tolerations"))
        put("affinity", check_affinity(self.affinity, what=f"{what} affinity"))
        if self.service_account is not None:
            check_dns_subdomain(self.service_account, what=f"{what} service_account")
        pull = self.image_pull_secrets
        names = (
            pull.split(",")
            if isinstance(pull, str)
            else check_list(what, "image_pull_secrets", pull, example="['regcred']")
        )
        put(
            "image_pull_secrets",
            tuple(
                check_dns_subdomain(n.strip() if isinstance(n, str) else n, what=f"{what} image_pull_secrets entry")
                for n in names
            ),
        )
        put("secrets", check_secrets(self.secrets, what=f"{what} secrets"))
        put("env", check_env(self.env, what=f"{what} env"))
        if self.kubernetes_conn_id is not None and (
            not isinstance(self.kubernetes_conn_id, str) or not self.kubernetes_conn_id
        ):
            raise ConfigError(f"{what} kubernetes_conn_id {self.kubernetes_conn_id!r} must be a connection id or None")
        if self.in_cluster is not None and not isinstance(self.in_cluster, bool):
            raise ConfigError(f"{what} in_cluster {self.in_cluster!r} must be True, False or None")
        put("labels", check_labels(self.labels, what=f"{what} labels"))
        put("annotations", check_annotations(self.annotations, what=f"{what} annotations"))
        put("startup_timeout_seconds", self._startup_timeout(what))
        put("startup_timeout", self.startup_timeout_seconds)
        if self.deferrable is not None and not isinstance(self.deferrable, bool):
            raise ConfigError(f"{what} deferrable {self.deferrable!r} must be True, False or None")
        put(
            "datastore_secrets",
            check_datastore_secrets(
                self.datastore_secrets,
                declared=self.declared_secrets,
                service_account=self.service_account,
                what=f"{what} datastore_secrets",
            ),
        )
        self._check_pod_settings(what)

    def _check_pod_settings(self, what: str) -> None:
        put = self._put
        put("gpu_type", check_gpu_type(self.gpu_type, gpu=self.gpu, what=f"{what} gpu_type"))
        check_label_key(self.gpu_type_label, what=f"{what} gpu_type_label")
        put("shm_size", check_shm_size(self.shm_size, what=f"{what} shm_size"))
        volumes = check_volumes(self.volumes, declared_secrets=self.declared_secrets, what=f"{what} volumes")
        mounts = check_volume_mounts(self.volume_mounts, volumes=volumes, what=f"{what} volume_mounts")
        if self.shm_size is not None:
            check_shm_free(volumes, mounts, what=f"{what} shm_size")
        put("volumes", volumes)
        put("volume_mounts", mounts)
        if self.security_context is not None:
            put(
                "security_context",
                manifest_dict(self.security_context, what=f"{what} security_context", model="V1PodSecurityContext"),
            )
        if self.priority_class_name is not None:
            check_dns_subdomain(self.priority_class_name, what=f"{what} priority_class_name")
        check_pod_template_file(self.pod_template_file, what=f"{what} pod_template_file")
        if self.full_pod_spec is not None:
            put("full_pod_spec", manifest_dict(self.full_pod_spec, what=f"{what} full_pod_spec", model="V1Pod"))
        check_image_pull_policy(self.image_pull_policy, what=f"{what} image_pull_policy")
        put(
            "operator_kwargs",
            check_operator_kwargs(self.operator_kwargs, operator="KubernetesPodOperator", owned=_OWNED, what=what),
        )
        assert_no_credentials((), self._plain_parts(), what=what, secret_fix=SECRET_ENV_FIXES["kubernetes"])

    def _plain_parts(self) -> dict[str, Any]:
        """The parts of the pod this target sets that Kubernetes stores and shows as they are."""
        return {
            ENV_PART: dict(self.env or {}),
            "annotations": dict(self.annotations or {}),
            "full_pod_spec": self.full_pod_spec,
            "operator_kwargs": describe_value(self.operator_kwargs or {}),
        }

    def _startup_timeout(self, what: str) -> int:
        old, new = self.startup_timeout, self.startup_timeout_seconds
        if old is not None and new is not None and old != new:
            raise ConfigError(
                f"{what}: startup_timeout {old!r} and startup_timeout_seconds {new!r} disagree; "
                "set startup_timeout_seconds only (startup_timeout is its older name)"
            )
        value = new if new is not None else old if old is not None else DEFAULT_STARTUP_TIMEOUT
        name = "startup_timeout_seconds" if new is not None else "startup_timeout"
        return check_positive_int(value, what=f"{what} {name}")

    def _put(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)

    __hash__ = description_hash

    @property
    def declared_secrets(self) -> frozenset[str]:
        return frozenset(secret_name_of(s) for s in self.secrets or ())

    def describe(self) -> dict[str, Any]:
        """Everything about the pods except credentials (Secrets appear by name only)."""
        return {
            "kind": self.kind,
            "namespace": self.namespace,
            "image": self.image,
            "gpu": self.gpu,
            "gpu_resource": self.gpu_resource,
            "cpu": self.cpu,
            "memory": self.memory,
            "node_selector": dict(self.node_selector or {}),
            "tolerations": [dict(t) for t in self.tolerations] if self.tolerations is not None else None,
            "affinity": self.affinity,
            "service_account": self.service_account,
            "image_pull_secrets": list(self.image_pull_secrets or ()),
            "secrets": [_describe_secret(s) for s in self.secrets or ()],
            "env": dict(self.env or {}),
            "kubernetes_conn_id": self.kubernetes_conn_id,
            "in_cluster": self.in_cluster,
            "labels": dict(self.labels or {}),
            "annotations": dict(self.annotations or {}),
            "startup_timeout_seconds": self.startup_timeout_seconds,
            "deferrable": self.deferrable,
            "datastore_secrets": _describe_datastore_secrets(self.datastore_secrets),
            "gpu_type": list(self.gpu_type or ()),
            "gpu_type_label": self.gpu_type_label,
            "shm_size": self.shm_size,
            "volumes": list(self.volumes),
            "volume_mounts": list(self.volume_mounts),
            "security_context": self.security_context,
            "priority_class_name": self.priority_class_name,
            "pod_template_file": self.pod_template_file,
            "full_pod_spec": self.full_pod_spec,
            "image_pull_policy": self.image_pull_policy,
            "operator_kwargs": describe_value(self.operator_kwargs or {}),
        }

    def datastore_access(self, datastore: str) -> tuple[str, str] | DatastoreAccess | str | None:
        """How pods get ``datastore``'s connection: (secret, key), WORKLOAD_IDENTITY, the one Secret for all
        (its name), or None when it is not mapped."""
        mapping = self.datastore_secrets
        if mapping is None or isinstance(mapping, str):
            return mapping
        return mapping.get(datastore)


def _describe_secret(item: Any) -> dict[str, Any] | str:
    if isinstance(item, str):
        return item
    return {
        "secret": item.secret,
        "deploy_type": item.deploy_type,
        "deploy_target": item.deploy_target,
        "key": item.key,
    }


def _describe_datastore_secrets(value: object) -> Any:
    if value is None or isinstance(value, str):
        return value
    assert isinstance(value, Mapping)
    return {
        name: target.value if isinstance(target, DatastoreAccess) else {"secret": target[0], "key": target[1]}
        for name, target in sorted(value.items())
    }


DEFAULT_STARTUP_TIMEOUT = 600
# KubernetesPodOperator arguments the compute target sets, and where to set them instead.
_OWNED = {
    "task_id": "the step operator (PythonScriptOperator(task_id=...))",
    "deferrable": "the step operator (PythonScriptOperator(deferrable=...)) or KubernetesCompute(deferrable=...)",
    "cmds": "the step (its command is the step runner)",
    "arguments": "the step (PythonScriptOperator(arguments=...))",
    "image": "KubernetesCompute(image=...) or Environment(image=...)",
    "env_vars": "KubernetesCompute(env=...) or Environment(env_vars=...)",
    "container_resources": "KubernetesCompute(cpu=..., memory=..., gpu=...)",
    "service_account_name": "KubernetesCompute(service_account=...)",
    "startup_timeout_seconds": "KubernetesCompute(startup_timeout_seconds=...)",
    **{
        name: f"KubernetesCompute({name}=...)"
        for name in (
            "namespace",
            "secrets",
            "labels",
            "annotations",
            "node_selector",
            "tolerations",
            "affinity",
            "image_pull_secrets",
            "kubernetes_conn_id",
            "in_cluster",
            "volumes",
            "volume_mounts",
            "security_context",
            "priority_class_name",
            "pod_template_file",
            "full_pod_spec",
            "image_pull_policy",
        )
    },
}


def check_datastores_reachable_from_pod(
    compute: KubernetesCompute, datastore_configs: Mapping[str, DatastoreConfig] | Iterable[DatastoreConfig]
) -> None:
    """Raise ``ConfigError`` unless a pod of ``compute`` can reach every datastore and get its credentials.

    Call it at parse time with the step's datastores; ``build_pod_operator`` calls it again before any pod
    is created. Local (``file://``) and in-memory datastores are refused: a pod runs on another machine.
    """
    configs = datastore_configs.values() if isinstance(datastore_configs, Mapping) else datastore_configs
    for config in configs:
        if is_in_process(config):
            raise ConfigError(
                "KubernetesCompute: "
                + unreachable_message(config, where="a pod", fix="point the datastore at storage the cluster can reach")
            )
        access = compute.datastore_access(config.name)
        if access is None:
            raise ConfigError(_unmapped_message(compute, config))
        if access is WORKLOAD_IDENTITY and config.secret_values:
            secret_options = sorted(k for k, v in config.public_options().items() if v == "***")
            raise ConfigError(
                f"KubernetesCompute: datastore {config.name!r} uses WORKLOAD_IDENTITY, but its connection holds "
                f"credentials ({', '.join(secret_options)}), which would be written into the pod spec: remove them "
                "from the connection (the pod's service account provides the identity), or map the datastore to a "
                "Secret instead"
            )


def _unmapped_message(compute: KubernetesCompute, config: DatastoreConfig) -> str:
    key = env_var_name(config.name)
    return (
        f"KubernetesCompute: datastore {config.name!r} has no entry in datastore_secrets, and a pod gets datastore "
        "credentials only from a Kubernetes Secret (or workload identity). Create a Secret that holds the "
        f"connection under key {key}, e.g. kubectl create secret generic mlpipe-datastores -n {compute.namespace} "
        f"--from-literal={key}='<the connection JSON>' (or apply datastore_secret_manifest(...)), then set "
        f"KubernetesCompute(secrets=['mlpipe-datastores'], datastore_secrets={{{config.name!r}: 'mlpipe-datastores'}})"
    )


def build_pod_operator(
    compute: KubernetesCompute,
    *,
    task_id: str,
    launch: StepLaunch,
    datastores: Mapping[str, DatastoreConfig],
    environment: Environment | None = None,
    dag_id: str | None = None,
    deferrable: bool = False,
    **operator_kwargs: Any,
) -> KubernetesPodOperator:
    """A ``KubernetesPodOperator`` (configured, not run) that runs ``launch`` in a pod of ``compute``.

    :param task_id: the operator's task id (the pod name is derived from it).
    :param launch: the step runner's arguments, plain environment and the datastores it needs.
    :param datastores: settings of (at least) every datastore in ``launch.datastores``; their credentials go
        only into Secret references, never into the pod spec.
    :param environment: the step's environment: its image and interpreter win over the compute target's.
    :param dag_id: adds the ``airflow-mlpipe/dag`` label.
    :param deferrable: the step operator's choice, used unless ``compute.deferrable`` is set.
    :param operator_kwargs: further ``KubernetesPodOperator`` arguments (``get_logs``, ``config_file``,
        ``on_finish_action``, ``execution_timeout``...); they override ours and ``compute.operator_kwargs``.
    :raises ConfigError: before any pod exists, for every problem found in the inputs.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    step = container_step(
        compute,
        task_id=task_id,
        launch=launch,
        datastores=datastores,
        environment=environment,
        dag_id=dag_id,
        check_reachable=lambda configs: check_datastores_reachable_from_pod(compute, configs),
    )
    env = dict(step.env)
    # Plain names only declare a Secret; the provider's Secret objects are attached as the provider does.
    secrets = [s for s in compute.secrets or () if not isinstance(s, str)]
    for config in step.datastores:
        access = compute.datastore_access(config.name)
        if access is WORKLOAD_IDENTITY:
            env[env_var_name(config.name)] = config_to_env_value(config)
        elif isinstance(access, tuple):
            secrets.append(_env_secret(env_var_name(config.name), access[0], access[1]))
    if isinstance(compute.datastore_secrets, str):
        secrets.append(_env_from_secret(compute.datastore_secrets))
    annotations = dict(compute.annotations or {})
    plain = {**compute._plain_parts(), "command": step.command, ENV_PART: env, "labels": step.labels}
    assert_no_credentials(step.datastores, plain, what="KubernetesCompute", secret_fix=SECRET_ENV_FIXES["kubernetes"])
    if launch.seal_key:
        # Seals this one step run's records (datasets.seal): plain in the pod's spec, kept out of task logs.
        env[ATTEMPT_KEY_ENV] = launch.seal_key
        mask_in_task_log([launch.seal_key])
    kwargs: dict[str, Any] = {
        "task_id": task_id,
        "namespace": compute.namespace,
        "image": step.image,
        "cmds": step.command[:1],
        "arguments": step.command[1:],
        "env_vars": [k8s.V1EnvVar(name=k, value=v) for k, v in env.items()],
        "secrets": secrets,
        "labels": step.labels,
        "annotations": annotations,
        "container_resources": _resources(compute),
        "node_selector": dict(compute.node_selector or {}),
        "tolerations": [_toleration(t) for t in _tolerations(compute)],
        "affinity": _affinity(compute),
        "service_account_name": compute.service_account,
        "image_pull_secrets": [k8s.V1LocalObjectReference(name=n) for n in compute.image_pull_secrets or ()],
        "kubernetes_conn_id": compute.kubernetes_conn_id,
        "in_cluster": compute.in_cluster,
        "startup_timeout_seconds": compute.startup_timeout_seconds,
        "deferrable": compute.deferrable if compute.deferrable is not None else deferrable,
        **_pod_settings(compute),
        **(compute.operator_kwargs or {}),
    }
    kwargs.update(operator_kwargs)
    return KubernetesPodOperator(**kwargs)


def _env_secret(env_name: str, secret: str, key: str) -> Any:
    from airflow.providers.cncf.kubernetes.secret import Secret

    return Secret("env", env_name, secret, key)


def _env_from_secret(secret: str) -> Any:
    from airflow.providers.cncf.kubernetes.secret import Secret

    return Secret("env", None, secret)


def _tolerations(compute: KubernetesCompute) -> list[Mapping[str, Any]]:
    if compute.tolerations is not None:
        return list(compute.tolerations)
    return [gpu_toleration(compute.gpu_resource)] if compute.gpu else []


def _toleration(tol: Mapping[str, Any]) -> Any:
    from kubernetes.client import models as k8s

    return k8s.V1Toleration(
        key=tol.get("key"),
        operator=tol.get("operator"),
        value=tol.get("value"),
        effect=tol.get("effect"),
        toleration_seconds=tol.get("tolerationSeconds"),
    )


def _affinity(compute: KubernetesCompute) -> Any:
    """The V1Affinity (the GPU type's node requirement included), refusing fields the client model does not know
    (they would vanish silently)."""
    affinity = with_gpu_type(compute.affinity, compute.gpu_type_label, compute.gpu_type or ())
    return None if affinity is None else to_model(affinity, "V1Affinity", what="KubernetesCompute affinity")


def _pod_settings(compute: KubernetesCompute) -> dict[str, Any]:
    """The KubernetesPodOperator arguments of the pod-level conveniences, as client models."""
    volumes, mounts = list(compute.volumes), list(compute.volume_mounts)
    if compute.shm_size is not None:
        shm, shm_mount = shm_volume(str(compute.shm_size))
        volumes.append(shm)
        mounts.append(shm_mount)
    what = "KubernetesCompute"
    settings: dict[str, Any] = {
        "volumes": [to_model(v, "V1Volume", what=f"{what} volume {v['name']!r}") for v in volumes],
        "volume_mounts": [to_model(m, "V1VolumeMount", what=f"{what} volume mount {m['name']!r}") for m in mounts],
        "priority_class_name": compute.priority_class_name,
        "pod_template_file": compute.pod_template_file,
        "image_pull_policy": compute.image_pull_policy,
    }
    if compute.security_context is not None:
        settings["security_context"] = to_model(
            compute.security_context, "V1PodSecurityContext", what=f"{what} security_context"
        )
    if compute.full_pod_spec is not None:
        settings["full_pod_spec"] = to_model(compute.full_pod_spec, "V1Pod", what=f"{what} full_pod_spec")
    return settings


def _resources(compute: KubernetesCompute) -> Any:
    amounts: dict[str, str] = {}
    if compute.cpu is not None:
        amounts["cpu"] = str(compute.cpu)
    if compute.memory is not None:
        amounts["memory"] = str(compute.memory)
    if compute.gpu:
        # Extended resources cannot be overcommitted: Kubernetes wants requests equal to limits.
        amounts[compute.gpu_resource] = str(compute.gpu)
    if not amounts:
        return None
    from kubernetes.client import models as k8s

    return k8s.V1ResourceRequirements(requests=dict(amounts), limits=dict(amounts))


def datastore_secret_manifest(
    name: str, configs: Iterable[DatastoreConfig], *, namespace: str | None = None
) -> dict[str, Any]:
    """The Kubernetes Secret (a manifest dict) that holds ``AIRFLOW_CONN_<NAME>`` for each datastore.

    It contains the credentials: apply it (``kubectl apply -f``) or create it through the API, never commit it.
    """
    check_dns_subdomain(name, what="Secret name")
    metadata: dict[str, Any] = {"name": name, "labels": dict(MANAGED_BY)}
    if namespace is not None:
        metadata["namespace"] = check_dns_label(namespace, what="namespace")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": metadata,
        "stringData": {env_var_name(c.name): config_to_env_value(c) for c in configs},
    }
