"""``mlpipe``: a thin command line over the library. Every command takes ``--json`` (JSON only on stdout)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from airflow_mlpipe.cli.connections import broken_db_datastores, broken_env_datastores
from airflow_mlpipe.cli.options import (
    OptionValueError,
    airflow_id,
    check_runs_token,
    dataset_name,
    dataset_version,
    datasets_token,
    datastore_name,
    duration,
    whole_number,
)
from airflow_mlpipe.cli.output import emit_fields, emit_json, emit_line, emit_table, error_text, human_bytes
from airflow_mlpipe.cli.reuse import reuse_app

if TYPE_CHECKING:
    from airflow_mlpipe.datasets.registry import DatasetRegistry
    from airflow_mlpipe.storage.datastore import Datastore

app = typer.Typer(no_args_is_help=True, add_completion=False, help="ML pipelines on Airflow: datasets, runs, reuse.")
datasets_app = typer.Typer(no_args_is_help=True, help="Registered datasets and their versions.")
datastores_app = typer.Typer(no_args_is_help=True, help="Datastores (connections of type mlpipe_datastore).")
app.add_typer(datasets_app, name="datasets")
app.add_typer(datastores_app, name="datastores")
from airflow_mlpipe.cli.transfer import transfer_command  # noqa: E402

app.command("transfer")(transfer_command)
runs_app = typer.Typer(no_args_is_help=True, help="Step runs: status, inputs, outputs, metrics, logs.")
app.add_typer(runs_app, name="runs")
app.add_typer(reuse_app, name="reuse")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON only.")]
DatastoreOpt = Annotated[
    str | None,
    typer.Option(
        "--datastore", parser=datastore_name("--datastore"), help="Read this datastore (default: mlpipe_default)."
    ),
]


def _fail(message: str, as_json: bool) -> None:
    _print_error(message, as_json)
    raise typer.Exit(code=1)


def _print_error(message: str, as_json: bool) -> None:
    """One line on stderr, or one JSON object on stdout (``error_text``)."""
    message = error_text(message)
    if as_json:
        emit_json({"error": message})
    else:
        typer.echo(f"error: {message}", err=True)


def _store(name: str | None) -> Datastore:
    from airflow_mlpipe.storage.datastore import Datastore

    return Datastore.get(name) if name else Datastore.get_default()


@datasets_app.command("list")
def datasets_list(
    limit: Annotated[
        int,
        typer.Option(
            "--limit", parser=whole_number("--limit", minimum=1, maximum=1000, example=100), help="At most this many."
        ),
    ] = 100,
    after: Annotated[
        str | None,
        typer.Option("--after", parser=datasets_token, help="The next page: the token the previous page printed."),
    ] = None,
    datastore: DatastoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Registered datasets with their latest versions, a page at a time (by name). A record that cannot be read
    is a row with its error: the others are still listed."""
    from concurrent.futures import ThreadPoolExecutor

    from airflow_mlpipe.datasets.registry import DatasetRegistry

    registry = DatasetRegistry(_store(datastore))
    names, next_token = registry.names_page(limit=limit, start_after=after or "")
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = [r for r in pool.map(lambda name: _dataset_row(registry, name), names) if r is not None]
    if as_json:
        emit_json({"datastore": registry.store.name, "datasets": rows, "next": next_token})
        return
    for row in rows:
        row["size"] = human_bytes(row["bytes"]) if row["bytes"] is not None else None
    columns = ["name", "latest_version", "kind", "files", "size", "created_at", "description"]
    emit_table(rows, [*columns, "error"] if any(r["error"] for r in rows) else columns)
    if next_token:
        emit_line(f"next page: mlpipe datasets list --limit {limit} --after {next_token}")


def _dataset_row(registry: DatasetRegistry, name: str) -> dict[str, Any] | None:
    """A row for the latest version of ``name``; a row with ``error`` when its record cannot be read; None for a
    folder without records (a registration that failed before its first version)."""
    from airflow_mlpipe.exceptions import DatasetNotFoundError, MlpipeError

    try:
        record = registry.get(name)  # the pointer and its record: a few requests, however many versions
    except DatasetNotFoundError:
        return None
    except (MlpipeError, OSError) as exc:
        return {"name": name, **dict.fromkeys(_DATASET_FIELDS), "error": error_text(str(exc))}
    return {
        "name": record.name,
        "latest_version": record.version,
        "versions": record.version,  # numbered from 1 without gaps
        "kind": record.kind,
        "files": len(record.manifest),
        "bytes": record.manifest.total_size,
        "created_at": record.created_at,
        "description": record.description,
        "error": None,
    }


_DATASET_FIELDS = ("latest_version", "versions", "kind", "files", "bytes", "created_at", "description")


@datasets_app.command("show")
def datasets_show(
    name: Annotated[str, typer.Argument(parser=dataset_name, help="The dataset's name.")],
    version: Annotated[
        str, typer.Option("--version", "-v", parser=dataset_version, help="A version number or 'latest'.")
    ] = "latest",
    datastore: DatastoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One dataset version: files, content identities, lineage."""
    from airflow_mlpipe.datasets.registry import DatasetRegistry, version_span
    from airflow_mlpipe.exceptions import DatasetError

    registry = DatasetRegistry(_store(datastore))
    try:
        record = registry.get(name, version)
        newest = record.version if version == "latest" else registry.latest_version(name)
    except DatasetError as exc:
        _fail(str(exc), as_json)
        return
    data: dict[str, Any] = {**record.to_dict(), "latest_version": newest, "versions": version_span(newest)}
    if as_json:
        emit_json(data)
        return
    emit_fields(
        [
            ("name", record.name),
            ("version", f"{record.version} (of {version_span(newest)})"),
            ("kind", record.kind),
            ("description", record.description or "-"),
            ("tags", record.tags or "-"),
            ("created_at", record.created_at),
            ("files", f"{len(record.manifest)} ({human_bytes(record.manifest.total_size)})"),
            ("digest", record.manifest.digest),
            ("lineage", record.lineage or "-"),
            ("options", record.definition.get("options") or "-"),
        ]
    )
    emit_line()
    emit_table(
        [
            {"datastore": e.datastore, "path": e.path, "size": e.identity.size, "identity": e.identity.token}
            for e in record.manifest.entries
        ],
        ["datastore", "path", "size", "identity"],
    )


@datasets_app.command("reseal")
def datasets_reseal(
    runs: Annotated[
        bool, typer.Option("--runs", help="Also step run records, commits and specs (lists every step run folder).")
    ] = False,
    datastore: DatastoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Seal again under MLPIPE_REGISTRY_KEY what was sealed before the key was set: each registry record and
    reuse index entry whose plain seal holds. Run it once, where the key is set, right after setting it. It reads
    the whole registry and reuse index (and with --runs every step run folder): an admin command. A record whose
    seal fails is left as it is and listed as a row with its error (exit code 1)."""
    from airflow_mlpipe.datasets.reseal import reseal
    from airflow_mlpipe.datasets.seal import SEAL_KEY_ENV, keyed_seal_is_set

    if not keyed_seal_is_set():
        _print_error(
            f"{SEAL_KEY_ENV} is not set: reseal seals records under that key, so run it where the key is set (as "
            f"on the Airflow workers), e.g. {SEAL_KEY_ENV}=... mlpipe datasets reseal",
            as_json,
        )
        raise typer.Exit(code=2)
    report = reseal(_store(datastore), runs=runs)
    if as_json:
        emit_json(report.to_dict())
    else:
        emit_line(
            f"resealed {report.resealed} records under {SEAL_KEY_ENV}; {report.keyed} were sealed under it already; "
            f"{report.unsealed} without a seal (older code's) left as they are; {len(report.refused)} refused"
        )
        if report.refused:
            emit_table(report.refused, ["path", "error"])
    if report.refused:
        raise typer.Exit(code=1)


@datastores_app.command("list")
def datastores_list(as_json: JsonOpt = False) -> None:
    """Datastores this machine can see (environment connections, and the metadata DB when reachable). An
    environment connection that cannot be read is a row with its error (credentials masked)."""
    from airflow_mlpipe.core.secrets import scrub
    from airflow_mlpipe.storage.resolve import list_datastore_configs

    configs = list_datastore_configs()
    rows = [
        scrub(
            {
                "name": c.name,
                "url": f"{c.parsed.scheme}://{c.parsed.root}"
                if c.parsed.protocol not in ("file",)
                else "file://" + c.parsed.root,
                "backend": c.parsed.backend.label,
                "options": c.public_options(),
                "description": c.description,
                "error": None,
            },
            c.secret_values,
        )
        for c in configs
    ]
    broken = broken_env_datastores({c.name for c in configs})
    rows += broken + broken_db_datastores({c.name for c in configs} | {r["name"] for r in broken})
    rows.sort(key=lambda row: row["name"])
    if as_json:
        emit_json({"datastores": rows})
        return
    columns = ["name", "url", "backend", "description"]
    emit_table(rows, [*columns, "error"] if any(r["error"] for r in rows) else columns)


@runs_app.command("list")
def runs_list(
    dag: Annotated[
        str | None,
        typer.Option(
            "--dag",
            parser=airflow_id("--dag", kind="DAG id", example="--dag train_iris"),
            help="Only runs of this DAG.",
        ),
    ] = None,
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            parser=airflow_id("--task", kind="task id", example="--task train"),
            help="Only runs of this task (with --dag).",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            parser=whole_number("--limit", minimum=1, maximum=5000, example=50),
            help="At most this many, newest first.",
        ),
    ] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="The next page: the token the previous page printed.")
    ] = None,
    datastore: DatastoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Step runs, newest first, a page at a time. A summary that cannot be read is a row with its error."""
    from airflow_mlpipe.steps.run_index import list_runs

    if task is not None and dag is None:
        raise OptionValueError("--task needs --dag: a task id is unique only within its DAG; add --dag DAG_ID")
    store = _store(datastore)
    if after is not None:
        check_runs_token(store, dag, task, after)
    page = list_runs(store, dag_id=dag, task_id=task, limit=limit, token=after)
    rows = [{**row, "reused": bool(row.get("reused_from"))} for row in page.rows]
    if as_json:
        emit_json({"runs": rows, "next": page.next_token})
        return
    emit_table(rows, ["step_run_id", "task_id", "status", "reused", "started_at", "metrics", "error"])
    if page.next_token:
        more = " ".join(
            [
                *(["--dag", dag] if dag else []),
                *(["--task", task] if task else []),
                *(["--datastore", datastore] if datastore else []),
                "--limit",
                str(limit),
            ]
        )
        emit_line(f"next page: mlpipe runs list {more} --after {page.next_token}")


@runs_app.command("reindex")
def runs_reindex(as_json: JsonOpt = False) -> None:
    """Rebuild the newest-first listings of step runs from every record (after a restore from a backup). A record
    that cannot be read is reported and listed as a row with its error; the others are indexed."""
    from airflow_mlpipe.steps.run_index import rebuild
    from airflow_mlpipe.storage.datastore import Datastore

    rebuilt = rebuild(Datastore.get_default())
    if as_json:
        emit_json({"indexed": rebuilt.indexed, "unreadable": list(rebuilt.unreadable)})
        return
    emit_line(f"indexed {rebuilt.indexed} step runs")
    if rebuilt.unreadable:
        emit_line(f"{len(rebuilt.unreadable)} records cannot be read (listed as rows with their errors):")
        for problem in rebuilt.unreadable:
            emit_line(f"  - {error_text(problem)}")


@runs_app.command("show")
def runs_show(run: str, as_json: JsonOpt = False) -> None:
    """One step run: status, arguments, inputs, outputs, metrics, reuse, logs."""
    from airflow_mlpipe.exceptions import TamperedRecordError
    from airflow_mlpipe.steps.records import CorruptRecordError, read_record, record_path

    try:
        record = read_record(run)
    except FileNotFoundError:
        _fail(f"no step run {run!r}; list them with: mlpipe runs list", as_json)
        return
    except (CorruptRecordError, TamperedRecordError) as exc:  # the message names it, why and the fix
        _fail(str(exc), as_json)
        return
    except ValueError as exc:  # a step run id that names no folder of its own (a bad path)
        _fail(f"step run {run!r}: its record {record_path(run)!r} is unreadable ({type(exc).__name__}: {exc})", as_json)
        return
    if as_json:
        emit_json(record)
        return
    emit_fields(
        [
            ("step run", record.get("step_run_id")),
            ("dag / run / task", f"{record.get('dag_id')} / {record.get('run_id')} / {record.get('task_id')}"),
            ("status", record.get("status")),
            ("started / finished", f"{record.get('started_at')} / {record.get('finished_at')}"),
            ("script", record.get("script_name")),
            ("arguments", record.get("arguments")),
            ("snapshot", (record.get("snapshot_info") or {}).get("digest")),
            ("git", record.get("git")),
            ("reuse", record.get("reuse") or "-"),
            ("error", record.get("error") or "-"),
            ("logs", record.get("logs")),
            ("artifacts", record.get("artifacts")),
        ]
    )
    emit_line()
    emit_table(
        [
            {"name": i.get("name"), "mode": i.get("mode"), "source": i.get("dataset") or i.get("path")}
            for i in record.get("inputs") or []
        ],
        ["name", "mode", "source"],
        empty="(no inputs)",
    )
    emit_line()
    emit_table(
        [
            {
                "name": o["name"],
                "uri": o.get("uri"),
                "files": (o.get("manifest") or {}).get("files"),
                "registered": o.get("registered"),
            }
            for o in record.get("outputs") or []
        ],
        ["name", "uri", "files", "registered"],
        empty="(no outputs)",
    )
    emit_line()
    emit_table(
        [{"metric": k, "value": v} for k, v in (record.get("metrics") or {}).items()],
        ["metric", "value"],
        empty="(no metrics)",
    )


@app.command("gc")
def gc_command(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            parser=duration("--older-than", example="30d"),
            help="Keep step runs made more recently than this (30d, 12h, ...).",
        ),
    ] = "30d",
    keep_last: Annotated[
        int,
        typer.Option(
            "--keep-last",
            parser=whole_number("--keep-last", minimum=0, example=3),
            help="Also keep each task's successful runs in its N newest DAG runs.",
        ),
    ] = 0,
    dag: Annotated[
        str | None,
        typer.Option(
            "--dag",
            parser=airflow_id("--dag", kind="DAG id", example="--dag train_iris"),
            help="Collect only what this DAG's step runs left.",
        ),
    ] = None,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            parser=duration("--grace", example="1h"),
            help="Never delete anything made more recently than this.",
        ),
    ] = "1h",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would go; delete nothing.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Delete step runs, outputs, records and snapshots no longer needed; registered versions always stay."""
    from airflow_mlpipe.gc import GcSettings, collect_garbage
    from airflow_mlpipe.gc.report import report_lines

    settings = GcSettings.of(older_than=older_than, keep_last=keep_last, dag_id=dag, grace=grace, dry_run=dry_run)
    report = collect_garbage(settings)
    if as_json:
        emit_json(report.to_dict())
        return
    for line in report_lines(report):
        emit_line(line)
    if report.errors:
        raise typer.Exit(code=1)


def main(argv: list[str] | None = None) -> None:
    # The CLI runs where Airflow's metadata DB is reachable (a scheduler or API server host, or a laptop with
    # the embedded SQLite DB): read connections from it as Airflow's own CLI does.
    os.environ.setdefault("_AIRFLOW_PROCESS_CONTEXT", "server")
    sys.stdout = sys.stderr  # library logs go to stderr; results are written through cli.output
    from airflow_mlpipe.exceptions import MlpipeError

    ClickException = _click_exception()

    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    try:
        # Not standalone: typer would draw usage errors in a framed box under the usage text.
        code = app(args=args, prog_name="mlpipe", standalone_mode=False)
    except ClickException as exc:  # a bad option or argument: one line naming it, the value and the fix
        if type(exc).__name__ != "NoArgsIsHelpError":  # (that one's help is printed already)
            _print_error(_usage_message(exc), as_json)
        raise SystemExit(getattr(exc, "exit_code", 2)) from None
    except (MlpipeError, OSError) as exc:  # OSError: a missing file, or a name the store cannot take
        _print_error(str(exc), as_json)
        raise SystemExit(1) from None
    if isinstance(code, int) and code:
        raise SystemExit(code)


def _click_exception() -> type[Exception]:
    """Click's base exception: inside typer where typer vendors click (0.2x), in click itself before."""
    import importlib

    try:
        module = importlib.import_module("typer._click.exceptions")
    except ImportError:
        module = importlib.import_module("click.exceptions")
    exception: type[Exception] = module.ClickException
    return exception


def _usage_message(exc: Any) -> str:
    """Click's message, with the command's help hint when the option itself is unknown or missing."""
    from airflow_mlpipe.cli.options import OptionValueError

    message = str(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and not isinstance(exc, OptionValueError):
        message += f" (see: {ctx.command_path} --help)"
    return message


if __name__ == "__main__":
    main()
