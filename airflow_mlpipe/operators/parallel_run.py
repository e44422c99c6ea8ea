"""``ParallelRunStep`` (Azure ML's batch scoring) as three Airflow tasks in a task group named after the step.

- ``<name>.plan`` pins the input (content identities only, nothing downloaded) and cuts it into mini-batches
  (``parallel.planning``). Each mini-batch is a step run of its own (``operators.parallel_batch``), keyed by the
  entry script's snapshot, the arguments, side inputs, environment, the parallel settings and the content of the
  mini-batch's own files. The planning task reuses every mini-batch whose key has a verified index entry, and
  returns the rest in at most ``node_count`` shares.
- ``<name>.mini_batch`` is mapped over those shares (``expand``), one task instance per node, at most
  ``node_count`` at once: each computes its mini-batches one after the other on the step's compute, where the
  step runner starts the driver (``parallel.driver``), which calls ``init()``/``run()`` in
  ``process_count_per_node`` processes. Nothing to compute: no task instance (the task shows as skipped).
- ``<name>.gather`` joins the mini-batches' results in mini-batch order into the step's output, applies the error
  threshold over all items and commits and registers the output as one unit (``operators.parallel_work``). Its
  key is the mini-batches' result content, so it is reused when no mini-batch changed.

A task instance costs about a second and a half of Airflow's own work, so a mini-batch is not one: reusing one
costs an index read and a record, computing one a runner process.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from airflow.sdk import BaseOperator, Context, TaskGroup

from airflow_mlpipe.compute.environment import Environment
from airflow_mlpipe.core.checks import check_list
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig
from airflow_mlpipe.exceptions import ConfigError, step_failed_error
from airflow_mlpipe.operators.arguments import StepIO, collect, register_producer
from airflow_mlpipe.operators.failures import fails_cleanly
from airflow_mlpipe.operators.links import ReusedFromLink, StepRunLink
from airflow_mlpipe.operators.parallel_batch import BATCH_OUTPUT
from airflow_mlpipe.operators.python_script import PythonScriptOperator
from airflow_mlpipe.operators.step_fields import registered_outlets
from airflow_mlpipe.parallel.config import ParallelRunConfig

PLAN_TASK = "plan"
BATCH_TASK = "mini_batch"
GATHER_TASK = "gather"
MINI_BATCHES_KEY = "mini_batches"
# Mini-batches whose reuse the planning task looks at side by side (store round trips, not CPU).
REUSE_LOOKS_AT_ONCE = 8


def ParallelRunStep(
    *,
    name: str,
    parallel_run_config: ParallelRunConfig,
    inputs: Sequence[Any],
    output: OutputFileDatasetConfig | None = None,
    arguments: Iterable[Any] = (),
    side_inputs: Iterable[Any] = (),
    allow_reuse: bool = True,
    **task_kwargs: Any,
) -> TaskGroup:
    """Score ``inputs`` with ``parallel_run_config.entry_script``: a task group ``name`` of a planning task, a
    mapped task per mini-batch and a gathering task, which writes ``output`` (and registers it when asked).

    :param inputs: the datasets cut into mini-batches (``ds.as_named_input("images")``, ``output.as_input()``).
    :param side_inputs: further inputs every mini-batch reads whole (a model, a lookup table).
    :param arguments: the entry script's command line (parse it in ``init()``).
    :param task_kwargs: more ``BaseOperator`` arguments for the three tasks (``retries``, ``pool``...).
    """
    config = parallel_run_config
    if not isinstance(config, ParallelRunConfig):
        raise ConfigError(f"step {name!r}: parallel_run_config must be a ParallelRunConfig, not {config!r}")
    if not isinstance(inputs, Sequence) or isinstance(inputs, str) or not inputs:
        raise ConfigError(f"step {name!r}: inputs must list the datasets to score, e.g. [ds.as_named_input('x')]")
    arguments = check_list(f"step {name!r}", "arguments", arguments, example="['--batch-size', 32]")
    side_inputs = check_list(f"step {name!r}", "side_inputs", side_inputs, example="[model.as_named_input('model')]")
    output = output if output is not None else OutputFileDatasetConfig(name=f"{name}_output")
    source = config.source_directory if config.source_directory is not None else "."
    environment = _environment(config)
    step = {
        "script_name": config.entry_script,
        "source_directory": source,
        "arguments": list(arguments),
        "compute_target": config.compute_target,
        "environment": environment,
        "allow_reuse": allow_reuse,
        **task_kwargs,
    }
    with TaskGroup(group_id=name) as group, _errors_name_the_step(name):
        plan = PlanMiniBatchesOperator(
            task_id=PLAN_TASK,
            config=config,
            inputs=[*inputs, *side_inputs],
            main_inputs=len(inputs),
            batch_task_id=f"{group.group_id}.{BATCH_TASK}",
            **step,
        )
        batches = MiniBatchOperator.partial(
            task_id=BATCH_TASK,
            inputs=list(side_inputs),
            parallel=config.settings(),
            max_active_tis_per_dagrun=config.node_count,
            **step,
        ).expand(mini_batches=plan.output)
        # Runs when every mini-batch was reused by the planning task (no node task instance: "skipped").
        gather_kwargs = {"trigger_rule": "none_failed", **task_kwargs}
        gather = GatherOperator(
            task_id=GATHER_TASK,
            output=output,
            config=config,
            plan_task_id=plan.task_id,
            batch_task_id=f"{group.group_id}.{BATCH_TASK}",
            allow_reuse=allow_reuse,
            **gather_kwargs,
        )
        batches >> gather
    return group


ParallelRunOperator = ParallelRunStep


@contextlib.contextmanager
def _errors_name_the_step(name: str) -> Iterator[None]:
    """A bad value refused by one of the step's tasks names the step the user wrote (``ParallelRunStep(name=...)``),
    not the task ('plan', 'mini_batch', 'gather') that checked it."""
    try:
        yield
    except ConfigError as exc:
        message = str(exc)
        for task in (PLAN_TASK, BATCH_TASK, GATHER_TASK):
            for prefix in (f"step {task!r}: ", f"{task}: "):
                if message.startswith(prefix):
                    exc.args = (f"step {name!r}: {message.removeprefix(prefix)}", *exc.args[1:])
                    raise
        raise


def _environment(config: ParallelRunConfig) -> Environment | None:
    """The config's environment with its ``environment_variables``."""
    if not config.environment_variables:
        return config.environment
    base = config.environment or Environment()
    return dataclasses.replace(base, env_vars={**base.env_vars, **config.environment_variables})


class PlanMiniBatchesOperator(PythonScriptOperator):
    """The step as written (its inputs, side inputs and parameters make its dependencies and DAG params at parse
    time); run, it pins the inputs to score, cuts them into mini-batches, reuses every mini-batch it can and
    returns the others in at most ``node_count`` shares, one per ``mini_batch`` task instance."""

    ui_color = "#d7ecfb"

    def __init__(self, *, config: ParallelRunConfig, main_inputs: int, batch_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.config = config
        self.main_inputs = main_inputs
        self.batch_task_id = batch_task_id

    @fails_cleanly
    def execute(self, context: Context) -> list[list[dict[str, Any]]]:  # type: ignore[override]
        from airflow_mlpipe.exceptions import MlpipeError
        from airflow_mlpipe.operators.parallel_batch import BatchAttempt, BatchView
        from airflow_mlpipe.parallel.planning import mini_batch_input, plan_mini_batches, shares
        from airflow_mlpipe.reuse.inputs import pin_input

        self._use_rendered()
        names = [i.name for i in self._io.inputs[: self.main_inputs]]
        try:
            specs = [pin_input(s) for s in self.input_specs(context)]
            pinned = [s for s in specs if s["name"] in names]
            side = [s for s in specs if s["name"] not in names]
            sizes = {kind: self.config.batch_size(kind) for kind in ("file", "tabular")}
            batches = plan_mini_batches(self.task_id, pinned, sizes)
        except (MlpipeError, FileNotFoundError) as exc:
            raise step_failed_error(f"step {self.task_id!r} cannot plan its mini-batches: {exc}") from None
        by_name = {s["name"]: s for s in pinned}
        for spec in pinned:
            count = sum(1 for b in batches if b.input_name == spec["name"])
            self.log.info(
                "Input %s: %d files in %d mini-batches", spec["name"], spec["pin"]["manifest"]["files"], count
            )
        settings = self.config.settings()
        specs_by_batch = [mini_batch_input(by_name[b.input_name], b) for b in batches]

        def settle(spec: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
            view = BatchView(self, task_id=self.batch_task_id, mini_batch=spec, side_inputs=side, parallel=settings)
            return BatchAttempt(view, context).reuse_if_ready()

        # Each look is a few small reads and writes of the store: overlapped, they cost a round trip, not 100.
        # The first goes alone: it stores the source snapshot, which the others then find.
        settled = [settle(specs_by_batch[0])]
        with ThreadPoolExecutor(max_workers=REUSE_LOOKS_AT_ONCE, thread_name_prefix="mlpipe-plan") as pool:
            settled += pool.map(settle, specs_by_batch[1:])
        summary, todo = [], []
        for batch, spec, (result, rerun_of) in zip(batches, specs_by_batch, settled, strict=True):
            summary.append({"index": batch.index, "input": batch.input_name, "items": batch.items, "result": result})
            if result is None:
                todo.append({"mini_batch": spec, "rerun_of": rerun_of})
        nodes = shares(todo, self.config.node_count)
        self.log.info(
            "%d mini-batches: %d reused, %d to compute on %d nodes (node_count %d)",
            len(batches),
            len(batches) - len(todo),
            len(todo),
            len(nodes),
            self.config.node_count,
        )
        context["ti"].xcom_push(key=MINI_BATCHES_KEY, value=summary)
        return nodes


class MiniBatchOperator(PythonScriptOperator):
    """A node: computes its share of the mini-batches, each one a step attempt of its own (see
    ``operators.parallel_batch``), the entry script run by the parallel driver on the step's compute."""

    ui_color = "#e8f4fd"

    def __init__(
        self, *, mini_batches: Sequence[Mapping[str, Any]], parallel: Mapping[str, Any], **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(mini_batches, Sequence) or not all(
            isinstance(e, Mapping) and "pin" in (e.get("mini_batch") or {}) for e in mini_batches
        ):
            raise ConfigError(f"step {self.task_id!r}: {mini_batches!r} is not a share of planned mini-batches")
        self.mini_batches = [dict(e) for e in mini_batches]
        self.parallel = dict(parallel)

    @fails_cleanly
    def execute(self, context: Context) -> list[dict[str, Any]]:  # type: ignore[override]
        from airflow_mlpipe.exceptions import MlpipeError
        from airflow_mlpipe.operators.parallel_batch import run_batches
        from airflow_mlpipe.reuse.inputs import pin_input

        self._use_rendered()
        try:
            side = [pin_input(s) for s in self.input_specs(context)]
        except (MlpipeError, FileNotFoundError) as exc:
            raise step_failed_error(f"step {self.task_id!r} cannot read its side inputs: {exc}") from None
        return run_batches(
            self,
            context,
            task_id=self.task_id,
            mini_batches=self.mini_batches,
            side_inputs=side,
            parallel=self.parallel,
        )


class GatherOperator(BaseOperator):
    """Joins the mini-batches' results into the step's output (see ``operators.parallel_work``)."""

    template_fields: Sequence[str] = ()
    operator_extra_links = (StepRunLink(), ReusedFromLink())
    ui_color = "#c6e2f7"

    def __init__(
        self,
        *,
        output: OutputFileDatasetConfig,
        config: ParallelRunConfig,
        plan_task_id: str,
        batch_task_id: str,
        allow_reuse: bool = True,
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id", "?")
        if not isinstance(output, OutputFileDatasetConfig):
            raise ConfigError(f"step {task_id!r}: output must be an OutputFileDatasetConfig, not {output!r}")
        self._io: StepIO = collect(task_id, [], [], [output])
        if output.registration:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), *registered_outlets([output.registration.name])]
        super().__init__(**kwargs)
        self.step_output = output
        self.config = config
        self.plan_task_id = plan_task_id
        self.batch_task_id = batch_task_id
        self.allow_reuse = bool(allow_reuse)
        self.reuse_ttl = None
        register_producer(self, self._io)

    @fails_cleanly
    def execute(self, context: Context) -> dict[str, Any]:
        return self._attempt(context).execute()

    @fails_cleanly
    def resume_after_reuse_wait(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._attempt(context).resume_after_wait(event or {})

    def _attempt(self, context: Context) -> Any:
        from airflow_mlpipe.operators.attempt import StepAttempt
        from airflow_mlpipe.operators.parallel_work import GatherWork

        return StepAttempt(self, context, GatherWork(self))

    def output_specs(self, step_run_id: str) -> list[dict[str, Any]]:
        resolved = self.step_output.destination_for(step_run_id)
        return [{**self.step_output.to_dict(), "path": resolved.path, "datastore": resolved.datastore}]


__all__ = [
    "BATCH_OUTPUT",
    "GatherOperator",
    "MiniBatchOperator",
    "ParallelRunOperator",
    "ParallelRunStep",
    "PlanMiniBatchesOperator",
]
