"""Execute one attempt from its spec: snapshot, pinned inputs, script, staged outputs, commit, run record.

The runner's part of an attempt ends at its commit (``commit.json``, written once after every output is staged at
its destination and verified): registering, marking complete and indexing the outputs is the finish path's
(``steps.finish``), which runs on the Airflow worker for every compute alike.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import traceback
from collections.abc import Mapping
from typing import Any

from airflow_mlpipe.compat.shim import azureml_compat_env
from airflow_mlpipe.core.faults import fault_point
from airflow_mlpipe.core.secrets import is_private_digest, private_digest, scrub_file, scrub_text
from airflow_mlpipe.datasets.seal import ATTEMPT_KEY_ENV, SEAL_KEY_ENV, use_attempt_key
from airflow_mlpipe.exceptions import MlpipeError
from airflow_mlpipe.runner.inputs import materialize_inputs
from airflow_mlpipe.runner.outputs import (
    OutputPlan,
    StagingError,
    discard,
    prepare_outputs,
    refuse_empty_registrations,
    refuse_links,
    refuse_reserved_names,
    refuse_unmatched_globs,
    stage,
)
from airflow_mlpipe.runner.process import ScriptProcess, install_signal_handlers, stdout_bytes
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.params import format_value
from airflow_mlpipe.steps.snapshot import fetch_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.steps.spec_seals import SPEC_DIGEST_ENV
from airflow_mlpipe.storage.datastore import Datastore

RUN_CONTEXT_ENV = "MLPIPE_RUN_CONTEXT"
SCRIPT_FAILED = "script exited with code {code}"


class StepError(Exception):
    """A step that could not run or finish; the message is what the task log and the record show."""


def run_step(spec_path: str, *, python: str | None = None) -> int:
    store = Datastore.get_default()
    # Refused (TamperedRecordError) when its seal fails, or when it is not the spec its worker launched.
    spec = records.read_spec_at(spec_path, store, launched=os.environ.get(SPEC_DIGEST_ENV))
    attempt_key = os.environ.get(ATTEMPT_KEY_ENV)
    if attempt_key:  # a container's runner: it seals this step run's records with the key its worker derived
        use_attempt_key(spec.step_run_id, attempt_key)
    fault_point("runner_started", spec.dag_id, spec.run_id)
    record: dict[str, Any] = {**records.record_base(spec), "status": records.RUNNING, "started_at": records.now_iso()}
    records.write_record(record, store)
    workdir = tempfile.mkdtemp(prefix="mlpipe-step-")
    log_file = os.path.join(workdir, "std_log.txt")
    plans: dict[str, OutputPlan] = {}
    process = ScriptProcess()
    install_signal_handlers(process)
    code = 1
    try:
        with open(log_file, "wb") as log:
            code = _execute(spec, record, workdir, log, plans, process, python)
    except Exception as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        _say(f"step {spec.task_id} failed: {record['error']}")
        if not isinstance(exc, (StepError, StagingError, MlpipeError)):  # their messages say it all
            traceback.print_exc()
        code = 1
    finally:
        discard(plans)
        committed = code == 0 and "committed_at" in record
        record["status"] = records.COMMITTED if committed else records.FAILED
        record["finished_at"] = records.now_iso()
        record["exit_code"] = code
        _upload_log(store, spec, log_file, record)
        _write_unless_finished(record, store)
        shutil.rmtree(workdir, ignore_errors=True)
    return code


def _execute(
    spec: StepSpec,
    record: dict[str, Any],
    workdir: str,
    log: Any,
    plans: dict[str, OutputPlan],
    process: ScriptProcess,
    python: str | None,
) -> int:
    store = Datastore.get_default()
    src = os.path.join(workdir, "src")
    if spec.snapshot is None:
        raise StepError("the step spec names no source snapshot")
    fetch_snapshot(spec.snapshot, store, src)
    script = os.path.join(src, *spec.script_name.split("/"))
    if not os.path.isfile(script):
        raise StepError(f"script {spec.script_name!r} is not in the source snapshot; check script_name")
    inputs = materialize_inputs(spec.inputs, workdir)
    record["inputs"] = [_input_summary(i) for i in spec.inputs]
    plans.update(prepare_outputs(spec.outputs, workdir, spec.attempt))
    argv = [_argument(a, inputs, plans) for a in spec.arguments]
    record["arguments"] = [_argument_for_record(a, argv[n], plans) for n, a in enumerate(spec.arguments)]
    context_file = _write_run_context(spec, workdir, inputs, plans)
    # The registry key seals what registrations write, the attempt key this step run's records: a script that
    # held them could forge those.
    inherited = {k: v for k, v in os.environ.items() if k not in (SEAL_KEY_ENV, ATTEMPT_KEY_ENV)}
    private = _private_values(spec, inherited)
    env = {**inherited, **{str(k): str(v) for k, v in (spec.environment.get("env_vars") or {}).items()}, **private}
    env.update({RUN_CONTEXT_ENV: context_file, "PYTHONUNBUFFERED": "1", **airflow_env(spec)})
    python = python or spec.python or sys.executable
    env = azureml_compat_env(env, python, enabled=bool(spec.extra.get("azureml_compat", True)))
    records.keep_secret(private.values())  # out of the log, its tail in the record, and the echoed output
    known = records.known_secrets(store)
    _say(scrub_text(f"running {spec.script_name} {' '.join(argv)}", known))
    command = [python, *_driver(spec), script, *argv]
    code = process.run(command, cwd=src, env=env, log=log, echo=stdout_bytes(), known=known)
    record["metrics"], record["metric_log"] = _collect_metrics(workdir)
    _upload_artifacts(store, spec, src, workdir, record)
    _stop_if_killed(process)
    if code != 0:
        record["error"] = SCRIPT_FAILED.format(code=code)
        _say(f"{spec.script_name} failed ({record['error']}); no output was committed or registered")
        return code
    record["outputs"] = _commit(spec, plans, store, process)
    record["committed_at"] = records.now_iso()
    return 0


def _private_values(spec: StepSpec, inherited: Mapping[str, str]) -> dict[str, str]:
    """The variables the spec holds as digests (credentials of a ``LocalCompute`` step), from the runner's own
    environment, each checked against its digest: the script gets exactly the values its reuse key was made of."""
    found: dict[str, str] = {}
    for name, value in (spec.environment.get("env_vars") or {}).items():
        if not is_private_digest(value):
            continue
        given = inherited.get(str(name))
        if given is None or private_digest(str(name), given) != value:
            state = "was not given it" if given is None else "was given another value than the step's reuse key holds"
            raise StepError(
                f"environment variable {name!r} holds a credential, so the step's spec keeps only its digest and "
                f"the launching worker passes its value; this runner {state}: start the runner the way the "
                "operator does (python -m airflow_mlpipe.runner, with the step's Environment(env_vars=...))"
            )
        found[str(name)] = given
    return found


def _driver(spec: StepSpec) -> list[str]:
    """What runs the script: itself, or for a ``ParallelRunStep`` mini-batch the driver calling its ``run()``."""
    if spec.extra.get("driver") == "parallel_run":
        from airflow_mlpipe.parallel import driver

        return [driver.__file__]
    return []


def _write_unless_finished(record: dict[str, Any], store: Datastore) -> None:
    """The runner's last word, unless the attempt was finished meanwhile (a runner that outlived its task, say a
    container nobody stopped, must not turn a finished record back into a committed one)."""
    current = records.find_record(str(record["step_run_id"]), store) or {}
    if current.get("status") in records.SUCCEEDED:
        return
    records.write_record(record, store)


def _stop_if_killed(process: ScriptProcess) -> None:
    """A runner told to stop (its task killed, its pod deleted) commits nothing, whatever it was doing."""
    if process.killed_by is not None:
        raise StepError(f"the step was stopped by signal {process.killed_by}; no output was committed")


def airflow_context(spec: StepSpec) -> dict[str, Any]:
    """The task's Airflow context as the script sees it (``Run.get_context()``); never part of the reuse key."""
    return {**spec.attempt.to_dict(), **dict(spec.extra.get("airflow") or {})}


def airflow_env(spec: StepSpec) -> dict[str, str]:
    """The same as ``MLPIPE_*`` variables, for scripts that do not import airflow_mlpipe."""
    context = airflow_context(spec)
    env = {
        f"MLPIPE_{key.upper()}": "" if value is None else str(value)
        for key, value in context.items()
        if key != "params"
    }
    env["MLPIPE_PARAMS"] = json.dumps(context.get("params") or {}, default=str)
    env["MLPIPE_STEP_RUN_ID"] = spec.step_run_id
    return env


def _commit(
    spec: StepSpec, plans: Mapping[str, OutputPlan], store: Datastore, process: ScriptProcess
) -> list[dict[str, Any]]:
    """Stage every output at its destination (verified), then write the attempt's commit record: the outputs
    become the attempt's result together, or not at all."""
    refuse_empty_registrations(spec.outputs, plans)
    refuse_unmatched_globs(plans)
    refuse_links(plans)
    refuse_reserved_names(plans)
    committed: list[dict[str, Any]] = []
    for out_spec in spec.outputs:
        plan = plans[str(out_spec["name"])]
        _stop_if_killed(process)
        manifest = stage(plan)
        fault_point(f"staged_{plan.name}", spec.dag_id, spec.run_id)
        committed.append(
            {
                "name": plan.name,
                "datastore": plan.store.name,
                "path": plan.path,
                "uri": plan.store.uri(plan.path),
                "manifest": manifest.to_dict(),
            }
        )
    fault_point("before_commit", spec.dag_id, spec.run_id)
    _stop_if_killed(process)
    if not records.write_commit(spec.step_run_id, committed, store):
        raise StepError(f"step run {spec.step_run_id} was committed already; an attempt commits once")
    fault_point("committed", spec.dag_id, spec.run_id)
    for out in committed:
        _say(f"output {out['name']}: {out['manifest']['files']} files committed at {out['uri']}")
    return [{**out, "manifest": {k: v for k, v in out["manifest"].items() if k != "entries"}} for out in committed]


def _argument(arg: Mapping[str, Any], inputs: Mapping[str, Any], plans: Mapping[str, OutputPlan]) -> str:
    kind = arg["t"]
    if kind == "str":
        return str(arg["v"])
    if kind == "param":
        return format_value(arg["value"])
    if kind == "input":
        info = inputs[str(arg["name"])]
        return str(info["path"]) if info.get("path") else str(arg["name"])
    if kind == "output":
        return plans[str(arg["name"])].staging
    raise StepError(f"unknown argument kind {kind!r} in the step spec")


def _argument_for_record(arg: Mapping[str, Any], value: str, plans: Mapping[str, OutputPlan]) -> Any:
    if arg["t"] == "str":
        return value
    if arg["t"] == "output":
        plan = plans[str(arg["name"])]
        value = plan.store.uri(plan.path)  # where the output ends up, not the staging folder the script saw
    return {"kind": arg["t"], "name": arg.get("name"), "value": arg.get("value", value)}


def _input_summary(spec: Mapping[str, Any]) -> dict[str, Any]:
    source = spec["source"]
    out: dict[str, Any] = {"name": spec["name"], "mode": spec["mode"]}
    if source["type"] == "dataset":
        out["dataset"] = source["dataset"]
    else:
        out["datastore"], out["path"] = source["datastore"], source["path"]
        if source.get("producer"):
            out["producer"] = source["producer"]
    manifest = spec["pin"]["manifest"]
    out["content"] = {"files": manifest.get("files"), "bytes": manifest.get("bytes"), "digest": manifest.get("digest")}
    return out


def _write_run_context(spec: StepSpec, workdir: str, inputs: Mapping[str, Any], plans: Mapping[str, OutputPlan]) -> str:
    context = {
        "run_id": spec.step_run_id,
        "parent": {"dag_id": spec.dag_id, "run_id": spec.run_id},
        "task_id": spec.task_id,
        "map_index": spec.attempt.map_index,
        "try_number": spec.try_number,
        "metrics_file": os.path.join(workdir, "metrics.jsonl"),
        "artifacts_dir": os.path.join(workdir, "artifacts"),
        "inputs": {name: dict(info) for name, info in inputs.items()},
        "outputs": {name: plan.staging for name, plan in plans.items()},
        "airflow": airflow_context(spec),
    }
    path = os.path.join(workdir, "run_context.json")
    with open(path, "w") as fh:
        json.dump(context, fh)
    return path


def _collect_metrics(workdir: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Metrics as Azure ML's ``run.get_metrics()`` shows them: a name logged once maps to its value, a name
    logged several times to the list of values; tables, rows and images keep their kind."""
    path = os.path.join(workdir, "metrics.jsonl")
    entries: list[dict[str, Any]] = []
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        entries.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
    scalars: dict[str, list[Any]] = {}
    metrics: dict[str, Any] = {}
    for entry in entries:
        name, kind, value = entry["name"], entry["kind"], entry.get("value")
        if kind == "scalar":
            scalars.setdefault(name, []).append(value)
        elif kind == "row":
            table = metrics.setdefault(name, {})
            for key, v in (value or {}).items():
                table.setdefault(key, []).append(v)
        else:
            metrics[name] = value
    for name, values in scalars.items():
        metrics[name] = values[0] if len(values) == 1 else values
    return metrics, entries


def _upload_artifacts(store: Datastore, spec: StepSpec, src: str, workdir: str, record: dict[str, Any]) -> None:
    """Files the script wrote to ``./outputs`` and files given to ``run.upload_file`` become run artifacts."""
    uploaded = []
    base = records.artifacts_folder(spec.step_run_id)
    for folder, prefix in ((os.path.join(src, "outputs"), "outputs"), (os.path.join(workdir, "artifacts"), "")):
        if not os.path.isdir(folder):
            continue
        for dirpath, _, filenames in os.walk(folder):
            for fname in filenames:
                full = os.path.join(dirpath, fname)
                rel = os.path.relpath(full, folder).replace(os.sep, "/")
                name = f"{prefix}/{rel}" if prefix else rel
                store.upload(full, f"{base}/{name}")
                uploaded.append(name)
    record["artifacts"] = sorted(uploaded)


def _upload_log(store: Datastore, spec: StepSpec, log_file: str, record: dict[str, Any]) -> None:
    if not os.path.exists(log_file):
        return
    target = records.log_path(spec.step_run_id, spec.try_number)
    try:
        scrubbed = f"{log_file}.scrubbed"  # the UI serves it: no credential the script printed
        scrub_file(log_file, scrubbed, records.known_secrets(store))
        store.upload(scrubbed, target)
        record["logs"] = [target]
        with open(scrubbed, "rb") as fh:
            tail = fh.read()[-4000:]
        record["log_tail"] = tail.decode("utf-8", "replace")
    except Exception as exc:  # the record must still be written
        record["log_error"] = str(exc)


def _say(message: str) -> None:
    sys.stdout.write(f"[mlpipe] {message}\n")
    sys.stdout.flush()
