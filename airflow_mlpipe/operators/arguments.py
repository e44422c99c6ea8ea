"""Parse-time handling of a script step's arguments, inputs and outputs (no I/O).

Turns what users write (strings, ``PipelineParameter``, ``dataset.as_named_input(...).as_download()``,
``OutputFileDatasetConfig``, ``output.as_input()``) into JSON-able argument items, and links producer and consumer
steps so that passing an output to one step and its ``as_input()`` to another orders them by itself.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_mlpipe.core.checks import not_a_list_note, shown
from airflow_mlpipe.datasets.consumption import DatasetConsumptionConfig
from airflow_mlpipe.datasets.dataset import AbstractDataset
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig, OutputInput
from airflow_mlpipe.datasets.parameter import DatasetParameter
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.steps.params import PipelineParameter

Input = DatasetConsumptionConfig | OutputInput


@dataclass
class StepIO:
    arguments: list[dict[str, Any]] = field(default_factory=list)
    inputs: list[Input] = field(default_factory=list)
    outputs: list[OutputFileDatasetConfig] = field(default_factory=list)
    parameters: dict[str, PipelineParameter] = field(default_factory=dict)
    # What the step was given, as given (Airflow renders the Jinja in them).
    raw_arguments: list[Any] = field(default_factory=list)
    raw_inputs: list[Any] = field(default_factory=list)
    raw_outputs: list[Any] = field(default_factory=list)

    def add_input(self, item: Input) -> None:
        if all(existing is not item for existing in self.inputs):
            self.inputs.append(item)

    def add_output(self, item: OutputFileDatasetConfig) -> None:
        if all(existing is not item for existing in self.outputs):
            self.outputs.append(item)


_LIST_EXAMPLES = {
    "arguments": "arguments=['--lr', 0.1] (or arguments=[] for none)",
    "inputs": "inputs=[dataset.as_named_input('raw')] (or inputs=[] for none)",
    "outputs": "outputs=[OutputFileDatasetConfig('model')] (or outputs=[] for none)",
}


def collect(task_id: str, arguments: Iterable[Any], inputs: Iterable[Any], outputs: Iterable[Any]) -> StepIO:
    io = StepIO()
    for what, value in (("arguments", arguments), ("inputs", inputs), ("outputs", outputs)):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(
                f"step {task_id!r}: {what} {shown(value)} must be a list, e.g. {_LIST_EXAMPLES[what]}"
                f"{not_a_list_note(value)}"
            )
    arguments, inputs, outputs = list(arguments), list(inputs), list(outputs)
    io.raw_arguments, io.raw_inputs, io.raw_outputs = list(arguments), list(inputs), list(outputs)
    for item in outputs:
        if not isinstance(item, OutputFileDatasetConfig):
            raise ConfigError(f"step {task_id!r}: outputs takes OutputFileDatasetConfig objects, not {item!r}")
        io.add_output(item)
    for item in inputs:
        io.add_input(_as_input(task_id, item))
    for item in arguments:
        io.arguments.append(_argument(task_id, item, io))
    for inp in io.inputs:  # a dataset chosen per run (a dataset-valued PipelineParameter) is a DAG param too
        if isinstance(inp, DatasetConsumptionConfig) and isinstance(inp.dataset, DatasetParameter):
            io.parameters.setdefault(inp.dataset.parameter.name, inp.dataset.parameter)
    for index, output in enumerate(io.outputs):
        output.bind(task_id, index)
    names = [i.name for i in io.inputs] + [o.name for o in io.outputs]
    duplicates = sorted({n for n in names if n is not None and names.count(n) > 1})
    if duplicates:
        raise ConfigError(
            f"step {task_id!r}: the name(s) {duplicates} are used by more than one input or output; name them apart "
            "with as_named_input('...') / as_input('...') / OutputFileDatasetConfig(name='...')"
        )
    return io


def _as_input(task_id: str, item: Any) -> Input:
    if isinstance(item, (DatasetConsumptionConfig, OutputInput)):
        return item
    if isinstance(item, AbstractDataset):
        return item.as_named_input(item._default_input_name())
    if isinstance(item, OutputFileDatasetConfig):
        return item.as_input()
    raise ConfigError(
        f"step {task_id!r}: input {item!r} is not a dataset input; use dataset.as_named_input('name') "
        "(.as_download() / .as_mount()) or output.as_input()"
    )


def _argument(task_id: str, item: Any, io: StepIO) -> dict[str, Any]:
    if isinstance(item, PipelineParameter):
        known = io.parameters.get(item.name)
        if known is not None and known.default_value != item.default_value:
            raise ConfigError(f"step {task_id!r}: two PipelineParameters named {item.name!r} with other defaults")
        io.parameters[item.name] = item
        return {"t": "param", "name": item.name}
    if isinstance(item, OutputFileDatasetConfig):
        io.add_output(item)
        return {"t": "output", "ref": item}
    if isinstance(item, (DatasetConsumptionConfig, OutputInput, AbstractDataset)):
        inp = _as_input(task_id, item)
        io.add_input(inp)
        return {"t": "input", "ref": inp}
    if isinstance(item, float) and not math.isfinite(item):
        raise ConfigError(
            f"step {task_id!r}: argument {shown(item)} is not a finite number, and a script would read it as the "
            f"text {str(item)!r}; give a finite number, or the text itself if the script expects it (e.g. 'inf')"
        )
    if isinstance(item, (str, int, float, bool)):
        return {"t": "str", "v": str(item)}
    raise ConfigError(
        f"step {task_id!r}: argument {item!r} of type {type(item).__name__} is not supported; use strings, numbers, "
        "PipelineParameter, dataset inputs and OutputFileDatasetConfig"
    )


def link_producers(consumer: Any, io: StepIO) -> None:
    """Make every step whose output this step reads its upstream (now, or when that step is created)."""
    for inp in io.inputs:
        if not isinstance(inp, OutputInput):
            continue
        output = inp.output
        producer = getattr(output, "_producer_task", None)
        if producer is None:
            pending = output.__dict__.setdefault("_pending_consumers", [])
            pending.append(consumer)
        else:
            _link(producer, consumer, output)


def register_producer(producer: Any, io: StepIO) -> None:
    for output in io.outputs:
        output.__dict__["_producer_task"] = producer
        for consumer in output.__dict__.pop("_pending_consumers", []):
            _link(producer, consumer, output)


def _link(producer: Any, consumer: Any, output: OutputFileDatasetConfig) -> None:
    if producer is consumer:
        raise ConfigError(f"step {producer.task_id!r} reads its own output {output.name!r}: that is a cycle")
    if producer.dag is not consumer.dag:
        raise ConfigError(
            f"step {consumer.task_id!r} reads output {output.name!r} of step {producer.task_id!r} in another DAG; "
            "outputs connect steps of one DAG: register the output as a dataset and read it by name instead"
        )
    # Only a consumer with downstream tasks can be upstream of its producer; checking the usual new step for
    # nothing keeps a long chain's parse linear (the full ancestor walk per link made it quadratic).
    if consumer.downstream_task_ids and consumer.task_id in producer.get_flat_relative_ids(upstream=True):
        raise ConfigError(
            f"cycle: step {consumer.task_id!r} reads output {output.name!r} of step {producer.task_id!r}, which "
            f"already runs after {consumer.task_id!r}"
        )
    consumer.set_upstream(producer)
