"""Azure Blob (Azurite) → S3 (moto), datastores given by the test through AIRFLOW_CONN_* variables."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import DataTransferOperator

with DAG("transfer_cloud", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    DataTransferOperator(
        task_id="copy",
        source_data_reference=("az_src", os.environ.get("TRANSFER_SRC", "in")),
        destination_data_reference=("s3_dst", os.environ.get("TRANSFER_DST", "out")),
        source_reference_type=os.environ.get("TRANSFER_KIND", "directory"),
        overwrite=os.environ.get("TRANSFER_OVERWRITE") == "1",
        register_on_complete=os.environ.get("TRANSFER_REGISTER") or None,
        retries=0,
    )
