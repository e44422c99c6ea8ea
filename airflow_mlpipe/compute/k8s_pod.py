"""The pod-level conveniences of ``KubernetesCompute``: volumes and mounts, ``/dev/shm``, the GPU type, security.

Parse time checks what can be judged without the Kubernetes client (names, references between volumes and mounts,
the Secrets a volume reads); the step's operator converts the manifest dicts into client models at run time and
refuses any field the model does not know (a misspelling would otherwise vanish from the pod without a word).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from airflow_mlpipe.compute.k8s_spec import _api_dict, unknown_fields
from airflow_mlpipe.compute.validation import (
    check_dns_label,
    check_dns_subdomain,
    check_label_value,
    check_quantity,
    json_copy,
)
from airflow_mlpipe.exceptions import ConfigError

SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
# Set by NVIDIA's GPU feature discovery (part of the GPU operator) on every GPU node, e.g. "NVIDIA-A100-SXM4-80GB".
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
IMAGE_PULL_POLICIES = ("Always", "IfNotPresent", "Never")
_ZERO_RE = re.compile(r"^\+?0*(?:\.0*)?(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_VOLUME_HELP = (
    "write it as in a pod manifest, e.g. {'name': 'cache', 'persistentVolumeClaim': {'claimName': 'hf-cache'}}, "
    "{'name': 'cfg', 'configMap': {'name': 'train-config'}} or {'name': 'certs', 'secret': {'secretName': 'ca'}}"
)


def manifest_dict(value: object, *, what: str, model: str) -> dict[str, Any]:
    """A manifest dict (camelCase, as in YAML) or a ``kubernetes.client`` model, as a JSON dict."""
    raw = value if isinstance(value, Mapping) else _api_dict(value, what=what, model=model)
    result: dict[str, Any] = json_copy(raw, what=what)
    return result


def check_shm_size(value: object, *, what: str) -> str | None:
    """The size of the in-memory ``/dev/shm``: a quantity (``"8Gi"``) or bytes, more than zero."""
    if value is None:
        return None
    negative = (isinstance(value, int | float) and not isinstance(value, bool) and value < 0) or (
        isinstance(value, str) and value.strip().startswith("-")
    )
    if negative:
        raise ConfigError(f"{what} {value!r} is negative; write a positive size such as '8Gi' (PyTorch data loaders)")
    text = check_quantity(value, what=what)
    assert text is not None
    if _ZERO_RE.match(text):
        raise ConfigError(f"{what} {value!r} is zero; write a positive size such as '8Gi', or leave it out")
    return text


def check_gpu_type(value: object, *, gpu: int, what: str) -> tuple[str, ...]:
    """GPU models the pod may run on (values of the GPU product label), any of them; needs ``gpu`` > 0."""
    if value is None:
        return ()
    types = [value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else None
    if not types:
        raise ConfigError(
            f"{what} {value!r} must be a GPU model label value or a list of them, e.g. 'NVIDIA-A100-SXM4-80GB'"
        )
    if not gpu:
        raise ConfigError(
            f"{what} {value!r} is set but the step requests no GPU: set KubernetesCompute(gpu=1, gpu_type=...) "
            "(a GPU type without GPUs would only pin a CPU step to expensive nodes)"
        )
    return tuple(check_label_value(t, what=what) for t in types)


def check_volumes(value: object, *, declared_secrets: frozenset[str], what: str) -> tuple[dict[str, Any], ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        raise ConfigError(f"{what} {value!r} must be a list of volumes; {_VOLUME_HELP}")
    volumes = tuple(manifest_dict(v, what=f"{what}[{i}]", model="V1Volume") for i, v in enumerate(value))
    seen: set[str] = set()
    for i, volume in enumerate(volumes):
        entry = f"{what}[{i}]"
        name = check_dns_label(volume.get("name"), what=f"{entry} name")
        if name in seen:
            raise ConfigError(f"{entry}: volume name {name!r} is used twice")
        seen.add(name)
        sources = [k for k in volume if k != "name"]
        if len(sources) != 1:
            raise ConfigError(
                f"{entry} {volume!r} must have one source besides its name, not {sources!r}; {_VOLUME_HELP}"
            )
        _check_source(sources[0], volume[sources[0]], declared_secrets, what=entry)
    return volumes


def _check_source(kind: str, source: Any, declared_secrets: frozenset[str], *, what: str) -> None:
    if not isinstance(source, Mapping):
        raise ConfigError(f"{what}: {kind} {source!r} must be a mapping; {_VOLUME_HELP}")
    if kind == "persistentVolumeClaim":
        check_dns_subdomain(source.get("claimName"), what=f"{what} persistentVolumeClaim.claimName")
    elif kind == "configMap":
        check_dns_subdomain(source.get("name"), what=f"{what} configMap.name")
    elif kind == "secret":
        secret = check_dns_subdomain(source.get("secretName"), what=f"{what} secret.secretName")
        if secret not in declared_secrets:
            raise ConfigError(
                f"{what} mounts Secret {secret!r}, which is not declared: add it to KubernetesCompute(secrets=[...]) "
                "(the one list of Secrets a step's pods may read)"
            )


def check_volume_mounts(
    value: object, *, volumes: Sequence[Mapping[str, Any]], what: str
) -> tuple[dict[str, Any], ...]:
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        raise ConfigError(
            f"{what} {value!r} must be a list of mounts, e.g. [{{'name': 'cache', 'mountPath': '/cache'}}]"
        )
    mounts = tuple(manifest_dict(m, what=f"{what}[{i}]", model="V1VolumeMount") for i, m in enumerate(value))
    names = [v["name"] for v in volumes]
    paths: set[str] = set()
    for i, mount in enumerate(mounts):
        entry = f"{what}[{i}]"
        name = mount.get("name")
        if name not in names:
            raise ConfigError(
                f"{entry} mounts volume {name!r}, which is not among the volumes ({names!r}): add it to "
                f"KubernetesCompute(volumes=[...]); {_VOLUME_HELP}"
            )
        path = mount.get("mountPath")
        if not isinstance(path, str) or not path.startswith("/"):
            raise ConfigError(f"{entry}: mountPath {path!r} must be an absolute path inside the container")
        path = posixpath.normpath(path)
        if path in paths:
            raise ConfigError(f"{entry}: two mounts at {path!r}")
        paths.add(path)
    return mounts


def check_shm_free(volumes: Sequence[Mapping[str, Any]], mounts: Sequence[Mapping[str, Any]], *, what: str) -> None:
    """``shm_size`` adds its own volume at /dev/shm: refuse a second one."""
    if any(v["name"] == SHM_VOLUME for v in volumes):
        raise ConfigError(f"{what}: volume name {SHM_VOLUME!r} is taken by shm_size; rename your volume")
    if any(posixpath.normpath(m["mountPath"]) == SHM_PATH for m in mounts):
        raise ConfigError(f"{what}: a volume is mounted at {SHM_PATH}, and shm_size mounts one there; keep one of them")


def check_image_pull_policy(value: object, *, what: str) -> str | None:
    if value is not None and value not in IMAGE_PULL_POLICIES:
        raise ConfigError(f"{what} {value!r} must be one of {list(IMAGE_PULL_POLICIES)!r}")
    return value


def check_pod_template_file(value: object, *, what: str) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.endswith((".yaml", ".yml", ".json"))):
        raise ConfigError(f"{what} {value!r} must be the path of a pod manifest (.yaml, .yml or .json)")
    return value


# -- run time: client models ----------------------------------------------------------------------------------------
def to_model(value: Mapping[str, Any], model: str, *, what: str) -> Any:
    """The ``kubernetes.client`` model of a manifest dict; refuses fields the model does not know."""
    from kubernetes.client import ApiClient, Configuration
    from kubernetes.client import models as k8s

    client = ApiClient(configuration=Configuration())
    result = client._ApiClient__deserialize_model(dict(value), getattr(k8s, model))
    lost = unknown_fields(value, client.sanitize_for_serialization(result))
    if lost:
        raise ConfigError(
            f"{what} has fields Kubernetes does not know: {lost!r}; write them as in a pod manifest (camelCase, "
            "e.g. persistentVolumeClaim.claimName, mountPath, runAsUser)"
        )
    return result


def shm_volume(size: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A memory-backed emptyDir at /dev/shm (counted against the pod's memory limit) and its mount."""
    return (
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": size}},
        {"name": SHM_VOLUME, "mountPath": SHM_PATH},
    )


def with_gpu_type(affinity: Mapping[str, Any] | None, label: str, types: Sequence[str]) -> dict[str, Any] | None:
    """``affinity`` with the GPU product requirement added to every required node selector term (terms are ORed,
    the expressions of a term ANDed), or a new required term when there is none."""
    result: dict[str, Any] = json_copy(dict(affinity or {}), what="affinity")
    if not types:
        return result or None
    requirement = {"key": label, "operator": "In", "values": list(types)}
    node = result.setdefault("nodeAffinity", {})
    required = node.setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    terms = required.setdefault("nodeSelectorTerms", [])
    if not terms:
        terms.append({})
    for term in terms:
        term.setdefault("matchExpressions", []).append(dict(requirement))
    return result
