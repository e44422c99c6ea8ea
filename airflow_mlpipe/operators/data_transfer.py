"""``DataTransferOperator``: Azure ML's ``DataTransferStep``, a verified, incremental copy between datastores."""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator, Context

from airflow_mlpipe.datasets.dataset import AbstractDataset
from airflow_mlpipe.datasets.names import check_name
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig, OutputInput, step_run_id
from airflow_mlpipe.datasets.paths import DataPath, to_data_path
from airflow_mlpipe.exceptions import ConfigError, MlpipeError, step_failed_error
from airflow_mlpipe.operators.arguments import StepIO, link_producers, register_producer
from airflow_mlpipe.operators.links import RECORD_URI_KEY, StepRunLink
from airflow_mlpipe.operators.python_script import OUTPUTS_KEY

REFERENCE_TYPES = ("file", "directory")


class DataTransferOperator(BaseOperator):
    """Copy a file or a folder from one datastore to another: streaming, parallel, verified, incremental.

    :param source_data_reference: ``(datastore, "path")``, a dataset (a registered version copies exactly its
        files), or an upstream step's output (``output.as_input()``, which also orders the steps).
    :param destination_data_reference: ``(datastore, "path")`` or an ``OutputFileDatasetConfig`` (later steps
        can then read it with ``.as_input()``).
    :param source_reference_type: ``"file"`` or ``"directory"``.
    :param overwrite: replace destination files that differ from the source (off: such files are an error,
        raised before anything is written). Files already identical are skipped either way.
    :param register_on_complete: a dataset name to register the copied folder under, as a new version.
    :param allow_reuse: skip copying when the destination already holds identical files (incremental copy).
    """

    template_fields: Sequence[str] = ()
    operator_extra_links = (StepRunLink(),)
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
        **kwargs: Any,
    ) -> None:
        task_id = kwargs.get("task_id", "?")
        if source_reference_type not in REFERENCE_TYPES:
            raise ConfigError(
                f"step {task_id!r}: source_reference_type {source_reference_type!r} must be 'file' or 'directory'"
            )
        if register_on_complete is not None:
            check_name(register_on_complete)
            from airflow_mlpipe.assets import datasets_alias

            kwargs["outlets"] = [*(kwargs.get("outlets") or []), datasets_alias()]
        super().__init__(**kwargs)
        self.source = _source(self.task_id, source_data_reference)
        self.destination = _destination(self.task_id, destination_data_reference)
        self.source_reference_type = source_reference_type
        self.overwrite = bool(overwrite)
        self.register_on_complete = register_on_complete
        self.allow_reuse = bool(allow_reuse)
        self.verify = bool(verify)
        self.progress_interval = float(progress_interval)
        io = StepIO()
        if isinstance(self.source, OutputInput):
            io.add_input(self.source)
        if isinstance(self.destination, OutputFileDatasetConfig):
            self.destination.bind(self.task_id, 0)
            io.add_output(self.destination)
        register_producer(self, io)
        link_producers(self, io)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_mlpipe.storage.datastore import Datastore

        ti = context["ti"]
        srid = step_run_id(ti.dag_id, ti.run_id, ti.task_id)
        try:
            src_store, src_path, files = self._resolve_source(context)
            dst_store, dst_path = self._resolve_destination(srid)
            self._check_overlap(src_store, src_path, dst_store, dst_path)
            kind = self.source_reference_type if files is None else "directory"
            fingerprint = decision = None
            if kind == "directory":
                fingerprint = self._fingerprint(context, src_store.name, src_path, files, dst_store.name, dst_path)
                decision = self._decide(context, srid, fingerprint)
        except (MlpipeError, FileNotFoundError, FileExistsError) as exc:
            raise step_failed_error(f"step {self.task_id!r}: {exc}") from None
        if decision is not None and fingerprint is not None and decision.hit:
            return self._reuse(context, srid, fingerprint, decision)
        summary, registered = self._copy(context, src_store, src_path, files, dst_store, dst_path, kind)
        record = self._record(srid, ti, summary, dst_store, dst_path, kind, registered, fingerprint, decision)
        self._publish(ti, record)
        if fingerprint is not None:
            from airflow_mlpipe.reuse.index import ReuseIndex
            from airflow_mlpipe.reuse.indexing import index_run

            index_run(ReuseIndex(Datastore.get_default()), fingerprint, record)
        summary.pop("files", None)
        return {"step_run_id": srid, "reused": False, **summary, "registered": registered}

    def _copy(
        self, context: Context, src_store: Any, src_path: str, files: list[str] | None, dst_store: Any,
        dst_path: str, kind: str,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
        from airflow_mlpipe.operators.transfer_reuse import seal_folder
        from airflow_mlpipe.storage.transfer import transfer

        self.log.info("Copying %s to %s", src_store.uri(src_path), dst_store.uri(dst_path))
        try:
            result = transfer(
                src_store, src_path, dst_store, dst_path,
                kind=kind,  # type: ignore[arg-type]
                overwrite=self.overwrite, verify=self.verify, files=files,
                progress=lambda p: self.log.info("Progress: %s", p), progress_interval=self.progress_interval,
            )  # fmt: skip
            summary = result.to_dict(include_files=len(result.files) <= 100)
            if kind == "directory":
                summary["manifest"] = seal_folder(dst_store, dst_path).summary()
        except (MlpipeError, FileNotFoundError, FileExistsError) as exc:
            raise step_failed_error(f"step {self.task_id!r}: {exc}") from None
        self.log.info("%s", result.summary())
        return summary, self._register(context, dst_store.name, dst_path, kind)

    # -- reuse ----------------------------------------------------------------------------------------------
    def _fingerprint(
        self, context: Context, src_name: str, src_path: str, files: list[str] | None, dst_name: str, dst_path: str
    ) -> Any:
        from airflow_mlpipe.datasets.dataset import FileDataset
        from airflow_mlpipe.operators.transfer_reuse import transfer_fingerprint

        if isinstance(self.source, OutputInput):
            origin: dict[str, Any] = {"type": "folder", "datastore": src_name, "path": src_path}
        elif isinstance(self.source, AbstractDataset):
            origin = {"type": "dataset", "dataset": self.source.pinned().to_dict()}
        else:
            origin = {"type": "dataset", "dataset": FileDataset((DataPath(src_name, src_path),)).to_dict()}
        template = self.destination.path_template if isinstance(self.destination, OutputFileDatasetConfig) else dst_path
        name = self.destination.name if isinstance(self.destination, OutputFileDatasetConfig) else "destination"
        registration = {"name": self.register_on_complete} if self.register_on_complete else None
        return transfer_fingerprint(
            source={"name": "source", "mode": "direct", "source": origin},
            destination={"name": name, "datastore": dst_name, "path_template": template, "mode": "upload",
                         "overwrite": self.overwrite, "registration": registration},
            settings={"verify": self.verify, "files": len(files) if files is not None else "all"},
        )  # fmt: skip

    def _decide(self, context: Context, srid: str, fingerprint: Any) -> Any:
        from airflow_mlpipe.operators.step_execution import decide_and_record
        from airflow_mlpipe.operators.step_reuse import regenerate_requested
        from airflow_mlpipe.reuse.decide import ReusePolicy
        from airflow_mlpipe.storage.datastore import Datastore

        policy = ReusePolicy(allow_reuse=self.allow_reuse, regenerate=regenerate_requested(context))
        return decide_and_record(fingerprint, context, srid, Datastore.get_default(), policy, self.log)

    def _reuse(self, context: Context, srid: str, fingerprint: Any, decision: Any) -> dict[str, Any]:
        from airflow_mlpipe.operators.links import REUSED_FROM_KEY
        from airflow_mlpipe.operators.step_reuse import reuse_block
        from airflow_mlpipe.steps import records
        from airflow_mlpipe.storage.datastore import Datastore

        ti, entry = context["ti"], decision.entry
        output = dict(entry.outputs[0])
        registered = self._register(context, output["datastore"], output["path"], "directory")
        output["registered"] = registered
        store = Datastore.get_default()
        record = {
            **self._record_base(srid, ti),
            "status": "Reused",
            "reused_from": entry.step_run_id,
            "outputs": [output],
            "reuse": reuse_block(fingerprint, decision),
        }
        records.write_record(record, store)
        self._publish(ti, record)
        ti.xcom_push(key=REUSED_FROM_KEY, value=store.uri(records.record_path(entry.step_run_id)))
        self.log.info("Reused the copy made by step run %s: nothing to copy", entry.step_run_id)
        return {"step_run_id": srid, "reused": True, "reused_from": entry.step_run_id, "files_copied": 0,
                "destination": output.get("uri"), "registered": registered}  # fmt: skip

    # -- references -----------------------------------------------------------------------------------------
    def _resolve_source(self, context: Context) -> tuple[Any, str, list[str] | None]:
        from airflow_mlpipe.storage.datastore import Datastore

        source = self.source
        if isinstance(source, DataPath):
            return Datastore.get(source.datastore), source.path, None
        if isinstance(source, OutputInput):
            located = context["ti"].xcom_pull(task_ids=source.output.producer, key=OUTPUTS_KEY) or {}
            where = located.get(source.output.name)
            if where is None:
                raise ConfigError(f"output {source.output.name!r} of step {source.output.producer!r} was not published")
            store = Datastore.get(where["datastore"])
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
        return Datastore.get(stores.pop()), base, files

    def _resolve_destination(self, srid: str) -> tuple[Any, str]:
        from airflow_mlpipe.storage.datastore import Datastore

        if isinstance(self.destination, OutputFileDatasetConfig):
            where = self.destination.resolve(srid)
        else:
            where = self.destination
        return Datastore.get(where.datastore), where.path

    def _check_overlap(self, src: Any, src_path: str, dst: Any, dst_path: str) -> None:
        if src.url != dst.url:
            return
        a, b = src_path.rstrip("/"), dst_path.rstrip("/")
        if a == b or a.startswith(b + "/") or b.startswith(a + "/") or not a or not b:
            raise ConfigError(
                f"source {src.uri(src_path)!r} and destination {dst.uri(dst_path)!r} overlap; copy into a folder "
                "outside the source"
            )

    # -- results --------------------------------------------------------------------------------------------
    def _register(self, context: Context, datastore: str, path: str, kind: str) -> dict[str, Any] | None:
        if not self.register_on_complete:
            return None
        from airflow_mlpipe.assets import emit_dataset_event, lineage_from_context
        from airflow_mlpipe.datasets.dataset import FileDataset

        lineage = lineage_from_context(context)
        registered = FileDataset((DataPath(datastore, path),)).register(self.register_on_complete, lineage=lineage)
        emit_dataset_event(context, registered, lineage)
        return {"name": registered.name, "version": registered.version, "created": bool(registered.is_new_version)}

    def _record_base(self, srid: str, ti: Any) -> dict[str, Any]:
        from airflow_mlpipe.steps import records

        return {
            "step_run_id": srid,
            "kind": "transfer",
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "try_number": ti.try_number,
            "started_at": records.now_iso(),
            "finished_at": records.now_iso(),
        }

    def _record(
        self, srid: str, ti: Any, summary: dict[str, Any], dst_store: Any, dst_path: str, kind: str,
        registered: Any, fingerprint: Any, decision: Any,
    ) -> dict[str, Any]:  # fmt: skip
        from airflow_mlpipe.operators.step_reuse import reuse_block
        from airflow_mlpipe.steps import records
        from airflow_mlpipe.storage.datastore import Datastore

        name = self.destination.name if isinstance(self.destination, OutputFileDatasetConfig) else "destination"
        output = {"name": name, "datastore": dst_store.name, "path": dst_path, "uri": dst_store.uri(dst_path),
                  "manifest": summary.get("manifest"), "registered": registered}  # fmt: skip
        record = {**self._record_base(srid, ti), "status": "Completed", "transfer": summary, "outputs": [output]}
        if fingerprint is not None and decision is not None:
            record["reuse"] = reuse_block(fingerprint, decision)
        records.write_record(record, Datastore.get_default())
        return record

    def _publish(self, ti: Any, record: dict[str, Any]) -> None:
        from airflow_mlpipe.steps import records
        from airflow_mlpipe.storage.datastore import Datastore

        ti.xcom_push(key=RECORD_URI_KEY, value=Datastore.get_default().uri(records.record_path(record["step_run_id"])))
        if isinstance(self.destination, OutputFileDatasetConfig):
            out = record["outputs"][0]
            location = {"datastore": out["datastore"], "path": out["path"], "uri": out.get("uri")}
            ti.xcom_push(key=OUTPUTS_KEY, value={self.destination.name: location})


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
