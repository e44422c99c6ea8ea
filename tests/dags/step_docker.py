"""A script step on DockerCompute; tests/compute/test_pipeline_on_docker.py gives the engine and mounts."""

from __future__ import annotations

import os
import sysconfig

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import DockerCompute, Environment, OutputFileDatasetConfig, PythonScriptOperator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SITE = sysconfig.get_paths()["purelib"]
STORE = os.environ.get("MLPIPE_TEST_STORE", "/tmp")

with DAG("step_docker", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    PythonScriptOperator(
        task_id="hello",
        script_name="hello_output.py",
        source_directory=os.path.join(os.path.dirname(__file__), "step_scripts"),
        arguments=["--out", OutputFileDatasetConfig("greeting").register_on_complete("docker_greeting")],
        compute_target=DockerCompute(
            image=os.environ.get("MLPIPE_TEST_IMAGE", "mlpipe-test-python:bookworm"),
            docker_url=os.environ.get("MLPIPE_TEST_DOCKER_URL", "unix:///var/run/docker.sock"),
            network_mode="none",
            mounts=[f"{REPO}:{REPO}:ro", f"{SITE}:{SITE}:ro", f"{STORE}:{STORE}"],
            env={"PYTHONPATH": f"{REPO}:{SITE}"},
            user=f"{os.getuid()}:{os.getgid()}",
        ),
        environment=Environment(python="python3"),
        retries=0,
    )
