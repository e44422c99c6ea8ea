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
from airflow_mlpipe.compute.keyed import step_environment
from airflow_mlpipe.compute.kubernetes import KubernetesCompute
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.attempt import StepAttempt
from airflow_mlpipe.operators.links import ReusedFromLink
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
    ti = SimpleNamespace(dag_id="reuse_parse", run_id="r", task_id="s", map_index=-1, try_number=1)
    context: Any = {"dag_run": SimpleNamespace(conf=conf), "ti": ti}
    step = _step(tmp_path, reuse_ttl=60, allow_reuse=False)
    policy = StepAttempt(step, context, None).policy()  # type: ignore[arg-type]
    assert (policy.regenerate, policy.allow_reuse, policy.ttl) == (regenerate, False, 60.0)


@pytest.mark.parametrize("ttl", [0, -5, "1h", True])
def test_a_bad_reuse_ttl_is_refused_at_parse_time(tmp_path: Path, ttl: object) -> None:
    with pytest.raises(ConfigError, match="reuse_ttl .* must be a positive number of seconds"):
        _step(tmp_path, reuse_ttl=ttl)


def keyed(step: PythonScriptOperator) -> dict[str, Any]:
    return step_environment(step.environment, step.compute_target)


def test_the_environment_as_keyed(tmp_path: Path) -> None:
    local = keyed(_step(tmp_path, environment=Environment(name="a", env_vars={"X": "1"})))
    assert local["image"] is None and local["env_vars"] == {"X": "1"} and local["python"].startswith("cpython-")
    assert "name" not in local  # a label: renaming an environment keeps its steps reusable
    docker = keyed(_step(tmp_path, compute_target=DockerCompute(image="team/ml:1")))
    assert docker["image"] == "team/ml:1" and docker["python"] == "python"


@pytest.mark.parametrize(
    "compute",
    [
        pytest.param(lambda env: DockerCompute(image="team/ml:1", env=env), id="docker"),
        pytest.param(lambda env: KubernetesCompute(image="team/ml:1", env=env), id="kubernetes"),
    ],
)
def test_the_compute_targets_env_vars_are_keyed(tmp_path: Path, compute: Any) -> None:
    """They reach the process: EPOCHS=100 and EPOCHS=10 are two keys; the environment's own win, as in the
    container."""
    hundred = keyed(_step(tmp_path, compute_target=compute({"EPOCHS": "100"})))
    ten = keyed(_step(tmp_path, compute_target=compute({"EPOCHS": "10"})))
    assert hundred["env_vars"] == {"EPOCHS": "100"} and ten["env_vars"] == {"EPOCHS": "10"}
    both = keyed(
        _step(
            tmp_path,
            compute_target=compute({"EPOCHS": "100", "A": "1"}),
            environment=Environment(env_vars={"EPOCHS": "5"}),
        )
    )
    assert both["env_vars"] == {"A": "1", "EPOCHS": "5"}


def test_a_reused_step_links_to_the_earlier_run(tmp_path: Path) -> None:
    assert any(isinstance(link, ReusedFromLink) for link in _step(tmp_path).operator_extra_links)
    assert "airflow_mlpipe.operators.links.ReusedFromLink" in get_provider_info()["extra-links"]
