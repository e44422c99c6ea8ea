"""SDK v1's ``Dataset`` entry point: ``Dataset.get_by_name(ws, name)``, ``Dataset.File.from_files``,
``Dataset.Tabular.from_delimited_files`` / ``from_parquet_files``, with v1's argument lists.

``validate`` defaults to False (v1: True): a definition is checked when a step pins its files, so a DAG file that
defines datasets reads no storage while it is parsed. Pass ``validate=True`` to check at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.compat.data import to_any_data_path
from airflow_mlpipe.core.checks import check_bool
from airflow_mlpipe.datasets.dataset import AbstractDataset, FileDataset, TabularDataset
from airflow_mlpipe.datasets.dataset import Dataset as _Dataset


class _File:
    @staticmethod
    def from_files(
        path: Any, validate: bool = False, partition_format: str | None = None, is_file: bool = False
    ) -> FileDataset:
        check_bool("Dataset.File.from_files", "is_file", is_file)
        return _Dataset.File.from_files(to_any_data_path(path), validate=validate)


class _Tabular:
    @staticmethod
    def from_delimited_files(
        path: Any,
        validate: bool = False,
        include_path: bool = False,
        infer_column_types: bool = True,
        set_column_types: Mapping[str, Any] | None = None,
        separator: str = ",",
        header: Any = True,
        partition_format: str | None = None,
        support_multi_line: bool = False,
        empty_as_string: bool = False,
        encoding: str = "utf8",
    ) -> TabularDataset:
        owner = "Dataset.Tabular.from_delimited_files"
        check_bool(owner, "support_multi_line", support_multi_line)
        check_bool(owner, "empty_as_string", empty_as_string)
        return _Dataset.Tabular.from_delimited_files(
            to_any_data_path(path),
            validate=validate,
            include_path=include_path,
            infer_column_types=infer_column_types,
            set_column_types={k: str(v) for k, v in (set_column_types or {}).items()},
            separator=separator,
            header=_header(header),
            encoding=encoding,
        )

    @staticmethod
    def from_parquet_files(
        path: Any,
        validate: bool = False,
        include_path: bool = False,
        set_column_types: Mapping[str, Any] | None = None,
        partition_format: str | None = None,
    ) -> TabularDataset:
        return _Dataset.Tabular.from_parquet_files(
            to_any_data_path(path),
            validate=validate,
            include_path=include_path,
            set_column_types={k: str(v) for k, v in (set_column_types or {}).items()},
        )


class Dataset:
    """``Dataset.get_by_name(ws, name, version)``, ``Dataset.File``, ``Dataset.Tabular``."""

    File = _File
    Tabular = _Tabular

    @staticmethod
    def get_by_name(workspace: Any, name: str, version: int | str = "latest") -> AbstractDataset:
        return _Dataset.get_by_name(name, version)

    @staticmethod
    def get_by_id(workspace: Any, id: str) -> AbstractDataset:
        """``id`` as this package writes it: ``NAME:VERSION``."""
        name, _, version = str(id).partition(":")
        return _Dataset.get_by_name(name, version or "latest")


def _header(header: Any) -> bool:
    """v1's ``PromoteHeadersBehavior`` (NO_HEADERS = 0, the others promote the first line) or a bool."""
    value = getattr(header, "value", header)
    if isinstance(value, int) and not isinstance(value, bool) and value in (0, 1, 2, 3):
        return value != 0
    return check_bool("Dataset.Tabular.from_delimited_files", "header", value)
