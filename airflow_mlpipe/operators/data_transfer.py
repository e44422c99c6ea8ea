"""``DataTransferOperator``: Azure ML's ``DataTransferStep``, a verified, incremental copy between datastores."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

from airflow.configuration import conf
from airflow.sdk import BaseOperator, Context

from airflow_mlpipe.core.checks import check_bool, check_positive_number
from airflow_mlpipe.core.templates import has_jinja
from airflow_mlpipe.datasets.dataset import AbstractDataset
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig, OutputInput
from airflow_mlpipe.datasets.paths import DataPath, to_data_path
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.hooks.datastore import DatastoreHook
from airflow_mlpipe.operators.arguments import StepIO, link_producers, register_producer
from airflow_mlpipe.operators.failures import fails_cleanly
from airflow_mlpipe.operators.links import OUTPUTS_KEY, ReusedFromLink, StepRunLink
from airflow_mlpipe.operators.step_fields import (
    add_step_params,
    check_deferrable,
    check_templates,
    registered_outlets,
)

REFERENCE_TYPES = ("file", "directory")


class DataTransferOperator(BaseOperator):
    """Copy a file or a folder from one datastore to another: streaming, parallel, verified, incremental.

    :param source_data_reference: ``(datastore, "path")``, a dataset (a registered version copies exactly its
        files), or an upstream step's output (``output.as_input()``, which also orders the steps).
    :param destination_data_reference: ``(datastore, "path")`` or an ``OutputFileDatasetConfig`` (later steps
        can then read it with ``.as_input()``).
    :param source_reference_type: ``"file"`` or ``"directory"``.
    :param overwrite: replace destination files that differ from the source (off: such files are an error,
        raised before anything is written). Files already identical are skipped either way. It never applies to a
        folder holding a registered committed output, whose files are never replaced or removed. Files the source
        lacks are removed from the transfer's own folder and refused in anyone else's (docs/transfer.md, "The
        mirror rule").
    :param register_on_complete: a dataset name to register the copied folder under, as a new version.
    :param allow_reuse: skip copying when the destination already holds identical files (incremental copy).
    :param deferrable: wait in the triggerer for another run copying the same thing; False waits in the worker.
        Defaults to Airflow's ``[operators] default_deferrable``.
    """

    # Jinja in the datastore paths (and an OutputFileDatasetConfig's destination) is rendered before the copy.
    template_fields: Sequence[str] = ("source_path", "destination_path", "destination")
    operator_extra_links = (StepRunLink(), ReusedFromLink())
    ui_color = "#fdebd0"

    def __init__(
        self,
        *,
        source_data_reference: Any,
        destination_data_reference: Any,
        source_reference_type: str = "directory",
        overwrite: bool = False,
        register_on_complete: str | None = None,
        allow_reuse: bool = True,
        verify: bool = True,
        progress_interval: float = 30.0,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id", "?")
        if source_reference_type not in REFERENCE_TYPES:
            raise ConfigError(
                f"step {task_id!r}: source_reference_type {source_reference_type!r} must be 'file' or 'directory'"
            )
        if register_on_complete is not None:
            try:
                check_name(register_on_complete)
            except ValueError as exc:
                raise ConfigError(f"step {task_id!r}: register_on_complete: {exc}") from None
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), *registered_outlets([register_on_complete])]
        super().__init__(**kwargs)
        self.deferrable = check_deferrable(self.task_id, deferrable)
        self.source = _source(self.task_id, source_data_reference)
        self.destination = _destination(self.task_id, destination_data_reference)
        self.source_path = self.source.path if isinstance(self.source, DataPath) else None
        self.destination_path = self.destination.path if isinstance(self.destination, DataPath) else None
        check_templates(self.task_id, [("source path", self.source_path), ("destination path", self.destination_path)])
        _refuse_overlap(self.task_id, self.source, self.destination)
        self.source_reference_type = source_reference_type
        owner = f"step {self.task_id!r}"
        self.overwrite = check_bool(owner, "overwrite", overwrite)
        self.register_on_complete = register_on_complete
        self.allow_reuse = check_bool(owner, "allow_reuse", allow_reuse)
        self.verify = check_bool(owner, "verify", verify)
        self.progress_interval = check_positive_number(owner, "progress_interval", progress_interval)
        io = StepIO()
        if isinstance(self.source, OutputInput):
            io.add_input(self.source)
        if isinstance(self.destination, OutputFileDatasetConfig):
            self.destination.bind(self.task_id, 0)
            io.add_output(self.destination)
        register_producer(self, io)
        link_producers(self, io)
        add_step_params(self, {})

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs of the step run that just finished, for the OpenLineage provider."""
        from airflow_mlpipe.operators.lineage import openlineage_facets

        return openlineage_facets(getattr(self, "_mlpipe_lineage", None))

    @fails_cleanly
    def execute(self, context: Context) -> dict[str, Any]:
        return self._attempt(context).execute()

    @fails_cleanly
    def resume_after_reuse_wait(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._attempt(context).resume_after_wait(event or {})

    def _attempt(self, context: Context) -> Any:
        from airflow_mlpipe.operators.attempt import StepAttempt
        from airflow_mlpipe.operators.transfer_work import TransferWork

        self._use_rendered()
        return StepAttempt(self, context, TransferWork(self))

    def _use_rendered(self) -> None:
        """The rendered paths as the references the copy uses, checked as when they were first given."""
        if isinstance(self.source, DataPath) and self.source_path is not None:
            self.source = _source(self.task_id, (self.source.datastore, _rendered(self.task_id, self.source_path)))
        if isinstance(self.destination, DataPath) and self.destination_path is not None:
            where = (self.destination.datastore, _rendered(self.task_id, self.destination_path))
            self.destination = _destination(self.task_id, where)
        if isinstance(self.destination, OutputFileDatasetConfig):
            self.destination.check_rendered(self.task_id)

    def resolve_source(self, context: Context) -> tuple[Any, str, list[str] | None]:
        """The source's datastore, folder or file, and (for a dataset) exactly its files relative to the folder."""
        source = self.source
        if isinstance(source, DataPath):
            return DatastoreHook.get_datastore(source.datastore), source.path, None
        if isinstance(source, OutputInput):
            located = context["ti"].xcom_pull(task_ids=source.output.producer, key=OUTPUTS_KEY) or {}
            where = located.get(source.output.name)
            if where is None:
                raise ConfigError(f"output {source.output.name!r} of step {source.output.producer!r} was not published")
            store = DatastoreHook.get_datastore(where["datastore"])
            store.read_marker(where["path"])  # an incomplete upstream output is never copied
            return store, where["path"], None
        dataset = source.pinned()
        entries = dataset.verified_entries()
        stores = {e.datastore for e in entries}
        if len(stores) != 1:
            raise ConfigError(f"dataset {dataset!r} spans datastores {sorted(stores)}; copy one datastore at a time")
        base = (
            posixpath.commonpath([e.path for e in entries]) if len(entries) > 1 else posixpath.dirname(entries[0].path)
        )
        files = [e.path[len(base) + 1 :] if base else e.path for e in entries]
        return DatastoreHook.get_datastore(stores.pop()), base, files

    def resolve_destination(self, step_run_id: str) -> tuple[Any, str]:
        if isinstance(self.destination, OutputFileDatasetConfig):
            where = self.destination.destination_for(step_run_id)
        else:
            where = self.destination
        return DatastoreHook.get_datastore(where.datastore), where.path

    @property
    def destination_name(self) -> str:
        if isinstance(self.destination, OutputFileDatasetConfig) and self.destination.name:
            return self.destination.name
        return "destination"


def _refuse_overlap(task_id: str, source: Any, destination: Any) -> None:
    """Refuse, at parse time, what the copy would refuse when it runs: two paths of one datastore that are the same
    or lie one inside the other (a copy would read what it writes). Only for paths known now (no template, no
    glob); the copy checks again, on the datastores' URLs, when it runs."""
    if not (isinstance(source, DataPath) and isinstance(destination, DataPath)):
        return
    if source.datastore != destination.datastore or any(has_jinja(p.path) or p.is_glob for p in (source, destination)):
        return
    a, b = source.path.strip("/"), destination.path.strip("/")
    if a == b:
        how = "they are the same path"
    elif not a or b.startswith(a + "/"):
        how = "the destination lies inside the source"
    elif not b or a.startswith(b + "/"):
        how = "the source lies inside the destination"
    else:
        return
    raise ConfigError(
        f"step {task_id!r}: source_data_reference {(source.datastore, source.path)!r} and "
        f"destination_data_reference {(destination.datastore, destination.path)!r} overlap ({how}): a copy would "
        "read what it writes; choose a destination outside the source (and not a folder that contains it)"
    )


def _rendered(task_id: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"step {task_id!r}: a datastore path rendered to {value!r}, not a path; make it render text")
    return value


def _source(task_id: str, value: Any) -> DataPath | OutputInput | AbstractDataset:
    if isinstance(value, (OutputInput, AbstractDataset)):
        return value
    if isinstance(value, OutputFileDatasetConfig):
        return value.as_input()
    try:
        return to_data_path(value)
    except ValueError as exc:
        raise ConfigError(f"step {task_id!r}: source_data_reference: {exc}") from None


def _destination(task_id: str, value: Any) -> DataPath | OutputFileDatasetConfig:
    if isinstance(value, OutputFileDatasetConfig):
        return value
    try:
        return to_data_path(value)
    except ValueError as exc:
        raise ConfigError(f"step {task_id!r}: destination_data_reference: {exc}") from None
