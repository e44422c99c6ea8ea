"""Garbage collection of what mlpipe wrote: ``collect_garbage`` plans (mark and sweep from the roots) and, unless
it is a dry run, deletes. ``mlpipe gc`` and ``DatastoreCleanupOperator`` are thin faces of it (docs/gc.md)."""

from __future__ import annotations

import datetime as dt

from airflow_mlpipe.gc.model import GcItem, GcPlan, GcReport, GcSettings, parse_duration
from airflow_mlpipe.gc.plan import make_plan
from airflow_mlpipe.storage.datastore import Datastore


def collect_garbage(
    settings: GcSettings | None = None, *, store: Datastore | None = None, now: dt.datetime | None = None
) -> GcReport:
    """Plan a gc of ``store`` (the default datastore unless given) and, unless ``settings.dry_run``, sweep it."""
    from airflow_mlpipe.gc.sweep import sweep

    settings = settings or GcSettings()
    store = store or Datastore.get_default()
    plan = make_plan(store, settings, now=now)
    if settings.dry_run:
        return GcReport(plan, dry_run=True)
    return sweep(plan, store)


__all__ = ["GcItem", "GcPlan", "GcReport", "GcSettings", "collect_garbage", "make_plan", "parse_duration"]
