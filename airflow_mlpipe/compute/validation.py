"""Parse-time checks shared by the compute targets: image references, Kubernetes names and quantities.

Pure functions over strings (no Kubernetes or Docker import), so a DAG file that builds a compute target fails
at parse time with a message naming the bad value and the fix, long before a pod or a container is created.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.exceptions import ConfigError

# The image reference grammar of the container registries (distribution/reference, regexp.go).
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE_RE = re.compile(rf"^(?P<name>{_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$")
_IMAGE_NAME_MAX = 255

# Kubernetes resource.Quantity: a non-negative decimal number and an optional suffix.
_BINARY_SI = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")
_DECIMAL_SI = ("n", "u", "m", "k", "M", "G", "T", "P", "E")
_QUANTITY_RE = re.compile(r"^\+?(?:\d+(?:\.\d*)?|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
QUANTITY_HELP = (
    "a number with an optional unit suffix: binary "
    + ", ".join(_BINARY_SI)
    + "; decimal "
    + ", ".join(_DECIMAL_SI)
    + " or an exponent such as 1e3 (examples: '500m' CPU, '2' CPUs, '4Gi' memory)"
)

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_LABEL_RE = re.compile(rf"^{_DNS_LABEL}$")
_DNS_SUBDOMAIN_RE = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$")
_LABEL_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_SECRET_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
LABEL_MAX = 63


def check_image(image: object, *, what: str) -> str:
    """An image reference such as ``python:3.11-slim`` or ``ghcr.io/org/train@sha256:...``."""
    if not isinstance(image, str) or not image:
        raise ConfigError(f"{what}: image {image!r} is not a non-empty string; write e.g. 'python:3.11-slim'")
    match = _IMAGE_RE.match(image)
    if match is None:
        hint = (
            " (repository names must be lowercase)" if image.lower() != image and _IMAGE_RE.match(image.lower()) else ""
        )
        raise ConfigError(
            f"{what}: image {image!r} is not a valid image reference{hint}; write [registry[:port]/]name[:tag]"
            "[@sha256:digest] with a lowercase name, e.g. 'python:3.11-slim' or 'ghcr.io/org/train:1.2'"
        )
    if len(match.group("name")) > _IMAGE_NAME_MAX:
        raise ConfigError(f"{what}: image {image!r} has a name longer than {_IMAGE_NAME_MAX} characters")
    return image


def check_quantity(value: object, *, what: str) -> str | None:
    """A Kubernetes quantity (``"500m"``, ``"2"``, ``"4Gi"``, or a non-negative number) as a string."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{what} {value!r} is not a quantity; write {QUANTITY_HELP}")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{what} {value!r} must be a finite number >= 0")
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ConfigError(f"{what} {value!r} is not a quantity; write {QUANTITY_HELP}")
    if not _QUANTITY_RE.match(text):
        raise ConfigError(f"{what} {value!r} is not a Kubernetes quantity; write {QUANTITY_HELP}")
    return text


def check_dns_label(value: object, *, what: str) -> str:
    """A namespace name: lowercase letters, digits and '-', at most 63 characters (RFC 1123 label)."""
    if not isinstance(value, str) or len(value) > LABEL_MAX or not _DNS_LABEL_RE.match(value):
        raise ConfigError(
            f"{what} {value!r} is not a valid name: use at most 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return value


def check_dns_subdomain(value: object, *, what: str) -> str:
    """A Secret or ServiceAccount name: lowercase RFC 1123 subdomain, at most 253 characters."""
    if not isinstance(value, str) or len(value) > 253 or not _DNS_SUBDOMAIN_RE.match(value):
        raise ConfigError(
            f"{what} {value!r} is not a valid Kubernetes object name: use lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit (at most 253 characters)"
        )
    return value


def check_secret_key(value: object, *, what: str) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _SECRET_KEY_RE.match(value):
        raise ConfigError(f"{what} {value!r} is not a valid Secret key: use letters, digits, '-', '_' and '.'")
    return value


def check_label_key(value: object, *, what: str, require_prefix: bool = False) -> str:
    """A label or annotation key: ``[prefix/]name`` (prefix a DNS subdomain, name at most 63 characters)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} {value!r} is not a non-empty string")
    prefix, _, name = value.rpartition("/")
    valid_prefix = (not prefix and not require_prefix) or (
        bool(prefix) and len(prefix) <= 253 and bool(_DNS_SUBDOMAIN_RE.match(prefix))
    )
    if not valid_prefix or len(name) > LABEL_MAX or not _LABEL_NAME_RE.match(name):
        form = "domain/name" if require_prefix else "[domain/]name"
        raise ConfigError(
            f"{what} {value!r} is not a valid key: write {form}, the name at most 63 letters, digits, '-', '_' or "
            "'.', starting and ending with a letter or digit, the domain lowercase (e.g. 'example.com/team')"
        )
    return value


def check_label_value(value: object, *, what: str) -> str:
    if not isinstance(value, str) or len(value) > LABEL_MAX or (value and not _LABEL_NAME_RE.match(value)):
        raise ConfigError(
            f"{what} {value!r} is not a valid label value: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value


def check_labels(labels: Mapping[str, str] | None, *, what: str) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise ConfigError(f"{what} {labels!r} must be a mapping of label names to values")
    return {
        check_label_key(k, what=f"{what} key"): check_label_value(v, what=f"{what}[{k!r}]") for k, v in labels.items()
    }


def check_annotations(annotations: Mapping[str, str] | None, *, what: str) -> dict[str, str]:
    if annotations is None:
        return {}
    if not isinstance(annotations, Mapping):
        raise ConfigError(f"{what} {annotations!r} must be a mapping of annotation names to string values")
    result: dict[str, str] = {}
    for key, value in annotations.items():
        check_label_key(key, what=f"{what} key")
        if not isinstance(value, str):
            raise ConfigError(f"{what}[{key!r}] must be a string, not {type(value).__name__}")
        result[key] = value
    return result


# Variables mlpipe itself hands a step's runner or script: a DAG's value would replace the worker's seal key
# (``MLPIPE_REGISTRY_KEY``), forge the attempt's key or the spec digest the runner checks, or lie to the script
# about its run (the runner's ``airflow_env``: the attempt and the task's dates, which replace a value given).
# Settings a step may take (``MLPIPE_STORE_TIMEOUT``, ``MLPIPE_HOME``) are not among them.
RESERVED_ENV = frozenset(
    {
        "MLPIPE_REGISTRY_KEY",
        "MLPIPE_ATTEMPT_KEY",
        "MLPIPE_SPEC_DIGEST",
        "MLPIPE_RUN_CONTEXT",
        "MLPIPE_STEP_RUN_ID",
        "MLPIPE_PARAMS",
        "MLPIPE_DAG_ID",
        "MLPIPE_RUN_ID",
        "MLPIPE_TASK_ID",
        "MLPIPE_MAP_INDEX",
        "MLPIPE_TRY_NUMBER",
        "MLPIPE_LOGICAL_DATE",
        "MLPIPE_DATA_INTERVAL_START",
        "MLPIPE_DATA_INTERVAL_END",
        "MLPIPE_PARALLEL_OUTPUT_DIR",
        "MLPIPE_PARALLEL_LOG_LEVEL",
        "MLPIPE_FAULT_DIR",
    }
)


def check_env(env: Mapping[str, str] | None, *, what: str, own: bool = False) -> dict[str, str]:
    """Plain environment variables. ``AIRFLOW_CONN_*`` are refused: connections carry credentials, which reach a
    step only through its compute target's secret mechanism (never as plain values that end up in specs and logs).
    So are the variables mlpipe sets itself (:data:`RESERVED_ENV`), unless ``own`` (mlpipe's own launch)."""
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise ConfigError(
            f"{what} must be a mapping of variable names to string values, not {type(env).__name__}, e.g. "
            "{'MODE': 'train'}"
        )
    result: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not _ENV_NAME_RE.match(name):
            raise ConfigError(
                f"{what}: {name!r} is not a valid environment variable name (letters, digits, '_', '-', '.'; "
                "not starting with a digit)"
            )
        if name.upper().startswith("AIRFLOW_CONN_"):
            raise ConfigError(
                f"{what}: {name!r} is a connection, and connections carry credentials; do not pass it as a plain "
                "environment variable: the step receives the connections of its datastores by itself (through "
                "Kubernetes Secrets or Docker's private environment)"
            )
        if not own and name.upper() in RESERVED_ENV:
            raise ConfigError(
                f"{what}: {name!r} is a variable mlpipe sets itself for the step's runner and script; a value of "
                "yours would replace it. Remove it (give the step your own variable name)"
            )
        if not isinstance(value, str):
            # Never the value itself: a variable may hold a credential, whatever its name or type.
            raise ConfigError(
                f"{what}[{name!r}] must be a string, not {type(value).__name__}; give the variable's value as a "
                "string (quoted in the DAG file)"
            )
        if "\x00" in value:
            # A process environment cannot hold NUL: the launch would fail later, naming no variable.
            raise ConfigError(
                f"{what}[{name!r}] contains a NUL character (the value is not shown), which no process environment "
                "can hold; remove it from the value"
            )
        result[name] = value
    return result


def check_non_negative_int(value: object, *, what: str) -> int:
    # bool is an int subclass and 1.0 is not a count: refuse both rather than guess.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{what} {value!r} is not a non-negative integer; write e.g. 0, 1 or 4")
    return value


def check_positive_int(value: object, *, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{what} {value!r} is not a positive integer (seconds)")
    return value


def safe_label_value(text: str) -> str:
    """``text`` as a valid label value; changed or shortened values get a hash suffix so they stay distinct."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-_.")
    if cleaned == text and len(text) <= LABEL_MAX:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    head = cleaned[: LABEL_MAX - len(digest) - 1].rstrip("-_.")
    return f"{head}-{digest}" if head else digest


def json_copy(value: Any, *, what: str) -> Any:
    """A deep copy of a JSON-like value (dicts with string keys, lists, scalars); refuses anything else."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{what}: key {key!r} is not a string")
            out[key] = json_copy(item, what=what)
        return out
    if isinstance(value, list | tuple):
        return [json_copy(item, what=what) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise ConfigError(f"{what}: {value!r} ({type(value).__name__}) is not a JSON value")


def description_hash(value: Any) -> int:
    """``__hash__`` of the frozen compute values: their fields hold dicts and lists, their description is JSON."""
    return hash(json.dumps(value.describe(), sort_keys=True))
