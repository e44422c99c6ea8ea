"""Step failures in the task log: one ERROR line that says what failed and how to fix it, no traceback.

``fails_cleanly`` wraps an operator's ``execute`` and its resume methods: a ``StepFailedError`` is logged as one
ERROR line and raised on (Airflow logs it as ``Task exited exit_code=1`` and retries as usual); any other
``MlpipeError`` (a bad value met at run time, a store that cannot be reached within ``MLPIPE_STORE_TIMEOUT``)
becomes one, naming the task. Other exceptions are bugs, and keep Airflow's traceback.

A failed step also pushes an empty value for each of its extra links' XComs that it did not push (the run record's
link, pushed when a record exists): Airflow reads them once the task ends, and a missing one is an ERROR line
("XCom not found") under the step's own message.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from airflow_mlpipe.exceptions import MlpipeError, StepFailedError

_F = TypeVar("_F", bound=Callable[..., Any])


def fails_cleanly(method: _F) -> _F:
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except StepFailedError as exc:
            self.log.error("%s", exc)
            _push_empty_links(self, (*args, *kwargs.values()))
            raise
        except MlpipeError as exc:
            named = str(exc).startswith(f"step {self.task_id!r}")
            failure = StepFailedError(str(exc) if named else f"step {self.task_id!r}: {exc}")
            self.log.error("%s", failure)
            _push_empty_links(self, (*args, *kwargs.values()))
            raise failure from None

    return wrapper  # type: ignore[return-value]


PUSHED_ATTR = "_mlpipe_pushed_xcoms"


def pushed(operator: Any, key: str) -> None:
    """Note that ``operator`` pushed XCom ``key`` in this try (a failure then keeps its value)."""
    keys = getattr(operator, PUSHED_ATTR, None)
    if keys is None:
        keys = set()
        setattr(operator, PUSHED_ATTR, keys)
    keys.add(key)


def _push_empty_links(operator: Any, args: tuple[Any, ...]) -> None:
    context = next((a for a in args if isinstance(a, Mapping) and "ti" in a), None)
    if context is None:
        return
    done: set[str] = getattr(operator, PUSHED_ATTR, set())
    for link in getattr(operator, "operator_extra_links", ()):
        key = getattr(link, "record_key", None)
        if key and key not in done:
            try:
                context["ti"].xcom_push(key=key, value="")
            except Exception as exc:  # the failure's own message matters more than a link
                operator.log.warning("Could not push XCom %s: %s", key, exc)
