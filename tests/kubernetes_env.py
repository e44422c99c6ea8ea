"""The in-memory Kubernetes API server with its test kubelet, once per test session (worker)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.compute.k8s_emulator import KubernetesApiEmulator
from tests.compute.kubelet import TestKubelet


@dataclass
class KubernetesEnv:
    emulator: KubernetesApiEmulator
    kubelet: TestKubelet
    kubeconfig: Path
    api: Any

    def new_namespace(self) -> str:
        # kmock ignores label selectors: a namespace per test keeps the operator's pod lookups unambiguous.
        return f"t-{uuid.uuid4().hex[:10]}"

    def create_secret(self, manifest: dict[str, Any]) -> None:
        """Store a Secret as the API server would: ``stringData`` becomes base64 ``data``."""
        body = {k: v for k, v in manifest.items() if k != "stringData"}
        body["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in manifest.get("stringData", {}).items()}
        self.api.create_namespaced_secret(manifest["metadata"]["namespace"], body)


@pytest.fixture(scope="session")
def kubernetes_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubernetesEnv]:
    emulator = KubernetesApiEmulator()
    emulator.start()
    api = emulator.core_api()
    kubelet = TestKubelet(emulator.core_api(), wake=emulator.pod_created)
    kubelet.start()
    kubeconfig = emulator.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
    yield KubernetesEnv(emulator=emulator, kubelet=kubelet, kubeconfig=kubeconfig, api=api)
    kubelet.stop()
    emulator.stop()
