"""Runs whenever a new version of dataset ``iris_raw`` is registered (see ``dataset_producer.py``)."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from airflow_mlpipe.assets import dataset_asset

with DAG(
    dag_id="mlpipe_dataset_consumer",
    schedule=[dataset_asset("iris_raw")],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["mlpipe", "example"],
    doc_md=__doc__,
):

    @task
    def summarize(**context: object) -> dict[str, object]:
        from airflow_mlpipe import Dataset

        events = context["triggering_asset_events"]  # type: ignore[index]
        versions = [e.extra.get("version") for evs in events.values() for e in evs]  # type: ignore[attr-defined]
        frame = Dataset.get_by_name("iris_raw").to_pandas_dataframe()
        print(f"iris_raw versions {versions}: {len(frame)} rows, columns {list(frame.columns)}")
        return {"versions": versions, "rows": len(frame)}

    summarize()
