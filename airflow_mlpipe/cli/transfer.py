"""``mlpipe transfer SRC DST``: the copy engine from the command line."""

from __future__ import annotations

from typing import Annotated

import typer

from airflow_mlpipe.cli.output import emit_json, emit_line


def _parse(ref: str) -> tuple[str, str]:
    """``NAME:path`` or ``mlpipe://datastores/NAME/paths/path``."""
    from airflow_mlpipe.datasets.paths import to_data_path

    if ref.startswith(("mlpipe://", "azureml://")):
        data_path = to_data_path(ref)
        return data_path.datastore, data_path.path
    if ":" not in ref:
        raise typer.BadParameter(f"{ref!r}: write DATASTORE:path or mlpipe://datastores/DATASTORE/paths/path")
    name, path = ref.split(":", 1)
    return name, path


def transfer_command(
    source: Annotated[str, typer.Argument(help="DATASTORE:path (a file or a folder)")],
    destination: Annotated[str, typer.Argument(help="DATASTORE:path")],
    file: Annotated[bool, typer.Option("--file", help="Copy one file (default: a folder).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace destination files that differ.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip checksum verification.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Copy between datastores: streaming, parallel, verified, incremental (files already there are skipped)."""
    from airflow_mlpipe.storage.datastore import Datastore
    from airflow_mlpipe.storage.transfer import transfer

    src_name, src_path = _parse(source)
    dst_name, dst_path = _parse(destination)
    progress = None if as_json else (lambda p: typer.echo(f"  {p}", err=True))
    result = transfer(
        Datastore.get(src_name), src_path, Datastore.get(dst_name), dst_path,
        kind="file" if file else "directory", overwrite=overwrite, verify=not no_verify,
        progress=progress, progress_interval=5.0,
    )  # fmt: skip
    if as_json:
        emit_json(result.to_dict(include_files=False))
    else:
        emit_line(result.summary())
