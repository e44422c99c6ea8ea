"""A step failure is one ERROR line in the task log and no traceback: ``fails_cleanly`` and ``StepFailedError``."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from airflow_mlpipe.exceptions import ConfigError, StepFailedError
from airflow_mlpipe.operators.failures import fails_cleanly, pushed
from airflow_mlpipe.operators.links import RECORD_URI_KEY, REUSED_FROM_KEY, ReusedFromLink, StepRunLink


class _TI:
    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class _Step:
    task_id = "train"
    operator_extra_links = (StepRunLink(), ReusedFromLink())
    log = logging.getLogger("test.step_failures")

    def __init__(self, error: BaseException, *, record_pushed: bool = False) -> None:
        self.error = error
        self.record_pushed = record_pushed

    @fails_cleanly
    def execute(self, context: dict[str, Any]) -> None:
        if self.record_pushed:
            context["ti"].xcom_push(key=RECORD_URI_KEY, value="file:///store/_mlpipe/runs/x/record.json")
            pushed(self, RECORD_URI_KEY)
        raise self.error


def test_an_mlpipe_error_becomes_one_line_naming_the_step(caplog: pytest.LogCaptureFixture) -> None:
    ti = _TI()
    with caplog.at_level(logging.ERROR), pytest.raises(StepFailedError) as failed:
        _Step(ConfigError("output 'model': bad destination")).execute(context={"ti": ti})
    assert str(failed.value) == "step 'train': output 'model': bad destination"
    # Airflow's task runner logs a SystemExit as "Task exited exit_code=1", with no traceback, and retries it
    assert isinstance(failed.value, SystemExit) and failed.value.code == 1
    assert isinstance(failed.value, Exception)  # `except Exception` in user code still catches it
    assert [r.getMessage() for r in caplog.records] == ["step 'train': output 'model': bad destination"]
    assert all(r.exc_info is None for r in caplog.records)
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert ti.xcoms == {RECORD_URI_KEY: "", REUSED_FROM_KEY: ""}  # the links find their XComs


def test_a_message_that_names_the_step_is_not_named_twice(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(StepFailedError, match=r"^step 'train': a template"):
        _Step(ConfigError("step 'train': a template uses something undefined")).execute({"ti": _TI()})


def test_a_step_failure_keeps_the_record_link(caplog: pytest.LogCaptureFixture) -> None:
    ti = _TI()
    with caplog.at_level(logging.ERROR), pytest.raises(StepFailedError):
        _Step(StepFailedError("step 'train' failed: exit code 3"), record_pushed=True).execute({"ti": ti})
    assert [r.getMessage() for r in caplog.records] == ["step 'train' failed: exit code 3"]
    assert ti.xcoms == {RECORD_URI_KEY: "file:///store/_mlpipe/runs/x/record.json", REUSED_FROM_KEY: ""}


def test_a_bug_keeps_its_own_exception_and_traceback() -> None:
    ti = _TI()
    with pytest.raises(TypeError, match="unexpected"):
        _Step(TypeError("unexpected")).execute({"ti": ti})
    assert ti.xcoms == {}
