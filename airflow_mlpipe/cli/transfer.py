"""``mlpipe transfer SRC DST``: the copy engine from the command line."""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer

from airflow_mlpipe.cli.options import OptionValueError, check_datastore
from airflow_mlpipe.cli.output import emit_json, emit_line, error_text
from airflow_mlpipe.core.checks import shown

# The fixes the copy engine's errors suggest, in this command's options.
OPTION_WORDS = {"file": "pass --file", "directory": "leave out --file", "overwrite": "pass --overwrite"}


@dataclass(frozen=True)
class Ref:
    """``DATASTORE:path`` as given on the command line, its datastore checked."""

    datastore: str
    path: str


def _ref(label: str) -> Callable[[str], Ref]:
    def parse(text: str) -> Ref:
        """``NAME:path`` or ``mlpipe://datastores/NAME/paths/path``."""
        from airflow_mlpipe.datasets.paths import to_data_path
        from airflow_mlpipe.exceptions import ConfigError

        if text.startswith(("mlpipe://", "azureml://")):
            try:
                data_path = to_data_path(text)
            except ConfigError as exc:
                raise OptionValueError(f"{label}: {error_text(str(exc))}") from None
            # a trailing '/' names a folder: with --file, the file goes into it (the path check drops the '/')
            ref = Ref(data_path.datastore, data_path.path + ("/" if text.endswith("/") else ""))
        elif ":" not in text:
            raise OptionValueError(
                f"{label} {shown(text)} names no datastore; write DATASTORE:path or "
                "mlpipe://datastores/DATASTORE/paths/path"
            )
        else:
            ref = Ref(*text.split(":", 1))
        check_datastore(f"{label} {shown(text)}", ref.datastore)
        return ref

    return parse


def transfer_command(
    source: Annotated[Ref, typer.Argument(parser=_ref("SOURCE"), help="DATASTORE:path (a file or a folder)")],
    destination: Annotated[Ref, typer.Argument(parser=_ref("DESTINATION"), help="DATASTORE:path")],
    file: Annotated[bool, typer.Option("--file", help="Copy one file (default: a folder).")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace destination files that differ.")] = False,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip checksum verification.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON only.")] = False,
) -> None:
    """Copy between datastores: streaming, parallel, verified, incremental (files already there are skipped).

    With --file, a DESTINATION ending in '/' is a folder (DATASTORE:/ is the root): the file is copied into it
    under its own name.

    A folder it copied this source into before is mirrored: files the source dropped are removed.
    Files of anything else in the destination folder are refused, and nothing is written."""
    from airflow_mlpipe.storage.datastore import Datastore
    from airflow_mlpipe.storage.transfer import transfer

    progress = None if as_json else (lambda p: typer.echo(f"  {p}", err=True))
    result = transfer(
        Datastore.get(source.datastore), _root_as_folder(source.path),
        Datastore.get(destination.datastore), _destination_path(source, destination, file=file),
        kind="file" if file else "directory", overwrite=overwrite, verify=not no_verify,
        progress=progress, progress_interval=5.0, option_words=OPTION_WORDS,
    )  # fmt: skip
    if as_json:
        emit_json(result.to_dict(include_files=False))
    else:
        emit_line(result.summary())


def _root_as_folder(path: str) -> str:
    """``lake:/`` (or ``mlpipe://datastores/lake/paths/``) is the datastore's root folder, as ``lake:`` is."""
    return "" if not path.strip("/") else path


def _destination_path(source: Ref, destination: Ref, *, file: bool) -> str:
    """With --file, a destination ending in '/' is a folder that the file goes into under its own name: the root
    folder too (``lake:/``), where the name alone is the path."""
    if file and destination.path and not destination.path.strip("/"):
        return posixpath.basename(source.path.rstrip("/"))
    return _root_as_folder(destination.path)
