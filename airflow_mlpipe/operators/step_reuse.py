"""What reuse needs from a ``PythonScriptOperator`` and its task context: the policy (``allow_reuse``,
``reuse_ttl``, the trigger conf's ``regenerate_outputs``), the environment as keyed, and the run record and
registrations of a step run that reuses earlier outputs."""

from __future__ import annotations

import platform
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.compute.containers import DEFAULT_CONTAINER_PYTHON
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig, register_output
from airflow_mlpipe.datasets.paths import DataPath
from airflow_mlpipe.reuse.decide import ReuseDecision, ReusePolicy
from airflow_mlpipe.reuse.step_key import StepFingerprint
from airflow_mlpipe.steps import records
from airflow_mlpipe.storage.datastore import Datastore

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_mlpipe.operators.python_script import PythonScriptOperator

REGENERATE_CONF_KEY = "regenerate_outputs"
REUSED = "Reused"


def reuse_policy(op: PythonScriptOperator, context: Context) -> ReusePolicy:
    return ReusePolicy(allow_reuse=op.allow_reuse, regenerate=regenerate_requested(context), ttl=op.reuse_ttl)


def regenerate_requested(context: Context) -> bool:
    """The trigger conf's ``{"regenerate_outputs": true}``: every step of this DAG run computes anew."""
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    return _truthy(conf.get(REGENERATE_CONF_KEY)) if isinstance(conf, Mapping) else False


def _truthy(value: Any) -> bool:
    # Conf typed in the UI's JSON editor or passed through a shell arrives as a bool, a number or a string.
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def environment_component(op: PythonScriptOperator) -> dict[str, Any]:
    """The step's software as the key sees it: the image that runs (the environment's, else the compute
    target's), pip packages, environment variables and the interpreter. The environment's name is a label only."""
    env = op.environment
    local = isinstance(op.compute_target, LocalCompute)
    image = None
    if not local:
        image = env.image if env is not None and env.image else getattr(op.compute_target, "image", None)
    if env is not None and env.python:
        python = env.python
    elif local:
        python = f"{sys.implementation.name}-{platform.python_version()}"
    else:
        python = DEFAULT_CONTAINER_PYTHON
    return {
        "image": image,
        "pip_packages": list(env.pip_packages) if env is not None else [],
        "env_vars": dict(sorted(env.env_vars.items())) if env is not None else {},
        "python": python,
    }


def reuse_block(fingerprint: StepFingerprint, decision: ReuseDecision) -> dict[str, Any]:
    """``record["reuse"]``: the key, its components, the decision and its explanation."""
    return {
        "key": fingerprint.digest,
        "components": fingerprint.key.components(),
        "decision": decision.to_dict(),
        "explanation": list(decision.explanation),
    }


def register_reused_outputs(
    op: PythonScriptOperator,
    outputs: list[dict[str, Any]],
    lineage: Mapping[str, Any],
) -> None:
    """Register reused output folders as the step asks (``register_on_complete``). The registry adds no
    version when its latest one already has this content: the usual case, as the earlier run registered it."""
    declared = {o.name: o for o in op.step_io.outputs}
    for output in outputs:
        config: OutputFileDatasetConfig | None = declared.get(output["name"])
        if config is None or config.registration is None:
            output.pop("registered", None)
            continue
        registered = register_output(config, DataPath(output["datastore"], output["path"]), lineage=lineage)
        output["registered"] = {
            "name": registered.name,
            "version": registered.version,
            "created": bool(registered.is_new_version),
        }


def reused_record(
    *,
    base: Mapping[str, Any],
    earlier: Mapping[str, Any],
    outputs: list[dict[str, Any]],
    reused_from: str,
    reuse: Mapping[str, Any],
) -> dict[str, Any]:
    """The run record of a step run that reused ``reused_from``: this run's identity (``base``), the earlier
    run's arguments, inputs and metrics (they produced the outputs taken), and the outputs as reused."""
    now = records.now_iso()
    return {
        **base,
        "status": REUSED,
        "started_at": base.get("started_at") or now,
        "finished_at": now,
        "reused_from": reused_from,
        "arguments": earlier.get("arguments", []),
        "inputs": earlier.get("inputs", []),
        "metrics": earlier.get("metrics", {}),
        "outputs": outputs,
        "reuse": dict(reuse),
    }


def read_earlier_record(step_run_id: str, store: Datastore) -> dict[str, Any]:
    """The earlier run's record, or ``{}`` when it is gone (cleaned up): reuse needs its outputs, not its record."""
    try:
        return records.read_record(step_run_id, store)
    except (FileNotFoundError, ValueError):
        return {}
