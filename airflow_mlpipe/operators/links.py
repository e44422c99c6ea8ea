"""Extra links from a task in the Airflow UI."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

RECORD_URI_KEY = "mlpipe_record_uri"


class StepRunLink(BaseOperatorLink):
    """The step run record (status, arguments, inputs, outputs, metrics, logs) in the default datastore."""

    name = "Step run record"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=RECORD_URI_KEY)
        return str(value) if value else ""
