"""A weekly maintenance DAG: delete what old step runs left, keeping what reuse, lineage and running steps need.

Azure ML never deletes intermediate data written through ``OutputFileDatasetConfig``; here a task does, with the
same rules as ``mlpipe gc`` (docs/gc.md): step runs older than 30 days go with their outputs, records, index
entries and snapshots, except each task's runs in its 3 newest DAG runs, anything a registered dataset version
names, and anything running or made within the last hour. The first task only reports what would go. The DAG
is paused when first seen: unpause it once the dry run's report reads right.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import DatastoreCleanupOperator

with DAG(
    dag_id="mlpipe_datastore_cleanup",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    is_paused_upon_creation=True,  # it deletes data: it starts once someone unpauses it
    tags=["mlpipe", "example", "maintenance"],
    doc_md=__doc__,
):
    preview = DatastoreCleanupOperator(task_id="preview", older_than="30d", keep_last=3, dry_run=True)
    cleanup = DatastoreCleanupOperator(task_id="cleanup", older_than="30d", keep_last=3, grace="1h")
    preview >> cleanup
