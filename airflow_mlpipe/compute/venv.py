"""Cached virtualenvs for ``LocalCompute`` steps whose environment asks for pip packages.

One virtualenv per (package set, Python version, parent environment), under ``$MLPIPE_HOME/venvs/<key>``, built
once and shared by every step and DAG run that asks for the same set. It sees the worker's own packages (so
``airflow_mlpipe`` and Airflow stay importable); what pip installs into it shadows them.

Concurrent builders of one key are serialised by a lock file, and readers never see a half-built virtualenv:
the files are written into a uniquely named folder that is then published by atomically renaming a symlink to
it. (A virtualenv cannot itself be moved after creation: pip writes its absolute path into script shebangs.)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlpipe.exceptions import ConfigError, EnvironmentBuildError

if TYPE_CHECKING:
    from airflow_mlpipe.compute.environment import Environment

log = logging.getLogger(__name__)

# Bump when the layout or the way we build changes, so older virtualenvs are not reused.
KEY_VERSION = 1
MARKER = "mlpipe-venv.json"
PARENT_PTH = "_mlpipe_parent.pth"
DEFAULT_TIMEOUT_S = 3600.0


def python_for_environment(
    environment: Environment | None, *, home: Path | None = None, timeout: float = DEFAULT_TIMEOUT_S
) -> str:
    """The interpreter a ``LocalCompute`` step runs with.

    No pip packages: the environment's ``python`` (found on ``PATH``) or the worker's own interpreter.
    Otherwise the ``bin/python`` of the cached virtualenv for the package set, built on first use.

    :param home: the folder that holds ``venvs/`` (default ``$MLPIPE_HOME``).
    :param timeout: seconds to wait for another process building the same virtualenv, and for pip.
    :raises ConfigError: the environment's interpreter does not exist.
    :raises EnvironmentBuildError: pip failed; the message names the package.
    """
    base = _base_python(environment)
    if environment is None or not environment.pip_packages:
        return base
    key_fields = venv_key_fields(base, environment.pip_packages)
    key = venv_key(key_fields)
    root = _venvs_root(home)
    link = root / key
    if _is_ready(link):
        return str(link / "bin" / "python")
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f"{key}.lock", timeout=timeout, what=f"virtualenv {key}"):
        if not _is_ready(link):
            _build(root, link, base, key_fields, timeout=timeout, name=environment.name)
    return str(link / "bin" / "python")


def venv_key_fields(base_python: str, packages: Sequence[str]) -> dict[str, Any]:
    """What the cache key is made of, listed so it can be printed and explained."""
    current = _same_file(base_python, sys.executable)
    return {
        "key_version": KEY_VERSION,
        "python": _python_version(base_python, current=current),
        # The worker's environment is visible inside (see _link_parent_site_packages): a different one is a
        # different virtualenv.
        "parent_prefix": sys.prefix if current else None,
        "packages": sorted(set(packages)),
    }


def venv_key(fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _venvs_root(home: Path | None) -> Path:
    if home is None:
        from airflow_mlpipe.storage.resolve import mlpipe_home

        home = mlpipe_home()
    return Path(home) / "venvs"


def _base_python(environment: Environment | None) -> str:
    if environment is None or environment.python is None:
        return sys.executable
    found = shutil.which(environment.python)
    if found is None:
        raise ConfigError(
            f"Environment{f'({environment.name!r})' if environment.name else ''}: python {environment.python!r} "
            "was not found on this worker (not on PATH and not an executable file); install it or leave "
            "python unset to use the worker's own interpreter"
        )
    return os.path.abspath(found)


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _python_version(python: str, *, current: bool) -> str:
    if current:
        return f"{sys.implementation.name}-{'.'.join(map(str, sys.version_info[:3]))}"
    code = "import sys; print(sys.implementation.name + '-' + '.'.join(map(str, sys.version_info[:3])))"
    result = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    if result.returncode != 0:
        raise ConfigError(f"python {python!r} does not run: {result.stderr.strip()[-500:]}")
    return result.stdout.strip()


def _is_ready(link: Path) -> bool:
    return (link / MARKER).is_file() and (link / "bin" / "python").exists()


@contextmanager
def _exclusive_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    # The lock file stays in place: deleting it would let a third process lock a fresh inode while a second
    # still holds the old one.
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise EnvironmentBuildError(
                        f"gave up after {timeout:.0f} s waiting for another process to finish building {what} "
                        f"(lock {path})"
                    ) from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _build(root: Path, link: Path, base: str, key_fields: dict[str, Any], *, timeout: float, name: str | None) -> None:
    packages: list[str] = key_fields["packages"]
    target = root / f"{link.name}.{uuid.uuid4().hex[:8]}"
    log.info("Building virtualenv %s for pip packages %s (once; later steps reuse it)", link, packages)
    started = time.monotonic()
    try:
        _run(
            [base, "-m", "venv", "--system-site-packages", "--without-pip", str(target)],
            what="python -m venv",
            timeout=timeout,
        )
        python = target / "bin" / "python"
        if key_fields["parent_prefix"]:
            _link_parent_site_packages(python)
        _pip_install(python, packages, timeout=timeout, name=name)
        marker = {**key_fields, "created": datetime.now(UTC).isoformat(), "environment": name}
        (target / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True))
        _publish(link, target)
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    log.info("Virtualenv %s ready in %.1f s", link, time.monotonic() - started)


def _link_parent_site_packages(python: Path) -> None:
    """Make the worker's packages importable inside: ``--system-site-packages`` reaches only the base
    installation, not the virtualenv the worker itself runs in. Appended after the new site-packages, so
    what pip installs wins."""
    import site

    parents = [p for p in site.getsitepackages() if os.path.isdir(p)]
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    # An "import" line, not plain paths: addsitedir also runs the .pth files found there (editable installs,
    # namespace packages), which a plain path line would skip.
    line = "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents)
    Path(purelib, PARENT_PTH).write_text(line + "\n")


def _pip_install(python: Path, packages: list[str], *, timeout: float, name: str | None) -> None:
    # Run the worker's pip against the new interpreter (pip's --python) when it has one: no ensurepip per
    # virtualenv, and one pip version for every build.
    import importlib.util

    if importlib.util.find_spec("pip") is not None:
        cmd = [sys.executable, "-m", "pip", "--python", str(python)]
    else:
        _run([str(python), "-m", "ensurepip", "--default-pip"], what="ensurepip", timeout=timeout)
        cmd = [str(python), "-m", "pip"]
    cmd += ["install", "--disable-pip-version-check", "--no-input", *packages]
    result = _completed(cmd, what=f"pip install {' '.join(packages)}", timeout=timeout)
    if result.returncode != 0:
        raise EnvironmentBuildError(_pip_failure_message(packages, result.stdout + result.stderr, name))


_FAILED_PACKAGE_PATTERNS = (
    re.compile(r"No matching distribution found for (\S+)"),
    re.compile(r"Could not find a version that satisfies the requirement (\S+)"),
    re.compile(r"Failed (?:building wheel for|to build) (\S+)"),
)
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def _pip_failure_message(packages: list[str], output: str, name: str | None) -> str:
    output = _redact(output)
    culprit = _failed_package(packages, output)
    env = f" of environment {name!r}" if name else ""
    what = f"pip package {culprit!r}" if culprit else f"pip packages {packages!r}"
    tail = "\n".join(output.strip().splitlines()[-15:])
    return _redact(
        f"could not install {what}{env}; check the name and version (pip install {culprit or ' '.join(packages)} "
        f"must work on this worker). pip said:\n{tail}"
    )


def _redact(text: str) -> str:
    """Index and package URLs may carry a token (https://user:token@host/simple): never repeat one."""
    return _URL_CREDENTIALS.sub(r"\1***@", text)


def _failed_package(packages: list[str], output: str) -> str | None:
    for pattern in _FAILED_PACKAGE_PATTERNS:
        match = pattern.search(output)
        if match is None:
            continue
        reported = _canonical(match.group(1))
        for package in packages:
            if _canonical(package) == reported:
                return package
        return match.group(1)
    return None


def _canonical(requirement: str) -> str:
    name = re.split(r"[\s\[<>=!~;@(]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def _publish(link: Path, target: Path) -> None:
    # A relative symlink renamed into place: rename is atomic, so a reader sees either nothing or the whole
    # virtualenv. A stale link (an earlier build that died before its marker) is replaced, its folder removed.
    previous = link.resolve() if link.is_symlink() else None
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex[:8]}.link")
    os.symlink(target.name, tmp)
    os.replace(tmp, link)
    if previous is not None and previous != target.resolve() and previous.parent == link.parent:
        shutil.rmtree(previous, ignore_errors=True)


def _completed(cmd: list[str], *, what: str, timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EnvironmentBuildError(_redact(f"{what} did not finish within {timeout:.0f} s")) from None


def _run(cmd: list[str], *, what: str, timeout: float) -> None:
    result = _completed(cmd, what=what, timeout=timeout)
    if result.returncode != 0:
        raise EnvironmentBuildError(f"{what} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
