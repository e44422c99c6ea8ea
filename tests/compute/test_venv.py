"""Cached virtualenvs for LocalCompute: built once per package set, shared safely, clear when pip fails.

The packages are wheels made here and installed by direct reference, with pip's index switched off: no network.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from airflow_mlpipe.compute import Environment
from airflow_mlpipe.compute.venv import MARKER, _pip_failure_message, python_for_environment
from airflow_mlpipe.exceptions import ConfigError, EnvironmentBuildError


def make_wheel(folder: Path, name: str, version: str, source: str) -> str:
    """A minimal pure-Python wheel; returns its direct-reference requirement."""
    files = {
        f"{name}.py": source,
        f"{name}-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{name}-{version}.dist-info/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    path = folder / f"{name}-{version}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(path, "w") as wheel:
        for member, text in files.items():
            wheel.writestr(member, text)
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{member},sha256={digest},{len(text)}")
        record_name = f"{name}-{version}.dist-info/RECORD"
        wheel.writestr(record_name, "\n".join([*record, f"{record_name},,"]) + "\n")
    return f"{name.replace('_', '-')} @ {path.as_uri()}"


@pytest.fixture
def offline_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_NO_INDEX", "1")


@pytest.fixture
def probe_wheel(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_wheel(tmp_path_factory.mktemp("wheels"), "mlpipe_probe", "1.0", "VALUE = 42\n")


def test_no_packages_means_the_workers_interpreter() -> None:
    assert python_for_environment(None) == sys.executable
    assert python_for_environment(Environment(name="plain")) == sys.executable


def test_named_interpreter_is_found_on_path() -> None:
    found = python_for_environment(Environment(python=os.path.basename(sys.executable)), home=Path("/nonexistent"))
    assert os.path.isabs(found)
    with pytest.raises(ConfigError, match="python 'python-that-does-not-exist' was not found on this worker"):
        python_for_environment(Environment(python="python-that-does-not-exist"))


@pytest.mark.usefixtures("offline_pip")
def test_virtualenv_is_built_once_and_sees_the_workers_packages(tmp_path: Path, probe_wheel: str) -> None:
    env = Environment(name="probe", pip_packages=[probe_wheel])
    python = python_for_environment(env, home=tmp_path)
    assert Path(python).parent.parent.parent == tmp_path / "venvs"
    code = "import mlpipe_probe, airflow_mlpipe, fsspec; print(mlpipe_probe.VALUE)"
    assert subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "42"

    marker = json.loads((Path(python).parent.parent / MARKER).read_text())
    assert marker["packages"] == [probe_wheel] and marker["environment"] == "probe"
    before = sorted(os.listdir(tmp_path / "venvs"))
    assert python_for_environment(Environment(pip_packages=[probe_wheel]), home=tmp_path) == python  # cache hit
    assert sorted(os.listdir(tmp_path / "venvs")) == before


@pytest.mark.usefixtures("offline_pip")
def test_another_package_set_is_another_virtualenv(tmp_path: Path, probe_wheel: str) -> None:
    other = make_wheel(tmp_path, "mlpipe_other", "2.0", "VALUE = 2\n")
    first = python_for_environment(Environment(pip_packages=[probe_wheel]), home=tmp_path)
    second = python_for_environment(Environment(pip_packages=[probe_wheel, other]), home=tmp_path)
    assert first != second


@pytest.mark.usefixtures("offline_pip")
def test_two_processes_building_the_same_virtualenv_share_one(tmp_path: Path, probe_wheel: str) -> None:
    code = (
        "import sys; from pathlib import Path;"
        "from airflow_mlpipe.compute import Environment;"
        "from airflow_mlpipe.compute.venv import python_for_environment;"
        f"print(python_for_environment(Environment(pip_packages=[{probe_wheel!r}]), home=Path({str(tmp_path)!r})))"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [p.communicate(timeout=300)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert outputs[0] == outputs[1]
    built = [p for p in (tmp_path / "venvs").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(built) == 1, built  # the second process waited for the first and reused its virtualenv


@pytest.mark.usefixtures("offline_pip")
def test_pip_failure_names_the_package_and_leaves_nothing_behind(tmp_path: Path, probe_wheel: str) -> None:
    env = Environment(name="broken", pip_packages=[probe_wheel, "mlpipe-no-such-package==9.9"])
    with pytest.raises(
        EnvironmentBuildError,
        match=r"could not install pip package 'mlpipe-no-such-package==9.9' of environment 'broken'",
    ):
        python_for_environment(env, home=tmp_path)
    leftovers = [p.name for p in (tmp_path / "venvs").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_pip_failure_message_hides_index_credentials() -> None:
    output = (
        "Looking in indexes: https://build:s3cr3t-token@pypi.example.com/simple\n"
        "ERROR: No matching distribution found for torch==9\n"
    )
    message = _pip_failure_message(["torch==9", "pandas"], output, None)
    assert "s3cr3t-token" not in message
    assert "pip package 'torch==9'" in message and "https://***@pypi.example.com" in message
