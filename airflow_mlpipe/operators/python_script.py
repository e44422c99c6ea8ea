"""``PythonScriptOperator``: Azure ML's ``PythonScriptStep`` as an Airflow operator.

The constructor only stores and checks what it is given (no I/O: DAG files parse fast). Each try of the task is
one attempt (``operators.attempt.StepAttempt``): it plans the step (``operators.script_work.ScriptWork``: the
source tree, pinned inputs, environment and outputs, and the reuse key derived from them), writes the attempt's
spec, decides on reuse, and either takes an earlier run's outputs or launches the step runner on the step's
compute target and finishes from its commit.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow.configuration import conf
from airflow.sdk import BaseOperator, Context

from airflow_mlpipe.compute.base import ComputeTarget, StepLaunch
from airflow_mlpipe.compute.environment import Environment, RunConfiguration, check_no_secret_variables
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.core.checks import (
    check_bool,
    check_instance,
    check_positive_number,
    check_relative_file,
    check_str_list,
    shown,
)
from airflow_mlpipe.core.secrets import mask_in_task_log, private_values
from airflow_mlpipe.datasets.consumption import DatasetConsumptionConfig
from airflow_mlpipe.datasets.output import OutputInput
from airflow_mlpipe.datasets.parameter import DatasetParameter
from airflow_mlpipe.exceptions import ConfigError, step_failed_error
from airflow_mlpipe.fingerprint.secret_files import check_include_secret_files
from airflow_mlpipe.operators.arguments import StepIO, collect, link_producers, register_producer
from airflow_mlpipe.operators.failures import fails_cleanly
from airflow_mlpipe.operators.links import METRICS_KEY, OUTPUTS_KEY, RECORD_URI_KEY, ReusedFromLink, StepRunLink
from airflow_mlpipe.operators.step_fields import (
    add_step_params,
    check_deferrable,
    check_templates,
    registered_outlets,
)
from airflow_mlpipe.storage.config import DEFAULT_DATASTORE


class PythonScriptOperator(BaseOperator):
    """Run ``script_name`` from ``source_directory`` as a pipeline step.

    :param script_name: the script, relative to ``source_directory``.
    :param source_directory: the folder snapshotted for the step (relative paths are relative to the DAG file).
        ``.amlignore`` (or ``.gitignore``) excludes files.
    :param arguments: command-line arguments: strings and numbers, ``PipelineParameter``s, dataset inputs
        (``ds.as_named_input("x").as_download()``), outputs (``OutputFileDatasetConfig``) and ``output.as_input()``.
    :param inputs: further inputs not on the command line (read them with ``Run.get_context().input_datasets``).
    :param outputs: further outputs not on the command line.
    :param compute_target: ``LocalCompute()`` (default), ``DockerCompute(...)`` or ``KubernetesCompute(...)``.
    :param runconfig: a ``RunConfiguration`` (its environment and target apply unless given here).
    :param environment: an ``Environment`` (pip packages, image, env vars, interpreter).
    :param allow_reuse: reuse the outputs of an identical earlier run instead of running again (trigger conf
        ``{"regenerate_outputs": true}`` runs every step of that DAG run anyway).
    :param hash_paths: further files or folders whose content counts for reuse.
    :param include_secret_files: paths (or globs) relative to ``source_directory`` of secret-looking files that
        the snapshot should keep anyway. By default well-known secret files (``.env``, ``*.env``, ``*.pem``,
        ``*.key``, ``id_rsa*``, ``credentials``, ``service_account*.json``, ``secret*.json``, ``.netrc``,
        ``.docker/config.json``, ``.kube/config``, ... : ``fingerprint.secret_files.SECRET_FILE_PATTERNS`` and
        docs/security.md) are left out of the snapshot (the task log names them): pass secrets through connections
        or the environment instead. An entry must lie inside ``source_directory``.
    :param reuse_ttl: seconds an earlier run's outputs may be reused for (default: no limit).
    :param azureml_compat: SDK v1 step scripts run unchanged: ``import azureml.core`` finds airflow-mlpipe's
        compatibility package when the step's interpreter has no real Azure ML SDK (never shadows one).
    :param deferrable: wait in the triggerer, holding no worker slot, for a pod (``KubernetesCompute``) and for
        another run computing the same step; False waits in the worker. Defaults to Airflow's
        ``[operators] default_deferrable``, as Airflow's own operators do.
    """

    # Jinja in any string of these is rendered by Airflow before the step runs (and shown in the task's Rendered
    # Templates): the reuse key is built from the rendered values, so "{{ ds }}" in an argument keys each day.
    template_fields: Sequence[str] = ("script_name", "arguments", "inputs", "outputs", "env_vars", "compute_env")
    operator_extra_links = (StepRunLink(), ReusedFromLink())
    ui_color = "#e8f4fd"

    def __init__(
        self,
        *,
        script_name: str,
        source_directory: str | os.PathLike[str],
        arguments: Iterable[Any] = (),
        inputs: Iterable[Any] = (),
        outputs: Iterable[Any] = (),
        compute_target: ComputeTarget | None = None,
        runconfig: RunConfiguration | None = None,
        environment: Environment | None = None,
        allow_reuse: bool = True,
        hash_paths: Sequence[str] | None = None,
        include_secret_files: Sequence[str] | None = None,
        reuse_ttl: float | None = None,
        azureml_compat: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id", "?")
        owner = f"step {task_id!r}"
        if not isinstance(source_directory, (str, os.PathLike)) or not os.fspath(source_directory):
            raise ConfigError(
                f"{owner}: source_directory {source_directory!r} must be the folder holding the script, e.g. "
                "source_directory='steps/train' (relative to the DAG file) or an absolute path"
            )
        check_instance(
            owner, "environment", environment, Environment, fix="give Environment(name=..., pip_packages=[...])"
        )
        check_script_name(task_id, script_name)
        self._io: StepIO = collect(task_id, arguments, inputs, outputs)
        registered = [o.registration.name for o in self._io.outputs if o.registration]
        if registered:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), *registered_outlets(registered)]
        super().__init__(**kwargs)
        self.script_name = script_name
        # As given, for Airflow to render; the step's inputs and outputs are collected again from the rendered values.
        self.arguments = list(self._io.raw_arguments)
        self.inputs = list(self._io.raw_inputs)
        self.outputs = list(self._io.raw_outputs)
        self.source_directory = os.fspath(source_directory)
        self._check_source_is_a_folder(owner)
        if runconfig is not None and not isinstance(runconfig, RunConfiguration):
            raise ConfigError(f"step {self.task_id!r}: runconfig must be a RunConfiguration, not {runconfig!r}")
        self.environment = environment or (runconfig.environment if runconfig else None)
        self.compute_target = compute_target or (runconfig.target if runconfig else None) or LocalCompute()
        if not isinstance(self.compute_target, ComputeTarget):
            raise ConfigError(
                f"step {self.task_id!r}: compute_target {self.compute_target!r} is not LocalCompute, DockerCompute or "
                "KubernetesCompute"
            )
        check_no_secret_variables(self.environment, self.compute_target)
        self.env_vars = dict(self.environment.env_vars) if self.environment else {}
        self.compute_env = dict(getattr(self.compute_target, "env", None) or {})
        check_templates(
            self.task_id,
            [(f"argument {n + 1}", a) for n, a in enumerate(self.arguments)]
            + [(f"env var {k}", v) for k, v in {**self.compute_env, **self.env_vars}.items()],
        )
        self.allow_reuse = check_bool(owner, "allow_reuse", allow_reuse)
        self.hash_paths = check_str_list(owner, "hash_paths", hash_paths, example="utils/")
        self.include_secret_files = check_include_secret_files(self.task_id, include_secret_files)
        self.reuse_ttl = _check_ttl(self.task_id, reuse_ttl)
        self.azureml_compat = check_bool(owner, "azureml_compat", azureml_compat)
        self.deferrable = check_deferrable(self.task_id, deferrable)
        add_step_params(self, self._io.parameters)
        if not isinstance(self.compute_target, LocalCompute):
            from airflow_mlpipe.compute.containers import check_step_image
            from airflow_mlpipe.operators.parse_checks import check_reachable_at_parse

            check_step_image(self.task_id, self.compute_target, self.environment)

            dag_file = self.dag.fileloc if self.has_dag() else None
            outputs = [o.datastore for o in self._io.outputs]
            check_reachable_at_parse(self.task_id, self.compute_target, outputs, dag_file=dag_file)
        register_producer(self, self._io)
        link_producers(self, self._io)

    # -- run time -------------------------------------------------------------------------------------------
    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs of the step run that just finished, for the OpenLineage provider."""
        from airflow_mlpipe.operators.lineage import openlineage_facets

        return openlineage_facets(getattr(self, "_mlpipe_lineage", None))

    @fails_cleanly
    def execute(self, context: Context) -> dict[str, Any]:
        return self._attempt(context).execute()

    @fails_cleanly
    def resume_after_reuse_wait(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from ``ReuseTrigger``: another run was computing this step's reuse key."""
        return self._attempt(context).resume_after_wait(event or {})

    @fails_cleanly
    def trigger_reentry(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Resume a step whose pod was awaited in the triggerer (a deferrable ``KubernetesCompute``)."""
        return self._attempt(context).resume_launched(event)

    def _attempt(self, context: Context) -> Any:
        from airflow_mlpipe.operators.attempt import StepAttempt
        from airflow_mlpipe.operators.script_work import ScriptWork

        self._use_rendered()
        self._work = ScriptWork(self)
        return StepAttempt(self, context, self._work)

    def _do_render_template_fields(
        self, parent: Any, template_fields: Iterable[str], context: Context, jinja_env: Any, seen_oids: set[int]
    ) -> None:
        # Airflow renders a task's own fields through this method, a mapped task's too (where the operator's
        # ``render_template_fields`` is not called), and then an object's nested fields (an output's destination).
        if parent is self:
            self._render_own_fields(template_fields, context, jinja_env, seen_oids)
        else:
            super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)

    @fails_cleanly
    def _render_own_fields(
        self, template_fields: Iterable[str], context: Context, jinja_env: Any, seen_oids: set[int]
    ) -> None:
        """Render, then check and mask what was rendered. Airflow stores the rendered fields (the task's Rendered
        Templates) right after this, before ``execute``: a step refused for a credential in its arguments or in a
        container's variables fails here, before they are stored, and a ``LocalCompute`` step's private variables
        are registered with Airflow's secrets masker, which redacts them from the stored fields."""
        import jinja2

        from airflow_mlpipe.operators.script_work import check_no_plain_credentials

        try:
            super()._do_render_template_fields(self, template_fields, context, jinja_env, seen_oids)
        except jinja2.UndefinedError as exc:
            raise ConfigError(
                f"step {self.task_id!r}: a template in its arguments, destinations or environment uses something "
                f"undefined ({exc.message}); see the context variables Airflow offers (ds, logical_date, params...)"
            ) from None
        self._use_rendered()
        params = dict(context.get("params") or {})
        check_no_plain_credentials(self.task_id, self.compute_target, self.argument_specs(params), self.environment, [])
        mask_in_task_log(private_values({**self.compute_env, **self.env_vars}))

    def _use_rendered(self) -> None:
        """After Airflow rendered the templated fields: the step's inputs and outputs from the rendered values,
        and its environment with the rendered variables."""
        check_script_name(self.task_id, self.script_name)  # a template may have rendered to '../x.py'
        self._io = collect(self.task_id, self.arguments, self.inputs, self.outputs)
        for output in self._io.outputs:
            output.check_rendered(self.task_id)
        if self.environment is not None and self.env_vars != dict(self.environment.env_vars):
            self.environment = dataclasses.replace(self.environment, env_vars=self.env_vars)
            check_no_secret_variables(self.environment, self.compute_target)
        if self.compute_env != dict(getattr(self.compute_target, "env", None) or {}):
            self.compute_target = dataclasses.replace(self.compute_target, env=self.compute_env)  # type: ignore[type-var]

    def on_kill(self) -> None:
        work = getattr(self, "_work", None)
        if work is not None:
            work.kill()

    def _check_source_is_a_folder(self, owner: str) -> None:
        """A ``source_directory`` that exists here and is not a folder (a script's path, ``/etc/passwd``) is refused
        now. One that does not exist yet (made before the run, or on the worker only) is checked when the step
        runs; so is a relative one without a DAG (relative to the DAG file then, which is not known yet)."""
        if not (os.path.isabs(self.source_directory) or self.has_dag()):
            return
        source = self.resolve_source_directory()
        if os.path.exists(source) and not os.path.isdir(source):
            shown_source = "" if source == self.source_directory else f" ({shown(source)})"
            raise ConfigError(
                f"{owner}: source_directory {shown(self.source_directory)}{shown_source} is a file, not a folder: "
                "give the folder holding the script, with script_name the script's path inside it, e.g. "
                "source_directory='steps/train', script_name='train.py'"
            )

    def resolve_source_directory(self) -> str:
        if os.path.isabs(self.source_directory):
            return self.source_directory
        base = os.path.dirname(self.dag.fileloc) if self.has_dag() and self.dag.fileloc else os.getcwd()
        return os.path.normpath(os.path.join(base, self.source_directory))

    @property
    def step_io(self) -> StepIO:
        return self._io

    def input_specs(self, context: Context) -> list[dict[str, Any]]:
        """Inputs as the spec names them: datasets (``latest`` resolved to its version), upstream outputs
        located through the producer's XCom. Their files are pinned next (``reuse.inputs.pin_input``)."""
        specs = []
        for inp in self._io.inputs:
            if isinstance(inp, DatasetConsumptionConfig):
                dataset = _for_run(inp.dataset, context).pinned()
                specs.append(
                    {
                        "name": inp.name,
                        "mode": inp.mode,
                        "path_on_compute": inp.path_on_compute,
                        "source": {"type": "dataset", "dataset": dataset.to_dict()},
                    }
                )
            else:
                specs.append(self._upstream_input(context, inp))
        return specs

    def _upstream_input(self, context: Context, inp: OutputInput) -> dict[str, Any]:
        output = inp.output
        producer = output.producer
        located = context["ti"].xcom_pull(task_ids=producer, key=OUTPUTS_KEY) or {}
        if not isinstance(located, Mapping):
            raise step_failed_error(
                f"step {self.task_id!r}: input {inp.name!r} is output {output.name!r} of the mapped step {producer!r}, "
                "which has one such folder per map index; reading the outputs of a mapped step is not supported: "
                "register them (register_on_complete) and read the dataset, or map this step too"
            )
        where = located.get(output.name)
        if where is None:
            raise step_failed_error(
                f"step {self.task_id!r}: input {inp.name!r} is output {output.name!r} of step {producer!r}, which did "
                "not publish it (did it run and succeed in this DAG run?)"
            )
        return {
            "name": inp.name,
            "mode": inp.mode,
            "source": {"type": "folder", "datastore": where["datastore"], "path": where["path"], "producer": producer},
        }

    def argument_specs(self, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        specs = []
        for arg in self._io.arguments:
            if arg["t"] == "param":
                parameter = self._io.parameters[arg["name"]]
                value = params.get(arg["name"], parameter.default_value)
                specs.append({"t": "param", "name": arg["name"], "value": value})
            elif arg["t"] in ("input", "output"):
                specs.append({"t": arg["t"], "name": arg["ref"].name})
            else:
                specs.append(dict(arg))
        return specs

    def output_specs(self, run_id_for_step: str) -> list[dict[str, Any]]:
        specs = []
        for output in self._io.outputs:
            resolved = output.destination_for(run_id_for_step)
            specs.append({**output.to_dict(), "path": resolved.path, "datastore": resolved.datastore})
        return specs

    def datastore_names(self, input_specs: list[dict[str, Any]], output_specs: list[dict[str, Any]]) -> list[str]:
        names = {DEFAULT_DATASTORE}
        for spec in output_specs:
            names.add(spec["datastore"])
        for spec in input_specs:
            source = spec["source"]
            if source["type"] == "folder":
                names.add(source["datastore"])
            for entry in (spec.get("pin") or {}).get("manifest", {}).get("entries", ()):
                names.add(entry["datastore"])
        return sorted(names)


def _for_run(dataset: Any, context: Context) -> Any:
    """A dataset chosen per run (a dataset-valued ``PipelineParameter``) as this run's dataset."""
    if isinstance(dataset, DatasetParameter):
        return dataset.for_run(dict(context.get("params") or {}))
    return dataset


def _check_ttl(task_id: str, ttl: object) -> float | None:
    return None if ttl is None else check_positive_number(f"step {task_id!r}", "reuse_ttl", ttl)


__all__ = ["METRICS_KEY", "OUTPUTS_KEY", "RECORD_URI_KEY", "PythonScriptOperator", "StepLaunch"]


def check_script_name(task_id: str, script_name: object) -> str:
    """``script_name``: a file inside ``source_directory``, the only folder the step's snapshot holds."""
    return check_relative_file(
        f"step {task_id!r}", "script_name", script_name, inside="source_directory", example="train.py"
    )
