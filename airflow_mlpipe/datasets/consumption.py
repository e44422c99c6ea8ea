"""How a step consumes a dataset: ``dataset.as_named_input("iris").as_download()``, as in Azure ML."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.core.checks import check_choice
from airflow_mlpipe.core.paths import normalize_relpath
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.exceptions import DatasetError

if TYPE_CHECKING:
    from airflow_mlpipe.datasets.dataset import AbstractDataset

MODES = ("direct", "download", "mount")


@dataclass(frozen=True)
class DatasetConsumptionConfig:
    """A dataset given to a step under ``name``: ``direct`` (the dataset object, for Tabular), ``download``
    (files copied to the compute) or ``mount`` (a read-only view)."""

    name: str
    dataset: AbstractDataset
    mode: str = "direct"
    path_on_compute: str | None = None

    def __post_init__(self) -> None:
        from airflow_mlpipe.datasets.dataset import AbstractDataset

        check_name(self.name, what="input name")
        if not isinstance(self.dataset, AbstractDataset):
            raise DatasetError(
                f"input {self.name!r}: {self.dataset!r} is not a dataset; a PipelineParameter (or anything chosen per "
                "run) cannot be an input's dataset: give Dataset.get_by_name('NAME') (the run pins the latest "
                "version) or a dataset definition"
            )
        check_choice(f"input {self.name!r}", "mode", self.mode, MODES)
        _check_path_on_compute(self.path_on_compute)

    def as_download(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return replace(self, mode="download", path_on_compute=_check_path_on_compute(path_on_compute))

    def as_mount(self, path_on_compute: str | None = None) -> DatasetConsumptionConfig:
        return replace(self, mode="mount", path_on_compute=_check_path_on_compute(path_on_compute))

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "mode": self.mode,
            "path_on_compute": self.path_on_compute,
            "dataset": self.dataset.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetConsumptionConfig:
        from airflow_mlpipe.datasets.dataset import AbstractDataset

        mode = str(data.get("mode", "direct"))
        if mode not in MODES:
            raise DatasetError(f"input {data.get('name')!r}: mode {mode!r} is not one of {MODES}")
        return cls(
            name=str(data["name"]),
            dataset=AbstractDataset.from_dict(data["dataset"]),
            mode=mode,
            path_on_compute=data.get("path_on_compute"),
        )


def _check_path_on_compute(path: str | None) -> str | None:
    if path is None:
        return None
    if not isinstance(path, str) or os.path.isabs(path) or path.startswith("/") or ".." in path.split("/"):
        raise DatasetError(
            f"path_on_compute {path!r} must be a relative path, e.g. 'raw/iris': the input is placed there inside the "
            "step's inputs folder, and the script gets the full path in its arguments and run.input_datasets; "
            "absolute paths and '..' are not supported"
        )
    return normalize_relpath(path, datastore="path_on_compute") or None
