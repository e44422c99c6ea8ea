"""``ParallelRunConfig``: how a batch-scoring step cuts its input and runs its entry script (SDK v1 names)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.compute.base import ComputeTarget
from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.core.checks import (
    check_choice,
    check_instance,
    check_relative_file,
    check_str_mapping,
    check_text,
)
from airflow_mlpipe.exceptions import ConfigError

APPEND_ROW = "append_row"
_LOGGING_LEVELS = tuple(logging.getLevelNamesMapping())  # what the worker's logger.setLevel takes
SUMMARY_ONLY = "summary_only"
DEFAULT_APPEND_ROW_FILE = "parallel_run_step.txt"
# v1's defaults: 10 files per mini-batch for a File dataset, 1 MB for a Tabular dataset.
DEFAULT_FILES_PER_BATCH = 10
DEFAULT_TABULAR_BATCH_BYTES = 1024 * 1024
_UNITS = {"": 1, "B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?B?)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ParallelRunConfig:
    """v1's ``ParallelRunConfig``.

    :param entry_script: the script with ``init()`` and ``run(mini_batch)``, relative to ``source_directory``.
    :param error_threshold: failed items (files of a File dataset, rows of a Tabular one) tolerated over the whole
        input; -1 tolerates any number. ``allowed_failed_count``/``allowed_failed_percent`` override it.
    :param output_action: ``"append_row"`` (every result line, in mini-batch order, in ``append_row_file_name``)
        or ``"summary_only"`` (the entry script writes its own output; only the summary is kept).
    :param mini_batch_size: files per mini-batch (File dataset), or a size such as ``"10MB"`` (Tabular dataset).
    :param node_count: mini-batches running at once (mapped task instances, each on ``compute_target``).
    :param process_count_per_node: worker processes inside each mapped task; each calls ``init()`` once.
    :param run_invocation_timeout: seconds one ``run()`` call may take.
    :param run_max_try: tries of a mini-batch whose ``run()`` raised or timed out, before its items count as failed.
    """

    entry_script: str
    error_threshold: int = 10
    output_action: str = APPEND_ROW
    compute_target: ComputeTarget | None = None
    node_count: int = 1
    environment: Environment | None = None
    process_count_per_node: int | None = None
    mini_batch_size: int | str | None = None
    source_directory: str | os.PathLike[str] | None = None
    description: str | None = None
    logging_level: str = "INFO"
    run_invocation_timeout: int = 60
    run_max_try: int = 3
    append_row_file_name: str | None = None
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None
    environment_variables: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.entry_script, str) or not self.entry_script.strip():
            raise ConfigError(f"ParallelRunConfig: entry_script {self.entry_script!r} must name a Python file")
        check_relative_file(
            "ParallelRunConfig", "entry_script", self.entry_script, inside="source_directory", example="score.py"
        )
        self._check_targets()
        source = self.source_directory
        if source is not None and (not isinstance(source, (str, os.PathLike)) or not os.fspath(source).strip()):
            raise ConfigError(
                f"ParallelRunConfig: source_directory {source!r} must be a folder path (e.g. 'scoring'), relative to "
                "the DAG file or absolute"
            )
        if self.output_action not in (APPEND_ROW, SUMMARY_ONLY):
            raise ConfigError(
                f"ParallelRunConfig: output_action {self.output_action!r} must be 'append_row' or 'summary_only'"
            )
        _whole("error_threshold", self.error_threshold, minimum=-1)
        _whole("node_count", self.node_count, minimum=1)
        _whole(
            "process_count_per_node",
            1 if self.process_count_per_node is None else self.process_count_per_node,
            minimum=1,
        )
        _whole("run_invocation_timeout", self.run_invocation_timeout, minimum=1)
        _whole("run_max_try", self.run_max_try, minimum=1)
        if self.allowed_failed_count is not None:
            _whole("allowed_failed_count", self.allowed_failed_count, minimum=-1)
        percent = self.allowed_failed_percent
        if percent is not None and (
            isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100
        ):
            raise ConfigError(f"ParallelRunConfig: allowed_failed_percent {percent!r} must be between 0 and 100")
        name = self.append_row_file_name
        if name is not None and (not isinstance(name, str) or "/" in name or not name.strip()):
            raise ConfigError(f"ParallelRunConfig: append_row_file_name {name!r} must be a plain file name")
        if self.mini_batch_size is not None:
            parse_size(self.mini_batch_size)
        check_choice("ParallelRunConfig", "logging_level", self.logging_level, _LOGGING_LEVELS)
        check_text("ParallelRunConfig", "description", self.description, example="score the images", optional=True)
        check_str_mapping(
            "ParallelRunConfig", "environment_variables", self.environment_variables, example="{'OMP_NUM_THREADS': '1'}"
        )

    def _check_targets(self) -> None:
        """``environment`` and ``compute_target``: refused here rather than by the step's planning task."""
        check_instance(
            "ParallelRunConfig",
            "environment",
            self.environment,
            Environment,
            fix="give Environment(name=..., pip_packages=[...])",
        )
        check_instance(
            "ParallelRunConfig",
            "compute_target",
            self.compute_target,
            ComputeTarget,
            fix="give LocalCompute(), DockerCompute(image=...) or KubernetesCompute(image=...)",
        )

    @property
    def processes(self) -> int:
        return int(self.process_count_per_node or 1)

    @property
    def result_file(self) -> str:
        return self.append_row_file_name or DEFAULT_APPEND_ROW_FILE

    def batch_size(self, kind: str) -> int:
        """Files per mini-batch (``kind == "file"``) or bytes per mini-batch (``"tabular"``)."""
        if self.mini_batch_size is None:
            return DEFAULT_TABULAR_BATCH_BYTES if kind == "tabular" else DEFAULT_FILES_PER_BATCH
        return parse_size(self.mini_batch_size)

    def settings(self) -> dict[str, Any]:
        """What decides a mini-batch's results besides the script and its items (part of its reuse key)."""
        return {
            "process_count_per_node": self.processes,
            "run_invocation_timeout": self.run_invocation_timeout,
            "run_max_try": self.run_max_try,
            "output_action": self.output_action,
            "logging_level": self.logging_level,
        }

    def failure_limit(self, total_items: int) -> int | None:
        """How many failed items the whole input may have; None: any number."""
        if self.allowed_failed_percent is not None:
            return int(total_items * float(self.allowed_failed_percent) / 100)
        limit = self.allowed_failed_count if self.allowed_failed_count is not None else self.error_threshold
        return None if limit < 0 else int(limit)


def parse_size(value: int | str) -> int:
    """``10`` → 10; ``"10MB"`` → 10 MiB; ``"1.5 KB"`` → 1536."""
    if isinstance(value, bool):
        raise ConfigError(f"ParallelRunConfig: mini_batch_size {value!r} must be a count or a size like '10MB'")
    if isinstance(value, float):
        raise ConfigError(
            f"ParallelRunConfig: mini_batch_size {value!r} must be a whole count of files (e.g. 100) or a size like "
            "'10MB'"
        )
    if isinstance(value, int):
        if value < 1:
            raise ConfigError(f"ParallelRunConfig: mini_batch_size {value!r} must be at least 1")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError(f"ParallelRunConfig: mini_batch_size {value!r} must be a count or a size like '10MB'")
    unit = match.group(2).upper()
    if not unit and not match.group(1).isdigit():
        raise ConfigError(
            f"ParallelRunConfig: mini_batch_size {value!r} must be a whole count of files (e.g. '100') or a size "
            "with a unit like '1.5MB'"
        )
    unit = unit if unit.endswith("B") or not unit else unit + "B"
    size = int(float(match.group(1)) * _UNITS[unit])
    if size < 1:
        raise ConfigError(f"ParallelRunConfig: mini_batch_size {value!r} must be at least 1")
    return size


def _whole(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"ParallelRunConfig: {name} {value!r} must be a whole number of at least {minimum}")
