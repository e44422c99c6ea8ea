"""Reading Tabular datasets into pandas: csv/tsv/delimited and parquet, many files concatenated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.exceptions import DatasetError
from airflow_mlpipe.storage.datastore import Datastore

if TYPE_CHECKING:
    import pandas as pd

    from airflow_mlpipe.datasets.manifest import ManifestEntry

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")


def read_frames(
    entries: Sequence[ManifestEntry], options: Mapping[str, Any], local: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """One table from the files; ``local``: verified local copies by path, read instead of the store."""
    import pandas as pd

    if not entries:
        raise DatasetError("the tabular dataset matches no file")
    frames = [read_one(entry, options, (local or {}).get(entry.path)) for entry in entries]
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    types = options.get("set_column_types") or {}
    if types:
        missing = sorted(set(types) - set(frame.columns))
        if missing:
            raise DatasetError(f"set_column_types names columns the data does not have: {missing}")
        frame = frame.astype(dict(types))
    return frame


def read_one(entry: ManifestEntry, options: Mapping[str, Any], local_copy: str | None = None) -> pd.DataFrame:
    import pandas as pd

    store = Datastore.get(entry.datastore)
    where = f"{entry.path!r} in datastore {entry.datastore!r}"
    fmt = options.get("format", "delimited")
    with open(local_copy, "rb") if local_copy else store.open(entry.path, "rb") as fh:
        # The declared format wins; the suffix decides only for definitions that declare none.
        if fmt == "parquet" or ("format" not in options and entry.path.lower().endswith(_PARQUET_SUFFIXES)):
            try:
                frame = pd.read_parquet(fh)
            except Exception as exc:
                raise DatasetError(f"cannot read parquet file {where}: {exc}") from None
        else:
            try:
                frame = pd.read_csv(
                    fh,
                    sep=options.get("separator", ","),
                    header=0 if options.get("header", True) else None,
                    encoding=options.get("encoding", "utf8"),
                    skiprows=int(options.get("skip_rows", 0)) or None,
                    dtype=None if options.get("infer_column_types", True) else str,
                    engine="c",
                )
            except pd.errors.ParserError as exc:
                raise DatasetError(f"malformed delimited file {where}: {exc}") from None
            except UnicodeDecodeError as exc:
                raise DatasetError(
                    f"delimited file {where} is not {options.get('encoding', 'utf8')} text (byte {exc.start}); "
                    "pass encoding=... to from_delimited_files"
                ) from None
            except pd.errors.EmptyDataError:
                frame = pd.DataFrame()
    if options.get("include_path"):
        frame.insert(0, "Path", entry.path)
    return frame
