"""``DatastoreCleanupOperator``: the maintenance task that runs ``mlpipe gc`` from a DAG (see docs/gc.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_mlpipe.core.checks import check_airflow_id, check_bool, check_text, check_whole_number
from airflow_mlpipe.gc.model import GcSettings
from airflow_mlpipe.operators.failures import fails_cleanly


class DatastoreCleanupOperator(BaseOperator):
    """Delete what mlpipe wrote and nothing needs any more: old step runs and their outputs, records, index
    entries, snapshots and stale leases. Registered dataset versions, recent and running step runs, held leases
    and whatever a kept run uses always stay. The same function as ``mlpipe gc``.

    :param older_than: keep step runs made more recently than this: ``"30d"``, ``"12h"``, ``"90m"``, ``"45s"``,
        ``"2w"``, or a Python number of seconds (``3600``); a text without a unit (``"30"``) is refused.
    :param keep_last: also keep each task's successful runs in its ``keep_last`` newest DAG runs.
    :param only_dag_id: collect only what the step runs of this DAG left.
    :param grace: never delete anything made more recently than this.
    :param dry_run: log what would go and delete nothing.

    Returns (XCom) the report without its item list: counts, groups by kind, DAG and rule, bytes reclaimed.
    """

    template_fields: Sequence[str] = ("older_than", "grace", "only_dag_id")
    ui_color = "#f5e6cc"

    def __init__(
        self,
        *,
        older_than: str | float = "30d",
        keep_last: int = 0,
        only_dag_id: str | None = None,
        grace: str | float = "1h",
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.older_than = older_than
        self.keep_last = check_whole_number("DatastoreCleanupOperator", "keep_last", keep_last, minimum=0, example=3)
        self.only_dag_id = check_text(
            "DatastoreCleanupOperator", "only_dag_id", only_dag_id, example="train", optional=True
        )
        if self.only_dag_id is not None and "{{" not in self.only_dag_id:
            check_airflow_id(
                "DatastoreCleanupOperator: only_dag_id", self.only_dag_id, kind="DAG id", example="only_dag_id='train'"
            )
        self.grace = grace
        # (BaseOperator.dry_run is a method of its own)
        self.report_only = check_bool("DatastoreCleanupOperator", "dry_run", dry_run)
        if not any("{{" in str(v) for v in (older_than, grace)):
            self._settings()  # a bad duration fails when the DAG is parsed, not weeks later

    def _settings(self) -> GcSettings:
        return GcSettings.of(
            older_than=self.older_than,
            keep_last=self.keep_last,
            dag_id=self.only_dag_id,
            grace=self.grace,
            dry_run=self.report_only,
        )

    @fails_cleanly
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlpipe.gc import collect_garbage
        from airflow_mlpipe.gc.report import report_lines

        report = collect_garbage(self._settings())
        for line in report_lines(report):
            self.log.info("%s", line)
        if report.errors:
            self.log.warning("%d paths could not be deleted; the next run tries again", len(report.errors))
        return report.to_dict(items=False)
