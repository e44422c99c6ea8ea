"""SDK v1's ParallelRunConfig/ParallelRunStep submitted as a DAG (parse time only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlpipe import v1
from airflow_mlpipe.compute.local import LocalCompute
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.operators.parallel_run import GatherOperator, PlanMiniBatchesOperator

ws = v1.Workspace.from_config()


def test_a_v1_parallel_run_step_is_a_task_group_feeding_the_next_step(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text("def init(): pass\ndef run(b): return b\n")
    images = v1.Dataset.File.from_files(path=(v1.Datastore.get_default(ws), "images/*.png"))
    env = v1.Environment("batch")
    env.environment_variables = {"OMP_NUM_THREADS": "1"}
    config = v1.ParallelRunConfig(
        environment=env,
        entry_script="score.py",
        source_directory=str(tmp_path),
        error_threshold=5,
        output_action="append_row",
        compute_target="cpu-cluster",
        node_count=3,
        mini_batch_size="5",
    )
    scores = v1.PipelineData("scores", datastore=v1.Datastore.get_default(ws))
    model = v1.Dataset.File.from_files(path=(v1.Datastore.get_default(ws), "models/m.pkl")).as_named_input("model")
    step = v1.ParallelRunStep(
        name="Batch score",
        parallel_run_config=config,
        inputs=[images.as_named_input("images")],
        output=scores,
        side_inputs=[model],
        arguments=["--model", model],
    )
    report = v1.PythonScriptStep("score.py", name="report", inputs=[scores], source_directory=str(tmp_path))
    dag = v1.Experiment(ws, "v1_batch").submit(v1.Pipeline(ws, [report, step])).dag
    assert sorted(dag.task_ids) == ["batch_score.gather", "batch_score.mini_batch", "batch_score.plan", "report"]
    plan, gather = dag.get_task("batch_score.plan"), dag.get_task("batch_score.gather")
    assert isinstance(plan, PlanMiniBatchesOperator) and isinstance(gather, GatherOperator)
    assert isinstance(plan.compute_target, LocalCompute) and plan.config.node_count == 3
    assert dag.get_task("batch_score.mini_batch").partial_kwargs["max_active_tis_per_dagrun"] == 3
    assert dag.get_task("report").upstream_task_ids == {"batch_score.gather"}
    assert [i.name for i in plan.step_io.inputs] == ["images", "model"]


def test_partition_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="partition_keys is not supported"):
        v1.ParallelRunConfig(entry_script="s.py", partition_keys=["day"])
