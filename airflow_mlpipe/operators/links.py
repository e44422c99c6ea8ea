"""Extra links from a task in the Airflow UI, and the XCom keys a step publishes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

from airflow_mlpipe.ui.urls import step_run_id_of_record_uri, step_run_page

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
    """The step run's page in the UI's "ML pipelines" view (status, arguments, inputs, outputs, metrics, logs).

    The UI shows only http(s) links, so the link is the page's address in Airflow's own UI, not the record's
    datastore URI (``file://``, ``az://``, ``s3://``), which the XCom keeps."""

    name = "Step run record"
    record_key = RECORD_URI_KEY

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.record_key)
        step_run_id = step_run_id_of_record_uri(str(value)) if value else None
        return step_run_page(step_run_id) if step_run_id else ""


class ReusedFromLink(StepRunLink):
    """For a reused step: the page of the earlier step run whose outputs it took (empty for a step that ran)."""

    name = "Reused step run"
    record_key = REUSED_FROM_KEY
