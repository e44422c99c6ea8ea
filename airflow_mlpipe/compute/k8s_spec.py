"""Parse-time checks of the Kubernetes parts of ``KubernetesCompute``: tolerations, affinity, secrets.

Values are kept in the API's own JSON form (camelCase keys, as in a YAML manifest), which is what users copy
from cluster docs and what the cncf-kubernetes provider deserialises. Kubernetes client objects
(``V1Toleration``, ``V1Affinity``) are accepted too and converted: a user who passes one has already paid for
the import, so the conversion costs nothing at parse time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

from airflow_mlpipe.compute.validation import (
    check_dns_subdomain,
    check_label_key,
    check_label_value,
    check_secret_key,
    json_copy,
)
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.config import env_var_name


class DatastoreAccess(Enum):
    """How a pod reaches a datastore other than through a Secret."""

    WORKLOAD_IDENTITY = "workload-identity"


WORKLOAD_IDENTITY = DatastoreAccess.WORKLOAD_IDENTITY

_TOLERATION_FIELDS = {
    "key": "key",
    "operator": "operator",
    "value": "value",
    "effect": "effect",
    "tolerationSeconds": "tolerationSeconds",
    "toleration_seconds": "tolerationSeconds",
}
_TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
_AFFINITY_FIELDS = ("nodeAffinity", "podAffinity", "podAntiAffinity")


def _api_dict(value: Any, *, what: str, model: str) -> dict[str, Any]:
    """A Kubernetes client model object (``V1Toleration``...) as its API JSON form."""
    if type(value).__name__ == model and hasattr(value, "openapi_types"):
        from kubernetes.client import ApiClient

        result: dict[str, Any] = ApiClient().sanitize_for_serialization(value)
        return result
    raise ConfigError(f"{what} {value!r} must be a dict (as in a pod manifest) or a kubernetes.client.{model}")


def gpu_toleration(gpu_resource: str) -> dict[str, Any]:
    """The taint GPU node pools usually carry (e.g. on AKS, GKE and EKS GPU pools): ``<resource>:NoSchedule``."""
    return {"key": gpu_resource, "operator": "Exists", "effect": "NoSchedule"}


def check_tolerations(value: object, *, what: str) -> tuple[dict[str, Any], ...] | None:
    if value is None:
        return None
    if isinstance(value, str | Mapping) or not isinstance(value, Sequence):
        raise ConfigError(f"{what} {value!r} must be a list of tolerations, e.g. [{gpu_toleration('nvidia.com/gpu')}]")
    return tuple(check_toleration(item, what=f"{what}[{i}]") for i, item in enumerate(value))


def check_toleration(item: object, *, what: str) -> dict[str, Any]:
    raw = dict(item) if isinstance(item, Mapping) else _api_dict(item, what=what, model="V1Toleration")
    unknown = sorted(str(k) for k in raw if k not in _TOLERATION_FIELDS)
    if unknown:
        raise ConfigError(
            f"{what} has unknown fields {unknown!r}; a toleration has key, operator, value, effect, tolerationSeconds"
        )
    tol = {_TOLERATION_FIELDS[k]: v for k, v in raw.items() if v is not None}
    operator = tol.setdefault("operator", "Equal")
    if operator not in ("Exists", "Equal"):
        raise ConfigError(f"{what}: operator {operator!r} must be 'Exists' or 'Equal'")
    key = tol.get("key", "")
    if key:
        check_label_key(key, what=f"{what} key")
    elif operator != "Exists":
        raise ConfigError(f"{what}: a toleration without a key must use operator 'Exists' (it then tolerates all)")
    value = tol.get("value", "")
    if operator == "Exists" and value:
        raise ConfigError(f"{what}: operator 'Exists' takes no value, got {value!r}")
    if value:
        check_label_value(value, what=f"{what} value")
    effect = tol.get("effect", "")
    if effect not in _TOLERATION_EFFECTS:
        raise ConfigError(f"{what}: effect {effect!r} must be one of {list(_TOLERATION_EFFECTS)!r}")
    seconds = tol.get("tolerationSeconds")
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise ConfigError(f"{what}: tolerationSeconds {seconds!r} must be an integer")
        if effect != "NoExecute":
            raise ConfigError(f"{what}: tolerationSeconds applies only to effect 'NoExecute', not {effect!r}")
    # Empty strings are the API's defaults: leave them out, as a manifest would.
    return {k: v for k, v in tol.items() if v != ""}


def check_affinity(value: object, *, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    raw = dict(value) if isinstance(value, Mapping) else _api_dict(value, what=what, model="V1Affinity")
    unknown = sorted(str(k) for k in raw if k not in _AFFINITY_FIELDS)
    if unknown:
        raise ConfigError(
            f"{what} has unknown fields {unknown!r}; write the pod manifest's form: {list(_AFFINITY_FIELDS)!r} "
            "with camelCase fields (e.g. requiredDuringSchedulingIgnoredDuringExecution)"
        )
    result: dict[str, Any] = json_copy(raw, what=what)
    return result


def unknown_fields(original: Any, round_trip: Any, path: str = "") -> list[str]:
    """Paths present in ``original`` but lost on a round trip through a client model (misspelled fields)."""
    if isinstance(original, Mapping):
        lost: list[str] = []
        other = round_trip if isinstance(round_trip, Mapping) else {}
        for key, item in original.items():
            if item is None:
                continue
            if key not in other:
                lost.append(f"{path}.{key}" if path else str(key))
            else:
                lost += unknown_fields(item, other[key], f"{path}.{key}" if path else str(key))
        return lost
    if isinstance(original, list):
        other_list = round_trip if isinstance(round_trip, list) else []
        return [
            p
            for i, item in enumerate(original)
            for p in unknown_fields(item, other_list[i] if i < len(other_list) else None, f"{path}[{i}]")
        ]
    return []


def secret_name_of(item: object) -> str:
    """The Kubernetes Secret a ``secrets=`` entry names: a plain name or the provider's ``Secret`` object."""
    if isinstance(item, str):
        return item
    name = getattr(item, "secret", None)
    if isinstance(name, str) and hasattr(item, "deploy_type"):
        return name
    raise ConfigError(
        f"secrets entry {item!r} must be a Secret name or an airflow.providers.cncf.kubernetes.secret.Secret"
    )


def check_secrets(value: object, *, what: str) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(
            f"{what} {value!r} must be a list of Secret names or Secret objects, e.g. ['mlpipe-datastores']"
        )
    for item in value:
        check_dns_subdomain(secret_name_of(item), what=f"{what} entry")
    return tuple(value)


DatastoreSecretValue = str | tuple[str, str] | DatastoreAccess


def check_datastore_secrets(
    value: object, *, declared: frozenset[str], service_account: str | None, what: str
) -> dict[str, tuple[str, str] | DatastoreAccess] | str | None:
    """``datastore_secrets`` in its normalised form: one Secret for all (a name), or datastore -> (secret, key)
    or ``WORKLOAD_IDENTITY``. Every Secret it names must be declared in ``secrets``."""
    if value is None:
        return None
    if isinstance(value, str):
        _check_declared(value, declared, what=what)
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{what} {value!r} must be a Secret name (one Secret with a key per datastore) or a mapping such as "
            "{'mlpipe_default': 'mlpipe-datastores'}"
        )
    result: dict[str, tuple[str, str] | DatastoreAccess] = {}
    for datastore, target in value.items():
        if not isinstance(datastore, str) or not datastore:
            raise ConfigError(f"{what}: datastore name {datastore!r} must be a non-empty string")
        entry = f"{what}[{datastore!r}]"
        if target is WORKLOAD_IDENTITY:
            if not service_account:
                raise ConfigError(
                    f"{entry} is WORKLOAD_IDENTITY, which needs the service account the cloud identity is bound to: "
                    "set KubernetesCompute(service_account=...)"
                )
            result[datastore] = WORKLOAD_IDENTITY
            continue
        if isinstance(target, str):
            secret, key = target, env_var_name(datastore)
        elif isinstance(target, tuple | list) and len(target) == 2 and all(isinstance(t, str) for t in target):
            secret, key = target[0], target[1]
        else:
            raise ConfigError(f"{entry} {target!r} must be a Secret name, a (secret, key) pair or WORKLOAD_IDENTITY")
        _check_declared(secret, declared, what=entry)
        result[datastore] = (secret, check_secret_key(key, what=f"{entry} key"))
    return result


def _check_declared(secret: str, declared: frozenset[str], *, what: str) -> None:
    check_dns_subdomain(secret, what=f"{what} Secret")
    if secret not in declared:
        listed = sorted(declared) or "none"
        raise ConfigError(
            f"{what} refers to Secret {secret!r}, which is not declared: add it to KubernetesCompute(secrets=[...]) "
            f"(declared: {listed}); declaring every Secret a pod may read keeps them reviewable in one place"
        )
