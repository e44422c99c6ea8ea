"""``PipelineParameter``: a value chosen per run ("Trigger DAG w/ config"), used in a step's arguments."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.exceptions import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


@dataclass(frozen=True)
class PipelineParameter:
    """As Azure ML's ``PipelineParameter(name, default_value)``: becomes a DAG ``Param`` typed from the default,
    and its value for the run is substituted into the arguments of every step that uses it."""

    name: str
    default_value: Any

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ConfigError(
                f"PipelineParameter name {self.name!r} must be an identifier (letters, digits, '_'), "
                "e.g. 'learning_rate'"
            )
        if type(self.default_value) not in _JSON_TYPES and self.default_value is not None:
            raise ConfigError(
                f"PipelineParameter {self.name!r}: default_value {self.default_value!r} has type "
                f"{type(self.default_value).__name__}; use a bool, int, float, str, list or dict"
            )

    @property
    def json_type(self) -> str | list[str]:
        if self.default_value is None:
            return ["null", "string", "number", "integer", "boolean"]
        kind = _JSON_TYPES[type(self.default_value)]
        return ["number", "integer"] if kind == "number" else kind

    def to_param(self) -> Any:
        from airflow.sdk import Param

        return Param(self.default_value, type=self.json_type, description=f"pipeline parameter {self.name}")


def format_value(value: Any) -> str:
    """How a parameter value appears on a script's command line."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)
