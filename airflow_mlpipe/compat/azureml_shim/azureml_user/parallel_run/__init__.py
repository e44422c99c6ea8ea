"""``from azureml_user.parallel_run import EntryScript``: what a v1 entry script asks of its runtime.

``EntryScript().logger`` logs to the mini-batch's task log; ``output_dir`` is where a ``summary_only`` step's
script writes its own files (they become the step's output); ``working_dir`` is the process's folder.
"""

from __future__ import annotations

import logging
import os
import sys

_OUTPUT_DIR_ENV = "MLPIPE_PARALLEL_OUTPUT_DIR"


class EntryScript:
    """Per process, one shared state: every ``EntryScript()`` returns the same logger and folders."""

    _logger: logging.Logger | None = None

    @property
    def logger(self) -> logging.Logger:
        if EntryScript._logger is None:
            logger = logging.getLogger("azureml_user.parallel_run")
            if not logger.handlers:
                handler = logging.StreamHandler(sys.stdout)
                handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [pid %(process)d] %(message)s"))
                logger.addHandler(handler)
            logger.setLevel(os.environ.get("MLPIPE_PARALLEL_LOG_LEVEL", "INFO"))
            logger.propagate = False
            EntryScript._logger = logger
        return EntryScript._logger

    @property
    def output_dir(self) -> str:
        return os.environ.get(_OUTPUT_DIR_ENV) or os.path.join(os.getcwd(), "outputs")

    @property
    def working_dir(self) -> str:
        return os.getcwd()

    @property
    def agent_name(self) -> str:
        return f"process{os.getpid()}"

    @property
    def node_id(self) -> str:
        return os.environ.get("MLPIPE_MAP_INDEX", "0")

    @property
    def process_name(self) -> str:
        return self.agent_name


__all__ = ["EntryScript"]
