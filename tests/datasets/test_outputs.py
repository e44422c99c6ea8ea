"""OutputFileDatasetConfig: names, destinations, placeholders, registration only of complete folders."""

from __future__ import annotations

import pytest

from airflow_mlpipe import Dataset, OutputFileDatasetConfig
from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.paths import DataPath
from airflow_mlpipe.datasets.registry import DatasetRegistry
from airflow_mlpipe.exceptions import DatasetError, PathOutsideDatastoreError
from airflow_mlpipe.steps.finish import register_committed
from airflow_mlpipe.storage.datastore import Datastore


def test_default_destination_and_deterministic_name() -> None:
    out = OutputFileDatasetConfig()
    out.bind("prep", 0)
    run = AttemptId("my_dag", "manual__2026-01-01T00:00:00+00:00", "prep").step_run_id
    assert run.startswith("my_dag.manual__2026-01-01T00_00_00_00_00.prep.t1.")
    assert out.name == "prep_output_0"
    assert out.destination_for(run) == DataPath("mlpipe_default", f"dataset/{run}/prep_output_0")
    again = OutputFileDatasetConfig()
    again.bind("prep", 0)
    assert again.destination_for(run) == out.destination_for(run)  # never a random name


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(AttemptId("d", "r", "t", try_number=1), AttemptId("d", "r", "t", try_number=2), id="tries"),
        pytest.param(AttemptId("d", "r", "t", 0), AttemptId("d", "r", "t", 1), id="map-indexes"),
        pytest.param(AttemptId("a.b", "r", "t"), AttemptId("a", "b.r", "t"), id="dots-in-parts"),
        pytest.param(AttemptId("d", "run:1", "t"), AttemptId("d", "run_1", "t"), id="sanitised-alike"),
        pytest.param(AttemptId("d" * 200, "r1", "t"), AttemptId("d" * 200, "r2", "t"), id="cut-alike"),
    ],
)
def test_every_attempt_has_its_own_step_run_id(a: AttemptId, b: AttemptId) -> None:
    assert a.step_run_id != b.step_run_id
    assert len(a.step_run_id.encode()) < 200 and len(b.step_run_id.encode()) < 200  # a file name on any store
    assert a.step_run_id == AttemptId.from_dict(a.to_dict()).step_run_id  # stable


def test_custom_destination_with_placeholders(local_default: Datastore) -> None:
    out = OutputFileDatasetConfig(name="clean", destination=(local_default, "team/{output-name}/{run-id}"))
    assert out.destination_for("r1") == DataPath("mlpipe_default", "team/clean/r1")
    assert OutputFileDatasetConfig.from_dict(out.to_dict()).destination_for("r1") == out.destination_for("r1")


@pytest.mark.parametrize(
    ("destination", "error", "message"),
    [
        pytest.param(
            ("x", "out/{runid}"),
            DatasetError,
            r"unknown placeholder\(s\) \{runid\}.*\{run-id\} and \{output-name\}",
            id="unknown-placeholder",
        ),
        pytest.param(("x", "../{run-id}"), PathOutsideDatastoreError, "contains '..'", id="escape"),
        pytest.param(("x", "/abs/{run-id}"), PathOutsideDatastoreError, "absolute", id="absolute"),
        pytest.param(("x", "{output-name"), DatasetError, "unbalanced", id="unbalanced"),
        pytest.param(("x", "."), DatasetError, "datastore root", id="root"),
        pytest.param("x/y", DatasetError, "must be", id="not-a-tuple"),
    ],
)
def test_bad_destinations(destination: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        OutputFileDatasetConfig(name="o", destination=destination)  # type: ignore[arg-type]


def test_one_output_one_producer() -> None:
    out = OutputFileDatasetConfig("shared")
    out.bind("a", 0)
    out.bind("a", 0)
    with pytest.raises(DatasetError, match="already written by step 'a'"):
        out.bind("b", 0)


def test_as_input_takes_the_output_name() -> None:
    out = OutputFileDatasetConfig()
    inp = out.as_input()
    out.bind("train", 2)
    assert inp.name == "train_output_2" and inp.mode == "mount"
    assert out.as_input("model").as_download().name == "model"


def test_a_committed_output_registers_exactly_its_committed_files(local_default: Datastore) -> None:
    out = OutputFileDatasetConfig("features").register_on_complete("features_ds", description="f", tags={"k": "v"})
    out.bind("prep", 0)
    folder = out.destination_for("run-1")
    local_default.write_text(f"{folder.path}/part-0.csv", "a\n1\n")
    committed = Dataset.File.from_files((local_default, folder.path)).manifest()
    local_default.write_text(f"{folder.path}/late.csv", "written after the commit")
    produced_by = {"task_id": "prep", "step_run_id": "run-1"}
    registered = register_committed(out.to_dict(), folder.datastore, folder.path, committed, produced_by)
    assert registered == {"name": "features_ds", "version": 1, "created": True}
    record = DatasetRegistry().get("features_ds")
    assert record.lineage == produced_by and record.tags == {"k": "v"} and record.description == "f"
    assert [e.path for e in record.manifest.entries] == [f"{folder.path}/part-0.csv"]  # not late.csv
    assert Dataset.get_by_name("features_ds").to_path() == ["part-0.csv"]
    # a finish run again (the first one killed after registering) takes that version, adds none
    again = register_committed(out.to_dict(), folder.datastore, folder.path, committed, produced_by, since="2000-01-01")
    assert again == registered and DatasetRegistry().versions("features_ds") == [1]


def test_no_registration_requested(local_default: Datastore) -> None:
    out = OutputFileDatasetConfig("plain")
    out.bind("s", 0)
    folder = out.destination_for("r")
    local_default.write_text(f"{folder.path}/x", "1")
    manifest = Dataset.File.from_files((local_default, folder.path)).manifest()
    assert register_committed(out.to_dict(), folder.datastore, folder.path, manifest, {"step_run_id": "r"}) is None
