"""Jinja in step fields (``"--day", "{{ ds }}"``): Airflow renders it before a step runs; we check its syntax when
the DAG file is parsed, so a typo fails the DAG, not a run three days later."""

from __future__ import annotations

from airflow_mlpipe.exceptions import ConfigError

_MARKS = ("{{", "{%", "{#")


def has_jinja(text: object) -> bool:
    return isinstance(text, str) and any(mark in text for mark in _MARKS)


def check_jinja(text: str, *, what: str) -> None:
    """Raise ``ConfigError`` naming ``what`` when ``text`` is not valid Jinja (parsing only: no rendering)."""
    import jinja2

    try:
        jinja2.Environment().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        example = "write e.g. '{{ ds }}' or '{{ params.day }}'"
        raise ConfigError(f"{what}: the template {text!r} is not valid Jinja ({exc.message}); {example}") from None
