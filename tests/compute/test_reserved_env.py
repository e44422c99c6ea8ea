"""Every variable the runner sets for a step's script is reserved: a DAG's value for one would be replaced
silently (``MLPIPE_DAG_ID``, ``MLPIPE_LOGICAL_DATE``...), so it is refused when the step is defined."""

from __future__ import annotations

import dataclasses
import datetime as dt

from airflow_mlpipe.compute.validation import RESERVED_ENV
from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.operators.script_work import airflow_context


def test_every_variable_the_runner_sets_for_the_script_is_reserved() -> None:
    """The runner's ``airflow_env`` sets ``MLPIPE_<KEY>`` for each field of the attempt and of the task's context,
    and ``MLPIPE_PARAMS`` and ``MLPIPE_STEP_RUN_ID``."""
    moment = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    context = {"logical_date": moment, "data_interval_start": moment, "data_interval_end": moment}
    keys = [f.name for f in dataclasses.fields(AttemptId)] + list(airflow_context(context, {}))
    assert keys and {f"MLPIPE_{key.upper()}" for key in keys} | {"MLPIPE_STEP_RUN_ID"} <= RESERVED_ENV
