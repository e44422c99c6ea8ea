"""Committed outputs are never written into, from inside or from around, whatever ``overwrite`` says: a step
output at, above or inside one, a transfer into, above or below one, a v1 upload into one; and a script that
replaces its output folder by a link commits nothing."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from airflow_mlpipe.compat.data import V1Datastore
from airflow_mlpipe.runner.outputs import StagingError, prepare_outputs, stage
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.committed import CommittedOutputError
from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.transfer import transfer


@pytest.fixture
def lake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Datastore:
    """``models/run1/model`` is a committed output registered as ``m`` version 1; ``src`` a folder to copy."""
    extra = {"url": (tmp_path / "lake").as_uri()}
    monkeypatch.setenv("AIRFLOW_CONN_LAKE", json.dumps({"conn_type": "mlpipe_datastore", "extra": extra}))
    resolve.clear_cache()
    store = Datastore.get("lake")
    store.write_text("models/run1/model/w.bin", "W")
    store.mark_complete("models/run1/model", {"step_run_id": "r1", "registered": {"name": "m", "version": 1}})
    store.write_text("src/w.bin", "EVIL")
    store.write_text("src8/run1/model/w.bin", "EVIL")
    return store


def _files(store: Datastore) -> dict[str, str]:
    return {p: store.read_text(p) for p in sorted(store.list("models", recursive=True))}


@pytest.mark.parametrize(
    ("write", "match"),
    [
        pytest.param(
            lambda s: transfer(s, "src", s, "models/run1/model", overwrite=True),
            r"'models/run1/model' in datastore 'lake' is the committed output of step run r1, registered as dataset "
            r"'m' version 1; a committed output is never written into, whatever overwrite says",
            id="transfer-onto",
        ),
        pytest.param(
            lambda s: transfer(s, "src8", s, "models", overwrite=True),
            r"'models' in datastore 'lake' holds the committed output 'models/run1/model'",
            id="transfer-above",
        ),
        pytest.param(
            lambda s: transfer(s, "src", s, "models/run1/model/sub", overwrite=True),
            r"lies inside the committed output",
            id="transfer-inside",
        ),
        pytest.param(
            lambda s: transfer(s, "src/w.bin", s, "models/run1/model/w.bin", kind="file", overwrite=True),
            r"lies inside the committed output",
            id="transfer-file-inside",
        ),
        pytest.param(
            lambda s: V1Datastore.of(s).upload(str(s.full_path("src")), "models/run1/model", overwrite=True),
            r"upload destination: 'models/run1/model/w.bin' in datastore 'lake' lies inside the committed output",
            id="v1-upload",
        ),
        pytest.param(
            lambda s: V1Datastore.of(s).upload_files(
                [s.full_path("src/w.bin")], target_path="models/run1/model", overwrite=True
            ),
            r"lies inside the committed output",
            id="v1-upload-files",
        ),
        pytest.param(
            lambda s: prepare_outputs(({"name": "o", "datastore": "lake", "path": "models", "mode": "mount"},), "/x"),
            r"output 'o': 'models' in datastore 'lake' holds the committed output 'models/run1/model'",
            id="output-above",
        ),
        pytest.param(
            lambda s: prepare_outputs(
                ({"name": "o", "datastore": "lake", "path": "models/run1/model/sub", "mode": "upload"},), "/x"
            ),
            r"output 'o': .* lies inside the committed output",
            id="output-inside",
        ),
    ],
)
def test_a_committed_output_is_never_written_into(
    lake: Datastore, write: Callable[[Datastore], object], match: str
) -> None:
    before = _files(lake)
    with pytest.raises(CommittedOutputError, match=match):
        write(lake)
    assert _files(lake) == before


def test_an_output_folder_replaced_by_a_link_commits_nothing(lake: Datastore, tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "p.txt").write_text("P")
    plan = prepare_outputs(({"name": "o", "datastore": "lake", "path": "outs/model", "mode": "mount"},), str(tmp_path))
    shutil.rmtree(plan["o"].staging)
    os.symlink(precious, plan["o"].staging)  # what a script could do to its output folder
    with pytest.raises(StagingError, match="replaced the folder given for the output by a symbolic link"):
        stage(plan["o"])
    assert not lake.exists("outs/model") and os.access(precious / "p.txt", os.W_OK)
    assert oct((precious / "p.txt").stat().st_mode & 0o777) != oct(0o444)
