"""``PipelineParameter``: a value chosen per run ("Trigger DAG w/ config"), used in a step's arguments."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_mlpipe.exceptions import ConfigError

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


@dataclass(frozen=True)
class PipelineParameter:
    """As Azure ML's ``PipelineParameter(name, default_value)``: becomes a DAG ``Param`` typed from the default
    (a number, integer, boolean or text field in the trigger form; a choice with ``allowed_values``), and its value
    for the run is substituted into the arguments of every step that uses it.

    :param allowed_values: the only values a run may choose (a drop-down in the trigger form).
    :param description: shown under the field in the trigger form.
    """

    name: str
    default_value: Any
    allowed_values: Sequence[Any] | None = None
    description: str | None = None

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
        if isinstance(self.default_value, float) and not math.isfinite(self.default_value):
            raise ConfigError(
                f"PipelineParameter {self.name!r}: default_value {self.default_value!r} is not a finite number, which "
                "a DAG param (JSON) cannot hold; give a finite number, e.g. default_value=0.1"
            )
        if self.allowed_values is not None:
            if isinstance(self.allowed_values, (str, bytes)) or not isinstance(self.allowed_values, Sequence):
                raise ConfigError(
                    f"PipelineParameter {self.name!r}: allowed_values {self.allowed_values!r} must be a list, e.g. "
                    "['adam', 'sgd']"
                )
            object.__setattr__(self, "allowed_values", tuple(self.allowed_values))
            if self.default_value not in self.allowed_values:
                raise ConfigError(
                    f"PipelineParameter {self.name!r}: default_value {self.default_value!r} is not one of "
                    f"allowed_values {list(self.allowed_values)!r}"
                )
        if self.description is not None and not isinstance(self.description, str):
            raise ConfigError(f"PipelineParameter {self.name!r}: description {self.description!r} must be text")

    @property
    def json_type(self) -> str | list[str]:
        """One JSON Schema type (the trigger form then shows the matching input; ``number`` takes integers too)."""
        if self.default_value is None:
            return ["null", "string", "number", "integer", "boolean"]
        return _JSON_TYPES[type(self.default_value)]

    def to_param(self) -> Any:
        from airflow.sdk import Param

        schema: dict[str, Any] = {"type": self.json_type}
        if self.allowed_values is not None:
            schema["enum"] = list(self.allowed_values)
        return Param(
            self.default_value,
            title=self.name,
            description=self.description or f"pipeline parameter {self.name}",
            **schema,
        )


def format_value(value: Any) -> str:
    """How a parameter value appears on a script's command line."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, dict)):
        import json

        return json.dumps(value)
    return str(value)
