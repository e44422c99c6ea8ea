"""Every bad constructor argument of the step operators is a clear error at parse time: it names the step, the
argument, the value and the fix, and nothing is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe import Dataset, DataTransferOperator, OutputFileDatasetConfig, PythonScriptOperator
from airflow_mlpipe.exceptions import ConfigError

SCRIPT = {"task_id": "train", "script_name": "train.py"}
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
    ],
)
def test_python_script_operator(given: dict[str, Any], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        PythonScriptOperator(**{**SCRIPT, "source_directory": str(tmp_path), **given})
    assert str(info.value).startswith("step 'train': ")
    assert list(tmp_path.iterdir()) == []


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
    ],
)
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
def test_dataset_arguments(make: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()
