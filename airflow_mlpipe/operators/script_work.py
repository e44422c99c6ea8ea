"""A script step's part of an attempt: plan its spec, and launch the step runner on its compute target.

Planning scans the source folder, pins every input's files, takes the environment that reaches the process and
the outputs' folders for this attempt, and derives the reuse key from exactly these (``reuse.step_key``).
Planning also stores the source snapshot (each file checked against the scanned digest). Launching starts the
runner: a subprocess
of the worker (``LocalCompute``), a container (``DockerCompute``) or a pod (``KubernetesCompute``), which ends
in the attempt's commit. A deferrable pod hands the lease's heartbeat to the triggerer (``LeaseKeepingTrigger``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.compute.base import StepLaunch
from airflow_mlpipe.compute.keyed import step_environment
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.core.faults import fault_point
from airflow_mlpipe.core.secrets import argument_credential, is_private_digest, is_private_variable, mask_in_task_log
from airflow_mlpipe.datasets.seal import attempt_seal_key
from airflow_mlpipe.exceptions import ConfigError, step_failed_error
from airflow_mlpipe.fingerprint.hash_paths import scan_hash_paths
from airflow_mlpipe.fingerprint.secret_files import SecretFileFilter
from airflow_mlpipe.fingerprint.tree import Tree
from airflow_mlpipe.hooks.datastore import DatastoreHook
from airflow_mlpipe.reuse.decide import ReusePolicy
from airflow_mlpipe.reuse.inputs import pin_input
from airflow_mlpipe.reuse.step_key import fingerprint_step
from airflow_mlpipe.steps import records, spec_seals
from airflow_mlpipe.steps.snapshot import Snapshot, git_info, scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec

if TYPE_CHECKING:
    from airflow_mlpipe.operators.attempt import StepAttempt
    from airflow_mlpipe.operators.python_script import PythonScriptOperator
    from airflow_mlpipe.reuse.lease import Lease


class ScriptWork:
    def __init__(self, operator: PythonScriptOperator) -> None:
        self.op = operator
        self.launcher: Any = None
        self.delegate: Any = None

    # -- planning ---------------------------------------------------------------------------------------------
    def plan(self, attempt: StepAttempt, policy: ReusePolicy) -> StepSpec:
        op = self.op
        source = self._source()
        secret_files = SecretFileFilter(op.include_secret_files)
        tree = scan_source(source, secret_files)
        if secret_files.skipped:
            attempt.log.warning(
                "Left out of the snapshot, as they look like secrets: %s. Pass secrets through connections or the "
                "environment; to upload such a file anyway, list it in include_secret_files",
                ", ".join(secret_files.skipped),
            )
        attempt.source_tree = tree
        self._store_snapshot(attempt, source, tree)
        hash_tree = scan_hash_paths(source, op.hash_paths) if op.hash_paths else None
        params = dict(attempt.context.get("params") or {})
        arguments = op.argument_specs(params)
        inputs = [pin_input(spec) for spec in op.input_specs(attempt.context)]
        outputs = op.output_specs(attempt.srid)
        known = self._known_secrets(inputs, outputs)
        check_no_plain_credentials(op.task_id, op.compute_target, arguments, op.environment, known)
        environment = step_environment(op.environment, op.compute_target, known)
        fingerprint = fingerprint_step(
            script_name=op.script_name,
            source=tree,
            hash_paths=hash_tree,
            arguments=arguments,
            inputs=inputs,
            outputs=outputs,
            environment=environment,
        )
        return StepSpec(
            attempt=attempt.attempt,
            kind="script",
            script_name=op.script_name,
            snapshot=tree.digest,
            arguments=tuple(arguments),
            inputs=tuple(inputs),
            outputs=tuple(outputs),
            environment=environment,
            python=op.environment.python if op.environment else None,
            compute=op.compute_target.describe(),
            reuse={
                "key": fingerprint.digest,
                "components": fingerprint.key.components(),
                "details": fingerprint.details,
                "policy": policy.to_dict(),
            },
            extra={
                "source_directory": source,
                "snapshot_info": Snapshot(tree, 0).describe(),
                "git": git_info(source),
                "parameters": {name: a.get("value") for a in arguments if a["t"] == "param" for name in [a["name"]]},
                "max_tries": attempt._max_tries(),
                "azureml_compat": op.azureml_compat,
                "airflow": airflow_context(attempt.context, params),
            },
            created_at=records.now_iso(),
        )

    def _known_secrets(self, inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]) -> list[str]:
        """The credentials of the datastores the step reads and writes (and the default one)."""
        names = self.op.datastore_names(inputs, outputs)
        return [secret for name in names for secret in DatastoreHook.get_datastore(name).config.secret_values]

    def _source(self) -> str:
        source = self.op.resolve_source_directory()
        if not os.path.isdir(source):
            what = "is a file, not a folder" if os.path.exists(source) else "does not exist on this worker"
            raise ConfigError(f"source_directory {self.op.source_directory!r} ({source}) {what}")
        if not os.path.isfile(os.path.join(source, self.op.script_name)):
            raise ConfigError(f"script {self.op.script_name!r} is not in source_directory {source!r}")
        return source

    # -- launching --------------------------------------------------------------------------------------------
    def launch(self, attempt: StepAttempt, spec: StepSpec, lease: Lease | None) -> None:
        datastores = attempt._or_fail(lambda: self._datastores(spec))
        if isinstance(self.op.compute_target, LocalCompute):
            from airflow_mlpipe.compute.launch_local import LocalLauncher

            self.launcher = LocalLauncher()
            python = attempt._or_fail(self._local_python)
            attempt.log.info("Running step %s on the Airflow worker (LocalCompute)", spec.step_run_id)
            self.launcher.run(sys.executable, self._launch(spec, python), datastores, _logger(attempt))
            return
        self.delegate = self._container_operator(attempt, spec, datastores)
        attempt.log.info("Running step %s on %s", spec.step_run_id, self.op.compute_target.kind)
        self._delegated(attempt, lambda: self._execute_delegate(attempt, lease))

    def _store_snapshot(self, attempt: StepAttempt, source: str, tree: Tree) -> None:
        """Stored while planning, before deciding or waiting: a hit and a miss see the same checks, and an attempt
        resumed later (on another worker, after the folder changed) needs nothing from the source folder."""
        snapshot = store_snapshot(source, tree, attempt.store)
        fault_point("snapshot_stored", attempt.attempt.dag_id, attempt.attempt.run_id)
        if snapshot.uploaded_files:
            attempt.log.info(
                "Source snapshot %s: %d files, %d bytes (%d uploaded) from %s",
                snapshot.digest,
                len(tree),
                tree.size,
                snapshot.uploaded_files,
                source,
            )

    def _datastores(self, spec: StepSpec) -> dict[str, Any]:
        inputs, outputs = [dict(i) for i in spec.inputs], [dict(o) for o in spec.outputs]
        names = self.op.datastore_names(inputs, outputs)
        return {name: DatastoreHook.get_datastore(name).config for name in names}

    def _local_python(self) -> str | None:
        """The interpreter of a local step: a cached virtualenv when the environment asks for pip packages."""
        from airflow_mlpipe.compute.venv import python_for_environment

        return python_for_environment(self.op.environment)

    def _launch(self, spec: StepSpec, python: str | None = None) -> StepLaunch:
        args = ["-m", "airflow_mlpipe.runner", "--spec", records.spec_path(spec.step_run_id)]
        if python:
            args += ["--python", python]
        return StepLaunch(
            step_name=self.op.task_id,
            args=tuple(args),
            # The runner runs the spec it reads only when it is this one (a container's runner cannot check its seal).
            env={
                "PYTHONUNBUFFERED": "1",
                spec_seals.SPEC_DIGEST_ENV: spec_seals.digest(spec),
                **self._private_env(spec),
            },
            datastores=tuple(self._datastore_names(spec)),
            # A container's runner holds no registry key: it seals this step run's records with a key of its own.
            seal_key=None if isinstance(self.op.compute_target, LocalCompute) else attempt_seal_key(spec.step_run_id),
        )

    def _private_env(self, spec: StepSpec) -> dict[str, str]:
        """The values of the variables the spec holds as digests (``LocalCompute`` credentials): for the runner's
        process only, which checks each against its digest."""
        given = dict(self.op.environment.env_vars) if self.op.environment is not None else {}
        digested = [k for k, v in (spec.environment.get("env_vars") or {}).items() if is_private_digest(v)]
        private = {name: given[name] for name in digested if name in given}
        mask_in_task_log(private.values())  # whatever else logs them (a provider, a library) shows ***
        return private

    def _datastore_names(self, spec: StepSpec) -> list[str]:
        return self.op.datastore_names([dict(i) for i in spec.inputs], [dict(o) for o in spec.outputs])

    def _container_operator(self, attempt: StepAttempt, spec: StepSpec, datastores: Mapping[str, Any]) -> Any:
        from airflow_mlpipe.compute.docker import DockerCompute, build_docker_operator
        from airflow_mlpipe.compute.kubernetes import KubernetesCompute, build_pod_operator

        compute = self.op.compute_target
        common: dict[str, Any] = {
            "task_id": self.op.task_id,
            "launch": self._launch(spec),
            "datastores": datastores,
            "environment": self.op.environment,
            "dag_id": self.op.dag_id,
        }
        if isinstance(compute, KubernetesCompute):
            common["deferrable"] = self.op.deferrable
        if isinstance(compute, KubernetesCompute):
            return attempt._or_fail(lambda: build_pod_operator(compute, **common))
        if isinstance(compute, DockerCompute):
            return attempt._or_fail(lambda: build_docker_operator(compute, **common))
        raise ConfigError(f"step {self.op.task_id!r}: no launcher for compute target {compute!r}")

    def _execute_delegate(self, attempt: StepAttempt, lease: Lease | None) -> None:
        from airflow.sdk.exceptions import TaskDeferred

        from airflow_mlpipe.compute.delegate import execute_delegated

        try:
            execute_delegated(self.delegate, attempt.context)
        except TaskDeferred as deferred:
            if lease is None:
                raise
            from airflow_mlpipe.reuse.dedup import DedupSettings
            from airflow_mlpipe.triggers.lease import LeaseKeepingTrigger

            attempt.log.info("Waiting for the pod in the triggerer; the triggerer keeps lease %s alive", lease.key)
            self.op.defer(
                trigger=LeaseKeepingTrigger.around(deferred.trigger, lease, handoff=DedupSettings.from_env().handoff),
                method_name=deferred.method_name,
                kwargs=deferred.kwargs,
                timeout=deferred.timeout,
            )

    def _delegated(self, attempt: StepAttempt, call: Callable[[], Any]) -> None:
        from airflow_mlpipe.compute.docker import DockerCompute, explain_gpu_failure

        compute = self.op.compute_target
        try:
            call()
        except Exception as exc:  # the runner's record tells what failed; the provider's error says how
            hint = explain_gpu_failure(compute, exc) if isinstance(compute, DockerCompute) else None
            if hint is not None:  # the container never started: there is no record to tell it
                raise step_failed_error(f"step {self.op.task_id!r}: {hint}") from exc
            attempt.log.error("The %s step failed: %s", compute.kind, exc)

    def resume(self, attempt: StepAttempt, spec: StepSpec, event: Mapping[str, Any]) -> None:
        """After the pod operator's own trigger: let the provider finish with the pod (logs, cleanup)."""
        datastores = attempt._or_fail(lambda: self._datastores(spec))
        self.delegate = self._container_operator(attempt, spec, datastores)
        self._delegated(attempt, lambda: self.delegate.trigger_reentry(attempt.context, dict(event)))

    def ran(self) -> str | None:
        """The step run whose spec the pod ran: an earlier try's when Kubernetes reattached to its pod."""
        pod = getattr(self.delegate, "pod", None)
        containers = getattr(getattr(pod, "spec", None), "containers", None) or []
        for container in containers:
            args = list(getattr(container, "args", None) or [])
            if "--spec" in args[:-1]:
                path = str(args[args.index("--spec") + 1])
                return path.rstrip("/").split("/")[-2]
        return None

    def result(self, record: Mapping[str, Any]) -> dict[str, Any]:
        return {}

    def kill(self) -> None:
        if self.launcher is not None:
            self.launcher.kill()
        if self.delegate is not None:
            self.delegate.on_kill()


def airflow_context(context: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The dates and params of the task's context, as text, for the step script (not keyed)."""

    def moment(name: str) -> str | None:
        value: Any = context.get(name)
        return str(value.isoformat()) if value is not None and hasattr(value, "isoformat") else None

    return {
        "logical_date": moment("logical_date"),
        "data_interval_start": moment("data_interval_start"),
        "data_interval_end": moment("data_interval_end"),
        "params": {k: v for k, v in params.items() if _plain(v)},
    }


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool, list, dict))


def _logger(attempt: StepAttempt) -> Callable[[str], None]:
    def log_line(line: str) -> None:
        attempt.log.info("%s", line)

    return log_line


def check_no_plain_credentials(
    task_id: str,
    compute: Any,
    arguments: list[dict[str, Any]],
    environment: Any,
    known: list[str],
) -> None:
    """Refuse, before the step's spec is written, an argument that shows a credential (every compute target: the
    spec, records and process listings show arguments), and on a container target an environment variable whose
    value holds one (a ``LocalCompute`` variable is kept out of the spec as a digest instead)."""
    from airflow_mlpipe.compute.containers import SECRET_ENV_FIXES

    texts = [
        str(a.get("v") if a["t"] == "str" else a.get("value")) if a["t"] in ("str", "param") else "" for a in arguments
    ]
    found = argument_credential(texts, known)
    if found is not None:
        index, how = found
        raise ConfigError(
            f"step {task_id!r}: argument {index + 1} shows {how}; arguments "
            "are written into the step's spec and run record: pass the credential through a datastore connection, "
            + (
                "or Environment(env_vars={'NAME': ...}) on LocalCompute (kept out of the spec)"
                if compute.kind == "local"
                else SECRET_ENV_FIXES.get(compute.kind, "the compute target's secret mechanism").format(name="NAME")
            )
        )
    if compute.kind == "local":
        return
    plain = {**dict(getattr(compute, "env", None) or {}), **(dict(environment.env_vars) if environment else {})}
    for name, value in plain.items():
        if is_private_variable(name, value, known):
            fix = SECRET_ENV_FIXES.get(compute.kind, "use the compute target's secret mechanism")
            raise ConfigError(
                f"step {task_id!r}: environment variable {name!r} holds a credential, and a {compute.kind} step's "
                f"plain variables are written into its spec and container definition: {fix.format(name=name)}"
            )
