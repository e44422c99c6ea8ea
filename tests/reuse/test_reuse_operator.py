"""What the operator hands the reuse decision: the policy (allow_reuse, reuse_ttl, regenerate_outputs), the
environment as keyed, and the UI's mark of a reused step. No DAG run here: see test_reuse_runs.py for those."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_mlpipe import DockerCompute, Environment, PythonScriptOperator
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.links import ReusedFromLink
from airflow_mlpipe.operators.step_reuse import environment_component, reuse_policy
from airflow_mlpipe.provider_info import get_provider_info


def _step(tmp_path: Path, **kwargs: Any) -> PythonScriptOperator:
    with DAG("reuse_parse", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
        return PythonScriptOperator(task_id="s", script_name="s.py", source_directory=str(tmp_path), **kwargs)


@pytest.mark.parametrize(
    ("conf", "regenerate"),
    [
        pytest.param(None, False, id="no conf"),
        pytest.param({"learning_rate": 0.5}, False, id="other keys"),
        pytest.param({"regenerate_outputs": True}, True, id="true"),
        pytest.param({"regenerate_outputs": "true"}, True, id="string from a shell"),
        pytest.param({"regenerate_outputs": False}, False, id="false"),
    ],
)
def test_the_policy_reads_the_trigger_conf(tmp_path: Path, conf: dict[str, Any] | None, regenerate: bool) -> None:
    context: Any = {"dag_run": SimpleNamespace(conf=conf)}
    policy = reuse_policy(_step(tmp_path, reuse_ttl=60, allow_reuse=False), context)
    assert (policy.regenerate, policy.allow_reuse, policy.ttl) == (regenerate, False, 60.0)


@pytest.mark.parametrize("ttl", [0, -5, "1h", True])
def test_a_bad_reuse_ttl_is_refused_at_parse_time(tmp_path: Path, ttl: object) -> None:
    with pytest.raises(ConfigError, match="reuse_ttl .* must be a positive number of seconds"):
        _step(tmp_path, reuse_ttl=ttl)


def test_the_environment_as_keyed(tmp_path: Path) -> None:
    local = environment_component(_step(tmp_path, environment=Environment(name="a", env_vars={"X": "1"})))
    assert local["image"] is None and local["env_vars"] == {"X": "1"} and local["python"].startswith("cpython-")
    assert "name" not in local  # a label: renaming an environment keeps its steps reusable
    docker = environment_component(_step(tmp_path, compute_target=DockerCompute(image="team/ml:1")))
    assert docker["image"] == "team/ml:1" and docker["python"] == "python"


def test_a_reused_step_links_to_the_earlier_run(tmp_path: Path) -> None:
    assert any(isinstance(link, ReusedFromLink) for link in _step(tmp_path).operator_extra_links)
    assert "airflow_mlpipe.operators.links.ReusedFromLink" in get_provider_info()["extra-links"]
