"""v1 pipeline definitions as DAGs (parse time only): the mapping of each v1 piece, and each refused call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import v1
from airflow_mlpipe.compute.docker import DockerCompute
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.data_transfer import DataTransferOperator
from airflow_mlpipe.operators.python_script import PythonScriptOperator
from airflow_mlpipe.storage.datastore import Datastore

ws = v1.Workspace.from_config()


@pytest.fixture
def source(tmp_path: Path) -> str:
    (tmp_path / "s.py").write_text("print('hi')\n")
    return str(tmp_path)


def _submit(steps: list[Any], name: str = "v1_test", **kwargs: Any) -> Any:
    return v1.Experiment(ws, name).submit(v1.Pipeline(ws, steps), **kwargs).dag


def test_pipeline_data_steps_and_parameters(source: str) -> None:
    data = v1.PipelineData("prepared", datastore=Datastore.get("lake"))
    lr = v1.PipelineParameter("lr", default_value=0.1)
    v1.PythonScriptStep("s.py", name="Make data", arguments=["--out", data], outputs=[data], source_directory=source)
    second = v1.PythonScriptStep(
        "s.py",
        name="Use data",
        arguments=["--in", data, "--lr", lr],
        inputs=[data],
        source_directory=source,
        params={"mode": "fast"},
    )
    third = v1.PythonScriptStep("s.py", name="Use data", source_directory=source, allow_reuse=False)
    third.run_after(second)
    dag = _submit([third], pipeline_parameters={"lr": 0.5}, regenerate_outputs=True, dag_args={"schedule": "@daily"})
    assert dag.dag_id == "v1_test" and sorted(dag.task_ids) == ["make_data", "use_data", "use_data_2"]
    # the steps given come first: the later "Use data" keeps the plain id
    make, use, after = (dag.get_task(t) for t in ("make_data", "use_data_2", "use_data"))
    assert isinstance(make, PythonScriptOperator) and make.task_display_name == "Make data"
    assert [o.name for o in make.step_io.outputs] == ["prepared"] and make.step_io.outputs[0].datastore == "lake"
    assert [i.name for i in use.step_io.inputs] == ["prepared"] and use.upstream_task_ids == {"make_data"}
    assert after.upstream_task_ids == {"use_data_2"} and after.allow_reuse is False
    assert use.environment.env_vars == {"AML_PARAMETER_mode": "fast"}
    assert dag.params["lr"] == 0.5 and dag.params["regenerate_outputs"] is True
    assert "azureml-v1" in dag.tags and dag.timetable is not None and dag.schedule == "@daily"


def test_environment_and_compute_names(source: str) -> None:
    config = v1.RunConfiguration()
    config.environment.python.conda_dependencies = v1.CondaDependencies.create(
        pip_packages=["azureml-defaults", "scikit-learn==1.5.2"], conda_packages=["python=3.11", "numpy=1.26", "pip"]
    )
    config.environment.environment_variables = {"MODE": "x"}
    config.target = "cpu-cluster"
    step = v1.PythonScriptStep("s.py", runconfig=config, source_directory=source)
    task = _submit([step]).get_task("s.py")
    assert task.environment.pip_packages == ("numpy==1.26", "scikit-learn==1.5.2")
    assert task.environment.env_vars == {"MODE": "x"} and isinstance(task.compute_target, LocalCompute)
    docker = DockerCompute(image="python:3.11")
    v1.set_compute_target("gpu-cluster", docker)
    on_gpu = v1.PythonScriptStep("s.py", compute_target=v1.ComputeTarget(ws, "gpu-cluster"), source_directory=source)
    assert _submit([on_gpu], name="v1_gpu").get_task("s.py").compute_target == docker
    other = DockerCompute(image="python:3.12")
    named = v1.PythonScriptStep("s.py", compute_target="x", source_directory=source)
    assert _submit([named], name="v1_x", compute_targets={"x": other}).get_task("s.py").compute_target == other


def test_conda_file_and_requirements(tmp_path: Path) -> None:
    (tmp_path / "env.yml").write_text(
        "dependencies:\n  - python=3.11\n  - pandas=2.2.3\n  - pip:\n    - azureml-core\n    - joblib\n"
    )
    (tmp_path / "req.txt").write_text("# pins\nrequests==2.32.3\nazureml-sdk\n")
    conda = v1.Environment.from_conda_specification("e", str(tmp_path / "env.yml")).to_mlpipe()
    assert conda.pip_packages == ("joblib", "pandas==2.2.3")
    pip = v1.Environment.from_pip_requirements("p", str(tmp_path / "req.txt"))
    pip.docker.base_image = "python:3.11-slim"
    assert pip.to_mlpipe().pip_packages == ("requests==2.32.3",) and pip.to_mlpipe().image == "python:3.11-slim"


def test_script_run_config_and_data_transfer(source: str) -> None:
    dag = v1.Experiment(ws, "v1 single").submit(v1.ScriptRunConfig(source, script="s.py", arguments=["--n", 1])).dag
    assert dag.dag_id == "v1_single" and dag.get_task("s.py").arguments == ["--n", 1]
    store = v1.Datastore.get(ws, "lake")
    copy = v1.DataTransferStep(
        "Copy in",
        source_data_reference=v1.DataReference(store, path_on_datastore="raw"),
        destination_data_reference=v1.DataPath(v1.Datastore.get_default(ws), "landed"),
    )
    task = _submit([copy], name="v1_copy").get_task("copy_in")
    assert isinstance(task, DataTransferOperator)
    assert (task.source.datastore, task.source.path, task.destination.path) == ("lake", "raw", "landed")


def test_data_reference_as_step_input(source: str) -> None:
    ref = v1.Datastore.get(ws, "lake").path("raw/2024").as_download()
    task = _submit([v1.PythonScriptStep("s.py", arguments=["--raw", ref], source_directory=source)]).get_task("s.py")
    (inp,) = task.step_io.inputs
    assert inp.mode == "download" and inp.name == ref.data_reference_name and inp.name.startswith("ref_")


def test_accepted_and_ignored() -> None:
    target = v1.ComputeTarget.create(ws, "cpu", v1.AmlCompute.provisioning_configuration(vm_size="STANDARD_D2_V2"))
    target.wait_for_completion(show_output=True)
    assert v1.Pipeline(ws, [v1.PythonScriptStep("s.py")]).validate() == []


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: v1.Pipeline(ws, [v1.PythonScriptStep("s.py")]).publish("p"), "REST API", id="publish"),
        pytest.param(lambda: v1.Environment.get(ws, "AzureML-Minimal"), "no registered", id="environment-get"),
        pytest.param(
            lambda: v1.PipelineParameter("d", default_value=v1.Dataset.File.from_files([("x", "a"), ("x", "b")])),
            "a dataset of one path",
            id="two-path-dataset-parameter",
        ),
        pytest.param(lambda: v1.PipelineParameter("n", 3).as_input(), "holds a value", id="value-as-input"),
        pytest.param(
            lambda: v1.PythonScriptStep("s.py", params={"lr": v1.PipelineParameter("lr", 0.1)}),
            "in arguments",
            id="parameter-in-params",
        ),
        pytest.param(lambda: v1.set_compute_target("gpu", "k8s"), "KubernetesCompute", id="compute-not-a-target"),
        pytest.param(lambda: v1.DataPath(None, "x"), "needs a datastore", id="datapath-without-datastore"),
        pytest.param(
            lambda: v1.DataReference("lake"),
            r"DataReference: datastore 'lake' must be a Datastore, not str; give Datastore.get\(ws, 'lake'\)",
            id="reference-without-datastore",
        ),
        pytest.param(lambda: v1.DataTransferStep("copy"), "source_data_reference", id="transfer-without-ends"),
        pytest.param(lambda: v1.OutputFileDatasetConfig("o", source="/tmp/x"), "drop source=", id="output-source"),
        pytest.param(lambda: v1.PipelineData("p", output_mode="direct"), "output_mode", id="pipeline-data-mode"),
        pytest.param(lambda: v1.Pipeline(ws, []), "list of steps", id="empty-pipeline"),
        pytest.param(
            lambda: v1.PythonScriptStep("s.py", runconfig_pipeline_params={"NodeCount": 2}),
            "runconfig_pipeline_params",
            id="runconfig-params",
        ),
        pytest.param(lambda: v1.ScriptRunConfig(".", command=["python", "x.py"]), "script=", id="command-config"),
        pytest.param(lambda: v1.Experiment(ws, "e").submit("nope"), "Pipeline or a ScriptRunConfig", id="submit-what"),
        pytest.param(
            lambda: _submit([v1.PythonScriptStep("s.py")], name="v1_bad", pipeline_parameters={"nope": 1}),
            "not PipelineParameters",
            id="unknown-parameter",
        ),
    ],
)
def test_refused(call: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()


def test_wait_for_completion_returns_at_once(source: str) -> None:
    run = _submit([v1.PythonScriptStep("s.py", source_directory=source)], name="v1_wait")
    assert v1.PipelineRun(run).wait_for_completion() == "NotStarted"


def test_dataset_and_datapath_parameters_choose_inputs_per_run(source: str, local_default: Datastore) -> None:
    local_default.write_text("raw/a.csv", "x\n1\n")
    local_default.write_text("other/b.csv", "x\n2\n3\n")
    v1.Dataset.Tabular.from_delimited_files((local_default, "raw/a.csv")).register("raw_table")
    v1.Dataset.Tabular.from_delimited_files((local_default, "raw/a.csv")).register("raw_table")
    table = v1.PipelineParameter("table", default_value=v1.Dataset.get_by_name(ws, "raw_table"))
    folder = v1.PipelineParameter("folder", default_value=v1.DataPath(local_default, "raw"))
    step = v1.PythonScriptStep(
        "s.py",
        arguments=[
            "--table",
            v1.DatasetConsumptionConfig("t", table),
            "--folder",
            (folder, v1.DataPathComputeBinding()),
        ],
        source_directory=source,
    )
    dag = _submit([step], name="v1_params")
    assert dag.params["table"] == "raw_table" and dag.params["folder"] == "mlpipe://datastores/mlpipe_default/paths/raw"
    task = dag.get_task("s.py")
    default = {i["name"]: i for i in task.input_specs({"params": {}})}
    assert default["t"]["mode"] == "direct" and default["t"]["source"]["dataset"]["name"] == "raw_table"
    assert default["folder"]["mode"] == "mount" and default["folder"]["source"]["dataset"]["paths"][0]["path"] == "raw"
    chosen = {"table": "raw_table:1", "folder": "mlpipe://datastores/mlpipe_default/paths/other"}
    per_run = {i["name"]: i["source"]["dataset"] for i in task.input_specs({"params": chosen})}
    assert per_run["t"]["version"] == 1 and per_run["folder"]["paths"][0]["path"] == "other"
