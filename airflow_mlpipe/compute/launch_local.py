"""Launch a step on ``LocalCompute``: the runner as a subprocess of the Airflow worker, its output streamed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping

from airflow_mlpipe.compute.base import StepLaunch
from airflow_mlpipe.core.secrets import scrub_text
from airflow_mlpipe.runner.process import die_with_parent
from airflow_mlpipe.storage.config import DatastoreConfig, config_to_env_value, env_var_name


def launch_env(launch: StepLaunch, datastores: Mapping[str, DatastoreConfig]) -> dict[str, str]:
    """The runner's environment: the worker's, the launch's plain variables, and one ``AIRFLOW_CONN_<NAME>``
    per datastore (credentials stay in this process tree; nothing is written to disk)."""
    env = dict(os.environ)
    env.update(launch.env)
    for name in launch.datastores:
        env[env_var_name(name)] = config_to_env_value(datastores[name])
    return env


class LocalLauncher:
    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def run(
        self,
        python: str,
        launch: StepLaunch,
        datastores: Mapping[str, DatastoreConfig],
        log_line: Callable[[str], None],
    ) -> int:
        self.proc = subprocess.Popen(
            [python, *launch.args],
            env=launch_env(launch, datastores),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # The task killed (even with SIGKILL) stops its runner, which stops the script and commits nothing.
            preexec_fn=die_with_parent(signal.SIGTERM) if sys.platform == "linux" else None,
        )
        assert self.proc.stdout is not None
        # The task log: Airflow masks the credentials it knows; URL passwords and signatures need the patterns too.
        known = [secret for name in launch.datastores for secret in datastores[name].secret_values]
        for raw in iter(self.proc.stdout.readline, b""):
            log_line(scrub_text(raw.decode("utf-8", "replace").rstrip("\n"), known))
        return self.proc.wait()

    def kill(self) -> None:
        """Stop the runner (it stops the script and records the run as failed)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
