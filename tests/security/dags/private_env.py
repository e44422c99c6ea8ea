"""``security_private_env``: a LocalCompute step given a credential in ``Environment(env_vars=...)`` (its name says
so, ``HF_TOKEN``, ``SMTP_PASS``..., or its value does, a URL with a password); the trigger's conf picks the token.
``security_secret_argument``: a step whose rendered arguments hold a password, and a container step whose rendered
variable does, refused before Airflow stores the rendered fields."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import DockerCompute, Environment, OutputFileDatasetConfig, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")
START = pendulum.datetime(2026, 1, 1, tz="UTC")
UNKNOWN_TO_AIRFLOW = (
    "SMTP_PASS",
    "GH_PAT",
    "DB_CREDS",
    "DB_PWD",
    "STORAGE_SAS",
    "API_AUTH",
    "SESSION_COOKIE",
    "SIGNING_KEY",
    "AZ_ACCOUNTKEY",
)

with DAG("security_private_env", schedule=None, start_date=START, catchup=False):
    PythonScriptOperator(
        task_id="use_token",
        script_name="use_token.py",
        source_directory=STEPS,
        arguments=["--out", OutputFileDatasetConfig(name="seen")],
        environment=Environment(
            env_vars={
                "HF_TOKEN": "{{ dag_run.conf.get('token', 'hf_planted_token_one') }}",
                "DB_URL": "postgresql://ml:{{ dag_run.conf.get('password', 'Planted-Pw-77') }}@db.internal/ml",
                "MODE": "train",
                # names Airflow's masker does not know, which mlpipe takes for credentials
                **{name: f"{{{{ dag_run.conf.get('{name}', 'Planted-{name}-9') }}}}" for name in UNKNOWN_TO_AIRFLOW},
            }
        ),
    )

with DAG("security_secret_argument", schedule=None, start_date=START, catchup=False):
    PythonScriptOperator(
        task_id="leaky_args",
        script_name="use_token.py",
        source_directory=STEPS,
        arguments=["--out", OutputFileDatasetConfig(name="seen"), "--password", "{{ dag_run.conf['pw'] }}"],
    )
    PythonScriptOperator(
        task_id="leaky_container_env",
        script_name="use_token.py",
        source_directory=STEPS,
        compute_target=DockerCompute(
            image="python:3.11-slim", env={"DB_URL": "postgresql://ml:{{ dag_run.conf['pw'] }}@db.internal/ml"}
        ),
    )
