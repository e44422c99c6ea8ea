"""SDK v1's pipeline pieces: ``PipelineData``, ``OutputFileDatasetConfig``, ``PipelineParameter``,
``PythonScriptStep`` and ``DataTransferStep``. Steps are descriptions until ``Experiment.submit`` turns the
pipeline into a DAG (``v1.pipeline``), as v1's were until submitted."""

from __future__ import annotations

import dataclasses
import os
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from airflow_mlpipe.compat.data import DataPath
from airflow_mlpipe.core.checks import check_bool, check_list, check_relative_file, check_str_list, shown
from airflow_mlpipe.datasets.consumption import DatasetConsumptionConfig as _DatasetConsumptionConfig
from airflow_mlpipe.datasets.dataset import AbstractDataset, TabularDataset
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig as _OutputFileDatasetConfig
from airflow_mlpipe.datasets.output import OutputInput
from airflow_mlpipe.datasets.parameter import DatasetParameter, parameter_text
from airflow_mlpipe.datasets.paths import DataPath as _DataPath
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.parallel.config import ParallelRunConfig as _CoreParallelRunConfig
from airflow_mlpipe.steps.params import PipelineParameter as _PipelineParameter
from airflow_mlpipe.storage.datastore import Datastore


@dataclasses.dataclass(frozen=True)
class PipelineParameter(_PipelineParameter):
    """v1's ``PipelineParameter(name, default_value)``: a DAG param (a field of "Trigger DAG w/ config").

    A dataset or ``DataPath`` default makes a parameter that chooses a step input per run: the field then takes
    ``NAME``, ``NAME:VERSION`` or ``mlpipe://datastores/NAME/paths/PATH``. Give it to a step as v1 did:
    ``DatasetConsumptionConfig("name", param)``, ``(param, DataPathComputeBinding())``, or the parameter itself.
    """

    _chooses: ClassVar[str | None] = None  # "file" or "tabular" for a dataset-valued parameter
    _tabular_options: ClassVar[dict[str, Any] | None] = None

    def __post_init__(self) -> None:
        default = self.default_value
        if isinstance(default, DataPath):
            default = default.to_data_path()
        if isinstance(default, (AbstractDataset, _DataPath)):
            options = default.options if isinstance(default, TabularDataset) and default.name is None else None
            object.__setattr__(self, "default_value", parameter_text(default))
            object.__setattr__(self, "_chooses", "tabular" if isinstance(default, TabularDataset) else "file")
            object.__setattr__(self, "_tabular_options", options)
        super().__post_init__()

    @property
    def chooses_dataset(self) -> bool:
        return self._chooses is not None

    def as_input(self, name: str | None = None, mode: str | None = None, path_on_compute: str | None = None) -> Any:
        """The step input this parameter chooses (a dataset-valued parameter only)."""
        if not self.chooses_dataset:
            raise ConfigError(f"PipelineParameter {self.name!r} holds a value, not a dataset; use it in arguments")
        tabular = self._chooses == "tabular"
        options = self._tabular_options
        dataset = DatasetParameter(self, options if options is not None else ({} if tabular else None))
        consumption = _DatasetConsumptionConfig(check_name(name or self.name, what="input name"), dataset)
        mode = mode or ("direct" if tabular else "mount")
        if mode == "direct":
            return consumption
        return consumption.as_download(path_on_compute) if mode == "download" else consumption.as_mount(path_on_compute)


def _check_params(owner: str, params: object) -> dict[str, Any]:
    """``params``: names (the ``AML_PARAMETER_<name>`` variables) to values; None for none."""
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) and k for k in params):
        raise ConfigError(
            f"{owner}: params {shown(params)} must be a dict of names to values, e.g. params={{'mode': 'train'}}"
        )
    return dict(params)


def DatasetConsumptionConfig(
    name: str, dataset: Any, mode: str = "direct", path_on_compute: str | None = None
) -> _DatasetConsumptionConfig:
    """v1's ``DatasetConsumptionConfig(name, dataset, mode, path_on_compute)``; ``dataset`` may be a dataset-valued
    ``PipelineParameter``."""
    if isinstance(dataset, PipelineParameter) and dataset.chooses_dataset:
        return dataset.as_input(name, mode, path_on_compute)
    consumption = _DatasetConsumptionConfig(check_name(name, what="input name"), dataset)
    if mode == "direct":
        return consumption
    return consumption.as_download(path_on_compute) if mode == "download" else consumption.as_mount(path_on_compute)


class OutputFileDatasetConfig(_OutputFileDatasetConfig):
    """v1's ``OutputFileDatasetConfig(name, destination, source, partition_format)``."""

    def __init__(
        self,
        name: str | None = None,
        destination: tuple[Any, str] | None = None,
        source: str | None = None,
        partition_format: str | None = None,
    ) -> None:
        if source is not None:
            raise ConfigError(
                f"OutputFileDatasetConfig({name!r}, source={source!r}): the script writes the output where the "
                "argument points; drop source="
            )
        super().__init__(name, destination)

    def read_delimited_files(self, *args: Any, **kwargs: Any) -> TabularOutputInput:
        """This output, read by a later step as a table (``run.input_datasets[name].to_pandas_dataframe()``)."""
        return TabularOutputInput(self)

    def read_parquet_files(self, *args: Any, **kwargs: Any) -> TabularOutputInput:
        return TabularOutputInput(self)


class TabularOutputInput(OutputInput):
    def as_input(self, name: str | None = None) -> OutputInput:
        return OutputInput(self.output, check_name(name, what="input name") if name else self._name, self.mode)


class PipelineData(_OutputFileDatasetConfig):
    """v1's ``PipelineData``: written by the step that lists it in ``outputs``, read, as it is, by the steps that
    list it in ``inputs`` (or only in ``arguments``: then the first step that takes it writes it)."""

    def __init__(
        self,
        name: str,
        datastore: Datastore | None = None,
        output_name: str | None = None,
        output_mode: str = "mount",
        output_path_on_compute: str | None = None,
        output_overwrite: bool | None = None,
        data_type: str | None = None,
        is_directory: bool | None = None,
        pipeline_output_name: str | None = None,
        training_output: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            output_name or name, None if datastore is None else (datastore, "dataset/{run-id}/{output-name}")
        )
        owner = f"PipelineData({shown(name)})"
        for argument, value in (("is_directory", is_directory), ("output_overwrite", output_overwrite)):
            if value is not None:
                check_bool(owner, argument, value)
        if output_mode == "upload":
            self.as_upload(overwrite=bool(output_overwrite))
        elif output_mode != "mount":
            raise ConfigError(f"PipelineData {name!r}: output_mode {output_mode!r} must be 'mount' or 'upload'")

    # As read by a consumer (v1: the consumer sees a dataset or a path; here always the folder's local path).
    def as_dataset(self) -> PipelineData:
        return self

    def parse_delimited_files(self, *args: Any, **kwargs: Any) -> PipelineData:
        return self

    def parse_parquet_files(self, *args: Any, **kwargs: Any) -> PipelineData:
        return self

    def as_download(
        self, input_name: str | None = None, path_on_compute: str | None = None, overwrite: bool | None = None
    ) -> OutputInput:
        return self.as_input(input_name).as_download()

    def as_mount(self, input_name: str | None = None) -> OutputInput:  # type: ignore[override]
        return self.as_input(input_name)


class _Step(ABC):
    """What v1's steps share: a name (the task's display name), ``run_after`` and reuse."""

    def __init__(self, name: str, allow_reuse: bool) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"step name {name!r} must be a non-empty string")
        self.name = name
        self.allow_reuse = check_bool(f"step {name!r}", "allow_reuse", allow_reuse)
        self.after: list[_Step] = []

    def _claim_outputs(self) -> None:
        """Mark the outputs this step writes, so a pipeline given only a later step still finds this one."""
        for out in self.writes():
            out.__dict__["_v1_writer"] = self

    def run_after(self, step: _Step) -> None:
        self.after.append(step)

    @abstractmethod
    def items(self) -> list[Any]:
        """Everything that can connect this step to others (data it reads or writes)."""

    @abstractmethod
    def writes(self) -> list[_OutputFileDatasetConfig]:
        """Outputs this step writes for sure (listed as outputs, or an output config in its arguments)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class PythonScriptStep(_Step):
    """v1's ``PythonScriptStep``; ``params`` become ``AML_PARAMETER_<name>`` environment variables, as in v1."""

    def __init__(
        self,
        script_name: str,
        name: str | None = None,
        arguments: Sequence[Any] | None = None,
        compute_target: Any = None,
        runconfig: Any = None,
        runconfig_pipeline_params: Any = None,
        inputs: Iterable[Any] | None = None,
        outputs: Iterable[Any] | None = None,
        params: dict[str, Any] | None = None,
        source_directory: str | os.PathLike[str] | None = None,
        allow_reuse: bool = True,
        version: str | None = None,
        hash_paths: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name or script_name, allow_reuse)
        if runconfig_pipeline_params:
            raise ConfigError(
                f"step {self.name!r}: runconfig_pipeline_params is not supported; node counts belong to the compute "
                "target (KubernetesCompute resources)"
            )
        self.script_name = check_relative_file(
            f"step {self.name!r}", "script_name", script_name, inside="source_directory", example="train.py"
        )
        self.arguments = check_list(f"step {self.name!r}", "arguments", arguments, example="['--lr', 0.1]")
        self.compute_target = compute_target
        self.runconfig = runconfig
        self.inputs = check_list(f"step {self.name!r}", "inputs", inputs, example="[dataset.as_named_input('raw')]")
        self.outputs = check_list(f"step {self.name!r}", "outputs", outputs, example="[OutputFileDatasetConfig('out')]")
        self.params = _check_params(f"step {self.name!r}", params)
        self.source_directory = os.fspath(source_directory) if source_directory is not None else None
        self.hash_paths = list(check_str_list(f"step {self.name!r}", "hash_paths", hash_paths, example="utils/"))
        for value in self.params.values():
            if isinstance(value, _PipelineParameter):
                raise ConfigError(
                    f"step {self.name!r}: a PipelineParameter in params is not supported; pass it in arguments"
                )
        self._claim_outputs()

    def items(self) -> list[Any]:
        return [*self.arguments, *self.inputs, *self.outputs]

    def writes(self) -> list[_OutputFileDatasetConfig]:
        listed = [o for o in self.outputs if isinstance(o, _OutputFileDatasetConfig)]
        configs = [a for a in self.arguments if type(a) is not PipelineData and isinstance(a, _OutputFileDatasetConfig)]
        return [*listed, *configs]


class DataTransferStep(_Step):
    """v1's ``DataTransferStep``: a verified, incremental copy (no Data Factory compute needed)."""

    def __init__(
        self,
        name: str,
        source_data_reference: Any = None,
        destination_data_reference: Any = None,
        compute_target: Any = None,
        source_reference_type: str | None = None,
        destination_reference_type: str | None = None,
        allow_reuse: bool = True,
    ) -> None:
        super().__init__(name, allow_reuse)
        if source_data_reference is None or destination_data_reference is None:
            raise ConfigError(f"DataTransferStep {name!r}: give source_data_reference and destination_data_reference")
        for argument, value in (
            ("source_data_reference", source_data_reference),
            ("destination_data_reference", destination_data_reference),
        ):
            if isinstance(value, (bool, int, float, bytes)):
                raise ConfigError(
                    f"DataTransferStep {name!r}: {argument} {value!r} is not a data reference; give a "
                    "DataReference (datastore.path('folder')), a dataset input or an OutputFileDatasetConfig"
                )
        for argument, kind in (
            ("source_reference_type", source_reference_type),
            ("destination_reference_type", destination_reference_type),
        ):
            if kind is not None and kind not in ("file", "directory"):
                raise ConfigError(
                    f"DataTransferStep {name!r}: {argument} {kind!r} must be 'file' or 'directory' (or left out)"
                )
        self.source = source_data_reference
        self.destination = destination_data_reference
        self.source_reference_type = source_reference_type or "directory"
        self._claim_outputs()

    def items(self) -> list[Any]:
        return [self.source, self.destination]

    def writes(self) -> list[_OutputFileDatasetConfig]:
        return [self.destination] if isinstance(self.destination, _OutputFileDatasetConfig) else []


def ParallelRunConfig(
    environment: Any = None,
    entry_script: str = "",
    error_threshold: int = 10,
    output_action: str = "append_row",
    compute_target: Any = None,
    node_count: int = 1,
    process_count_per_node: int | None = None,
    mini_batch_size: int | str | None = None,
    source_directory: str | os.PathLike[str] | None = None,
    description: str | None = None,
    logging_level: str = "INFO",
    run_invocation_timeout: int = 60,
    run_max_try: int = 3,
    append_row_file_name: str | None = None,
    allowed_failed_count: int | None = None,
    allowed_failed_percent: float | None = None,
    partition_keys: list[str] | None = None,
    environment_variables: dict[str, str] | None = None,
) -> Any:
    """v1's ``ParallelRunConfig`` with v1's argument order; ``environment`` and ``compute_target`` may be v1's
    objects (converted when the pipeline is submitted)."""
    if partition_keys:
        raise ConfigError(
            f"ParallelRunConfig({entry_script!r}): partition_keys is not supported; mini-batches are cut by "
            "mini_batch_size"
        )
    return _V1ParallelRunConfig(
        entry_script=entry_script,
        error_threshold=error_threshold,
        output_action=output_action,
        compute_target=compute_target,
        node_count=node_count,
        environment=environment,
        process_count_per_node=process_count_per_node,
        mini_batch_size=mini_batch_size,
        source_directory=source_directory,
        description=description,
        logging_level=logging_level,
        run_invocation_timeout=run_invocation_timeout,
        run_max_try=run_max_try,
        append_row_file_name=append_row_file_name,
        allowed_failed_count=allowed_failed_count,
        allowed_failed_percent=allowed_failed_percent,
        environment_variables=dict(environment_variables or {}),
    )


@dataclasses.dataclass(frozen=True)
class _V1ParallelRunConfig(_CoreParallelRunConfig):
    """The config v1's ``ParallelRunConfig`` makes: its ``environment`` and ``compute_target`` may also be v1's
    (a v1 ``Environment``, a compute target's name), converted when the pipeline is submitted."""

    def _check_targets(self) -> None:
        from airflow_mlpipe.compute.base import ComputeTarget as _CoreTarget
        from airflow_mlpipe.compute.environment import Environment as _CoreEnvironment
        from airflow_mlpipe.v1.environment import ComputeTarget as _V1Target
        from airflow_mlpipe.v1.environment import Environment as _V1Environment

        if self.environment is not None and not isinstance(self.environment, (_CoreEnvironment, _V1Environment)):
            raise ConfigError(
                f"ParallelRunConfig: environment {shown(self.environment)} must be an Environment, not "
                f"{type(self.environment).__name__}; give Environment(name=...)"
            )
        target = self.compute_target
        if target is not None and not isinstance(target, (_CoreTarget, _V1Target, str, tuple)):
            raise ConfigError(
                f"ParallelRunConfig: compute_target {shown(target)} must be a compute target or its name, not "
                f"{type(target).__name__}; give e.g. compute_target='cpu-cluster'"
            )


class ParallelRunStep(_Step):
    """v1's ``ParallelRunStep``: a task group of a planning task, a mapped task per mini-batch and a gather task."""

    def __init__(
        self,
        name: str,
        parallel_run_config: Any,
        inputs: Sequence[Any],
        output: Any = None,
        side_inputs: Sequence[Any] | None = None,
        arguments: Sequence[Any] | None = None,
        allow_reuse: bool = True,
    ) -> None:
        super().__init__(name, allow_reuse)
        owner = f"step {self.name!r}"
        self.config = parallel_run_config
        self.inputs = check_list(owner, "inputs", inputs, example="[dataset.as_named_input('batch')]")
        self.output = output
        self.side_inputs = check_list(owner, "side_inputs", side_inputs, example="[labels.as_named_input('labels')]")
        self.arguments = check_list(owner, "arguments", arguments, example="['--threshold', 0.5]")
        self._claim_outputs()

    def items(self) -> list[Any]:
        return [*self.inputs, *self.side_inputs, *self.arguments, *([self.output] if self.output is not None else [])]

    def writes(self) -> list[_OutputFileDatasetConfig]:
        return [self.output] if isinstance(self.output, _OutputFileDatasetConfig) else []
