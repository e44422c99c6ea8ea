"""``Run`` for step scripts, as Azure ML's ``azureml.core.Run``: ``run = Run.get_context()``.

Inside a pipeline step the runner hands the script its context (inputs, metrics file, artifacts folder). Outside
any pipeline ``get_context()`` returns an offline run that logs to the console and ``./mlpipe_offline_run/``, and
takes input datasets from the command line (``--input NAME=PATH``), so a script can be debugged alone.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import IO, Any

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import ConfigError

RUN_CONTEXT_ENV = "MLPIPE_RUN_CONTEXT"
_current: Run | None = None


class InputPath(str):
    """A downloaded or mounted input: the local path (a ``str``, as Azure ML hands it over) that can also read
    itself: ``to_pandas_dataframe()``, ``to_path()``, ``download(target)``."""

    @property
    def path(self) -> str:
        return str(self)

    def files(self) -> list[str]:
        if os.path.isfile(self):
            return [str(self)]
        found = []
        for dirpath, _, filenames in os.walk(self, followlinks=True):
            found += [os.path.join(dirpath, f) for f in filenames if not f.startswith("_MLPIPE")]
        return sorted(found)

    def to_path(self) -> list[str]:
        base = os.path.dirname(self) if os.path.isfile(self) else str(self)
        return [os.path.relpath(f, base).replace(os.sep, "/") for f in self.files()]

    def to_pandas_dataframe(self, separator: str | None = None) -> Any:
        import pandas as pd

        frames = []
        for f in self.files():
            lower = f.lower()
            if lower.endswith((".parquet", ".pq")):
                frames.append(pd.read_parquet(f))
            elif lower.endswith((".csv", ".tsv", ".txt")):
                frames.append(pd.read_csv(f, sep=separator or ("\t" if lower.endswith(".tsv") else ",")))
        if not frames:
            raise ValueError(f"input {str(self)!r} holds no csv, tsv or parquet file")
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def download(self, target_path: str, overwrite: bool = False) -> list[str]:
        out = []
        base = os.path.dirname(self) if os.path.isfile(self) else str(self)
        for f in self.files():
            dest = os.path.join(target_path, os.path.relpath(f, base))
            if os.path.exists(dest) and not overwrite:
                raise FileExistsError(f"{dest!r} exists; pass overwrite=True")
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copyfile(f, dest)
            out.append(dest)
        return out


class ParentRun:
    """The pipeline run (the Airflow DAG run) a step run belongs to."""

    def __init__(self, dag_id: str, run_id: str) -> None:
        self.dag_id = dag_id
        self.id = run_id

    def __repr__(self) -> str:
        return f"ParentRun(dag_id={self.dag_id!r}, id={self.id!r})"


class Run:
    """The current step run. Metrics logged here go to the run record and the task's XCom summary."""

    def __init__(self, context: Mapping[str, Any], *, offline: bool = False) -> None:
        self._context = dict(context)
        self.offline = offline
        self.id: str = str(context["run_id"])
        parent = context.get("parent")
        self.parent: ParentRun | None = ParentRun(parent["dag_id"], parent["run_id"]) if parent else None
        self._metrics_file = str(context["metrics_file"])
        self._artifacts = str(context["artifacts_dir"])
        self._tags: dict[str, str | None] = {}
        self.input_datasets: dict[str, Any] = {
            name: _input_value(info) for name, info in (context.get("inputs") or {}).items()
        }
        # As Azure ML's: each output's folder on this machine (write the output's files there).
        self.output_datasets: dict[str, str] = dict(context.get("outputs") or {})
        # The Airflow context of the task (None offline). Not part of the reuse key: a step whose results depend
        # on, say, the logical date passes it as an argument ("--day", "{{ ds }}"), which the key covers.
        airflow = dict(context.get("airflow") or {})
        self.dag_id: str | None = airflow.get("dag_id")
        self.run_id: str | None = airflow.get("run_id")
        self.task_id: str | None = airflow.get("task_id")
        self.map_index: int = int(airflow.get("map_index", -1))
        # Which try of the Airflow task this step run is (1 for the first; a retry or a clear adds one).
        self.try_number: int = int(context.get("try_number") or airflow.get("try_number") or 1)
        self.logical_date = _moment(airflow.get("logical_date"))
        self.data_interval_start = _moment(airflow.get("data_interval_start"))
        self.data_interval_end = _moment(airflow.get("data_interval_end"))
        self.params: dict[str, Any] = dict(airflow.get("params") or {})
        os.makedirs(os.path.dirname(self._metrics_file), exist_ok=True)
        os.makedirs(self._artifacts, exist_ok=True)

    @classmethod
    def get_context(cls, allow_offline: bool = True) -> Run:
        global _current
        if _current is not None:
            return _current
        path = os.environ.get(RUN_CONTEXT_ENV)
        if path:
            with open(path) as fh:
                _current = cls(json.load(fh))
        elif allow_offline:
            _current = cls(_offline_context(sys.argv), offline=True)
            print(f"[mlpipe] offline run {_current.id}: metrics go to {os.path.dirname(_current._metrics_file)}")
        else:
            raise RuntimeError("not running inside a pipeline step, and allow_offline=False")
        return _current

    # -- metrics ----------------------------------------------------------------------------------------------
    def _write(self, name: str, kind: str, value: Any, description: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric name {name!r} must be a non-empty string")
        entry = {"name": name, "kind": kind, "value": value, "time": time.time()}
        if description:
            entry["description"] = description
        line = json.dumps(entry, default=_jsonable)
        with open(self._metrics_file, "a") as fh:
            fh.write(line + "\n")
        if self.offline:
            print(f"[mlpipe offline] {kind} {name} = {json.dumps(value, default=_jsonable)}")

    def log(self, name: str, value: Any, description: str = "") -> None:
        """A scalar; logging the same name again makes a series."""
        self._write(name, "scalar", value, description)

    def log_list(self, name: str, value: Sequence[Any], description: str = "") -> None:
        if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
            raise ConfigError(
                f"Run.log_list({name!r}): value {shown(value)} must be a list of values, e.g. [0.1, 0.01]"
            )
        self._write(name, "list", list(value), description)

    def log_row(self, name: str, description: str | None = None, **kwargs: Any) -> None:
        """One row of a table metric; rows with the same name make the table."""
        self._write(name, "row", kwargs, description or "")

    def log_table(self, name: str, value: Mapping[str, Sequence[Any]], description: str = "") -> None:
        """A table as columns: ``{"epoch": [1, 2], "loss": [0.9, 0.5]}``."""
        if not isinstance(value, Mapping) or not all(
            isinstance(column, str) and isinstance(cells, Sequence) and not isinstance(cells, (str, bytes))
            for column, cells in value.items()
        ):
            raise ConfigError(
                f"Run.log_table({name!r}): value {shown(value)} must map column names to lists of cells, e.g. "
                '{"epoch": [1, 2], "loss": [0.9, 0.5]}'
            )
        self._write(name, "table", {k: list(v) for k, v in value.items()}, description)

    def log_image(self, name: str, path: str | None = None, plot: Any = None, description: str = "") -> None:
        """An image file, or a matplotlib figure (``plot``), kept as an artifact of the run."""
        if (path is None) == (plot is None):
            raise ValueError("log_image needs exactly one of path=... or plot=...")
        target = os.path.join(self._artifacts, "images", *_artifact_parts(f"{name}.png", "log_image name"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if path is not None:
            shutil.copyfile(path, target)
        else:
            plot.savefig(target)
        self._write(name, "image", f"images/{name}.png", description)

    def upload_file(self, name: str, path_or_stream: str | IO[bytes]) -> None:
        """Keep a file as an artifact of the run under ``name``."""
        target = os.path.join(self._artifacts, *_artifact_parts(name, "upload_file name"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if isinstance(path_or_stream, str):
            shutil.copyfile(path_or_stream, target)
        else:
            with open(target, "wb") as fh:
                shutil.copyfileobj(path_or_stream, fh)

    def get_metrics(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if os.path.exists(self._metrics_file):
            with open(self._metrics_file) as fh:
                for line in fh:
                    entry = json.loads(line)
                    name, value = entry["name"], entry["value"]
                    if entry["kind"] == "scalar" and name in metrics:
                        prev = metrics[name]
                        metrics[name] = [*prev, value] if isinstance(prev, list) else [prev, value]
                    else:
                        metrics[name] = value
        return metrics

    # -- tags and state -----------------------------------------------------------------------------------------
    def tag(self, key: str, value: str | None = None) -> None:
        self._tags[key] = value
        self._write(f"tag:{key}", "tag", value)

    def set_tags(self, tags: Mapping[str, str]) -> None:
        for key, value in tags.items():
            self.tag(key, value)

    def get_tags(self) -> dict[str, str | None]:
        return dict(self._tags)

    def complete(self) -> None:
        """Nothing to do: the runner completes the step run when the script exits with code 0."""

    def flush(self) -> None:
        """Metrics are written as they are logged."""

    def __repr__(self) -> str:
        return f"Run(id={self.id!r}, offline={self.offline})"


def _artifact_parts(name: object, argument: str) -> list[str]:
    """The folders and file name of an artifact below the run's artifacts folder: a relative path with no empty,
    ``.`` or ``..`` part, so that no name writes outside the folder."""
    parts = name.split("/") if isinstance(name, str) else []
    if not parts or any(part in ("", ".", "..") or "\\" in part or "\x00" in part for part in parts):
        raise ConfigError(
            f"Run: {argument} {shown(name)} must be a relative path inside the run's artifacts, with no empty, '.' "
            "or '..' part and no backslash, e.g. 'reports/summary.txt'"
        )
    return parts


def _moment(text: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if isinstance(text, str) and text else None


def _input_value(info: Mapping[str, Any]) -> Any:
    if info.get("path"):
        return InputPath(str(info["path"]))
    if info.get("dataset"):
        from airflow_mlpipe.datasets.dataset import AbstractDataset

        return AbstractDataset.from_dict(info["dataset"])
    return None


def _offline_context(argv: list[str]) -> dict[str, Any]:
    """Take ``--input NAME=PATH`` pairs out of ``argv`` (so the script's own parser does not see them)."""
    inputs: dict[str, Any] = {}
    kept = [argv[0]] if argv else []
    i = 1
    while i < len(argv):
        arg = argv[i]
        value = None
        if arg == "--input" and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        elif arg.startswith("--input="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            kept.append(arg)
            i += 1
            continue
        if "=" not in value:
            raise SystemExit(f"--input {value!r}: write --input NAME=PATH")
        name, path = value.split("=", 1)
        if not os.path.exists(path):
            raise SystemExit(f"--input {name}={path}: {path!r} does not exist")
        inputs[name] = {"mode": "download", "path": os.path.abspath(path)}
    argv[:] = kept
    run_id = f"offline_{uuid.uuid4().hex[:8]}"
    folder = os.path.join(os.getcwd(), "mlpipe_offline_run", run_id)
    return {
        "run_id": run_id,
        "parent": None,
        "metrics_file": os.path.join(folder, "metrics.jsonl"),
        "artifacts_dir": os.path.join(folder, "artifacts"),
        "inputs": inputs,
    }


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    return str(value)
