"""``Pipeline`` and ``Experiment.submit``: in a DAG file, submitting a v1 pipeline defines its Airflow DAG.

``Experiment(ws, "name").submit(pipeline)`` builds a DAG whose id is the experiment's name, with one task per
step (``PythonScriptStep`` → ``PythonScriptOperator``, ``DataTransferStep`` → ``DataTransferOperator``,
``ParallelRunStep`` → a task group of a planning, a mapped and a gather task), and
returns a ``PipelineRun`` whose ``.dag`` is that DAG. Airflow finds the DAG as it finds any DAG created in a
``with`` block. Nothing runs at submit: a run is a DAG run (the schedule, "Trigger DAG", the REST API).
DAG settings go in ``dag_args`` (``schedule``, ``start_date``, ``tags``, ...; the default: no schedule).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pendulum

from airflow_mlpipe.compat.data import DataPath, DataPathComputeBinding, DataReference
from airflow_mlpipe.compat.workspace import Workspace
from airflow_mlpipe.compute.base import ComputeTarget as _ComputeTarget
from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.core.checks import check_bool, check_str_mapping, check_text, shown
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig as _OutputFileDatasetConfig
from airflow_mlpipe.datasets.output import OutputInput
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.steps.params import PipelineParameter as _PipelineParameter
from airflow_mlpipe.v1.environment import Environment as _V1Environment
from airflow_mlpipe.v1.environment import RunConfiguration, ScriptRunConfig, resolve_compute
from airflow_mlpipe.v1.steps import (
    DataTransferStep,
    ParallelRunStep,
    PipelineData,
    PipelineParameter,
    PythonScriptStep,
    _Step,
)

_TASK_ID = re.compile(r"[^A-Za-z0-9_.-]+")
_HERE = os.path.dirname(os.path.abspath(__file__))


class Pipeline:
    """v1's ``Pipeline(workspace, steps)``: the steps given and every step they read data from
    (``resolve_closure``)."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        steps: Sequence[_Step] = (),
        description: str | None = None,
        default_datastore: Any = None,
        default_source_directory: str | None = None,
        resolve_closure: bool = True,
        **kwargs: Any,
    ) -> None:
        steps = [steps] if isinstance(steps, _Step) else list(steps)
        if not steps or not all(isinstance(s, _Step) for s in steps):
            raise ConfigError(f"Pipeline(ws, steps=[...]): give a list of steps, not {steps!r}")
        self.workspace = workspace
        self.steps = steps
        self.description = description
        self.default_source_directory = default_source_directory

    def validate(self) -> list[str]:
        """Nothing is checked apart from building the DAG; returns no errors."""
        return []

    def publish(self, name: str | None = None, description: str | None = None, **kwargs: Any) -> Any:
        raise ConfigError(
            "Pipeline.publish: a submitted pipeline is an Airflow DAG already; run it with the Airflow REST API "
            "(POST /api/v2/dags/{dag_id}/dagRuns with conf for the parameters) or give it a schedule with "
            "submit(..., dag_args={'schedule': ...})"
        )

    def submit(self, experiment_name: str, **kwargs: Any) -> PipelineRun:
        return Experiment(self.workspace or Workspace(), experiment_name).submit(self, **kwargs)


class PipelineRun:
    """What ``submit`` returns: ``.dag`` is the DAG. Waiting is refused: a DAG file must not wait for runs."""

    def __init__(self, dag: Any) -> None:
        self.dag = dag
        self.id = dag.dag_id

    def wait_for_completion(self, show_output: bool = True, **kwargs: Any) -> str:
        """Returns at once: runs happen when Airflow triggers the DAG, never while its file is parsed."""
        return "NotStarted"

    def get_status(self) -> str:
        return "NotStarted"

    def __repr__(self) -> str:
        return f"PipelineRun(dag_id={self.dag.dag_id!r})"


class Experiment:
    """v1's ``Experiment(workspace, name)``; its name is the DAG id."""

    def __init__(self, workspace: Workspace, name: str, **kwargs: Any) -> None:
        self.workspace = workspace
        self.name = check_text("Experiment", "name", name, example="train_iris")

    def submit(
        self,
        config: Pipeline | ScriptRunConfig,
        tags: Mapping[str, str] | None = None,
        *,
        pipeline_parameters: Mapping[str, Any] | None = None,
        regenerate_outputs: bool = False,
        continue_on_step_failure: bool = False,
        dag_args: Mapping[str, Any] | None = None,
        compute_targets: Mapping[str, _ComputeTarget] | None = None,
        **kwargs: Any,
    ) -> PipelineRun:
        """Define the DAG. ``pipeline_parameters``: the parameters' defaults for runs of this DAG;
        ``regenerate_outputs=True``: runs reuse nothing unless their conf says otherwise;
        ``continue_on_step_failure``: ignored (Airflow runs every task whose upstream tasks succeeded)."""
        owner = f"Experiment({self.name!r}).submit"
        checked_tags = check_str_mapping(owner, "tags", tags, example="{'team': 'vision'}")
        parameters = _check_mapping(owner, "pipeline_parameters", pipeline_parameters, example="{'learning_rate': 0.1}")
        regenerate = check_bool(owner, "regenerate_outputs", regenerate_outputs)
        check_bool(owner, "continue_on_step_failure", continue_on_step_failure)
        settings = _check_mapping(owner, "dag_args", dag_args, example="{'schedule': '@daily'}")
        computes = _check_compute_targets(owner, compute_targets)
        if isinstance(config, ScriptRunConfig):
            step = PythonScriptStep(
                config.script,
                arguments=config.arguments,
                runconfig=config.run_config,
                source_directory=config.source_directory,
            )
            config = Pipeline(self.workspace, [step])
        if not isinstance(config, Pipeline):
            raise ConfigError(f"Experiment.submit: give a Pipeline or a ScriptRunConfig, not {config!r}")
        builder = _DagBuilder(config, parameters, computes)
        dag = builder.build(self.name, checked_tags, settings, regenerate)
        return PipelineRun(dag)


def _check_mapping(owner: str, argument: str, value: object, *, example: str) -> dict[str, Any]:
    """A mapping with string keys (None for none): a list of pairs or a number is refused, not taken apart."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"{owner}: {argument} {shown(value)} must be a dict, not {type(value).__name__}; e.g. {argument}={example}"
        )
    bad = next((key for key in value if not isinstance(key, str)), None)
    if bad is not None:
        raise ConfigError(
            f"{owner}: {argument} key {shown(bad)} must be a string, not {type(bad).__name__}; e.g. "
            f"{argument}={example}"
        )
    return dict(value)


def _check_compute_targets(owner: str, value: object) -> dict[str, _ComputeTarget]:
    """What each v1 compute name means: one of our compute targets (a name or a v1 ``ComputeTarget`` names
    nothing that can run a step)."""
    example = "{'cpu-cluster': KubernetesCompute(...)}"
    targets = _check_mapping(owner, "compute_targets", value, example=example)
    for name, target in targets.items():
        if not isinstance(target, _ComputeTarget):
            raise ConfigError(
                f"{owner}: compute_targets[{name!r}] {shown(target)} must be a compute target, not "
                f"{type(target).__name__}; give LocalCompute(), DockerCompute(...) or KubernetesCompute(...), e.g. "
                f"compute_targets={example}"
            )
    return targets


class _DagBuilder:
    def __init__(self, pipeline: Pipeline, parameters: dict[str, Any], computes: dict[str, _ComputeTarget]) -> None:
        self.pipeline = pipeline
        self.parameters = parameters
        self.computes = computes
        self.steps = _closure(pipeline.steps)
        self.writer = _writers(self.steps)
        self.task_ids = _task_ids(self.steps)

    def build(self, name: str, tags: dict[str, str], dag_args: dict[str, Any], regenerate: bool) -> Any:
        from airflow.sdk import DAG

        settings = {
            "schedule": None,
            "start_date": pendulum.datetime(2024, 1, 1, tz="UTC"),
            "catchup": False,
            "description": self.pipeline.description,
            "tags": ["azureml-v1", *[f"{k}:{v}" if v else k for k, v in tags.items()]],
            **dag_args,
        }
        with DAG(dag_id=_TASK_ID.sub("_", name).strip("_") or "pipeline", **settings) as dag:
            dag.fileloc = _caller_file()
            tasks = {id(step): self._task(step) for step in self.steps}
            for step in self.steps:
                for before in step.after:
                    tasks[id(step)].set_upstream(tasks[id(before)])
        unknown = sorted(set(self.parameters) - set(dag.params))
        if unknown:
            raise ConfigError(f"submit: pipeline_parameters {unknown} are not PipelineParameters of any step")
        if regenerate:
            from airflow.sdk import Param

            dag.params["regenerate_outputs"] = Param(True, type="boolean", title="Regenerate outputs")
        return dag

    def _task(self, step: _Step) -> Any:
        task_id = self.task_ids[id(step)]
        common: dict[str, Any] = {"task_id": task_id, "allow_reuse": step.allow_reuse}
        if task_id != step.name:
            common["task_display_name"] = step.name
        if isinstance(step, DataTransferStep):
            from airflow_mlpipe.operators.data_transfer import DataTransferOperator

            return DataTransferOperator(
                source_data_reference=self._source(step, step.source),
                destination_data_reference=self._destination(step.destination),
                source_reference_type=step.source_reference_type,
                **common,
            )
        if isinstance(step, ParallelRunStep):
            return self._parallel(step, task_id)
        assert isinstance(step, PythonScriptStep)
        return self._script(step, common)

    def _parallel(self, step: ParallelRunStep, task_id: str) -> Any:
        """A task group named as the step's task id (v1's environment and compute target converted)."""
        from airflow_mlpipe.operators.parallel_run import ParallelRunStep as _ParallelRunStep

        config = step.config
        environment = config.environment
        if isinstance(environment, _V1Environment):
            environment = environment.to_mlpipe()
        config = dataclasses.replace(
            config,
            environment=environment,
            compute_target=resolve_compute(config.compute_target, self.computes),
            source_directory=config.source_directory or self.pipeline.default_source_directory or ".",
        )
        item = functools.partial(self._item, step)
        return _ParallelRunStep(
            name=task_id,
            parallel_run_config=config,
            inputs=[item(i) for i in step.inputs],
            output=step.output if isinstance(step.output, _OutputFileDatasetConfig) else None,
            side_inputs=[item(i) for i in step.side_inputs],
            arguments=[item(a) for a in step.arguments],
            allow_reuse=step.allow_reuse,
        )

    def _script(self, step: PythonScriptStep, common: dict[str, Any]) -> Any:
        from airflow_mlpipe.operators.python_script import PythonScriptOperator

        converted: dict[int, Any] = {}

        def item(value: Any) -> Any:
            if id(value) not in converted:
                converted[id(value)] = self._item(step, value)
            return converted[id(value)]

        runconfig = step.runconfig
        if isinstance(runconfig, RunConfiguration):
            runconfig = runconfig.to_mlpipe(self.computes)
        environment = _with_params(runconfig.environment if runconfig is not None else None, step.params)
        return PythonScriptOperator(
            script_name=step.script_name,
            source_directory=step.source_directory or self.pipeline.default_source_directory or ".",
            arguments=[item(a) for a in step.arguments],
            inputs=[item(i) for i in step.inputs],
            outputs=[item(o) for o in step.outputs],
            compute_target=resolve_compute(step.compute_target, self.computes)
            or (runconfig.target if runconfig else None),
            environment=environment,
            hash_paths=step.hash_paths or None,
            **common,
        )

    def _item(self, step: _Step, value: Any) -> Any:
        """A v1 argument, input or output as this package's."""
        if isinstance(value, PipelineData):
            return value if self.writer.get(id(value)) is step else value.as_input()
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], DataPathComputeBinding):
            param, binding = self._parameter(value[0]), value[1]
            return param.as_input(mode=binding.mode, path_on_compute=binding.path_on_compute)
        if isinstance(value, _PipelineParameter):
            value = self._parameter(value)
            return value.as_input() if isinstance(value, PipelineParameter) and value.chooses_dataset else value
        if isinstance(value, DataReference):
            return value.to_input()
        if isinstance(value, DataPath):
            return DataReference(value.datastore, value.name, value.path_on_datastore).to_input()
        return value

    def _parameter(self, param: Any) -> Any:
        """``param`` with the default ``submit(pipeline_parameters=...)`` gives it, if any."""
        if not isinstance(param, _PipelineParameter):
            raise ConfigError(f"({param!r}, DataPathComputeBinding(...)): the first item must be a PipelineParameter")
        return _with_default(param, self.parameters[param.name]) if param.name in self.parameters else param

    def _source(self, step: _Step, value: Any) -> Any:
        if isinstance(value, (DataReference, DataPath)):
            ref = value if isinstance(value, DataReference) else value.create_data_reference()
            return (ref.datastore, ref.path_on_datastore)
        if isinstance(value, _OutputFileDatasetConfig):
            return value.as_input()
        return value

    def _destination(self, value: Any) -> Any:
        if isinstance(value, (DataReference, DataPath)):
            ref = value if isinstance(value, DataReference) else value.create_data_reference()
            return (ref.datastore, ref.path_on_datastore)
        return value


def _with_default(param: _PipelineParameter, value: Any) -> _PipelineParameter:
    """``param`` with the default ``submit(pipeline_parameters=...)`` gave it (a dataset: as the parameter's text)."""
    if isinstance(param, PipelineParameter) and param.chooses_dataset and not isinstance(value, str):
        from airflow_mlpipe.datasets.parameter import parameter_text

        value = parameter_text(value.to_data_path() if isinstance(value, DataPath) else value)
    changed = dataclasses.replace(param, default_value=value)
    for hidden in ("_chooses", "_tabular_options"):
        if hasattr(param, hidden):
            object.__setattr__(changed, hidden, getattr(param, hidden))
    return changed


def _with_params(environment: Environment | None, params: Mapping[str, Any]) -> Environment | None:
    """v1 hands a step's ``params`` to its script as ``AML_PARAMETER_<name>`` environment variables."""
    if not params:
        return environment
    env_vars = {f"AML_PARAMETER_{k}": str(v) for k, v in params.items()}
    if environment is None:
        return Environment(env_vars=env_vars)
    return dataclasses.replace(environment, env_vars={**environment.env_vars, **env_vars})


def _closure(steps: list[_Step]) -> list[_Step]:
    """The steps given, then every step that writes data they read or that they run after, once each."""
    ordered: list[_Step] = []
    pending = list(steps)
    seen: set[int] = set()
    while pending:
        step = pending.pop(0)
        if id(step) in seen:
            continue
        seen.add(id(step))
        ordered.append(step)
        pending += step.after
        pending += [s for s in _known_writers(step) if id(s) not in seen]
    return ordered


def _known_writers(step: _Step) -> list[_Step]:
    found = []
    for value in step.items():
        output = value.output if isinstance(value, OutputInput) else value
        writer = getattr(output, "_v1_writer", None)
        if writer is not None and writer is not step:
            found.append(writer)
    return found


def _writers(steps: list[_Step]) -> dict[int, _Step]:
    """Which step writes each output: the one listing it as an output (or an output config in its arguments),
    else, for ``PipelineData`` only in arguments, the first step that takes it."""
    writer: dict[int, _Step] = {}
    for step in steps:
        for out in step.writes():
            if id(out) in writer and writer[id(out)] is not step:
                raise ConfigError(f"output {out.name!r} is written by steps {writer[id(out)].name!r} and {step.name!r}")
            writer[id(out)] = step
    for step in steps:
        for value in step.items():
            if isinstance(value, PipelineData):
                writer.setdefault(id(value), step)
    return writer


def _task_ids(steps: list[_Step]) -> dict[int, str]:
    ids: dict[int, str] = {}
    used: set[str] = set()
    for step in steps:
        base = _TASK_ID.sub("_", step.name).strip("_").lower() or "step"
        task_id, n = base, 2
        while task_id in used:
            task_id, n = f"{base}_{n}", n + 1
        used.add(task_id)
        ids[id(step)] = task_id
    return ids


def _caller_file() -> str:
    """The DAG file: the file that called ``submit`` (the first frame outside this package's v1 module)."""
    frame = inspect.currentframe()
    while frame is not None:
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and not os.path.abspath(filename).startswith(_HERE + os.sep):
            return os.path.abspath(filename)
        frame = frame.f_back
    return ""
