"""Extra links from a task in the Airflow UI, and the XCom keys a step publishes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

# The XComs of a step: its record and the earlier record it reused (read by the links below), its outputs'
# locations (read by the steps that take them as inputs) and a summary of its metrics.
RECORD_URI_KEY = "mlpipe_record_uri"
REUSED_FROM_KEY = "mlpipe_reused_from_uri"
OUTPUTS_KEY = "mlpipe_outputs"
METRICS_KEY = "mlpipe_metrics"


class StepRunLink(BaseOperatorLink):
    """The step run record (status, arguments, inputs, outputs, metrics, logs) in the default datastore."""

    name = "Step run record"
    record_key = RECORD_URI_KEY

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.record_key)
        return str(value) if value else ""


class ReusedFromLink(StepRunLink):
    """For a reused step: the record of the earlier step run whose outputs it took (empty for a step that ran)."""

    name = "Reused step run"
    record_key = REUSED_FROM_KEY
