"""What both step operators do with their fields when a DAG file is parsed (no I/O): the DAG params they add, the
assets they declare, and the Jinja they check; and, at run time, what is rendered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from airflow_mlpipe.core.templates import check_jinja, has_jinja
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.steps.params import PipelineParameter

REGENERATE_PARAM = "regenerate_outputs"


def add_step_params(op: Any, parameters: Mapping[str, PipelineParameter]) -> None:
    """The step's ``PipelineParameter``s become DAG params (typed inputs in the trigger form), and every DAG with
    a step gets the boolean ``regenerate_outputs`` there too."""
    if not op.has_dag():
        if parameters:
            raise ConfigError(
                f"step {op.task_id!r} uses PipelineParameters: create it inside a DAG (with DAG(...):) so they "
                "become the DAG's params"
            )
        return
    if getattr(op, "_BaseOperator__from_mapped", False):
        # A mapped step made at run time (a ParallelRunStep mini-batch): the DAG's params hold this run's values.
        return
    params = op.dag.params
    for name, parameter in parameters.items():
        if name in params:
            existing = params.get_param(name).value if hasattr(params, "get_param") else params[name]
            if existing != parameter.default_value:
                raise ConfigError(
                    f"step {op.task_id!r}: PipelineParameter {name!r} has default {parameter.default_value!r} "
                    f"but the DAG already has param {name!r} = {existing!r}"
                )
            continue
        params[name] = parameter.to_param()
    if REGENERATE_PARAM not in params:
        from airflow.sdk import Param

        params[REGENERATE_PARAM] = Param(
            False,
            type="boolean",
            title="Regenerate outputs",
            description="Compute every mlpipe step of this run anew, reusing no earlier outputs.",
        )


def registered_outlets(names: Iterable[str]) -> list[Any]:
    """An Asset per dataset the step registers, declared at parse time: the asset graph then names the task that
    produces each dataset. At run time the step keeps only those it added a version to (``keep_outlets``)."""
    from airflow_mlpipe.assets import dataset_asset

    return [dataset_asset(name) for name in dict.fromkeys(names)]


def keep_outlets(op: Any, created: Iterable[str]) -> None:
    """Airflow records an event for every Asset outlet of a task that succeeds: a step announces only the
    datasets it added a version to, so the others are dropped from its outlets for this run."""
    from airflow.sdk import Asset

    from airflow_mlpipe.assets import dataset_asset_uri

    wanted = {dataset_asset_uri(name) for name in created}
    op.outlets = [o for o in op.outlets if not isinstance(o, Asset) or o.uri in wanted or not _ours(o.uri)]


def _ours(uri: str) -> bool:
    from airflow_mlpipe.assets import DATASET_URI_PREFIX

    return uri.startswith(DATASET_URI_PREFIX)


def check_templates(task_id: str, values: Iterable[tuple[str, Any]]) -> None:
    """Parse (not render) every Jinja template among ``(what, value)`` pairs: a syntax error fails the DAG file."""
    for what, value in values:
        if has_jinja(value):
            check_jinja(value, what=f"step {task_id!r}: {what}")


def check_deferrable(task_id: str, deferrable: object) -> bool:
    """A step operator's ``deferrable`` (its default is Airflow's ``[operators] default_deferrable``)."""
    if not isinstance(deferrable, bool):
        raise ConfigError(f"step {task_id!r}: deferrable {deferrable!r} must be True or False")
    return deferrable
