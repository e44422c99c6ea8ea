"""``mlpipe reuse explain DAG_ID TASK_ID [--run RUN] [--map-index N] [--json]``: was a step run reused, and if not,
why not."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from airflow_mlpipe.cli.options import airflow_id, run_or_step_run, whole_number
from airflow_mlpipe.cli.output import emit_fields, emit_json, emit_line

reuse_app = typer.Typer(no_args_is_help=True, help="Step reuse: why a step ran again or took earlier outputs.")


@reuse_app.command("explain")
def explain(
    dag_id: Annotated[
        str, typer.Argument(parser=airflow_id("DAG_ID", kind="DAG id", example="mlpipe reuse explain train_iris train"))
    ],
    task_id: Annotated[
        str,
        typer.Argument(parser=airflow_id("TASK_ID", kind="task id", example="mlpipe reuse explain train_iris train")),
    ],
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            parser=run_or_step_run("--run", example="--run manual__2026-01-01T00:00:00+00:00"),
            help="A DAG run id (its last try) or a step run id (default: the latest step run).",
        ),
    ] = None,
    map_index: Annotated[
        int | None,
        typer.Option(
            "--map-index",
            parser=whole_number("--map-index", minimum=0, example=0),
            help="A ParallelRunStep's mini-batch (its mapped task's map index).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Hit or miss for a step run of DAG_ID/TASK_ID and, on a miss, which parts of its reuse key changed."""
    if map_index is not None:
        from airflow_mlpipe.reuse.history import history_name

        task_id = history_name(task_id, map_index)
    found = find_decision(dag_id, task_id, run)
    if found is None:
        which = f"step run {run!r}" if run else "any step run"
        message = (
            f"no reuse decision for {which} of {dag_id}/{task_id}; list step runs with: mlpipe runs list --dag {dag_id}"
        )
        if as_json:
            emit_json({"error": message})
        else:
            typer.echo(f"error: {message}", err=True)
        raise typer.Exit(code=1)
    if as_json:
        emit_json(found)
        return
    emit_fields(
        [
            ("step run", found["step_run_id"]),
            ("decided at", found["decided_at"]),
            ("decision", "hit (reused)" if found["hit"] else f"miss ({found['reason']})"),
            ("reuse key", found["key"]),
            ("reused from", found.get("reused_from") or "-"),
            ("compared with", found.get("compared_with") or "-"),
        ]
    )
    emit_line()
    for line in found["explanation"]:
        emit_line(f"  - {line}")


def find_decision(dag_id: str, task_id: str, run: str | None) -> dict[str, Any] | None:
    """The decision of the given (or latest) step run: from the step's reuse history, else from the run record."""
    from airflow_mlpipe.reuse.history import StepHistory

    history = StepHistory(dag_id, task_id)
    entry = (history.find(run) or history.find_run(run)) if run else history.latest()
    if entry is not None:
        return _row(entry.step_run_id, entry.key, entry.decided_at, entry.decision)
    return _from_run_record(run) if run else None


def _from_run_record(candidate: str) -> dict[str, Any] | None:
    from airflow_mlpipe.steps.records import read_record

    try:
        record = read_record(candidate)
    except (FileNotFoundError, ValueError, TypeError):  # none, or unreadable: no decision to show
        return None
    reuse = record.get("reuse") or {}
    decision = reuse.get("decision")
    if not decision:
        return None
    return _row(str(record["step_run_id"]), str(reuse.get("key")), str(decision.get("decided_at")), decision)


def _row(srid: str, key: str, decided_at: str, decision: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "step_run_id": srid,
        "key": key,
        "decided_at": decided_at,
        "hit": bool(decision.get("hit")),
        "reason": decision.get("reason"),
        "explanation": list(decision.get("explanation") or ()),
        "reused_from": decision.get("reused_from"),
        "compared_with": decision.get("compared_with"),
    }
