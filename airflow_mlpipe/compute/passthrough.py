"""The pass-through of ``KubernetesCompute`` and ``DockerCompute``: any other argument of the provider's operator.

The compute targets name what ML steps use most; every other argument of ``KubernetesPodOperator`` or
``DockerOperator`` reaches the operator through ``operator_kwargs``, checked against the operator's own signature
(the installed provider's, so a newer provider's arguments work at once) when the compute target is created. The
provider is imported only when ``operator_kwargs`` is given, so DAG files that do not use it parse fast.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.exceptions import ConfigError

_OPERATORS = {
    "KubernetesPodOperator": (
        "airflow.providers.cncf.kubernetes.operators.pod",
        "apache-airflow-providers-cncf-kubernetes",
    ),
    "DockerOperator": ("airflow.providers.docker.operators.docker", "apache-airflow-providers-docker"),
}
# BaseOperator's arguments belong to the step's own operator: the provider's operator runs inside its task.
_STEP_OPERATOR_ARGUMENTS = frozenset(
    {
        "retries",
        "retry_delay",
        "execution_timeout",
        "pool",
        "queue",
        "priority_weight",
        "trigger_rule",
        "owner",
        "email",
        "on_failure_callback",
        "on_success_callback",
        "sla",
        "depends_on_past",
    }
)


@functools.cache
def operator_parameters(operator: str) -> frozenset[str]:
    """The keyword arguments of the provider operator's own constructor (not BaseOperator's)."""
    import importlib

    module_name, package = _OPERATORS[operator]
    try:
        cls = getattr(importlib.import_module(module_name), operator)
    except ImportError as exc:
        raise ConfigError(f"operator_kwargs for {operator} need the provider: pip install {package} ({exc})") from None
    parameters = inspect.signature(cls.__init__).parameters.values()
    return frozenset(
        p.name for p in parameters if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    )


def check_operator_kwargs(value: object, *, operator: str, owned: Mapping[str, str], what: str) -> dict[str, Any]:
    """``operator_kwargs`` as a dict, every key an argument of ``operator`` that the compute target does not set.

    :param owned: arguments the compute target sets, each with the setting to use instead.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(
            f"{what} operator_kwargs {value!r} must be a mapping of {operator} argument names to values, "
            "e.g. {'termination_grace_period': 30}"
        )
    for key in value:
        if key in owned:
            raise ConfigError(f"{what} operator_kwargs: {key!r} is set by {owned[key]}; set it there instead")
        if key in _STEP_OPERATOR_ARGUMENTS:
            raise ConfigError(
                f"{what} operator_kwargs: {key!r} is an argument of every Airflow operator; set it on the step's "
                f"operator (PythonScriptOperator({key}=...)), whose task runs the {operator}"
            )
    if not value:
        return {}
    known = operator_parameters(operator)
    for key in value:
        if key not in known:
            allowed = sorted(known - owned.keys())
            close = [n for n in allowed if n.startswith(key)][:3] or difflib.get_close_matches(key, allowed, n=3)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise ConfigError(
                f"{what} operator_kwargs: {key!r} is not an argument of the installed {operator}{hint} "
                f"(its arguments: {', '.join(allowed)})"
            )
    return dict(value)


def describe_value(value: Any) -> Any:
    """A JSON-able form of an operator argument for run records: Kubernetes models as their manifest form."""
    if isinstance(value, Mapping):
        return {str(k): describe_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [describe_value(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if hasattr(value, "openapi_types"):
        from kubernetes.client import ApiClient

        return ApiClient().sanitize_for_serialization(value)
    return repr(value)
