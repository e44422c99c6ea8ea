"""Every bad constructor argument of the step operators is a clear error at parse time: it names the step, the
argument, the value and the fix, and nothing is written."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import (
    Dataset,
    DatasetConsumptionConfig,
    Datastore,
    DatastoreCleanupOperator,
    DataTransferOperator,
    DockerCompute,
    Environment,
    KubernetesCompute,
    OutputFileDatasetConfig,
    ParallelRunConfig,
    ParallelRunStep,
    PipelineParameter,
    PythonScriptOperator,
    RegisterDatasetOperator,
    ReuseSensor,
    RunConfiguration,
)
from airflow_mlpipe.compat.tabular import Dataset as V1Dataset
from airflow_mlpipe.exceptions import (
    ConfigError,
    DatasetError,
    DatastoreNotFoundError,
    PathOutsideDatastoreError,
    ReservedPathError,
    UnsupportedSchemeError,
)
from airflow_mlpipe.gc.model import GcSettings
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.retry import RetryPolicy
from airflow_mlpipe.v1 import DataTransferStep, PythonScriptStep
from airflow_mlpipe.v1 import ParallelRunConfig as V1ParallelRunConfig

SCRIPT = {"task_id": "train", "script_name": "train.py"}


@pytest.fixture
def nothing_written(
    local_home: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """The default datastore (MLPIPE_HOME) and the datastore 'lake' the tables name are local folders: a refused
    call leaves both as they were (no record, no snapshot, no claim, no output folder)."""
    lake = tmp_path_factory.mktemp("lake")
    monkeypatch.setenv(
        "AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": lake.as_uri()}})
    )
    resolve.clear_cache()
    roots = [Path(local_home["MLPIPE_HOME"]), lake]
    before = [sorted(root.rglob("*")) for root in roots]
    yield
    assert [sorted(root.rglob("*")) for root in roots] == before


COPY = {"task_id": "copy", "source_data_reference": ("lake", "in"), "destination_data_reference": ("lake", "out")}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param(
            {"source_directory": None},
            r"step 'train': source_directory None must be the folder holding the script, e\.g\. source_directory=",
            id="source-directory-none",
        ),
        pytest.param({"source_directory": 3}, "source_directory 3 must be the folder", id="source-directory-int"),
        pytest.param({"source_directory": ""}, "source_directory '' must be the folder", id="source-directory-empty"),
        pytest.param(
            {"arguments": None},
            r"arguments None must be a list, e\.g\. arguments=\['--lr'",
            id="arguments-none",
        ),
        pytest.param({"inputs": None}, r"inputs None must be a list, e\.g\. inputs=\[", id="inputs-none"),
        pytest.param({"outputs": "model"}, r"outputs 'model' must be a list, e\.g\. outputs=\[", id="outputs-string"),
        pytest.param(
            {"allow_reuse": "no"},
            "allow_reuse 'no' must be True or False, not str; write allow_reuse=True or allow_reuse=False",
            id="allow-reuse-string",
        ),
        pytest.param({"allow_reuse": 0}, "allow_reuse 0 must be True or False, not int", id="allow-reuse-int"),
        pytest.param({"azureml_compat": "yes"}, "azureml_compat 'yes' must be True or False", id="compat-string"),
        pytest.param(
            {"hash_paths": "x.py"},
            r"hash_paths 'x.py' must be a list of strings; write hash_paths=\['x.py'\]",
            id="hash-paths-string",
        ),
        pytest.param({"hash_paths": [3]}, "hash_paths entry 3 must be a non-empty string", id="hash-paths-int"),
        pytest.param(
            {"environment": "name"},
            r"environment 'name' must be an Environment, not str; give Environment\(name=",
            id="environment-string",
        ),
        pytest.param({"compute_target": "gpu"}, "compute_target 'gpu' is not LocalCompute", id="compute-string"),
        pytest.param({"reuse_ttl": "60"}, "reuse_ttl '60' must be a positive number", id="ttl-string"),
        pytest.param({"deferrable": "no"}, "deferrable 'no' must be True or False", id="deferrable-string"),
        pytest.param({"deferrable": 1}, "deferrable 1 must be True or False", id="deferrable-int"),
        pytest.param({"script_name": None}, "script_name None must be a path relative to", id="script-none"),
        pytest.param({"script_name": 3}, "script_name 3 must be a path relative to", id="script-int"),
        pytest.param({"script_name": ""}, "script_name '' must be a path relative to", id="script-empty"),
        pytest.param({"arguments": "--lr 1"}, r"arguments '--lr 1' must be a list, e\.g\.", id="arguments-string"),
        pytest.param({"arguments": 3}, "arguments 3 must be a list", id="arguments-int"),
        pytest.param({"inputs": "data"}, "inputs 'data' must be a list", id="inputs-string"),
        pytest.param({"inputs": [3]}, "input 3 is not a dataset input; use dataset.as_named_input", id="inputs-int"),
        pytest.param({"outputs": [3]}, "outputs takes OutputFileDatasetConfig objects, not 3", id="outputs-int"),
        pytest.param({"outputs": ["x"]}, "outputs takes OutputFileDatasetConfig objects, not 'x'", id="outputs-str"),
        pytest.param({"runconfig": "rc"}, "runconfig must be a RunConfiguration, not 'rc'", id="runconfig-string"),
        pytest.param(
            {"environment": {"name": "x"}},
            r"environment \{'name': 'x'\} must be an Environment, not dict",
            id="env-dict",
        ),
        pytest.param({"compute_target": 3}, "compute_target 3 is not LocalCompute", id="compute-int"),
        pytest.param({"allow_reuse": None}, "allow_reuse None must be True or False, not NoneType", id="reuse-none"),
        pytest.param({"allow_reuse": "False"}, "allow_reuse 'False' must be True or False", id="reuse-false-text"),
        pytest.param({"allow_reuse": 1.0}, "allow_reuse 1.0 must be True or False, not float", id="reuse-float"),
        pytest.param({"hash_paths": {"a": 1}}, r"hash_paths \{'a': 1\} must be a list of strings", id="hash-dict"),
        pytest.param({"hash_paths": [""]}, "hash_paths entry '' must be a non-empty string", id="hash-empty-entry"),
        pytest.param({"hash_paths": 3}, "hash_paths 3 must be a list of strings", id="hash-int"),
        pytest.param(
            {"include_secret_files": ".env"},
            r"include_secret_files '.env' must be a list of strings; write include_secret_files=\['.env'\]",
            id="secret-files-string",
        ),
        pytest.param(
            {"include_secret_files": [None]}, "include_secret_files entry None must be a non-empty", id="secret-none"
        ),
        pytest.param({"reuse_ttl": -1}, "reuse_ttl -1 must be a positive number of seconds", id="ttl-negative"),
        pytest.param({"reuse_ttl": 0}, "reuse_ttl 0 must be a positive number", id="ttl-zero"),
        pytest.param({"reuse_ttl": True}, "reuse_ttl True must be a positive number", id="ttl-bool"),
        pytest.param({"reuse_ttl": float("inf")}, "reuse_ttl inf must be a positive number", id="ttl-inf"),
        pytest.param({"azureml_compat": None}, "azureml_compat None must be True or False", id="compat-none"),
        pytest.param(
            {"compute_target": DockerCompute()},
            r"^step 'train': DockerCompute\(image=None\) runs the image of the step's Environment, and the step has "
            r"no Environment: set DockerCompute\(image=\.\.\.\) or Environment\(image=\.\.\.\), an image with Python",
            id="docker-no-image-anywhere",
        ),
        pytest.param(
            {"compute_target": KubernetesCompute(), "environment": Environment(name="e")},
            r"KubernetesCompute\(image=None\) runs the image of the step's Environment, and the step has an "
            r"Environment without an image",
            id="k8s-no-image-anywhere",
        ),
        pytest.param(
            {"source_directory": ["steps"]}, r"source_directory \['steps'\] must be the folder", id="source-dir-list"
        ),
        pytest.param(
            {"arguments": {"--a", "b"}},
            r"arguments \{'--a', 'b'\}|arguments \{'b', '--a'\}",
            id="arguments-set",
        ),
        pytest.param({"arguments": {"--a", "b"}}, "; a set keeps no order .and drops repeats.: write a list", id="set"),
        pytest.param(
            {"arguments": {"--a": 1}},
            r"arguments \{'--a': 1\} must be a list, e\.g\. arguments=\['--lr', 0\.1\] .*; a dict gives its keys alone",
            id="arguments-dict",
        ),
        pytest.param({"inputs": {"a"}}, r"inputs \{'a'\} must be a list, e\.g\. inputs=\[", id="inputs-set"),
        pytest.param({"outputs": {"o": 1}}, r"outputs \{'o': 1\} must be a list", id="outputs-dict"),
        pytest.param(
            {"arguments": (a for a in ["x"])}, "arguments <generator .* a generator is not taken as one", id="args-gen"
        ),
        pytest.param(
            {"script_name": "../../scripts_outside/evil.py"},
            r"script_name '../../scripts_outside/evil.py' must be a path relative to source_directory and inside it "
            r"\(not absolute, no '\.\.', folders separated by '/'\), e\.g\. script_name='train\.py'",
            id="script-dotdot",
        ),
        pytest.param(
            {"script_name": "a/../../b.py"}, "script_name 'a/../../b.py' must be a path", id="script-inner-dots"
        ),
        pytest.param({"script_name": "/abs/train.py"}, "script_name '/abs/train.py' must be a path", id="script-abs"),
        pytest.param({"script_name": "src\\train.py"}, r"script_name 'src\\\\train\.py' must be", id="script-bslash"),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_python_script_operator(given: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        PythonScriptOperator(**{**SCRIPT, "source_directory": str(tmp_path), **given})
    assert str(info.value).startswith("step 'train': ")
    assert list(tmp_path.iterdir()) == []


def test_a_container_target_without_an_image_runs_the_environments(tmp_path: Path) -> None:
    """``image=None`` is allowed: it means the image of the step's Environment."""
    for target in (DockerCompute(), KubernetesCompute()):
        op = PythonScriptOperator(
            **SCRIPT, source_directory=str(tmp_path), compute_target=target, environment=Environment(image="ml:1")
        )
        assert op.compute_target is target


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param({"overwrite": "no"}, "overwrite 'no' must be True or False, not str", id="overwrite-string"),
        pytest.param({"allow_reuse": "no"}, "allow_reuse 'no' must be True or False", id="allow-reuse-string"),
        pytest.param({"verify": "false"}, "verify 'false' must be True or False", id="verify-string"),
        pytest.param(
            {"progress_interval": "fast"},
            r"progress_interval 'fast' must be a positive number of seconds, e\.g\. progress_interval=30",
            id="progress-string",
        ),
        pytest.param({"progress_interval": 0}, "progress_interval 0 must be a positive number", id="progress-zero"),
        pytest.param(
            {"progress_interval": float("nan")}, "progress_interval nan must be a positive", id="progress-nan"
        ),
        pytest.param(
            {"source_data_reference": (3, "in")},
            "source_data_reference: dataset path .3, 'in'.: expected .Datastore or datastore name",
            id="int-datastore",
        ),
        pytest.param({"source_data_reference": None}, "source_data_reference: dataset path None", id="source-none"),
        pytest.param(
            {"register_on_complete": 3}, "register_on_complete: dataset name 3 cannot be used", id="register-int"
        ),
        pytest.param({"source_reference_type": "dir"}, "source_reference_type 'dir' must be 'file'", id="type"),
        pytest.param({"source_reference_type": None}, "source_reference_type None must be 'file'", id="type-none"),
        pytest.param({"source_reference_type": 3}, "source_reference_type 3 must be 'file'", id="type-int"),
        pytest.param({"overwrite": None}, "overwrite None must be True or False, not NoneType", id="overwrite-none"),
        pytest.param({"overwrite": 1}, "overwrite 1 must be True or False, not int", id="overwrite-int"),
        pytest.param({"allow_reuse": "yes"}, "allow_reuse 'yes' must be True or False", id="allow-reuse-yes"),
        pytest.param({"verify": None}, "verify None must be True or False", id="verify-none"),
        pytest.param({"deferrable": "no"}, "deferrable 'no' must be True or False", id="deferrable-string"),
        pytest.param({"progress_interval": -1}, "progress_interval -1 must be a positive number", id="progress-neg"),
        pytest.param({"progress_interval": True}, "progress_interval True must be a positive", id="progress-bool"),
        pytest.param({"progress_interval": float("inf")}, "progress_interval inf must be a", id="progress-inf"),
        pytest.param(
            {"destination_data_reference": None},
            "destination_data_reference: dataset path None has type NoneType",
            id="destination-none",
        ),
        pytest.param(
            {"destination_data_reference": "lake/out"},
            "destination_data_reference: dataset path 'lake/out' is not a datastore path",
            id="destination-string",
        ),
        pytest.param(
            {"source_data_reference": "lake"}, "source_data_reference: dataset path 'lake' is not a", id="source-str"
        ),
        pytest.param({"source_data_reference": 3}, "source_data_reference: dataset path 3 has type int", id="src-int"),
        pytest.param(
            {"destination_data_reference": (3, "x")},
            r"destination_data_reference: dataset path \(3, 'x'\): expected \(Datastore or datastore name",
            id="destination-int-datastore",
        ),
        pytest.param(
            {"source_data_reference": ("lake", 3)},
            r"source_data_reference: dataset path \('lake', 3\): expected",
            id="source-int-path",
        ),
        pytest.param(
            {"source_data_reference": ("lake", None)},
            r"source_data_reference: dataset path \('lake', None\): expected",
            id="source-none-path",
        ),
        pytest.param(
            {"source_data_reference": ("lake", "../x")},
            "source_data_reference: datastore 'lake': path '../x' contains '..'",
            id="source-dotdot",
        ),
        pytest.param(
            {"source_data_reference": ("lake", "a", "b")},
            r"source_data_reference: dataset path \('lake', 'a', 'b'\) has type tuple",
            id="source-triple",
        ),
        pytest.param({"register_on_complete": ""}, "register_on_complete: dataset name '' cannot", id="register-empty"),
        pytest.param(
            {"register_on_complete": "a b"}, "register_on_complete: dataset name 'a b' cannot", id="register-space"
        ),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_data_transfer_operator(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        DataTransferOperator(**{**COPY, **given})
    assert str(info.value).startswith("step 'copy': ")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: OutputFileDatasetConfig("o", (3, "x/{run-id}")),
            r"the datastore 3 must be a Datastore or a datastore name",
            id="output-int-datastore",
        ),
        pytest.param(
            lambda: Dataset.get_by_name("x", version=1.5),
            r"version 1.5 must be a whole number \(1, 2, ...\) or 'latest', not float",
            id="float-version",
        ),
        pytest.param(
            lambda: Dataset.get_by_name("x", version=True), "version True must be a whole number", id="bool-version"
        ),
        pytest.param(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), encoding="klingon"),
            r"from_delimited_files: encoding 'klingon' must be a codec name such as 'utf8'",
            id="unknown-encoding",
        ),
        pytest.param(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), skip_rows="abc"),
            r"from_delimited_files: skip_rows 'abc' must be a whole number of rows",
            id="skip-rows-string",
        ),
        pytest.param(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), set_column_types={"a": "integr"}),
            r"set_column_types \{'a': 'integr'\}: the type must be one of .*int64",
            id="bogus-column-type",
        ),
        pytest.param(
            lambda: Dataset.Tabular.from_parquet_files(("lake", "a.parquet"), set_column_types=["a"]),
            r"from_parquet_files: set_column_types \['a'\] must be a dict",
            id="column-types-list",
        ),
        pytest.param(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), header="no"),
            "header 'no' must be True or False",
            id="header-string",
        ),
        pytest.param(
            lambda: Dataset.get_by_name("x", kind="tabel"), "kind 'tabel' must be 'file', 'tabular'", id="bogus-kind"
        ),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_dataset_arguments(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()


def bad(make: Any, error: type[Exception], *parts: str, id: str) -> Any:
    """A constructor call ``make`` that must raise ``error`` whose message holds every one of ``parts`` (the
    argument, the value as ``repr`` writes it, and the fix)."""
    return pytest.param(make, error, parts, id=id)


def _file() -> Any:
    return Dataset.File.from_files(("lake", "x"))


def _parallel_step(**kwargs: Any) -> Any:
    from airflow.sdk import DAG

    config = ParallelRunConfig(entry_script="score.py", source_directory=".")
    with DAG("bad_inputs_parallel", schedule=None):
        return ParallelRunStep(name="score", parallel_run_config=config, inputs=[_file().as_named_input("x")], **kwargs)


@pytest.mark.parametrize(
    ("make", "error", "parts"),
    [
        # OutputFileDatasetConfig
        bad(lambda: OutputFileDatasetConfig(3), DatasetError, "output name 3 cannot be used", id="output-name-int"),
        bad(lambda: OutputFileDatasetConfig(""), DatasetError, "output name '' cannot be used", id="output-name-empty"),
        bad(lambda: OutputFileDatasetConfig("a/b"), DatasetError, "output name 'a/b' cannot", id="output-name-slash"),
        bad(
            lambda: OutputFileDatasetConfig("o", "lake/x"),  # type: ignore[arg-type]
            DatasetError,
            "output destination 'lake/x' must be (Datastore or datastore name, 'path/{run-id}')",
            id="output-destination-string",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ["lake", "x"]),  # type: ignore[arg-type]
            DatasetError,
            "output destination ['lake', 'x'] must be",
            id="output-destination-list",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", 3)),  # type: ignore[arg-type]
            DatasetError,
            "output destination ('lake', 3) must be",
            id="output-path-int",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", (None, "x")),
            DatasetError,
            "the datastore None must be a Datastore or a datastore name",
            id="output-datastore-none",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "")),
            DatasetError,
            "output destination '' is the datastore root; give a folder inside it",
            id="output-root",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "../x")),
            PathOutsideDatastoreError,
            "path '../x' contains '..'",
            id="output-dotdot",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "/abs/x")),
            PathOutsideDatastoreError,
            "path '/abs/x' is absolute",
            id="output-absolute",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "_mlpipe/x")),
            ReservedPathError,
            "path '_mlpipe/x' is inside '_mlpipe/'",
            id="output-reserved",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "x/{bogus}")),
            DatasetError,
            "output destination 'x/{bogus}' uses unknown placeholder(s) {bogus}",
            id="output-placeholder",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_upload(overwrite="no"),  # type: ignore[arg-type]
            ConfigError,
            "output 'o': as_upload: overwrite 'no' must be True or False, not str; write overwrite=True",
            id="upload-overwrite-string",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_upload(overwrite=None),  # type: ignore[arg-type]
            ConfigError,
            "overwrite None must be True or False",
            id="upload-overwrite-none",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_upload(source_globs="*.csv"),  # type: ignore[arg-type]
            ConfigError,
            "source_globs '*.csv' must be a list of strings; write source_globs=['*.csv']",
            id="upload-globs-string",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_upload(source_globs=[3]),  # type: ignore[list-item]
            ConfigError,
            "source_globs entry 3 must be a non-empty string",
            id="upload-globs-int",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_upload(source_globs=["/tmp/outside/*"]),
            ConfigError,
            "output 'o': as_upload: source_globs entry '/tmp/outside/*' must be a pattern relative to the output's "
            "folder on the compute (the folder the script writes the output to), without a leading '/', '..' or "
            "'\\', e.g. source_globs=['*.csv', 'model/*']",
            id="upload-globs-absolute",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_upload(source_globs=["../../x"]),
            ConfigError,
            "source_globs entry '../../x' must be a pattern relative to the output's folder",
            id="upload-globs-dotdot",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_upload(source_globs=["models\\*.pt"]),
            ConfigError,
            "source_globs entry 'models\\\\*.pt' must be a pattern relative",
            id="upload-globs-backslash",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").register_on_complete(3),  # type: ignore[arg-type]
            DatasetError,
            "dataset name 3 cannot be used",
            id="register-on-complete-int",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").as_input(3),  # type: ignore[arg-type]
            DatasetError,
            "input name 3 cannot be used",
            id="output-as-input-int",
        ),
        # PipelineParameter
        bad(lambda: PipelineParameter(3, 1), ConfigError, "PipelineParameter name 3 must be an identifier", id="pp-3"),
        bad(lambda: PipelineParameter("a b", 1), ConfigError, "name 'a b' must be an identifier", id="pp-space"),
        bad(lambda: PipelineParameter("", 1), ConfigError, "name '' must be an identifier", id="pp-empty"),
        bad(lambda: PipelineParameter(None, 1), ConfigError, "name None must be an identifier", id="pp-none"),
        bad(lambda: PipelineParameter("p", {1}), ConfigError, "default_value {1} has type set", id="pp-set"),
        bad(lambda: PipelineParameter("p", b"x"), ConfigError, "default_value b'x' has type bytes", id="pp-bytes"),
        bad(
            lambda: PipelineParameter("p", "a", allowed_values="abc"),
            ConfigError,
            "allowed_values 'abc' must be a list, e.g. ['adam', 'sgd']",
            id="pp-allowed-string",
        ),
        bad(
            lambda: PipelineParameter("p", 1, allowed_values=1),  # type: ignore[arg-type]
            ConfigError,
            "allowed_values 1 must be a list",
            id="pp-allowed-int",
        ),
        bad(
            lambda: PipelineParameter("p", "c", allowed_values=["a", "b"]),
            ConfigError,
            "default_value 'c' is not one of allowed_values ['a', 'b']",
            id="pp-default-not-allowed",
        ),
        bad(
            lambda: PipelineParameter("p", 1, description=3),  # type: ignore[arg-type]
            ConfigError,
            "description 3 must be text",
            id="pp-description-int",
        ),
        # ParallelRunConfig
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", environment="x"),
            ConfigError,
            "ParallelRunConfig: environment 'x' must be an Environment, not str; give Environment(name=...",
            id="prc-environment-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", compute_target="cpu"),
            ConfigError,
            "ParallelRunConfig: compute_target 'cpu' must be a ComputeTarget, not str; give LocalCompute(), "
            "DockerCompute(image=...) or KubernetesCompute(image=...)",
            id="prc-compute-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="../score.py"),
            ConfigError,
            "ParallelRunConfig: entry_script '../score.py' must be a path relative to source_directory and inside it",
            id="prc-entry-dotdot",
        ),
        bad(
            lambda: _parallel_step(hash_paths="x.py"),
            ConfigError,
            "step 'score': hash_paths 'x.py' must be a list of strings",
            id="parallel-step-names-the-step",
        ),
        bad(
            lambda: _parallel_step(arguments={"--a": 1}),
            ConfigError,
            "step 'score': arguments {'--a': 1} must be a list",
            id="parallel-step-arguments-dict",
        ),
        bad(lambda: ParallelRunConfig(entry_script=None), ConfigError, "entry_script None must name", id="prc-none"),
        bad(lambda: ParallelRunConfig(entry_script=""), ConfigError, "entry_script '' must name", id="prc-empty"),
        bad(lambda: ParallelRunConfig(entry_script=3), ConfigError, "entry_script 3 must name", id="prc-int"),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", source_directory=3),
            ConfigError,
            "source_directory 3 must be a folder path",
            id="prc-source-int",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", mini_batch_size=1.5),
            ConfigError,
            "mini_batch_size 1.5 must be a whole count of files",
            id="prc-batch-float",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", mini_batch_size="2.5"),
            ConfigError,
            "mini_batch_size '2.5' must be a whole count of files",
            id="prc-batch-fraction-no-unit",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", output_action="append"),
            ConfigError,
            "output_action 'append' must be 'append_row' or 'summary_only'",
            id="prc-output-action",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", error_threshold="10"),
            ConfigError,
            "error_threshold '10' must be a whole number of at least -1",
            id="prc-threshold-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", error_threshold=-2),
            ConfigError,
            "error_threshold -2 must be a whole number",
            id="prc-threshold-negative",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", error_threshold=1.5),
            ConfigError,
            "error_threshold 1.5 must be a whole number",
            id="prc-threshold-float",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", node_count=0),
            ConfigError,
            "node_count 0 must be a whole number of at least 1",
            id="prc-nodes-zero",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", node_count="2"),
            ConfigError,
            "node_count '2' must be a whole number",
            id="prc-nodes-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", node_count=True),
            ConfigError,
            "node_count True must be a whole number",
            id="prc-nodes-bool",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", process_count_per_node="2"),
            ConfigError,
            "process_count_per_node '2' must be a whole number",
            id="prc-processes-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", mini_batch_size=0),
            ConfigError,
            "mini_batch_size 0 must be at least 1",
            id="prc-batch-zero",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", mini_batch_size="big"),
            ConfigError,
            "mini_batch_size 'big' must be a count or a size like '10MB'",
            id="prc-batch-word",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", mini_batch_size=-1),
            ConfigError,
            "mini_batch_size -1 must be at least 1",
            id="prc-batch-negative",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", run_invocation_timeout=0),
            ConfigError,
            "run_invocation_timeout 0 must be a whole number",
            id="prc-timeout-zero",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", run_invocation_timeout="60"),
            ConfigError,
            "run_invocation_timeout '60' must be a whole number",
            id="prc-timeout-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", run_max_try=0),
            ConfigError,
            "run_max_try 0 must be a whole number",
            id="prc-tries-zero",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", allowed_failed_count=-2),
            ConfigError,
            "allowed_failed_count -2 must be a whole number",
            id="prc-failed-count-negative",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", allowed_failed_count="1"),
            ConfigError,
            "allowed_failed_count '1' must be a whole number",
            id="prc-failed-count-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", allowed_failed_percent=101),
            ConfigError,
            "allowed_failed_percent 101 must be between 0 and 100",
            id="prc-percent-101",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", allowed_failed_percent=True),
            ConfigError,
            "allowed_failed_percent True must be between 0 and 100",
            id="prc-percent-bool",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", append_row_file_name="a/b"),
            ConfigError,
            "append_row_file_name 'a/b' must be a plain file name",
            id="prc-append-path",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", append_row_file_name=3),
            ConfigError,
            "append_row_file_name 3 must be a plain file name",
            id="prc-append-int",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", process_count_per_node=0),
            ConfigError,
            "process_count_per_node 0 must be a whole number of at least 1",
            id="prc-processes-zero",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", allowed_failed_percent="5"),
            ConfigError,
            "allowed_failed_percent '5' must be between 0 and 100",
            id="prc-percent-string",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", allowed_failed_percent="x"),
            ConfigError,
            "allowed_failed_percent 'x' must be between 0 and 100",
            id="prc-percent-word",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", logging_level="LOUD"),
            ConfigError,
            "ParallelRunConfig: logging_level 'LOUD' must be one of 'CRITICAL'",
            id="prc-logging-level-word",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", logging_level="info"),
            ConfigError,
            "logging_level 'info' must be one of",
            id="prc-logging-level-lowercase",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", logging_level=3),
            ConfigError,
            "logging_level 3 must be one of",
            id="prc-logging-level-int",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", description=3),
            ConfigError,
            "ParallelRunConfig: description 3 must be a non-empty string or None",
            id="prc-description-int",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", environment_variables=["A=1"]),
            ConfigError,
            "environment_variables (of type list, its content not shown) must map strings to strings, e.g. "
            "environment_variables={'OMP_NUM_THREADS'",
            id="prc-env-vars-list",
        ),
        bad(
            lambda: ParallelRunConfig(entry_script="s.py", environment_variables={"A": 1}),
            ConfigError,
            "environment_variables (the value of 'A' is of type int, not shown) must map strings to strings",
            id="prc-env-vars-int-value",
        ),
        # Datastore
        bad(lambda: Datastore(3, "file:///tmp/d"), ConfigError, "Datastore: name 3 must be 1-250", id="store-name-int"),
        bad(lambda: Datastore("", "file:///tmp/d"), ConfigError, "Datastore: name '' must be", id="store-name-empty"),
        bad(lambda: Datastore("a b", "file:///tmp/d"), ConfigError, "name 'a b' must be", id="store-name-space"),
        bad(
            lambda: Datastore("d", "file:///tmp/d", [("a", 1)]),
            ConfigError,
            "Datastore 'd': storage_options must be a dict of the filesystem's options, not list (its content is not "
            "shown: it may hold credentials)",
            id="store-options-list",
        ),
        bad(
            lambda: Datastore("d", "file:///tmp/d", description=3),
            ConfigError,
            "description 3 must be text",
            id="store-description-int",
        ),
        bad(lambda: Datastore("d", None), ConfigError, "datastore 'd': the connection has no url", id="store-url-none"),
        bad(lambda: Datastore("d", ""), ConfigError, "datastore 'd': the connection has no url", id="store-url-empty"),
        bad(
            lambda: Datastore("d", 3),
            ConfigError,
            "Datastore 'd': url 3 must be one URL string, not int, e.g. Datastore('lake', 'az://container/path')",
            id="store-url-int",
        ),
        bad(
            lambda: Datastore("d", ["file:///tmp"]),
            ConfigError,
            "Datastore 'd': url ['file:///tmp'] must be one URL string, not list",
            id="store-url-list",
        ),
        bad(
            lambda: Datastore("d", "ftp://host/x"),
            UnsupportedSchemeError,
            "url 'ftp://host/x' has scheme 'ftp://', which is not supported; use one of file://",
            id="store-url-ftp",
        ),
        bad(lambda: Datastore("d", "bogus://x"), UnsupportedSchemeError, "url 'bogus://x'", id="store-url-bogus"),
        bad(
            lambda: Datastore("d", "relative/path"),
            UnsupportedSchemeError,
            "url 'relative/path' has scheme '(none)'",
            id="store-url-relative",
        ),
        bad(lambda: Datastore.get(3), DatastoreNotFoundError, "datastore name 3 is not", id="store-get-int"),
        bad(lambda: Datastore.get(""), DatastoreNotFoundError, "datastore name '' is not", id="store-get-empty"),
        bad(lambda: Datastore.get(None), DatastoreNotFoundError, "datastore name None is not", id="store-get-none"),
        # Environment and RunConfiguration
        bad(lambda: Environment(name=3), ConfigError, "Environment name 3 must be a non-empty string", id="env-name-3"),
        bad(lambda: Environment(name=""), ConfigError, "Environment name '' must be a non-empty", id="env-name-empty"),
        bad(
            lambda: Environment(pip_packages="pandas"),
            ConfigError,
            "pip_packages 'pandas' must be a list of requirements, e.g. ['pandas==2.2.3']",
            id="env-pip-string",
        ),
        bad(lambda: Environment(pip_packages=[3]), ConfigError, "pip_packages: 3 is not a pip requirement", id="pip-3"),
        bad(
            lambda: Environment(pip_packages=["pandas===="]),
            ConfigError,
            "'pandas====' asks for version '=' by arbitrary equality (===), which no release has; write e.g. "
            "'pandas==1.2'",
            id="pip-arbitrary-equality-empty",
        ),
        bad(lambda: Environment(pip_packages=["x==="]), ConfigError, "asks for version '' by arbitrary", id="pip-==="),
        bad(
            lambda: Environment(env_vars=["A=1"]),
            ConfigError,
            "env_vars must be a mapping of variable names to string values, not list",
            id="env-vars-list",
        ),
        bad(
            lambda: Environment(env_vars={"A": 1}),
            ConfigError,
            "env_vars['A'] must be a string, not int; give the variable's value as a string",
            id="env-vars-int",
        ),
        bad(
            lambda: Environment(env_vars={"1A": "x"}),
            ConfigError,
            "env_vars: '1A' is not a valid environment variable name",
            id="env-vars-name",
        ),
        bad(
            lambda: Environment(env_vars={"MLPIPE_REGISTRY_KEY": "mine"}),
            ConfigError,
            "env_vars: 'MLPIPE_REGISTRY_KEY' is a variable mlpipe sets itself for the step's runner and script; "
            "a value of yours would replace it",
            id="env-vars-registry-key",
        ),
        bad(
            lambda: Environment(env_vars={"mlpipe_attempt_key": "k"}),
            ConfigError,
            "env_vars: 'mlpipe_attempt_key' is a variable mlpipe sets itself",
            id="env-vars-attempt-key-lower",
        ),
        bad(
            lambda: DockerCompute(image="i:1", env={"MLPIPE_SPEC_DIGEST": "x"}),
            ConfigError,
            "env: 'MLPIPE_SPEC_DIGEST' is a variable mlpipe sets itself",
            id="docker-env-spec-digest",
        ),
        bad(
            lambda: DockerCompute(image="i:1", private_env={"MLPIPE_ATTEMPT_KEY": "x"}),
            ConfigError,
            "private_env: 'MLPIPE_ATTEMPT_KEY' is a variable mlpipe sets itself",
            id="docker-private-env-attempt-key",
        ),
        bad(
            lambda: KubernetesCompute(image="i:1", env={"MLPIPE_RUN_CONTEXT": "{}"}),
            ConfigError,
            "env: 'MLPIPE_RUN_CONTEXT' is a variable mlpipe sets itself",
            id="k8s-env-run-context",
        ),
        *[
            bad(
                lambda name=name: Environment(env_vars={name: "zz"}),
                ConfigError,
                f"env_vars: {name!r} is a variable mlpipe sets itself for the step's runner and script",
                id=f"env-vars-{name.lower()}",
            )
            for name in (
                "MLPIPE_DAG_ID",
                "MLPIPE_RUN_ID",
                "MLPIPE_TASK_ID",
                "MLPIPE_TRY_NUMBER",
                "MLPIPE_LOGICAL_DATE",
                "MLPIPE_DATA_INTERVAL_START",
                "MLPIPE_DATA_INTERVAL_END",
            )
        ],
        bad(
            lambda: DockerCompute(image="i:1", env={"MLPIPE_DAG_ID": "zz"}),
            ConfigError,
            "env: 'MLPIPE_DAG_ID' is a variable mlpipe sets itself",
            id="docker-env-dag-id",
        ),
        bad(
            lambda: DockerCompute(image="i:1", private_env={"mlpipe_run_id": "zz"}),
            ConfigError,
            "private_env: 'mlpipe_run_id' is a variable mlpipe sets itself",
            id="docker-private-env-run-id-lower",
        ),
        bad(
            lambda: KubernetesCompute(image="i:1", env={"MLPIPE_LOGICAL_DATE": "2026-01-01"}),
            ConfigError,
            "env: 'MLPIPE_LOGICAL_DATE' is a variable mlpipe sets itself",
            id="k8s-env-logical-date",
        ),
        bad(lambda: Environment(image=3), ConfigError, "image 3 is not a non-empty string", id="env-image-int"),
        bad(lambda: Environment(image=""), ConfigError, "image '' is not a non-empty string", id="env-image-empty"),
        bad(lambda: Environment(image="a b"), ConfigError, "image 'a b' is not a valid image", id="env-image-space"),
        bad(lambda: Environment(python=3), ConfigError, "python 3 is not an interpreter name", id="env-python-int"),
        bad(lambda: Environment(python=""), ConfigError, "python '' is not an interpreter", id="env-python-empty"),
        bad(
            lambda: RunConfiguration(environment="env"),
            ConfigError,
            "RunConfiguration: environment 'env' is not an Environment; write Environment(",
            id="runconfig-environment-string",
        ),
        bad(
            lambda: RunConfiguration(target="local"),
            ConfigError,
            "RunConfiguration: target 'local' is not a compute target; use LocalCompute()",
            id="runconfig-target-string",
        ),
        # DockerCompute
        bad(lambda: DockerCompute(image=3), ConfigError, "DockerCompute: image 3 is not", id="docker-image-int"),
        bad(
            lambda: DockerCompute(gpus=-1),
            ConfigError,
            "DockerCompute gpus -1 must be a non-negative integer, 'all' or a list of device ids",
            id="docker-gpus-negative",
        ),
        bad(lambda: DockerCompute(gpus="many"), ConfigError, "gpus 'many' must be a non-negative", id="docker-gpus"),
        bad(lambda: DockerCompute(gpus=1.5), ConfigError, "gpus 1.5 must be a non-negative", id="docker-gpus-float"),
        bad(lambda: DockerCompute(network_mode=3), ConfigError, "network_mode 3 must be 'bridge'", id="docker-net"),
        bad(
            lambda: DockerCompute(mounts="/a:/b"),
            ConfigError,
            "DockerCompute mounts '/a:/b' must be a list, e.g. ['/data:/data:ro']",
            id="docker-mounts-string",
        ),
        bad(lambda: DockerCompute(mounts=["/a"]), ConfigError, "'/a' must be 'source:target'", id="docker-mount"),
        bad(
            lambda: DockerCompute(mounts=["a:/b"]),
            ConfigError,
            "bind mount source 'a' must be an absolute path",
            id="docker-mount-relative",
        ),
        bad(lambda: DockerCompute(env=["A=1"]), ConfigError, "DockerCompute env must be a mapping", id="d-env"),
        bad(
            lambda: DockerCompute(auto_remove=True),
            ConfigError,
            "auto_remove True must be one of ['never', 'success', 'force']",
            id="docker-auto-remove-bool",
        ),
        bad(lambda: DockerCompute(auto_remove="sometimes"), ConfigError, "auto_remove 'sometimes'", id="auto-remove"),
        bad(lambda: DockerCompute(cpus=0), ConfigError, "cpus 0 must be a positive number", id="docker-cpus-zero"),
        bad(lambda: DockerCompute(cpus="2"), ConfigError, "cpus '2' must be a positive number", id="docker-cpus-str"),
        bad(
            lambda: DockerCompute(mem_limit="lots"),
            ConfigError,
            "mem_limit 'lots' must be bytes or a size such as '512m' or '4g'",
            id="docker-mem-word",
        ),
        bad(lambda: DockerCompute(mem_limit=-1), ConfigError, "mem_limit -1 must be bytes", id="docker-mem-negative"),
        bad(lambda: DockerCompute(shm_size="big"), ConfigError, "shm_size 'big' must be bytes", id="docker-shm"),
        bad(lambda: DockerCompute(user=3.5), ConfigError, "user 3.5 must be a user name or id", id="docker-user"),
        bad(lambda: DockerCompute(labels=["a"]), ConfigError, "labels ['a'] must be a mapping", id="docker-labels"),
        bad(
            lambda: DockerCompute(operator_kwargs=["a"]),
            ConfigError,
            "operator_kwargs ['a'] must be a mapping of DockerOperator argument names",
            id="docker-operator-kwargs",
        ),
        bad(lambda: DockerCompute(docker_url=3), ConfigError, "docker_url 3 is not an engine address", id="docker-url"),
        # KubernetesCompute
        bad(lambda: KubernetesCompute(namespace=3), ConfigError, "namespace 3 is not a valid name", id="k8s-ns-int"),
        bad(
            lambda: KubernetesCompute(namespace="Bad_NS"),
            ConfigError,
            "namespace 'Bad_NS' is not a valid name: use at most 63 lowercase letters",
            id="k8s-namespace-case",
        ),
        bad(lambda: KubernetesCompute(gpu=-1), ConfigError, "gpu count -1 is not a non-negative", id="k8s-gpu-neg"),
        bad(lambda: KubernetesCompute(gpu="1"), ConfigError, "gpu count '1' is not a non-negative", id="k8s-gpu-str"),
        bad(lambda: KubernetesCompute(gpu=True), ConfigError, "gpu count True is not", id="k8s-gpu-bool"),
        bad(lambda: KubernetesCompute(gpu=1.5), ConfigError, "gpu count 1.5 is not", id="k8s-gpu-float"),
        bad(lambda: KubernetesCompute(cpu="lots"), ConfigError, "cpu 'lots' is not a Kubernetes quantity", id="k-cpu"),
        bad(lambda: KubernetesCompute(cpu=-1), ConfigError, "cpu -1 must be a finite number >= 0", id="k8s-cpu-neg"),
        bad(lambda: KubernetesCompute(memory="lots"), ConfigError, "memory 'lots' is not a Kubernetes", id="k8s-mem"),
        bad(
            lambda: KubernetesCompute(node_selector=["a"]),
            ConfigError,
            "node_selector ['a'] must be a mapping of label names to values",
            id="k8s-node-selector-list",
        ),
        bad(
            lambda: KubernetesCompute(tolerations="gpu"),
            ConfigError,
            "tolerations 'gpu' must be a list of tolerations, e.g.",
            id="k8s-tolerations-string",
        ),
        bad(lambda: KubernetesCompute(service_account=3), ConfigError, "service_account 3 is not", id="k8s-sa-int"),
        bad(
            lambda: KubernetesCompute(image_pull_secrets=3),
            ConfigError,
            "KubernetesCompute: image_pull_secrets 3 must be a list, e.g. image_pull_secrets=['regcred']",
            id="k8s-pull-secrets-int",
        ),
        bad(lambda: KubernetesCompute(in_cluster="no"), ConfigError, "in_cluster 'no' must be True", id="k8s-in-cl"),
        bad(lambda: KubernetesCompute(deferrable="no"), ConfigError, "deferrable 'no' must be True", id="k8s-defer"),
        bad(
            lambda: KubernetesCompute(startup_timeout=-1),
            ConfigError,
            "startup_timeout -1 is not a positive integer (seconds)",
            id="k8s-startup-negative",
        ),
        bad(lambda: KubernetesCompute(startup_timeout="60"), ConfigError, "startup_timeout '60' is", id="k8s-startup"),
        bad(lambda: KubernetesCompute(labels=["a"]), ConfigError, "labels ['a'] must be a mapping", id="k8s-labels"),
        bad(lambda: KubernetesCompute(env=["A=1"]), ConfigError, "env must be a mapping", id="k8s-env-list"),
        bad(
            lambda: KubernetesCompute(kubernetes_conn_id=3),
            ConfigError,
            "kubernetes_conn_id 3 must be a connection id or None",
            id="k8s-conn-id-int",
        ),
        bad(
            lambda: KubernetesCompute(image_pull_policy="Sometimes"),
            ConfigError,
            "image_pull_policy 'Sometimes' must be one of ['Always', 'IfNotPresent', 'Never']",
            id="k8s-pull-policy",
        ),
        bad(lambda: KubernetesCompute(shm_size="big"), ConfigError, "shm_size 'big' is not a Kubernetes", id="k8s-shm"),
        bad(
            lambda: KubernetesCompute(priority_class_name="Bad_Name"),
            ConfigError,
            "priority_class_name 'Bad_Name' is not a valid Kubernetes object name",
            id="k8s-priority-class",
        ),
        bad(lambda: KubernetesCompute(volumes="v"), ConfigError, "volumes 'v' must be a list of volumes", id="k8s-vol"),
        bad(lambda: KubernetesCompute(gpu_resource=""), ConfigError, "gpu_resource '' is not a non-empty", id="k-gpur"),
        bad(
            lambda: KubernetesCompute(datastore_secrets=3),
            ConfigError,
            "datastore_secrets 3 must be a Secret name",
            id="k8s-datastore-secrets-int",
        ),
        # v1 steps
        bad(
            lambda: PythonScriptStep("../outside/t.py"),
            ConfigError,
            "step '../outside/t.py': script_name '../outside/t.py' must be a path relative to source_directory",
            id="v1-script-dotdot",
        ),
        bad(
            lambda: PythonScriptStep("t.py", arguments={"--a", "b"}),
            ConfigError,
            "; a set keeps no order (and drops repeats): write a list",
            id="v1-arguments-set",
        ),
        bad(lambda: PythonScriptStep(None), ConfigError, "step name None must be a non-empty", id="v1-script-none"),
        bad(lambda: PythonScriptStep(3), ConfigError, "step name 3 must be a non-empty string", id="v1-script-int"),
        bad(lambda: PythonScriptStep("t.py", name=3), ConfigError, "step name 3 must be", id="v1-name-int"),
        bad(
            lambda: PythonScriptStep("t.py", allow_reuse="no"),
            ConfigError,
            "step 't.py': allow_reuse 'no' must be True or False, not str; write allow_reuse=True",
            id="v1-allow-reuse-string",
        ),
        bad(
            lambda: PythonScriptStep("t.py", hash_paths="x.py"),
            ConfigError,
            "step 't.py': hash_paths 'x.py' must be a list of strings; write hash_paths=['x.py']",
            id="v1-hash-paths-string",
        ),
        bad(
            lambda: PythonScriptStep("t.py", arguments="--lr"),
            ConfigError,
            "step 't.py': arguments '--lr' must be a list, e.g. arguments=['--lr', 0.1]",
            id="v1-arguments-string",
        ),
        bad(
            lambda: PythonScriptStep("t.py", inputs="data"),
            ConfigError,
            "step 't.py': inputs 'data' must be a list",
            id="v1-inputs-string",
        ),
        bad(
            lambda: PythonScriptStep("t.py", outputs="out"),
            ConfigError,
            "step 't.py': outputs 'out' must be a list",
            id="v1-outputs-string",
        ),
        bad(
            lambda: DataTransferStep("copy", ("lake", "a"), ("lake", "b"), allow_reuse="no"),
            ConfigError,
            "step 'copy': allow_reuse 'no' must be True or False",
            id="v1-transfer-allow-reuse",
        ),
        bad(
            lambda: DataTransferStep("copy", 3, ("lake", "b")),
            ConfigError,
            "DataTransferStep 'copy': source_data_reference 3 is not a data reference",
            id="v1-transfer-int-source",
        ),
        bad(
            lambda: DataTransferStep("copy", ("lake", "a"), ("lake", "b"), source_reference_type="folder"),
            ConfigError,
            "source_reference_type 'folder' must be 'file' or 'directory'",
            id="v1-transfer-reference-type",
        ),
        bad(
            lambda: V1ParallelRunConfig(entry_script="s.py", node_count=0),
            ConfigError,
            "node_count 0 must be a whole number",
            id="v1-parallel-nodes",
        ),
        # Datasets
        bad(lambda: Dataset.File.from_files(3), DatasetError, "dataset path 3 has type int", id="files-int"),
        bad(lambda: Dataset.File.from_files((3, "x")), DatasetError, "dataset path (3, 'x'): expected", id="files-3x"),
        bad(lambda: Dataset.File.from_files(None), DatasetError, "dataset path None has type", id="files-none"),
        bad(lambda: Dataset.File.from_files(""), DatasetError, "dataset path '' is not a datastore", id="files-empty"),
        bad(lambda: Dataset.File.from_files([]), DatasetError, "a dataset needs at least one path", id="files-no-path"),
        bad(
            lambda: Dataset.File.from_files(("lake", "../x")),
            PathOutsideDatastoreError,
            "path '../x' contains '..'",
            id="files-dotdot",
        ),
        bad(
            lambda: Dataset.File.from_files(("lake", "x"), validate="no"),  # type: ignore[arg-type]
            ConfigError,
            "Dataset.File.from_files: validate 'no' must be True or False, not str",
            id="files-validate-string",
        ),
        bad(lambda: Dataset.get_by_name(3), DatasetError, "dataset name 3 cannot be used", id="by-name-int"),
        bad(lambda: Dataset.get_by_name(""), DatasetError, "dataset name '' cannot be used", id="by-name-empty"),
        bad(lambda: Dataset.get_by_name(None), DatasetError, "dataset name None cannot be used", id="by-name-none"),
        bad(lambda: Dataset.get_by_name("x", version=0), DatasetError, "version 0 does not exist", id="version-0"),
        bad(lambda: Dataset.get_by_name("x", version=-1), DatasetError, "version -1 does not exist", id="version-neg"),
        bad(lambda: Dataset.get_by_name("x", version="1.5"), DatasetError, "version '1.5' is not", id="version-text"),
        bad(lambda: Dataset.get_by_name("x", version="newest"), DatasetError, "version 'newest'", id="version-word"),
        bad(lambda: Dataset.get_by_name("x", version=None), DatasetError, "version None must be", id="version-none"),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), separator=3),
            DatasetError,
            "separator 3 must be a non-empty string",
            id="delimited-separator-int",
        ),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), separator=""),
            DatasetError,
            "separator '' must be a non-empty string",
            id="delimited-separator-empty",
        ),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), skip_rows=-1),
            DatasetError,
            "skip_rows -1 must be a whole number of rows (0 or more)",
            id="delimited-skip-negative",
        ),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), skip_rows=1.5),
            DatasetError,
            "skip_rows 1.5 must be a whole number",
            id="delimited-skip-float",
        ),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), header=None),
            ConfigError,
            "header None must be True or False",
            id="delimited-header-none",
        ),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), encoding=3),
            DatasetError,
            "encoding 3 must be a codec name",
            id="delimited-encoding-int",
        ),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), infer_column_types="no"),
            ConfigError,
            "infer_column_types 'no' must be True or False",
            id="delimited-infer-string",
        ),
        bad(
            lambda: Dataset.Tabular.from_parquet_files(("lake", "a.parquet"), set_column_types="int"),
            DatasetError,
            "set_column_types 'int' must be a dict of column name to type",
            id="parquet-types-string",
        ),
        bad(
            lambda: DatasetConsumptionConfig("i", "data"),
            DatasetError,
            "input 'i': 'data' is not a dataset",
            id="consumption-dataset-string",
        ),
        bad(lambda: _file().as_named_input(3), DatasetError, "input name 3 cannot be used", id="named-input-int"),
        bad(lambda: _file().as_named_input(""), DatasetError, "input name '' cannot be used", id="named-input-empty"),
        bad(lambda: _file().as_mount(3), DatasetError, "path_on_compute 3 must be a relative path", id="mount-path"),
        bad(
            lambda: DatasetConsumptionConfig(3, _file()),
            DatasetError,
            "input name 3 cannot be used",
            id="consumption-name-int",
        ),
        bad(
            lambda: DatasetConsumptionConfig("i", _file(), mode="copy"),
            ConfigError,
            "input 'i': mode 'copy' must be one of 'direct', 'download', 'mount'",
            id="consumption-mode",
        ),
        bad(
            lambda: DatasetConsumptionConfig("i", _file(), path_on_compute=3),
            DatasetError,
            "path_on_compute 3 must be a relative path",
            id="consumption-path-int",
        ),
        bad(
            lambda: DatasetConsumptionConfig("i", _file(), path_on_compute="../x"),
            DatasetError,
            "path_on_compute '../x' must be a relative path",
            id="consumption-path-dotdot",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").register_on_complete("d", description=3),
            ConfigError,
            "output 'o': register_on_complete: description 3 must be a non-empty string or None",
            id="register-on-complete-description-int",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").register_on_complete("d", tags=["a"]),
            ConfigError,
            "tags (of type list, its content not shown) must map strings to strings, e.g. tags={'stage': 'clean'}",
            id="register-on-complete-tags-list",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o").register_on_complete("d", tags={"a": 1}),
            ConfigError,
            "tags (the value of 'a' is of type int, not shown) must map strings to strings",
            id="register-on-complete-tags-int",
        ),
        bad(
            lambda: Dataset.Tabular.from_parquet_files(("lake", "a.parquet"), validate="no"),
            ConfigError,
            "Dataset.Tabular.from_parquet_files: validate 'no' must be True or False, not str",
            id="parquet-validate-string",
        ),
        bad(
            lambda: Dataset.Tabular.from_parquet_files(("lake", "a.parquet"), include_path="no"),
            ConfigError,
            "from_parquet_files: include_path 'no' must be True or False",
            id="parquet-include-path-string",
        ),
        bad(
            lambda: Dataset.Tabular.from_delimited_files(("lake", "a.csv"), validate=1),
            ConfigError,
            "Dataset.Tabular.from_delimited_files: validate 1 must be True or False, not int",
            id="delimited-validate-int",
        ),
        bad(
            lambda: V1Dataset.Tabular.from_delimited_files(("lake", "a.csv"), header="no"),
            ConfigError,
            "from_delimited_files: header 'no' must be True or False",
            id="compat-header-string",
        ),
        bad(
            lambda: V1Dataset.Tabular.from_delimited_files(("lake", "a.csv"), support_multi_line="yes"),
            ConfigError,
            "from_delimited_files: support_multi_line 'yes' must be True or False",
            id="compat-multi-line-string",
        ),
        bad(
            lambda: V1Dataset.File.from_files(("lake", "a"), is_file="yes"),
            ConfigError,
            "Dataset.File.from_files: is_file 'yes' must be True or False",
            id="compat-is-file-string",
        ),
        # Operators and sensors beyond the steps
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", older_than="30"),
            ConfigError,
            "older_than '30' has no unit, and a bare number could mean seconds as well as days: give a number "
            "with a unit s, m, h, d or w (45s, 90m, 12h, 30d, 2w), e.g. '30d' or '30s'",
            id="cleanup-older-than-no-unit",
        ),
        bad(lambda: DatastoreCleanupOperator(task_id="gc", grace="60"), ConfigError, "grace '60' has no", id="gc-g60"),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", only_dag_id=""),
            ConfigError,
            "DatastoreCleanupOperator: only_dag_id '' must be a non-empty string or None",
            id="cleanup-only-dag-id-empty",
        ),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", only_dag_id="../x"),
            ConfigError,
            "DatastoreCleanupOperator: only_dag_id '../x' is not a valid DAG id: Airflow allows letters, digits",
            id="cleanup-only-dag-id-dots",
        ),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", older_than="xyz"),
            ConfigError,
            "older_than 'xyz' is not a duration",
            id="cleanup-older-than",
        ),
        bad(lambda: DatastoreCleanupOperator(task_id="gc", older_than=-1), ConfigError, "older_than -1 is", id="gc-1"),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", keep_last=-1), ConfigError, "keep_last -1 must be", id="gc-k"
        ),
        bad(lambda: DatastoreCleanupOperator(task_id="gc", grace="soon"), ConfigError, "grace 'soon' is", id="gc-g"),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", dry_run="no"),
            ConfigError,
            "DatastoreCleanupOperator: dry_run 'no' must be True or False",
            id="cleanup-dry-run-string",
        ),
        bad(
            lambda: ReuseSensor(task_id="wait", key="k", on_missing="explode"),
            ConfigError,
            "on_missing 'explode' is not one of fail, succeed, wait",
            id="sensor-on-missing",
        ),
        bad(
            lambda: ReuseSensor(task_id="wait", key="k", deferrable="no"),
            ConfigError,
            "ReuseSensor: deferrable 'no' must be True or False",
            id="sensor-deferrable-string",
        ),
        bad(
            lambda: RegisterDatasetOperator(task_id="r", dataset=_file(), name="d", create_new_version="no"),
            ConfigError,
            "RegisterDatasetOperator: create_new_version 'no' must be True or False",
            id="register-create-new-version-string",
        ),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", keep_last="2"),
            ConfigError,
            "DatastoreCleanupOperator: keep_last '2' must be a whole number of at least 0, e.g. keep_last=3",
            id="cleanup-keep-last-string",
        ),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", only_dag_id=3),
            ConfigError,
            "only_dag_id 3 must be a non-empty string or None",
            id="cleanup-only-dag-id-int",
        ),
        bad(lambda: ReuseSensor(task_id="wait", key=3), ConfigError, "ReuseSensor: key 3 must be a", id="sensor-key"),
        bad(lambda: ReuseSensor(task_id="wait", key=""), ConfigError, "key '' must be a non-empty", id="sensor-key-0"),
        bad(
            lambda: ReuseSensor(task_id="wait", key="k", datastore=3),
            ConfigError,
            "ReuseSensor: datastore 3 must be a non-empty string or None",
            id="sensor-datastore-int",
        ),
        bad(
            lambda: ReuseSensor(task_id="wait", key="k", lease_ttl=-1),
            ConfigError,
            "ReuseSensor: lease_ttl -1 must be a positive number of seconds",
            id="sensor-lease-ttl-negative",
        ),
        bad(
            lambda: ReuseSensor(task_id="wait", key="k", clock_skew="x"),
            ConfigError,
            "ReuseSensor: clock_skew 'x' must be a number of seconds (0 or more)",
            id="sensor-clock-skew-string",
        ),
        bad(
            lambda: RegisterDatasetOperator(task_id="r", dataset=_file(), name=3),
            DatasetError,
            "dataset name 3 cannot be used",
            id="register-name-int",
        ),
        bad(
            lambda: RegisterDatasetOperator(task_id="r", dataset=_file(), name="d", description=3),
            ConfigError,
            "r: description 3 must be a non-empty string or None",
            id="register-description-int",
        ),
        bad(
            lambda: RegisterDatasetOperator(task_id="r", dataset=_file(), name="d", tags=["a"]),
            ConfigError,
            "r: tags (of type list, its content not shown) must map strings to strings",
            id="register-tags-list",
        ),
        bad(
            lambda: RetryPolicy(attempts="3"),
            ConfigError,
            "RetryPolicy: attempts '3' must be a whole number of at least 1, e.g. attempts=3",
            id="retry-attempts-string",
        ),
        bad(lambda: RetryPolicy(attempts=0), ConfigError, "RetryPolicy: attempts 0 must be", id="retry-attempts-0"),
        bad(
            lambda: RetryPolicy(initial_delay="1s"),
            ConfigError,
            "RetryPolicy: initial_delay '1s' must be a number of seconds (0 or more)",
            id="retry-initial-delay-string",
        ),
        bad(
            lambda: RetryPolicy(max_delay=float("nan")),
            ConfigError,
            "RetryPolicy: max_delay nan must be a number of seconds",
            id="retry-max-delay-nan",
        ),
        bad(
            lambda: RetryPolicy(multiplier=0.5),
            ConfigError,
            "RetryPolicy: multiplier 0.5 must be a number of at least 1",
            id="retry-multiplier-below-1",
        ),
        bad(
            lambda: RetryPolicy(multiplier=float("inf")),
            ConfigError,
            "RetryPolicy: multiplier inf must be finite",
            id="retry-multiplier-inf",
        ),
        bad(
            lambda: GcSettings.of(keep_last="x"),
            ConfigError,
            "GcSettings: keep_last 'x' must be a whole number of at least 0, e.g. keep_last=3",
            id="gc-settings-keep-last-string",
        ),
        bad(
            lambda: GcSettings(batch_size=0),
            ConfigError,
            "GcSettings: batch_size 0 must be a whole number of at least 1",
            id="gc-settings-batch-size-0",
        ),
        bad(
            lambda: GcSettings.of(dry_run="yes"),
            ConfigError,
            "GcSettings: dry_run 'yes' must be True or False",
            id="gc-settings-dry-run-string",
        ),
        bad(
            lambda: GcSettings(dag_id="../x"),
            ConfigError,
            "dag_id '../x' is not a valid DAG id",
            id="gc-settings-dag-id",
        ),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_constructor_refuses(make: Any, error: type[Exception], parts: tuple[str, ...]) -> None:
    with pytest.raises(error) as info:
        make()
    assert isinstance(info.value, ConfigError)  # a ValueError: caught where configuration errors are
    for part in parts:
        assert part in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda value: Dataset.get_by_name(value), id="dataset-name"),
        pytest.param(lambda value: OutputFileDatasetConfig(value), id="output-name"),
        pytest.param(
            lambda value: PythonScriptOperator(task_id="t", script_name="t.py", source_directory=".", hash_paths=value),
            id="hash-paths",
        ),
        pytest.param(lambda value: PythonScriptStep("t.py", allow_reuse=value), id="allow-reuse"),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_a_long_value_is_cut_in_the_message(make: Any) -> None:
    with pytest.raises(ConfigError) as info:
        make("a" * 100_000)
    assert "...' (100000 characters)" in str(info.value)
    assert len(str(info.value)) < 500


# -- SDK v1 compatibility layer (airflow_mlpipe.v1, airflow_mlpipe.compat) and dataset transforms -------------------


def _v1_lake() -> Any:
    from airflow_mlpipe import v1

    return v1.Datastore.get(None, "lake")


def _v1_submit(**kwargs: Any) -> Any:
    from airflow_mlpipe import v1

    ws = v1.Workspace()
    pipeline = v1.Pipeline(ws, [v1.PythonScriptStep("t.py", source_directory=".")])
    return v1.Experiment(ws, kwargs.pop("experiment", "v1_bad_inputs")).submit(pipeline, **kwargs)


def _conda(**kwargs: Any) -> Any:
    from airflow_mlpipe import v1

    return v1.CondaDependencies.create(**kwargs)


def _table() -> Any:
    return Dataset.Tabular.from_delimited_files(("lake", "a.csv"))


def _v1_parent_run() -> Any:
    from airflow_mlpipe.compat.core import PipelineRun

    return PipelineRun("v1_dag", "manual__1", "srid1")


def _v1(name: str) -> Any:
    from airflow_mlpipe import v1

    return getattr(v1, name)


@pytest.mark.parametrize(
    ("make", "error", "parts"),
    [
        # a string where a list of packages is expected would install one package per letter
        bad(
            lambda: _conda(pip_packages="numpy"),
            ConfigError,
            "CondaDependencies.create: pip_packages 'numpy' must be a list of strings; write pip_packages=['numpy']",
            id="v1-conda-pip-string",
        ),
        bad(
            lambda: _conda(conda_packages="scipy"),
            ConfigError,
            "conda_packages 'scipy' must be a list of strings; write conda_packages=['scipy']",
            id="v1-conda-conda-string",
        ),
        bad(
            lambda: _conda(pip_packages=3),
            ConfigError,
            "CondaDependencies.create: pip_packages 3 must be a list of strings, e.g. pip_packages=['numpy']",
            id="v1-conda-pip-int",
        ),
        bad(lambda: _conda(pip_packages=[3]), ConfigError, "pip_packages entry 3 must be a", id="v1-conda-pip-entry"),
        bad(
            lambda: _v1("CondaDependencies")().add_pip_package(3),
            ConfigError,
            "CondaDependencies.add_pip_package: pip_package 3 must be a non-empty string",
            "add_pip_package('numpy==1.26')",
            id="v1-conda-add-pip-int",
        ),
        bad(
            lambda: _v1("CondaDependencies")().add_conda_package(None),
            ConfigError,
            "CondaDependencies.add_conda_package: conda_package None must be a non-empty string",
            id="v1-conda-add-conda-none",
        ),
        bad(
            lambda: _v1("CondaDependencies")("/nonexistent/environment.yml"),
            ConfigError,
            "CondaDependencies: conda_dependencies_file_path '/nonexistent/environment.yml' cannot be read",
            "give the path of an existing file",
            id="v1-conda-file-missing",
        ),
        bad(
            lambda: _v1("Environment").from_pip_requirements("e", "/nonexistent/requirements.txt"),
            ConfigError,
            "Environment.from_pip_requirements: file_path '/nonexistent/requirements.txt' cannot be read",
            id="v1-pip-requirements-missing",
        ),
        bad(
            lambda: _v1("ScriptRunConfig")(".", script="t.py", arguments="--lr 1"),
            ConfigError,
            "ScriptRunConfig: arguments '--lr 1' must be a list, e.g. arguments=['--lr', 0.1]",
            id="v1-script-config-arguments-string",
        ),
        bad(
            lambda: _v1("ScriptRunConfig")(".", script="../t.py"),
            ConfigError,
            "ScriptRunConfig: script '../t.py' must be a path relative to source_directory",
            id="v1-script-config-dotdot",
        ),
        # "no" is truthy: never taken as yes
        bad(
            lambda: _v1_submit(regenerate_outputs="no"),
            ConfigError,
            "Experiment('v1_bad_inputs').submit: regenerate_outputs 'no' must be True or False, not str",
            "write regenerate_outputs=True or regenerate_outputs=False",
            id="v1-submit-regenerate-string",
        ),
        bad(
            lambda: _v1_submit(continue_on_step_failure="yes"),
            ConfigError,
            "continue_on_step_failure 'yes' must be True or False",
            id="v1-submit-continue-string",
        ),
        bad(
            lambda: _v1("DataReference")(_v1_lake(), path_on_datastore="data", overwrite="no"),
            ConfigError,
            "DataReference: overwrite 'no' must be True or False, not str",
            id="v1-reference-overwrite-string",
        ),
        bad(
            lambda: _v1("DataPathComputeBinding")(overwrite="no"),
            ConfigError,
            "DataPathComputeBinding: overwrite 'no' must be True or False",
            id="v1-binding-overwrite-string",
        ),
        bad(
            lambda: _v1("PipelineData")("p", is_directory="no"),
            ConfigError,
            "PipelineData('p'): is_directory 'no' must be True or False, not str",
            id="v1-pipeline-data-is-directory-string",
        ),
        bad(
            lambda: _file().download(overwrite="no"),
            ConfigError,
            "download: overwrite 'no' must be True or False, not str; write overwrite=True or overwrite=False",
            id="file-download-overwrite-string",
        ),
        # raw Python errors before, each now names the argument, the value and the fix
        bad(
            lambda: _v1_submit(experiment=3),
            ConfigError,
            "Experiment: name 3 must be a non-empty string, e.g. name='train_iris'",
            id="v1-experiment-name-int",
        ),
        bad(
            lambda: _v1_submit(pipeline_parameters=3),
            ConfigError,
            "submit: pipeline_parameters 3 must be a dict, not int; e.g. pipeline_parameters={'learning_rate': 0.1}",
            id="v1-submit-parameters-int",
        ),
        bad(
            lambda: _v1_submit(tags=["a"]),
            ConfigError,
            "submit: tags (of type list, its content not shown) must map strings to strings",
            id="v1-submit-tags-list",
        ),
        bad(
            lambda: _v1_submit(compute_targets={"x": "cpu"}),
            ConfigError,
            "submit: compute_targets['x'] 'cpu' must be a compute target, not str; give LocalCompute()",
            id="v1-submit-compute-target-name",
        ),
        bad(
            lambda: _v1_submit(dag_args=[("schedule", None)]),
            ConfigError,
            "submit: dag_args [('schedule', None)] must be a dict, not list",
            id="v1-submit-dag-args-list",
        ),
        bad(
            lambda: _v1("DataPath")("lake", "data"),
            ConfigError,
            "DataPath: datastore 'lake' must be a Datastore, not str; give Datastore.get(ws, 'lake')",
            id="v1-datapath-datastore-name",
        ),
        bad(
            lambda: _file().download(target_path=3),
            DatasetError,
            "download: target_path 3 must be a local folder's path, e.g. download(target_path='data/raw')",
            id="file-download-target-int",
        ),
        bad(
            lambda: _table().keep_columns(3),
            DatasetError,
            "keep_columns: columns 3 must be a column name or a list of them, e.g. keep_columns(['age', 'city'])",
            id="tabular-keep-columns-int",
        ),
        bad(
            lambda: _table().drop_columns(None),
            DatasetError,
            "drop_columns: columns None must be a column name or a list of them",
            id="tabular-drop-columns-none",
        ),
        bad(
            lambda: _v1("PythonScriptStep")("t.py", params=3),
            ConfigError,
            "step 't.py': params 3 must be a dict of names to values, e.g. params={'mode': 'train'}",
            id="v1-script-params-int",
        ),
        # a v1 reference into mlpipe's records is refused when made, not found empty when the step runs
        bad(
            lambda: _v1("DataReference")(_v1_lake(), path_on_datastore="_mlpipe/registry"),
            ReservedPathError,
            "path_on_datastore: datastore 'lake': path '_mlpipe/registry' is inside '_mlpipe/'",
            id="v1-reference-reserved",
        ),
        bad(
            lambda: _v1("DataPath")(_v1_lake(), "_MLPIPE/runs"),
            ReservedPathError,
            "path_on_datastore: datastore 'lake': path '_MLPIPE/runs' is inside '",
            id="v1-datapath-reserved-upper",
        ),
        bad(
            lambda: _v1_lake().path("").path("_mlpipe/runs"),
            ReservedPathError,
            "path_on_datastore: datastore 'lake': path '_mlpipe/runs' is inside '_mlpipe/'",
            id="v1-reference-path-reserved",
        ),
        # values that were accepted and misread
        bad(
            lambda: _table().take(-1),
            DatasetError,
            "take: count -1 must be a whole number of rows (0 or more), e.g. take(100)",
            id="tabular-take-negative",
        ),
        bad(lambda: _table().take("3"), DatasetError, "take: count '3' must be a whole number", id="tabular-take-str"),
        bad(
            lambda: _table().skip(float("nan")),
            DatasetError,
            "skip: count nan must be a whole number of rows",
            id="tabular-skip-nan",
        ),
        bad(lambda: _table().take(True), DatasetError, "take: count True must be", id="tabular-take-bool"),
        bad(
            lambda: PipelineParameter("p", float("nan")),
            ConfigError,
            "PipelineParameter 'p': default_value nan is not a finite number",
            "e.g. default_value=0.1",
            id="parameter-default-nan",
        ),
        bad(
            lambda: PythonScriptOperator(
                task_id="t", script_name="t.py", source_directory=".", arguments=[float("nan")]
            ),
            ConfigError,
            "step 't': argument nan is not a finite number",
            "give a finite number",
            id="script-argument-nan",
        ),
        bad(
            lambda: PythonScriptOperator(
                task_id="t", script_name="t.py", source_directory=".", arguments=["--max", float("-inf")]
            ),
            ConfigError,
            "step 't': argument -inf is not a finite number",
            id="script-argument-inf",
        ),
        bad(
            lambda: _v1("DataReference")(_v1_lake(), data_reference_name=3, path_on_datastore="data"),
            DatasetError,
            "DataReference: data_reference_name 3 cannot be used",
            id="v1-reference-name-int",
        ),
        bad(
            lambda: Environment(name="e", env_vars={"A": "x\x00y"}),
            ConfigError,
            "env_vars['A'] contains a NUL character (the value is not shown)",
            "remove it from the value",
            id="environment-variable-nul",
        ),
        bad(
            lambda: _v1_parent_run().log_table("x", 3),
            ConfigError,
            "log_table('x'): value 3 must be a dict of column names to lists of values",
            id="v1-parent-run-log-table-int",
        ),
        bad(
            lambda: _v1_parent_run().log_table("x", {"loss": "0.5"}),
            ConfigError,
            "log_table('x'): value {'loss': '0.5'} must be a dict of column names to lists of values",
            id="v1-parent-run-log-table-string-column",
        ),
        bad(
            lambda: V1Dataset.Tabular.from_delimited_files(("lake", "a.csv")).take(1.5),
            DatasetError,
            "take: count 1.5 must be a whole number",
            id="v1-tabular-take-float",
        ),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_v1_and_compat_refuse(make: Any, error: type[Exception], parts: tuple[str, ...]) -> None:
    with pytest.raises(error) as info:
        make()
    assert isinstance(info.value, ConfigError)
    for part in parts:
        assert part in str(info.value)


@pytest.mark.parametrize(
    ("source", "destination", "how"),
    [
        pytest.param(("lake", "data"), ("lake", "data"), "they are the same path", id="same"),
        pytest.param(("lake", "data"), ("lake", "data/copy"), "the destination lies inside the source", id="inside"),
        pytest.param(("lake", "data/sub"), ("lake", "data"), "the source lies inside the destination", id="around"),
        pytest.param(("lake", ""), ("lake", "copy"), "the destination lies inside the source", id="from-root"),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_data_transfer_overlap_is_refused_at_parse_time(source: Any, destination: Any, how: str) -> None:
    with pytest.raises(ConfigError) as info:
        DataTransferOperator(task_id="copy", source_data_reference=source, destination_data_reference=destination)
    message = str(info.value)
    assert message.startswith(f"step 'copy': source_data_reference {source!r} and destination_data_reference ")
    assert f"overlap ({how}): a copy would read what it writes; choose a destination outside the source" in message


@pytest.mark.parametrize(
    ("source", "destination"),
    [
        pytest.param(("lake", "data"), ("lake", "data2"), id="sibling-prefix"),
        pytest.param(("lake", "data"), ("other", "data"), id="other-datastore"),
        pytest.param(("lake", "{{ ds }}"), ("lake", "{{ ds }}"), id="templated"),
    ],
)
def test_data_transfer_paths_that_may_not_overlap_are_kept(source: Any, destination: Any) -> None:
    op = DataTransferOperator(task_id="copy", source_data_reference=source, destination_data_reference=destination)
    assert op.source_path == source[1]
