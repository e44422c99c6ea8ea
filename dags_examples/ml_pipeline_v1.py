"""The Azure ML "create and run ML pipelines" pipeline, written with SDK v1 and only its imports changed.

The v1 notebook imported from ``azureml.core``, ``azureml.data``, ``azureml.pipeline.core`` and
``azureml.pipeline.steps``; here the same names come from ``airflow_mlpipe.v1``, the compute cluster's
provisioning is gone, and ``Experiment.submit`` defines the Airflow DAG ``iris_v1_pipeline``. The step scripts
(``ml_pipeline_v1_steps/``) are unchanged v1 scripts: ``from azureml.core import Run``.
Try "Trigger DAG w/ config" with ``{"learning_rate": 0.5}``; a second run with the same data reuses every step.
"""

import os

from airflow_mlpipe.v1 import (
    ComputeTarget,
    CondaDependencies,
    Experiment,
    OutputFileDatasetConfig,
    Pipeline,
    PipelineData,
    PipelineParameter,
    PythonScriptStep,
    RunConfiguration,
    Workspace,
)

ws = Workspace.from_config()
datastore = ws.get_default_datastore()
compute_target = ComputeTarget(workspace=ws, name="cpu-cluster")  # the Airflow worker unless mapped elsewhere

aml_run_config = RunConfiguration()
aml_run_config.target = compute_target
aml_run_config.environment.python.user_managed_dependencies = False
# The SDK packages are left out (the compatibility package stands in for them); the worker already has pandas
# and numpy, which listed here would be installed into a virtualenv for the steps.
aml_run_config.environment.python.conda_dependencies = CondaDependencies.create(
    pip_packages=["azureml-defaults", "azureml-dataset-runtime[pandas,fuse]"], pin_sdk_version=False
)

source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ml_pipeline_v1_steps")
raw_data = OutputFileDatasetConfig(name="raw_data", destination=(datastore, "iris_v1/raw/{run-id}"))
prepped_data = PipelineData("prepped_data", datastore=datastore)
model = OutputFileDatasetConfig(name="model")
best_model = OutputFileDatasetConfig(name="best_model").register_on_complete(name="iris_best_model")
learning_rate = PipelineParameter(name="learning_rate", default_value=1.0)

step_settings = {
    "compute_target": compute_target,
    "runconfig": aml_run_config,
    "source_directory": source,
    "allow_reuse": True,
}
get_data_step = PythonScriptStep(
    name="Get data",
    script_name="get_data.py",
    arguments=["--output", raw_data],
    **step_settings,
)
data_prep_step = PythonScriptStep(
    name="Data prep",
    script_name="prep.py",
    arguments=["--prepped", prepped_data],
    inputs=[raw_data.read_delimited_files().as_input(name="raw_data")],
    outputs=[prepped_data],
    **step_settings,
)
train_step = PythonScriptStep(
    name="Train",
    script_name="train.py",
    arguments=["--train", prepped_data, "--model", model, "--learning-rate", learning_rate],
    inputs=[prepped_data],
    **step_settings,
)
compare_step = PythonScriptStep(
    name="Compare models",
    script_name="compare.py",
    arguments=["--model", model.as_input(), "--test", prepped_data, "--best-model", best_model],
    inputs=[prepped_data],
    **step_settings,
)

pipeline = Pipeline(workspace=ws, steps=[compare_step])
pipeline_run = Experiment(ws, "iris_v1_pipeline").submit(pipeline, dag_args={"tags": ["mlpipe", "example"]})
pipeline_run.wait_for_completion()
