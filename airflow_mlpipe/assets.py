"""Airflow Assets for datasets: each new dataset version is an asset event on ``mlpipe://datasets/<name>``.

Schedule a DAG on a dataset with ``schedule=[dataset_asset("iris")]`` (or ``Asset("mlpipe://datasets/iris")``).
Events go out through one ``AssetAlias`` declared at parse time, so a task emits an event only when it really
adds a version (registering unchanged data adds none).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset, AssetAlias

from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.ui.urls import dataset_page

DATASET_URI_PREFIX = "mlpipe://datasets/"
DATASETS_ALIAS = "mlpipe-datasets"


def dataset_asset_uri(name: str) -> str:
    # A dataset registered before names ending in '.' were refused can still be scheduled on.
    return DATASET_URI_PREFIX + check_name(name, existing=True)


def dataset_asset(name: str) -> Asset:
    """The Airflow Asset that stands for registered dataset ``name``."""
    uri = dataset_asset_uri(name)
    return Asset(name=uri, uri=uri)


def datasets_alias() -> AssetAlias:
    return AssetAlias(DATASETS_ALIAS)


def emit_dataset_event(context: Mapping[str, Any], registered: Any, producer: Mapping[str, Any]) -> None:
    """Record an asset event for a newly registered version (``registered`` from ``dataset.register``)."""
    if not registered.is_new_version:
        return
    record = registered.record
    extra = {
        "dataset": record.name,
        "version": record.version,
        "manifest": record.manifest.summary(),
        "producer": dict(producer),
        "page": dataset_page(record.name, record.version),  # its page in the ML view, with files and lineage
    }
    context["outlet_events"][datasets_alias()].add(dataset_asset(record.name), extra=extra)


def lineage_from_context(context: Mapping[str, Any]) -> dict[str, Any]:
    ti = context.get("ti") or context.get("task_instance")
    dag_run = context.get("dag_run")
    return {
        "dag_id": getattr(ti, "dag_id", None),
        "run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "task_id": getattr(ti, "task_id", None),
        "try_number": getattr(ti, "try_number", None),
        "map_index": getattr(ti, "map_index", -1),
    }
