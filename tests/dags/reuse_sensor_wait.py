"""A DAG that waits for a reuse key (given in the trigger conf) with ``ReuseSensor``: deferred while another run
holds the key's lease, then the entry as XCom. A second sensor shows ``on_missing="succeed"``."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from airflow_mlpipe.sensors.reuse import ReuseSensor

with DAG(
    "reuse_sensor_wait",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    params={"key": Param("0" * 32, type="string")},
):
    missing = ReuseSensor(task_id="nothing_to_wait_for", key="{{ params.key }}-missing", on_missing="succeed")
    wait = ReuseSensor(task_id="wait", key="{{ params.key }}", poke_interval=0.2, timeout=120, deferrable=True)
    missing >> wait
