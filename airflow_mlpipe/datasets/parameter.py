"""A step input whose dataset each run chooses: Azure ML's Dataset- and DataPath-valued ``PipelineParameter``.

The DAG gets a text param (a field of "Trigger DAG w/ config") that holds ``NAME`` or ``NAME:VERSION`` (a
registered dataset, ``latest`` by default) or a datastore path ``mlpipe://datastores/NAME/paths/PATH`` (also
written ``azureml://...``). When the step starts, the run's value is turned into the dataset and pinned as any
input is, so the reuse key covers the files the run chose.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.datasets.dataset import AbstractDataset, Dataset, FileDataset, TabularDataset
from airflow_mlpipe.datasets.paths import DataPath, to_data_path
from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.steps.params import PipelineParameter


class DatasetParameter(AbstractDataset):
    """The dataset named by the run's value of ``parameter``; ``tabular_options`` read a path as a table."""

    kind = "parameter"

    def __init__(self, parameter: PipelineParameter, tabular_options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if not isinstance(parameter.default_value, str):
            raise DatasetError(f"PipelineParameter {parameter.name!r}: a dataset parameter's default must be text")
        self.parameter = parameter
        self.tabular_options = dict(tabular_options) if tabular_options is not None else None
        self.for_value(parameter.default_value)  # a bad default fails when the DAG file is parsed

    def for_value(self, value: Any) -> AbstractDataset:
        """The dataset ``value`` names (no storage read)."""
        text = str(value).strip() if value is not None else ""
        if "://" in text:
            paths = (to_data_path(text),)
            if self.tabular_options is not None:
                return TabularDataset(paths, options=self.tabular_options)
            return FileDataset(paths)
        name, _, version = text.partition(":")
        if not name:
            raise DatasetError(
                f"PipelineParameter {self.parameter.name!r}: {value!r} names no dataset; write NAME, NAME:VERSION or "
                "mlpipe://datastores/DATASTORE/paths/PATH"
            )
        return Dataset.get_by_name(name, version or "latest")

    def for_run(self, params: Mapping[str, Any]) -> AbstractDataset:
        return self.for_value(params.get(self.parameter.name, self.parameter.default_value))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "parameter": self.parameter.name, "default": self.parameter.default_value}

    def __repr__(self) -> str:
        return f"DatasetParameter({self.parameter.name!r}, default={self.parameter.default_value!r})"


def parameter_text(value: object) -> str:
    """A dataset or datastore path as a parameter's text: what the trigger form shows and takes."""
    if isinstance(value, DataPath):
        return str(value)
    if isinstance(value, AbstractDataset):
        if value.name is not None:
            version = value.requested_version
            return value.name if version in (None, "latest") else f"{value.name}:{version}"
        paths = value.data_paths
        if len(paths) == 1:
            return str(paths[0])
    raise DatasetError(
        f"{value!r} cannot be a parameter's default: give a registered dataset (Dataset.get_by_name(...)), a dataset "
        "of one path, or a DataPath"
    )
