"""A step output replaces only what step runs wrote: a fixed destination that holds files nobody's step run
wrote (put by hand, registered by hand) is refused before the script runs, and a script that writes symbolic
links into its output folder commits nothing (a local store would keep the link, pointing out of the datastore)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_mlpipe import Dataset
from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.runner.claims import claim_path
from airflow_mlpipe.runner.outputs import StagingError, prepare_outputs, stage
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    monkeypatch.setenv("MLPIPE_HOME", str(tmp_path / "mlpipe"))
    resolve.clear_cache()
    return Datastore.get_default()


def _fixed(path: str, mode: str = "mount") -> tuple[dict[str, str], ...]:
    return ({"name": "o", "datastore": "mlpipe_default", "path": path, "path_template": path, "mode": mode},)


@pytest.mark.parametrize("mode", ["mount", "upload"])
def test_a_fixed_destination_holding_hand_put_files_is_refused(lake: Datastore, tmp_path: Path, mode: str) -> None:
    lake.write_text("userdata/users.csv", "id\n1\n")
    lake.write_text("userdata/sub/u2.csv", "id\n2\n")
    version = Dataset.File.from_files(path=(lake, "userdata")).register("users")
    with pytest.raises(ConfigError) as caught:
        prepare_outputs(_fixed("userdata", mode), str(tmp_path / "work"), AttemptId("d", "r1", "t"))
    message = str(caught.value)
    assert message.startswith("output 'o': 'userdata' in datastore 'mlpipe_default' already holds 2 file(s) that no")
    assert "'userdata/sub/u2.csv', 'userdata/users.csv'" in message and "nothing was written" in message
    assert not lake.exists(claim_path("userdata"))  # no claim taken either
    assert Dataset.get_by_name("users").download(str(tmp_path / "dl"))  # the version's bytes are all there
    assert version.version == 1 and lake.read_text("userdata/users.csv") == "id\n1\n"


def test_a_fixed_file_destination_that_exists_is_refused(lake: Datastore, tmp_path: Path) -> None:
    lake.write_text("models/model.pkl", "M")
    with pytest.raises(ConfigError, match=r"already holds 1 file\(s\) that no step run wrote \('models/model.pkl'\)"):
        prepare_outputs(_fixed("models/model.pkl"), str(tmp_path / "work"), AttemptId("d", "r1", "t"))


def test_leftovers_of_an_earlier_claimed_attempt_are_replaced(lake: Datastore, tmp_path: Path) -> None:
    """An earlier try claimed the destination and was killed after staging: its files are mlpipe's to replace."""
    first, retry = AttemptId("d", "r1", "t", try_number=1), AttemptId("d", "r1", "t", try_number=2)
    plans = prepare_outputs(_fixed("models/latest"), str(tmp_path / "w1"), first)
    (Path(plans["o"].staging) / "w.txt").write_text("first")
    stage(plans["o"])  # staged, never committed (killed)
    plans = prepare_outputs(_fixed("models/latest"), str(tmp_path / "w2"), retry)
    (Path(plans["o"].staging) / "w.txt").write_text("retry")
    stage(plans["o"])
    assert lake.read_text("models/latest/w.txt") == "retry"


@pytest.mark.parametrize("mode", ["mount", "upload"])
@pytest.mark.parametrize("kind", ["file", "folder"])
def test_links_written_into_an_output_commit_nothing(lake: Datastore, tmp_path: Path, mode: str, kind: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("outside bytes")
    spec = ({"name": "o", "datastore": "mlpipe_default", "path": "runs/r1/o", "mode": mode},)
    plans = prepare_outputs(spec, str(tmp_path / "work"))
    staging = Path(plans["o"].staging)
    (staging / "real.txt").write_text("R")
    (staging / "sub").mkdir()
    os.symlink(outside / "target.txt" if kind == "file" else outside, staging / "sub" / "link")
    with pytest.raises(StagingError) as caught:
        stage(plans["o"])
    assert str(caught.value).startswith(
        f"output 'o': the script wrote 1 symbolic link(s) into the folder given for the output ('sub/link' -> "
        f"{str(outside / 'target.txt') if kind == 'file' else str(outside)!r})"
    )
    assert "nothing was committed" in str(caught.value)
    assert not lake.exists("runs/r1/o")
    assert (outside / "target.txt").read_text() == "outside bytes" and os.access(outside / "target.txt", os.W_OK)
