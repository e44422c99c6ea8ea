"""PythonScriptOperator at DAG-parse time: no I/O, implicit order, clear errors."""

from __future__ import annotations

import pendulum
import pytest
from airflow.sdk import DAG

from airflow_mlpipe import Dataset, OutputFileDatasetConfig, PipelineParameter, PythonScriptOperator
from airflow_mlpipe.exceptions import ConfigError


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1))


def test_constructor_does_no_io(tmp_path) -> None:
    with _dag("parse_no_io"):
        op = PythonScriptOperator(
            task_id="s",
            script_name="x.py",
            source_directory=str(tmp_path / "does-not-exist"),
            arguments=[Dataset.get_by_name("not_registered").as_named_input("d").as_download()],
        )
    assert op.source_directory.endswith("does-not-exist")  # checked when the step runs, not at parse time


def test_outputs_order_steps_even_when_the_consumer_comes_first() -> None:
    out = OutputFileDatasetConfig("shared")
    with _dag("parse_order"):
        consumer = PythonScriptOperator(
            task_id="consumer", script_name="c.py", source_directory=".", arguments=["--in", out.as_input()]
        )
        producer = PythonScriptOperator(
            task_id="producer", script_name="p.py", source_directory=".", arguments=["--out", out]
        )
    assert consumer.upstream_task_ids == {"producer"}
    assert producer.downstream_task_ids == {"consumer"}


def test_cycle_is_a_parse_time_error() -> None:
    a_out, b_out = OutputFileDatasetConfig("a_out"), OutputFileDatasetConfig("b_out")
    with _dag("parse_cycle"):
        PythonScriptOperator(
            task_id="a", script_name="a.py", source_directory=".", arguments=["--out", a_out, "--in", b_out.as_input()]
        )
        with pytest.raises(
            ConfigError, match=r"cycle: step '[ab]' reads output '[ab]_out' of step '[ab]', which already runs after"
        ):
            PythonScriptOperator(
                task_id="b",
                script_name="b.py",
                source_directory=".",
                arguments=["--out", b_out, "--in", a_out.as_input()],
            )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"script_name": "/abs/x.py"}, "must be a path relative", id="absolute-script"),
        pytest.param({"arguments": "--lr 0.1"}, "arguments '--lr 0.1' must be a list", id="string-arguments"),
        pytest.param({"arguments": [object()]}, "is not supported", id="bad-argument"),
        pytest.param({"outputs": ["x"]}, "outputs takes OutputFileDatasetConfig", id="bad-output"),
        pytest.param({"inputs": [42]}, "is not a dataset input", id="bad-input"),
        pytest.param({"compute_target": "gpu-cluster"}, "is not LocalCompute", id="bad-compute"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    base = {"task_id": "s", "script_name": "x.py", "source_directory": "."}
    with _dag("parse_bad"), pytest.raises(ConfigError, match=message):
        PythonScriptOperator(**{**base, **kwargs})


def test_parameters_become_typed_dag_params() -> None:
    with _dag("parse_params") as dag:
        PythonScriptOperator(
            task_id="s",
            script_name="x.py",
            source_directory=".",
            arguments=["--n", PipelineParameter("epochs", 10), "--name", PipelineParameter("tag", "a")],
        )
        with pytest.raises(ConfigError, match="already has param 'epochs' = 10"):
            PythonScriptOperator(
                task_id="t", script_name="x.py", source_directory=".", arguments=[PipelineParameter("epochs", 20)]
            )
    assert dag.params["epochs"] == 10 and dag.params.get_param("epochs").schema["type"] == "integer"
    with pytest.raises(ValueError, match="must be an identifier"):
        PipelineParameter("learning rate", 0.1)


def test_one_output_name_per_step() -> None:
    with _dag("parse_dupes"), pytest.raises(ConfigError, match=r"\['x'\] are used by more than one"):
        PythonScriptOperator(
            task_id="s",
            script_name="x.py",
            source_directory=".",
            arguments=[OutputFileDatasetConfig("x"), OutputFileDatasetConfig("x")],
        )


def test_every_example_dag_imports() -> None:
    from airflow.dag_processing.dagbag import DagBag

    from tests.airflow_utils import EXAMPLES

    bag = DagBag(str(EXAMPLES))
    assert bag.import_errors == {}
    files = {p.name for p in EXAMPLES.glob("*.py")}
    loaded = {dag.fileloc.rsplit("/", 1)[-1] for dag in bag.dags.values()}
    assert files <= loaded, f"example files without a DAG: {files - loaded}"


def test_pod_step_with_a_local_default_datastore_fails_at_parse(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import json

    from airflow_mlpipe import KubernetesCompute
    from airflow_mlpipe.storage import resolve

    monkeypatch.setenv(
        "AIRFLOW_CONN_MLPIPE_DEFAULT",
        json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": tmp_path.as_uri()}}),
    )
    resolve.clear_cache()
    gpu = KubernetesCompute(
        image="python:3.11", gpu=1, secrets=["ds-secret"], datastore_secrets={"mlpipe_default": "ds-secret"}
    )
    with _dag("parse_pod_local"), pytest.raises(ConfigError, match=r"step 'train'.*mlpipe_default.*a pod"):
        PythonScriptOperator(task_id="train", script_name="t.py", source_directory=".", compute_target=gpu)


def test_pod_step_with_the_embedded_default_fails_where_lookup_is_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_mlpipe import KubernetesCompute
    from airflow_mlpipe.storage import resolve

    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")
    monkeypatch.setenv("MLPIPE_CHECK_DATASTORES_AT_PARSE", "1")  # the connection lookup is asked for
    resolve.clear_cache()
    gpu = KubernetesCompute(
        image="python:3.11", gpu=1, secrets=["ds-secret"], datastore_secrets={"mlpipe_default": "ds-secret"}
    )
    with _dag("parse_pod_embedded"), pytest.raises(ConfigError, match="mlpipe_default"):
        PythonScriptOperator(task_id="train", script_name="t.py", source_directory=".", compute_target=gpu)
