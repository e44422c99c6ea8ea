"""The plugin's task listener: when an mlpipe step finishes, index it under the dataset versions it read, so the
dataset page shows its readers (``ui.lineage``). Runs in the task's process; a failure here never fails the task."""

from __future__ import annotations

import logging
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger(__name__)


def _is_step(task_instance: Any) -> bool:
    from airflow_mlpipe.operators.data_transfer import DataTransferOperator
    from airflow_mlpipe.operators.python_script import PythonScriptOperator

    return isinstance(getattr(task_instance, "task", None), PythonScriptOperator | DataTransferOperator)


@hookimpl
def on_task_instance_success(previous_state: Any, task_instance: Any) -> None:
    if not _is_step(task_instance):
        return
    try:
        from airflow_mlpipe.core.attempt import AttemptId
        from airflow_mlpipe.steps import records
        from airflow_mlpipe.storage.datastore import Datastore
        from airflow_mlpipe.ui.lineage import note_readers

        store = Datastore.get_default()
        record = records.find_record(AttemptId.of(task_instance).step_run_id, store)
        if record is not None:
            note_readers(record, store)
    except Exception as exc:
        log.warning("could not index the dataset versions %s read: %s", task_instance.task_id, exc)
