"""Templated step fields: rendered as Airflow renders them, keyed as rendered, and bad templates refused with the
step and the field named (at parse time where the error is knowable then). Plus the DAG params and asset outlets a
step adds when it is parsed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2
import pendulum
import pytest
from airflow.sdk import DAG, Asset

from airflow_mlpipe import (
    DataTransferOperator,
    DockerCompute,
    Environment,
    OutputFileDatasetConfig,
    PipelineParameter,
    PythonScriptOperator,
)
from airflow_mlpipe.exceptions import ConfigError, DatasetError, StepFailedError
from tests.airflow_utils import airflow_dags_test


def _dag(dag_id: str, **kwargs: Any) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), **kwargs)


def _context(**values: Any) -> dict[str, Any]:
    return {"ds": "2026-01-02", "ds_nodash": "20260102", "params": {"day": "2026-01-09"}, **values}


def test_arguments_destinations_and_env_vars_are_rendered(tmp_path: Path) -> None:
    out = OutputFileDatasetConfig(name="daily", destination=("mlpipe_default", "daily/{{ ds }}/{run-id}"))
    with _dag("tpl_render"):
        op = PythonScriptOperator(
            task_id="s",
            script_name="s.py",
            source_directory=str(tmp_path),
            arguments=["--day", "{{ ds }}", "--param", "{{ params.day }}", "--out", out, 3],
            environment=Environment(env_vars={"DAY": "{{ ds_nodash }}"}),
            compute_target=DockerCompute(image="team/ml:1", env={"MODE": "run-{{ ds }}"}),
        )
    op.render_template_fields(_context())
    op._use_rendered()
    assert op.arguments[:4] == ["--day", "2026-01-02", "--param", "2026-01-09"]
    assert [a.get("v") for a in op.step_io.arguments if a["t"] == "str"] == ["--day", "2026-01-02", "--param",
                                                                             "2026-01-09", "--out", "3"]  # fmt: skip
    assert out.path_template == "daily/2026-01-02/{run-id}"
    assert out.destination_for("r1").path == "daily/2026-01-02/r1"
    assert op.environment is not None and op.environment.env_vars == {"DAY": "20260102"}
    assert op.compute_target.env == {"MODE": "run-2026-01-02"}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"arguments": ["--day", "{{ ds "]}, "step 's': argument 2: the template", id="argument"),
        pytest.param({"environment": Environment(env_vars={"X": "{% if %}"})}, "env var X", id="env-var"),
    ],
)
def test_a_jinja_syntax_error_fails_the_dag_file(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message), _dag("tpl_syntax"):
        PythonScriptOperator(task_id="s", script_name="s.py", source_directory=str(tmp_path), **kwargs)


def test_a_destination_with_bad_jinja_is_refused_when_built() -> None:
    with pytest.raises(ConfigError, match=r"output destination 'x/\{\{ ds \}/\{run-id\}'.* not valid Jinja"):
        OutputFileDatasetConfig("o", destination=("d", "x/{{ ds }/{run-id}"))


def test_an_undefined_variable_names_the_step(tmp_path: Path) -> None:
    with _dag("tpl_undefined"):
        op = PythonScriptOperator(
            task_id="s", script_name="s.py", source_directory=str(tmp_path), arguments=["--x", "{{ nope.day }}"]
        )
    op.get_template_env = lambda **_: jinja2.Environment(undefined=jinja2.StrictUndefined)  # type: ignore[method-assign]
    with pytest.raises(StepFailedError, match="^step 's': a template in its arguments.* uses something undefined"):
        op.render_template_fields(_context())  # the task fails with this one line in its log, no traceback


def test_a_destination_rendered_to_nothing_is_refused() -> None:
    out = OutputFileDatasetConfig(name="o", destination=("mlpipe_default", "{{ params.folder }}/{run-id}"))
    out.path_template = "/{run-id}"  # what "{{ params.folder }}" renders to when the param is empty
    with pytest.raises(DatasetError, match="step 's': output 'o': once rendered"):
        out.check_rendered("s")
    out.path_template = 7  # type: ignore[assignment]  # a native render of a number
    with pytest.raises(DatasetError, match="rendered to 7, not a path"):
        out.check_rendered("s")


def test_a_destination_rendered_with_none_is_refused(tmp_path: Path) -> None:
    """A param without a value renders as 'None': the output would go to <store>/x/None/<run> unnoticed."""
    out = OutputFileDatasetConfig(name="o", destination=("mlpipe_default", "x/{{ params.day }}/{run-id}"))
    with _dag("tpl_none"):
        op = PythonScriptOperator(task_id="s", script_name="s.py", source_directory=str(tmp_path), outputs=[out])
    with pytest.raises(  # once rendered, before Airflow stores the rendered fields
        StepFailedError,
        match=r"^step 's': output 'o': its destination 'x/\{\{ params.day \}\}/\{run-id\}' rendered to "
        r"'x/None/\{run-id\}': a value the template reads was None .*give it a value, or a default in the template",
    ):
        op.render_template_fields(_context(params={"day": None}))
    with pytest.raises(DatasetError, match=r"^step 's': output 'o': its destination .* rendered to 'x/None/"):
        op._use_rendered()  # and again when the step runs
    kept = OutputFileDatasetConfig(name="k", destination=("mlpipe_default", "None/{{ ds }}/{run-id}"))
    kept.path_template = "None/2026-01-02/{run-id}"  # 'None' written in the template itself is a folder name
    kept.check_rendered("s")


def test_a_script_name_rendered_out_of_the_source_directory_is_refused(tmp_path: Path) -> None:
    with _dag("tpl_script"):
        op = PythonScriptOperator(task_id="s", script_name="{{ params.script }}", source_directory=str(tmp_path))
    with pytest.raises(StepFailedError, match="^step 's': script_name '../outside/evil.py' must be a path relative"):
        op.render_template_fields(_context(params={"script": "../outside/evil.py"}))
    with pytest.raises(ConfigError, match="^step 's': script_name '../outside/evil.py' must be a path relative to"):
        op._use_rendered()


def test_transfer_paths_are_rendered(tmp_path: Path) -> None:
    with _dag("tpl_transfer"):
        op = DataTransferOperator(
            task_id="copy",
            source_data_reference=("src", "landing/{{ ds }}"),
            destination_data_reference=("dst", "copies/{{ ds_nodash }}"),
        )
    op.render_template_fields(_context())
    op._use_rendered()
    assert (op.source.path, op.destination.path) == ("landing/2026-01-02", "copies/20260102")  # type: ignore[union-attr]


def test_parameters_become_typed_form_fields_and_regenerate_is_offered(tmp_path: Path) -> None:
    with _dag("tpl_params") as dag:
        PythonScriptOperator(
            task_id="s",
            script_name="s.py",
            source_directory=str(tmp_path),
            arguments=[
                PipelineParameter("lr", 0.1),
                PipelineParameter("epochs", 10),
                PipelineParameter("shuffle", True),
                PipelineParameter("optimizer", "adam", allowed_values=["adam", "sgd"], description="the optimiser"),
            ],
        )
    schema = {name: dag.params.get_param(name).schema for name in dag.params}
    assert schema["lr"]["type"] == "number" and schema["epochs"]["type"] == "integer"
    assert schema["shuffle"]["type"] == "boolean"
    assert schema["optimizer"]["enum"] == ["adam", "sgd"]
    assert dag.params.get_param("optimizer").description == "the optimiser"
    assert dag.params["regenerate_outputs"] is False and schema["regenerate_outputs"]["type"] == "boolean"
    with pytest.raises(ConfigError, match="'optimizer': default_value 'rmsprop' is not one of allowed_values"):
        PipelineParameter("optimizer", "rmsprop", allowed_values=["adam", "sgd"])


def test_registered_datasets_are_outlets_of_their_producer(tmp_path: Path) -> None:
    with _dag("tpl_outlets"):
        step = PythonScriptOperator(
            task_id="s",
            script_name="s.py",
            source_directory=str(tmp_path),
            outputs=[OutputFileDatasetConfig("m").register_on_complete("models"), OutputFileDatasetConfig("tmp")],
        )
        copy = DataTransferOperator(
            task_id="c", source_data_reference=("a", "x"), destination_data_reference=("b", "y"),
            register_on_complete="copies",
        )  # fmt: skip
    assert step.outlets == [Asset(name="mlpipe://datasets/models", uri="mlpipe://datasets/models")]
    assert [o.uri for o in copy.outlets] == ["mlpipe://datasets/copies"]


def test_a_daily_step_sees_its_day(airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a real DAG run: the rendered argument, destination and env var, and the Airflow context."""
    env = {"MLPIPE_HOME": str(tmp_path / "mlpipe")}
    monkeypatch.setenv("MLPIPE_HOME", env["MLPIPE_HOME"])
    proc = subprocess_run_day(env, "2026-01-02")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (seen_file,) = (tmp_path / "mlpipe" / "datastore" / "daily" / "2026-01-02").rglob("seen.json")
    seen = json.loads(seen_file.read_text())
    assert seen["day"] == "2026-01-02" and seen["env_day"] == "20260102"
    assert seen["logical_date"] == seen["MLPIPE_LOGICAL_DATE"] == "2026-01-02T00:00:00+00:00"
    assert (seen["dag_id"], seen["task_id"], seen["try_number"]) == ("step_templated", "day", 1)
    assert seen["params"] == {"optimizer": "adam", "regenerate_outputs": False}
    assert seen["MLPIPE_DAG_ID"] == "step_templated"


def subprocess_run_day(env: dict[str, str], day: str) -> Any:
    return airflow_dags_test("step_templated", env=env, logical_date=day, check=False)
