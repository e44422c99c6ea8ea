"""The ``azureml`` compatibility package on a step's PYTHONPATH: when asked for, and never over a real SDK."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_mlpipe.compat.shim import SHIM_PATH, azureml_compat_env, real_azureml_installed


@pytest.fixture
def real_sdk(tmp_path: Path) -> Path:
    """A stand-in for an installed SDK: a folder holding ``azureml/core/__init__.py``."""
    core = tmp_path / "site" / "azureml" / "core"
    core.mkdir(parents=True)
    (core / "__init__.py").write_text("REAL = True\n")
    return tmp_path / "site"


@pytest.fixture
def other_python(tmp_path: Path) -> str:
    """Another interpreter path (as a virtualenv's is): a wrapper that is not this executable's file."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.mark.parametrize(
    ("enabled", "expected"),
    [pytest.param(True, [SHIM_PATH, "/x"], id="on"), pytest.param(False, ["/x"], id="off")],
)
def test_shim_first_on_pythonpath_only_when_enabled(enabled: bool, expected: list[str]) -> None:
    env = azureml_compat_env({"PYTHONPATH": "/x"}, sys.executable, enabled=enabled)
    assert env["PYTHONPATH"].split(os.pathsep) == expected


def test_shim_added_once() -> None:
    env = azureml_compat_env({"PYTHONPATH": SHIM_PATH}, sys.executable, enabled=True)
    assert env["PYTHONPATH"] == SHIM_PATH


def _forget_azureml() -> None:
    for name in [m for m in sys.modules if m == "azureml" or m.startswith("azureml.")]:
        del sys.modules[name]


def test_real_sdk_in_this_interpreter_is_never_shadowed(real_sdk: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(real_sdk))
    _forget_azureml()
    try:
        assert real_azureml_installed(sys.executable)
        assert "PYTHONPATH" not in azureml_compat_env({}, sys.executable, enabled=True)
    finally:
        _forget_azureml()


def test_real_sdk_in_another_interpreter_is_never_shadowed(real_sdk: Path, other_python: str) -> None:
    assert not real_azureml_installed(other_python, {"PYTHONPATH": ""})
    assert real_azureml_installed(other_python, {"PYTHONPATH": str(real_sdk)})
    env = azureml_compat_env({"PYTHONPATH": str(real_sdk)}, other_python, enabled=True)
    assert env["PYTHONPATH"] == str(real_sdk)


def test_a_v1_script_runs_unchanged_offline(tmp_path: Path) -> None:
    """A script written for SDK v1, run alone (offline) with the package on its path, as a step's process is."""
    script = tmp_path / "score.py"
    script.write_text(
        "from azureml.core import Run, Workspace\n"
        "from azureml.core.run import Run as SameRun, _OfflineRun\n"
        "import azureml\n"
        "run = Run.get_context()\n"
        "assert SameRun is Run and run.offline and run.parent is None and isinstance(run, _OfflineRun)\n"
        "assert run.id.startswith('OfflineRun_')\n"
        "assert run.experiment.workspace == Workspace.from_config()\n"
        "run.log('accuracy', 0.9)\n"
        "run.tag('kind', 'test')\n"
        "print('input', run.input_datasets['raw'], run.get_tags(), run.get_metrics())\n"
    )
    (tmp_path / "raw.csv").write_text("a\n1\n")
    env = azureml_compat_env({**os.environ, "PYTHONPATH": ""}, sys.executable, enabled=True)
    proc = subprocess.run(
        [sys.executable, str(script), "--input", "raw=raw.csv"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "{'kind': 'test'} {'accuracy': 0.9, 'tag:kind': 'test'}" in proc.stdout
    assert str(tmp_path / "raw.csv") in proc.stdout
