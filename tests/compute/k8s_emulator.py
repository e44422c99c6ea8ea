"""An in-memory Kubernetes API server (kmock) on 127.0.0.1, served from a background thread.

kmock is asyncio-based while the provider's KubernetesPodOperator is synchronous: the server gets its own event
loop in a daemon thread, and clients (the operator, the test kubelet) talk to it over HTTP like to a real cluster.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import yaml


class KubernetesApiEmulator:
    def __init__(self) -> None:
        self.url = ""
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, name="kmock", daemon=True)
        self.pod_created = threading.Event()  # set once a pod is stored: the test kubelet waits on it between looks

    def start(self) -> None:
        # One access-log line per request (the kubelet polls) would drown the test output.
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the kmock Kubernetes emulator did not start: {self._error!r}")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(), which is waiting for us
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        from kmock import Server

        self._stop = asyncio.Event()
        emulator = _pending_pods_emulator(self.pod_created)
        async with emulator, Server(emulator, host="127.0.0.1"):
            self.url = str(emulator.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        config: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kmock", "cluster": {"server": self.url}}],
            "users": [{"name": "kmock", "user": {"token": "kmock"}}],
            "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "kmock", "namespace": namespace}}],
            "current-context": "kmock",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def core_api(self) -> Any:
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.CoreV1Api(client.ApiClient(configuration))


def _pending_pods_emulator(created: threading.Event) -> Any:
    """kmock's emulator, plus what a real API server does on pod creation: ``status.phase`` starts as Pending
    (the provider reads the status of the pod it has just created); ``created`` is set once a pod is stored."""
    from kmock import KubernetesEmulator, action

    class Emulator(KubernetesEmulator):
        async def _handle(self, request: Any) -> Any:
            is_pod = request.resource is not None and request.resource.plural == "pods" and request.name is None
            creating = request.action == action.CREATE and is_pod and isinstance(request.data, dict)
            if creating:
                request.data.setdefault("status", {"phase": "Pending"})
            try:
                return await super()._handle(request)
            finally:
                if creating:
                    created.set()

    emulator = Emulator()
    emulator.resources.load_bundled()
    return emulator
