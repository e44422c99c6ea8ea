"""Put the ``azureml`` compatibility package on a step script's ``PYTHONPATH``, unless a real SDK is installed.

The runner calls :func:`azureml_compat_env` for every script step on every compute (it runs where the script runs:
the worker, a virtualenv, a container or a pod, all of which have airflow-mlpipe and so this package).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping

SHIM_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "azureml_shim")
_PROBE = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('azureml.core') else 3)"


def real_azureml_installed(python: str | None = None, env: Mapping[str, str] | None = None) -> bool:
    """True when ``python`` (default: this interpreter) imports a real ``azureml.core``, never our own."""
    if python is None or _same_interpreter(python):
        try:
            spec = importlib.util.find_spec("azureml.core")
        except (ImportError, ValueError):
            return False
        return spec is not None and not _is_shim(spec.origin)
    clean = {k: v for k, v in (env or os.environ).items() if k != "PYTHONPATH"}
    clean["PYTHONPATH"] = _without_shim((env or os.environ).get("PYTHONPATH", ""))
    try:
        probe = subprocess.run([python, "-c", _PROBE], env=clean, capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def azureml_compat_env(env: Mapping[str, str], python: str | None, *, enabled: bool) -> dict[str, str]:
    """``env`` with the compatibility package first on ``PYTHONPATH`` when ``enabled`` and no real SDK is there."""
    out = dict(env)
    if not enabled or real_azureml_installed(python, env):
        return out
    rest = _without_shim(out.get("PYTHONPATH", ""))
    out["PYTHONPATH"] = os.pathsep.join(p for p in (SHIM_PATH, rest) if p)
    return out


def _without_shim(pythonpath: str) -> str:
    return os.pathsep.join(p for p in pythonpath.split(os.pathsep) if p and os.path.abspath(p) != SHIM_PATH)


def _is_shim(origin: str | None) -> bool:
    return bool(origin) and os.path.abspath(str(origin)).startswith(SHIM_PATH + os.sep)


def _same_interpreter(python: str) -> bool:
    try:
        return os.path.samefile(python, sys.executable)
    except OSError:
        return False
