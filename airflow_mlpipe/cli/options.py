"""Options checked while the command line is parsed (typer ``parser=`` functions): a bad value is a usage error,
exit code 2, naming the option, the value and the fix, before anything is read or written."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from airflow_mlpipe.cli.output import error_text
from airflow_mlpipe.core.checks import shown

if TYPE_CHECKING:
    from airflow_mlpipe.storage.datastore import Datastore


class OptionValueError(typer.BadParameter):
    """A bad option value, its message whole: it names the option itself (click would add "Invalid value for")."""

    def format_message(self) -> str:
        return self.message


def whole_number(option: str, *, minimum: int, maximum: int | None = None, example: int) -> Callable[[str], int]:
    """A parser of whole numbers from ``minimum`` to ``maximum``."""
    span = f"from {minimum} to {maximum}" if maximum is not None else f"of at least {minimum}"

    def parse(text: str | int) -> int:
        try:
            number = int(text)
        except ValueError:
            number = None
        if number is None or (maximum is not None and number > maximum) or number < minimum:
            raise OptionValueError(
                f"{option} {shown(str(text))} must be a whole number {span}; write e.g. {option} {example}"
            )
        return number

    return parse


def duration(option: str, *, example: str) -> Callable[[str], str]:
    """A parser of durations as people write them (``30d``, ``12h``): checked here, handed on as written."""

    def parse(text: str) -> str:
        from airflow_mlpipe.exceptions import ConfigError
        from airflow_mlpipe.gc.model import DurationTooLongError, parse_duration

        try:
            parse_duration(text, option=option)
        except DurationTooLongError as exc:
            raise OptionValueError(f"{exc}; e.g. {option} {example}") from None
        except ConfigError:
            what = "has no unit (seconds? days?)" if text.strip().replace(".", "", 1).isdigit() else "is not a duration"
            raise OptionValueError(
                f"{option} {shown(text)} {what}; write a number with a unit s, m, h, d or w, e.g. {option} {example}"
            ) from None
        return text

    return parse


def datastore_name(option: str) -> Callable[[str], str]:
    """A parser of the name of a datastore this machine can see."""

    def parse(text: str) -> str:
        check_datastore(option, text)
        return text

    return parse


def check_datastore(option: str, name: str) -> None:
    """Usage error unless ``name`` is a datastore this machine can see (and its connection can be read)."""
    from airflow_mlpipe.exceptions import ConfigError
    from airflow_mlpipe.storage.datastore import Datastore

    try:
        Datastore.get(name).config  # noqa: B018 - resolving is the check (Datastore.get itself is lazy)
    except ConfigError as exc:  # unknown, or a connection that cannot be read: its message names the fix
        raise OptionValueError(f"{option}: {error_text(str(exc))}") from None


def dataset_version(text: str) -> str:
    """``latest`` or a version number (1, 2, ...)."""
    if text == "latest" or (re.fullmatch(r"[0-9]{1,18}", text) and int(text) >= 1):
        return text
    raise OptionValueError(
        f"--version {shown(text)} must be a version number (1, 2, ...) or 'latest'; e.g. --version 1"
    )


def dataset_name(text: str) -> str:
    """A name a dataset can have (``datasets.names.check_name``)."""
    from airflow_mlpipe.datasets.names import check_name
    from airflow_mlpipe.exceptions import ConfigError

    try:
        return check_name(text, existing=True)
    except ConfigError as exc:
        raise OptionValueError(f"NAME: {error_text(str(exc))}") from None


def airflow_id(option: str, *, kind: str, example: str) -> Callable[[str], str]:
    """A parser of DAG and task ids as Airflow allows them (letters, digits, ``_``, ``.``, ``-``; at most 250)."""

    def parse(text: str) -> str:
        from airflow_mlpipe.core.checks import check_airflow_id
        from airflow_mlpipe.exceptions import ConfigError

        try:
            return check_airflow_id(option, text, kind=kind, example=example)
        except ConfigError as exc:
            raise OptionValueError(error_text(str(exc))) from None

    return parse


def run_or_step_run(option: str, *, example: str) -> Callable[[str], str]:
    """A parser of a DAG run id or a step run id: one name, never empty (leaving the option out means "the latest")
    and never a folder path."""

    def parse(text: str) -> str:
        if not text.strip() or "/" in text or "\\" in text or not text.strip("."):
            what = "is empty" if not text.strip() else "is not a DAG run id or a step run id"
        elif not text.isprintable():
            what = "holds a control character"
        else:
            return text
        raise OptionValueError(
            f"{option} {shown(text)} {what}; give a DAG run id or a step run id (mlpipe runs list shows them), e.g. "
            f"{example}, or leave {option} out for the latest step run"
        )

    return parse


def datasets_token(text: str) -> str:
    """``mlpipe datasets list --after``: the token a page printed, the name of its last dataset."""
    from airflow_mlpipe.datasets.names import check_name
    from airflow_mlpipe.exceptions import ConfigError

    try:
        return check_name(text, existing=True)
    except ConfigError:
        raise OptionValueError(
            f"--after {shown(text)} is not a token a page printed (the name of the last dataset listed); copy it "
            "from the line 'next page: mlpipe datasets list ... --after TOKEN', or leave --after out for the first page"
        ) from None


def check_runs_token(store: Datastore, dag_id: str | None, task_id: str | None, token: str) -> None:
    """``mlpipe runs list --after``: the token a page of the same listing printed."""
    from airflow_mlpipe.steps.run_index import scope_folder
    from airflow_mlpipe.storage.paged import page_token_problem

    problem = page_token_problem(store, scope_folder(dag_id, task_id), token)
    if problem:
        raise OptionValueError(
            f"--after {shown(token)} is not a token a page of this listing printed ({problem}); copy it from the "
            "line 'next page: mlpipe runs list ... --after TOKEN' with the same --dag and --task, or leave --after "
            "out for the first page"
        )
