"""``security_private_env``: a LocalCompute step given a credential in ``Environment(env_vars=...)`` (its name says
so, ``HF_TOKEN``, or its value does, a URL with a password); the trigger's conf picks the token.
``security_secret_argument``: a step whose rendered arguments hold a password, refused before its spec is written."""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Environment, OutputFileDatasetConfig, PythonScriptOperator

STEPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "steps")
START = pendulum.datetime(2026, 1, 1, tz="UTC")

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
