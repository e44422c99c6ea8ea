"""A test kubelet: runs each new pod's container as a local process and reports the exit code as the pod phase.

It stands in for a node of a real cluster against the in-memory API server: it watches for pods, resolves the
container's environment as a kubelet does (plain values, ``secretKeyRef``, ``envFrom`` of Secrets stored in the
API server), runs ``command + args`` with ``python`` resolved to the test's interpreter (the image is not pulled:
this machine is the image), and writes ``status`` (phase and the container's terminated state) back through the
API, which is all the KubernetesPodOperator reads.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PodRun:
    namespace: str
    name: str
    manifest: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    done: threading.Event = field(default_factory=threading.Event)


class SecretNotFound(Exception):
    pass


class TestKubelet:
    __test__ = False  # not a test class, despite the name

    def __init__(
        self, api: Any, *, wake: threading.Event | None = None, poll_interval: float = 1.0, timeout: float = 120.0
    ) -> None:
        """:param wake: set when a pod is created (``KubernetesApiEmulator.pod_created``): the kubelet looks at once,
        and otherwise every ``poll_interval`` seconds."""
        from kubernetes.client import ApiClient

        self.api = api
        self.wake = wake or threading.Event()
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.runs: dict[tuple[str, str], PodRun] = {}
        self._serializer = ApiClient()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="test-kubelet", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        self._thread.join(10)

    def runs_in(self, namespace: str) -> list[PodRun]:
        return [run for (ns, _), run in self.runs.items() if ns == namespace]

    def _watch(self) -> None:
        # The listing is read as plain JSON and only a new pod becomes a client model, and the kubelet looks when a
        # pod was created (else once a second): listing every pod of the session as client models 20 times a second
        # kept a third of a CPU busy with 10 pods stored, two thirds with 100.
        while not self._stop.is_set():
            self.wake.clear()
            try:
                listed = self.api.list_pod_for_all_namespaces(_preload_content=False)
                items = json.loads(listed.data)["items"]
            except Exception:  # the API server is going away at the end of the session
                time.sleep(self.poll_interval)
                continue
            for item in items:
                key = (item["metadata"]["namespace"], item["metadata"]["name"])
                phase = (item.get("status") or {}).get("phase")
                if key in self.runs or phase not in (None, "Pending"):
                    continue
                pod = self.api.read_namespaced_pod(key[1], key[0])
                run = PodRun(*key, manifest=self._serializer.sanitize_for_serialization(pod))
                self.runs[key] = run
                threading.Thread(target=self._run_pod, args=(pod, run), daemon=True).start()
            self.wake.wait(self.poll_interval)

    def _run_pod(self, pod: Any, run: PodRun) -> None:
        container = pod.spec.containers[0]
        try:
            run.env = self._container_env(pod.metadata.namespace, container)
        except SecretNotFound as exc:
            # What a kubelet reports when a referenced Secret or key is missing.
            self._finish(pod, container, 128, reason="CreateContainerConfigError", message=str(exc))
            run.returncode, run.stderr = 128, str(exc)
            run.done.set()
            return
        self._patch_status(pod, {"phase": "Running", "containerStatuses": [self._status(container, running=True)]})
        argv = [*(container.command or []), *(container.args or [])]
        if argv and argv[0] == "python":
            argv[0] = sys.executable
        with tempfile.TemporaryDirectory(prefix="kubelet-") as workdir:
            result = subprocess.run(
                argv, env=run.env, cwd=workdir, capture_output=True, text=True, timeout=self.timeout, check=False
            )
        run.returncode, run.stdout, run.stderr = result.returncode, result.stdout, result.stderr
        reason = "Completed" if result.returncode == 0 else "Error"
        self._finish(pod, container, result.returncode, reason=reason, message=result.stderr[-500:])
        run.done.set()

    def _container_env(self, namespace: str, container: Any) -> dict[str, str]:
        # A container sees only its own environment, plus what a base image gives every process.
        env = {
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": tempfile.gettempdir(),
            "LANG": "C.UTF-8",
        }
        for source in container.env_from or []:
            if source.secret_ref is not None:
                env.update(self._secret_data(namespace, source.secret_ref.name))
        for var in container.env or []:
            if var.value_from is None:
                env[var.name] = var.value or ""
                continue
            ref = var.value_from.secret_key_ref
            if ref is None:
                raise SecretNotFound(f"env {var.name}: only secretKeyRef is supported by the test kubelet")
            data = self._secret_data(namespace, ref.name)
            if ref.key not in data:
                raise SecretNotFound(f"couldn't find key {ref.key} in Secret {namespace}/{ref.name}")
            env[var.name] = data[ref.key]
        return env

    def _secret_data(self, namespace: str, name: str) -> dict[str, str]:
        from kubernetes.client.exceptions import ApiException

        try:
            secret = self.api.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            raise SecretNotFound(f"secret {name!r} not found in namespace {namespace!r}") from exc
        data = {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
        data.update(secret.string_data or {})
        return data

    def _status(
        self, container: Any, *, running: bool = False, exit_code: int = 0, reason: str = "", message: str = ""
    ) -> dict[str, Any]:
        state: dict[str, Any] = (
            {"running": {"startedAt": _now()}}
            if running
            else {"terminated": {"exitCode": exit_code, "reason": reason, "message": message, "finishedAt": _now()}}
        )
        return {
            "name": container.name,
            "image": container.image,
            "imageID": "",
            "ready": running,
            "restartCount": 0,
            "started": running,
            "state": state,
        }

    def _finish(self, pod: Any, container: Any, exit_code: int, *, reason: str, message: str) -> None:
        status = self._status(container, exit_code=exit_code, reason=reason, message=message)
        self._patch_status(pod, {"phase": "Succeeded" if exit_code == 0 else "Failed", "containerStatuses": [status]})

    def _patch_status(self, pod: Any, status: dict[str, Any]) -> None:
        self.api.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": status})


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
