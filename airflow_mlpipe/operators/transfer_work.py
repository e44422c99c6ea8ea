"""A data transfer's part of an attempt: plan its spec, and run the copy on the worker until its commit.

A folder copy is keyed like a script step whose "script" is the copy itself: the source's data content (pinned:
store-kept ETag/MD5 or our hash, never downloads), the destination as declared and the copy's settings. A hit
means an earlier copy of the same content is still complete at its destination, so nothing is listed or
copied. After copying, the destination must hold every pinned source file with its size (and its content, where
both stores identify content alike): a source changed during the copy fails the attempt instead of being
registered under the earlier key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.core.paths import is_reserved
from airflow_mlpipe.datasets.dataset import AbstractDataset, FileDataset
from airflow_mlpipe.datasets.manifest import Manifest, ManifestEntry
from airflow_mlpipe.datasets.output import OutputFileDatasetConfig, OutputInput
from airflow_mlpipe.datasets.paths import DataPath
from airflow_mlpipe.exceptions import ConfigError, MlpipeError, step_failed_error
from airflow_mlpipe.fingerprint.identity import identities
from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.hooks.datastore import DatastoreHook
from airflow_mlpipe.reuse.decide import ReusePolicy
from airflow_mlpipe.reuse.inputs import pin_input, pinned_manifest
from airflow_mlpipe.reuse.step_key import StepFingerprint, fingerprint_step
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage.datastore import COMPLETE_MARKER, Datastore
from airflow_mlpipe.storage.listing import JOURNAL_NAME

if TYPE_CHECKING:
    from airflow_mlpipe.operators.attempt import StepAttempt
    from airflow_mlpipe.operators.data_transfer import DataTransferOperator
    from airflow_mlpipe.reuse.lease import Lease

TRANSFER_SCRIPT = "(data transfer)"
# The fixes the copy engine's errors suggest, in the operator's arguments.
_OPTION_WORDS = {
    "file": "pass source_reference_type='file'",
    "directory": "pass source_reference_type='directory'",
    "overwrite": "pass overwrite=True",
}
# Keys of a completion marker that describe the files; the rest (the copy engine's own section) is kept as is.
_MANIFEST_KEYS = ("entries", "files", "bytes", "digest", "step_output", "step_run_id")


def transfer_fingerprint(
    *, source: Mapping[str, Any], destination: Mapping[str, Any], settings: Mapping[str, Any]
) -> StepFingerprint:
    """:param source: an input spec (``{"name", "mode", "source": {"type": "dataset" | "folder", ...}}``).
    :param destination: an output spec (``name``, ``datastore``, ``path_template``, ``mode``, ``registration``)."""
    arguments = [{"t": "str", "v": f"--{key}={value}"} for key, value in sorted(settings.items())]
    return fingerprint_step(
        script_name=TRANSFER_SCRIPT,
        source=Tree({}),
        hash_paths=None,
        arguments=arguments,
        inputs=[source],
        outputs=[destination],
        environment={},
    )


class TransferWork:
    def __init__(self, operator: DataTransferOperator) -> None:
        self.op = operator

    # -- planning ---------------------------------------------------------------------------------------------
    def plan(self, attempt: StepAttempt, policy: ReusePolicy) -> StepSpec:
        op = self.op
        src_store, src_path, files = op.resolve_source(attempt.context)
        dst_store, dst_path = op.resolve_destination(attempt.srid)
        _check_overlap(src_store, src_path, dst_store, dst_path)
        kind = op.source_reference_type if files is None else "directory"
        destination = {
            "name": op.destination_name,
            "datastore": dst_store.name,
            "path": dst_path,
            "path_template": op.destination.path_template
            if isinstance(op.destination, OutputFileDatasetConfig)
            else dst_path,
            "mode": "upload",
            "overwrite": op.overwrite,
            "registration": {"name": op.register_on_complete} if op.register_on_complete else None,
            "file": kind == "file",
        }
        copy = {
            "source": src_store.uri(src_path),
            "source_datastore": src_store.name,
            "source_path": src_path,
            "kind": kind,
            "files": files,
            "overwrite": op.overwrite,
            "verify": op.verify,
        }
        reuse: dict[str, Any] = {}
        inputs: tuple[Mapping[str, Any], ...] = ()
        if kind == "directory":
            source = pin_input({"name": "source", "mode": "direct", "source": self._origin(src_store, src_path)})
            settings = {"verify": op.verify, "files": len(files) if files is not None else "all"}
            fingerprint = transfer_fingerprint(source=source, destination=destination, settings=settings)
            inputs = (source,)
            reuse = {
                "key": fingerprint.digest,
                "components": fingerprint.key.components(),
                "details": fingerprint.details,
                "policy": policy.to_dict(),
            }
        return StepSpec(
            attempt=attempt.attempt,
            kind="transfer",
            script_name=TRANSFER_SCRIPT,
            inputs=inputs,
            outputs=(destination,),
            reuse=reuse,
            extra={"transfer": copy, "max_tries": attempt._max_tries()},
            created_at=records.now_iso(),
        )

    def _origin(self, src_store: Datastore, src_path: str) -> dict[str, Any]:
        if isinstance(self.op.source, OutputInput):
            return {"type": "folder", "datastore": src_store.name, "path": src_path}
        if isinstance(self.op.source, AbstractDataset):
            return {"type": "dataset", "dataset": self.op.source.pinned().to_dict()}
        return {"type": "dataset", "dataset": FileDataset((DataPath(src_store.name, src_path),)).to_dict()}

    # -- copying ----------------------------------------------------------------------------------------------
    def launch(self, attempt: StepAttempt, spec: StepSpec, lease: Lease | None) -> None:
        copy, destination = spec.extra["transfer"], spec.outputs[0]
        src = DatastoreHook.get_datastore(str(copy["source_datastore"]))
        dst = DatastoreHook.get_datastore(str(destination["datastore"]))
        src_path, dst_path = str(copy["source_path"]), str(destination["path"])
        record = {**records.record_base(spec), "status": records.RUNNING, "started_at": attempt.started_at}
        records.write_record(record, attempt.store)
        attempt.log.info("Copying %s to %s", src.uri(src_path), dst.uri(dst_path))
        try:
            kept = _kept_output(dst, dst_path, src.uri(src_path)) if copy["kind"] == "directory" else None
            result = self._copy(attempt, spec, src, dst, kept)
            summary = result.to_dict(include_files=len(result.files) <= 100)
            if copy["kind"] == "directory":
                manifest = self._sealed(spec, src, dst, dst_path)
                marker = {"transfer": dict(result.marker_section or {})}
            else:
                (ident,) = identities(dst, {dst_path: dst.info(dst_path)}).values()
                manifest, marker = Manifest.of([ManifestEntry(dst.name, ident)]), {}
            summary["manifest"] = manifest.summary()
            output = {"name": destination["name"], "datastore": dst.name, "path": dst_path, "uri": dst.uri(dst_path)}
            if not records.write_commit(
                spec.step_run_id, [{**output, "manifest": manifest.to_dict(), "marker": marker}], attempt.store
            ):
                raise ConfigError(f"step run {spec.step_run_id} was committed already; an attempt commits once")
        except Exception as exc:
            records.write_record({**record, "status": records.FAILED, "error": str(exc)}, attempt.store)
            raise step_failed_error(f"step {self.op.task_id!r}: {exc}") from None
        attempt.log.info("%s", result.summary())
        record.update(status=records.COMMITTED, transfer=summary, committed_at=records.now_iso())
        records.write_record(record, attempt.store)

    def _copy(self, attempt: StepAttempt, spec: StepSpec, src: Datastore, dst: Datastore, kept: str | None) -> Any:
        """Copy exactly the pinned files. A folder that is this transfer's own (nothing there, an earlier run's
        unfinished copy, or its unregistered committed copy of this source) is mirrored: files the source lacks are
        removed first. A folder whose files are ``kept`` (a registered committed output, or a committed output of
        something else) only gets files added: one the source lacks, or one that differs, is refused before
        anything is copied, since the folder would not be the copy of the source its reuse key says it is."""
        from airflow_mlpipe.storage.transfer import transfer
        from airflow_mlpipe.storage.transfer_errors import TransferDestinationExistsError

        copy, dst_path = spec.extra["transfer"], str(spec.outputs[0]["path"])
        files = copy.get("files")
        if copy["kind"] == "directory" and files is None:
            base = str(copy["source_path"]).rstrip("/")
            files = [e.path[len(base) + 1 :] if base else e.path for e in pinned_manifest(spec.inputs[0]).entries]
        try:
            return transfer(
                src, str(copy["source_path"]), dst, dst_path,
                kind=copy["kind"], overwrite=bool(copy["overwrite"]) and kept is None, mirror=kept is None,
                verify=bool(copy["verify"]), files=files, mark_complete=False, option_words=_OPTION_WORDS,
                progress=lambda p: attempt.log.info("Progress: %s", p), progress_interval=self.op.progress_interval,
            )  # fmt: skip
        except TransferDestinationExistsError as exc:
            if kept is None:
                raise
            raise ConfigError(_kept_refusal(exc, kept, overwrite=bool(copy["overwrite"]))) from None

    def _sealed(self, spec: StepSpec, src: Datastore, dst: Datastore, dst_path: str) -> Manifest:
        """The destination folder's manifest, checked to hold every pinned source file, and the source checked to
        still hold them as pinned (a change during the copy would otherwise go unseen where the two stores
        identify content differently)."""
        infos = {
            p: i
            for p, i in dst.list(dst_path, recursive=True, detail=True).items()
            # a datastore root as destination: mlpipe's own records there are not the copy's
            if p.rsplit("/", 1)[-1] not in (COMPLETE_MARKER, JOURNAL_NAME) and not is_reserved(p)
        }
        manifest = Manifest.of(ManifestEntry(dst.name, ident) for ident in identities(dst, infos).values())
        pinned = pinned_manifest(spec.inputs[0])
        problem = _missing_from(pinned, str(spec.extra["transfer"]["source_path"]), manifest, dst_path)
        problem = problem or _not_from(pinned, str(spec.extra["transfer"]["source_path"]), manifest, dst_path)
        problem = problem or _changed_at_source(pinned, src, str(spec.extra["transfer"]["source_path"]))
        if problem:
            raise ConfigError(
                f"the source changed while it was copied ({problem}); the copy's retry plans again with the new files"
            )
        return manifest

    def resume(self, attempt: StepAttempt, spec: StepSpec, event: Mapping[str, Any]) -> None:
        raise step_failed_error(f"step {self.op.task_id!r}: a data transfer never defers, so it cannot resume")

    def ran(self) -> str | None:
        return None

    def result(self, record: Mapping[str, Any]) -> dict[str, Any]:
        outputs = record.get("outputs") or [{}]
        summary = {k: v for k, v in (record.get("transfer") or {}).items() if k != "files"}
        if record.get("status") == records.REUSED:
            summary = {"files_copied": 0, "destination": outputs[0].get("uri")}
        return {**summary, "registered": outputs[0].get("registered")}


def _kept_output(dst: Datastore, path: str, source_uri: str) -> str | None:
    """Whose files a folder keeps, in words, when it holds a committed output that a transfer may only add to: a
    registered one (a dataset version names its files), or one that is no copy of this source. None: the folder
    is this transfer's to mirror (no marker, or the unregistered committed copy of this same source)."""
    if not dst.is_complete(path):
        return None
    try:
        marker = dst.read_marker(path)
    except (MlpipeError, ValueError, TypeError):
        marker = {}
    who = f"step run {marker['step_run_id']}" if marker.get("step_run_id") else "an earlier step run"
    registered = marker.get("registered")
    if isinstance(registered, Mapping) and registered.get("name"):
        return f"{who}, registered as dataset {registered['name']!r} version {registered.get('version')}"
    section = marker.get("transfer")
    if isinstance(section, Mapping) and section.get("source") == source_uri:
        return None
    return f"{who}, which is not a copy of this source"


def _kept_refusal(exc: Any, kept: str, *, overwrite: bool) -> str:
    """The refusal of a copy into a folder whose files are kept (``_kept_output``): which files, why, the fix."""
    from airflow_mlpipe.storage.transfer_errors import TransferExtraFilesError, some_files

    if isinstance(exc, TransferExtraFilesError):
        found = f"holds {len(exc.files)} file(s) that the source does not have ({some_files(exc.files)})"
        rule = "they are never removed"
    else:
        found = f"already holds {len(exc.files)} file(s) that differ from the source ({some_files(exc.files)})"
        rule = "they are never replaced" + (", and overwrite=True does not apply to them" if overwrite else "")
    return (
        f"transfer destination: {exc.where} {found}, and it holds the committed output of {kept}: {rule}, so that "
        "the bytes a registered dataset version names never change, and a version registered from the folder "
        "would not be a copy of the source. Copy into a folder of its own, e.g. an OutputFileDatasetConfig whose "
        "destination has {run-id}; nothing was copied"
    )


def _not_from(source: Manifest, src_path: str, destination: Manifest, dst_path: str) -> str | None:
    """A file at the destination that is not among the pinned source files (written there during the copy)."""
    base = src_path.rstrip("/") + "/" if src_path.strip("/") else ""
    prefix = dst_path.rstrip("/") + "/" if dst_path.strip("/") else ""
    wanted = {e.path[len(base) :] for e in source.entries}
    for entry in destination.entries:
        rel = entry.path[len(prefix) :]
        if rel not in wanted:
            return f"{rel} appeared at the destination, and the source does not have it"
    return None


def _missing_from(source: Manifest, src_path: str, destination: Manifest, dst_path: str) -> str | None:
    """Which pinned source file the destination lacks or holds with another size or content, if any."""
    base = src_path.rstrip("/") + "/" if src_path.strip("/") else ""
    prefix = dst_path.rstrip("/") + "/" if dst_path.strip("/") else ""
    there = {e.path[len(prefix) :]: e.identity for e in destination.entries}
    for entry in source.entries:
        rel = entry.path[len(base) :] if base else entry.path
        got = there.get(rel)
        if got is None:
            return f"{rel} is missing at the destination"
        if got.size != entry.identity.size or (got.kind == entry.identity.kind and got.value != entry.identity.value):
            return f"{rel} differs at the destination"
    return None


def _changed_at_source(pinned: Manifest, src: Datastore, src_path: str) -> str | None:
    """Which pinned source file no longer has its pinned identity, if any (one listing of the source folder)."""
    listing = src.list(src_path, recursive=True, detail=True) if src.isdir(src_path) else {}
    infos = {}
    for entry in pinned.entries:
        if entry.path not in listing:
            return f"{entry.path} is gone from the source"
        infos[entry.path] = listing[entry.path]
    now = identities(src, infos)
    for entry in pinned.entries:
        if now[entry.path].token != entry.identity.token:
            return f"{entry.path} changed at the source"
    return None


def _check_overlap(src: Datastore, src_path: str, dst: Datastore, dst_path: str) -> None:
    if src.url != dst.url:
        return
    a, b = src_path.rstrip("/"), dst_path.rstrip("/")
    if a == b or a.startswith(b + "/") or b.startswith(a + "/") or not a or not b:
        raise ConfigError(
            f"source {src.uri(src_path)!r} and destination {dst.uri(dst_path)!r} overlap; copy into a folder "
            "outside the source"
        )
