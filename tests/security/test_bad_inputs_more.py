"""More bad inputs refused at parse or call time, before anything is written: ``transfer()``'s arguments, gc
durations beyond 100 years, dataset registration arguments, output destinations, a script's source_directory
that is a file, and datastore URLs with a query. The same table form as ``test_bad_inputs``, whose fixture
``nothing_written`` each table uses (MLPIPE_HOME and the datastore 'lake' are left as they were)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_mlpipe import Dataset, Datastore, DatastoreCleanupOperator, OutputFileDatasetConfig, PythonScriptOperator
from airflow_mlpipe.core.paths import check_user_path
from airflow_mlpipe.exceptions import ConfigError, PathOutsideDatastoreError
from airflow_mlpipe.storage import resolve
from tests.security.test_bad_inputs import _file, bad, nothing_written

__all__ = ["nothing_written"]  # the fixture, imported for the tables here


def _transfer(**given: Any) -> Any:
    """``transfer()`` between two folders of the datastore 'filled' (names resolved as the other public APIs
    resolve them), with ``given`` arguments."""
    from airflow_mlpipe.storage.transfer import transfer

    paths = {"source_path": "in", "destination_path": "out"}
    return transfer(**{"source": "filled", "destination": "filled", **paths, **given})


@pytest.fixture
def filled_lake(
    nothing_written: None, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """The datastore 'filled': a source file and a differing destination file, so that an argument taken wrongly
    (``overwrite="no"`` as yes) would write; a refused call leaves it as it was."""
    lake = tmp_path_factory.mktemp("filled")
    for folder, text in (("in", "new"), ("out", "old")):
        (lake / folder).mkdir()
        (lake / folder / "a.txt").write_text(text)
    monkeypatch.setenv(
        "AIRFLOW_CONN_FILLED", json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": lake.as_uri()}})
    )
    resolve.clear_cache()
    before = sorted(lake.rglob("*"))
    yield
    assert sorted(lake.rglob("*")) == before
    assert (lake / "out" / "a.txt").read_text() == "old"


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param(
            {"overwrite": "no"}, r"transfer\(\): overwrite 'no' must be True or False, not str", id="overwrite"
        ),
        pytest.param({"overwrite": 1}, "overwrite 1 must be True or False, not int", id="overwrite-int"),
        pytest.param(
            {"files": "a.txt"}, r"files 'a.txt' must be a list of strings; write files=\['a.txt'\]", id="files"
        ),
        pytest.param({"files": [3]}, "files entry 3 must be a non-empty string", id="files-int"),
        pytest.param({"verify": "no"}, "verify 'no' must be True or False", id="verify"),
        pytest.param({"mirror": "no"}, "mirror 'no' must be True or False", id="mirror"),
        pytest.param({"mark_complete": None}, "mark_complete None must be True or False", id="mark-complete"),
        pytest.param({"progress_interval": "x"}, "progress_interval .x. must be a number of seconds", id="interval"),
        pytest.param({"progress_interval": -1}, "progress_interval -1 must be a number of seconds", id="interval-neg"),
        pytest.param({"progress": "log"}, "progress 'log' must be a function", id="progress"),
        pytest.param({"max_workers": "3"}, "max_workers '3' must be a whole number of at least 1", id="workers-str"),
        pytest.param({"max_workers": 0}, "max_workers 0 must be a whole number", id="workers-zero"),
        pytest.param({"chunk_size": "8"}, "chunk_size '8' must be a whole number", id="chunk-str"),
        pytest.param({"block_parallel": 2.5}, "block_parallel 2.5 must be a whole number", id="blocks-float"),
        pytest.param({"memory_limit": True}, "memory_limit True must be a whole number", id="memory-bool"),
        pytest.param({"retry": 3}, r"retry 3 must be a RetryPolicy, not int; give retry=RetryPolicy\(", id="retry"),
        pytest.param({"kind": "folder"}, "kind 'folder' must be one of 'directory', 'file'", id="kind"),
        pytest.param({"marker_extra": [1]}, r"marker_extra \[1\] must be a dict with string keys", id="extra-list"),
        pytest.param({"marker_extra": {1: "x"}}, "marker_extra .* must be a dict with string keys", id="extra-key"),
        pytest.param(
            {"marker_extra": {"step_run_id": "forged", "registered": {"name": "d", "version": 1}}},
            "marker_extra sets 'registered', 'step_run_id', which mlpipe writes into a completion marker itself",
            id="extra-forged",
        ),
        pytest.param({"marker_extra": {"transfer": {}}}, "marker_extra sets 'transfer'", id="extra-transfer"),
        pytest.param({"marker_extra": {"x": {1}}}, "marker_extra .* must hold JSON values only", id="extra-set"),
        pytest.param({"option_words": ["x"]}, "option_words .* must map strings to strings", id="words"),
        pytest.param({"source": 3}, "source 3 must be a Datastore or a datastore name", id="source-int"),
        pytest.param({"destination": None}, "destination None must be a Datastore or a datastore", id="dest-none"),
        pytest.param({"source_path": None}, "source_path None must be a path relative to", id="source-path-none"),
        pytest.param({"destination_path": 3}, "destination_path 3 must be a path relative to", id="dest-path-int"),
    ],
)
@pytest.mark.usefixtures("filled_lake")
def test_transfer_arguments(given: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        _transfer(**given)
    assert str(info.value).startswith("transfer(): ")


@pytest.mark.parametrize(
    ("make", "error", "parts"),
    [
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", older_than="99999999999d"),
            ConfigError,
            "older_than '99999999999d' is longer than 100 years, the longest duration taken",
            "such as '30d' (at most '36525d')",
            id="gc-older-than-huge",
        ),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", grace=1e30), ConfigError, "grace 1e+30 is longer", id="g-big"
        ),
        bad(
            lambda: DatastoreCleanupOperator(task_id="gc", older_than=float("inf")),
            ConfigError,
            "older_than inf is longer than 100 years",
            id="gc-older-than-inf",
        ),
        # dataset registration (checked before the registry or a marker is touched)
        bad(
            lambda: _file().register("d", tags=["a"]),
            ConfigError,
            "dataset 'd': register: tags",
            "must map strings to strings, e.g. tags={'stage': 'clean'}",
            id="register-tags-list",
        ),
        bad(
            lambda: _file().register("d", description={"x": 1}),
            ConfigError,
            "dataset 'd': register: description {'x': 1} must be a string or None, not dict",
            id="register-description-dict",
        ),
        bad(
            lambda: _file().register("d", create_new_version="no"),
            ConfigError,
            "dataset 'd': register: create_new_version 'no' must be True or False, not str",
            id="register-create-new-version-string",
        ),
        bad(
            lambda: _file().register("d", create_new_version=0),
            ConfigError,
            "create_new_version 0 must be True or False, not int",
            id="register-create-new-version-int",
        ),
        # user paths: output destinations and dataset paths
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", " ")),
            PathOutsideDatastoreError,
            "output destination ' ': datastore 'lake': path ' ' is blank; give a folder or file path",
            id="output-blank",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "a/ /{run-id}")),
            PathOutsideDatastoreError,
            "has a blank folder or file name",
            id="output-blank-segment",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "a/\n/b/{run-id}")),
            PathOutsideDatastoreError,
            "output destination 'a/\\n/b/{run-id}'",
            "contains the control character '\\n'; a path holds printable characters only",
            id="output-newline",
        ),
        bad(lambda: OutputFileDatasetConfig("o", ("lake", "a\tb")), ConfigError, "character '\\t'", id="output-tab"),
        bad(lambda: OutputFileDatasetConfig("o", ("lake", "a\x00b")), ConfigError, "character '\\x00'", id="nul"),
        bad(lambda: OutputFileDatasetConfig("o", ("lake", "a\rb")), ConfigError, "character '\\r'", id="output-cr"),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "a/" + "x" * 2000 + "/{run-id}")),
            PathOutsideDatastoreError,
            "(2006 characters) has a folder or file name of 2000 characters; names may have at most 255",
            id="output-long-segment",
        ),
        bad(
            lambda: OutputFileDatasetConfig("o", ("lake", "x/" * 600 + "{run-id}")),
            PathOutsideDatastoreError,
            "has 1203 characters; a path may have at most 1024",
            id="output-long-path",
        ),
        bad(
            lambda: Dataset.File.from_files(("lake", "in/a\nb.csv")),
            PathOutsideDatastoreError,
            "dataset path: datastore 'lake': path 'in/a\\nb.csv' contains the control character",
            id="dataset-path-newline",
        ),
        # a script's source_directory that exists and is a file
        bad(
            lambda: PythonScriptOperator(task_id="train", script_name="t.py", source_directory=__file__),
            ConfigError,
            "step 'train': source_directory ",
            "is a file, not a folder: give the folder holding the script",
            id="source-directory-file",
        ),
        # datastore urls with a query string or fragment
        bad(
            lambda: Datastore("d", "abfs://c@acct.dfs.core.windows.net/p?sig=SECRETSIG"),
            ConfigError,
            "url 'abfs://c@acct.dfs.core.windows.net/p?...' has a query string ('?...')",
            "put credentials such as a SAS token or keys in the connection's extra",
            id="store-url-query",
        ),
        bad(lambda: Datastore("d", "az://c/p#SECRETFRAG"), ConfigError, "url 'az://c/p#...' has a fragment", id="frag"),
        bad(
            lambda: Datastore("d", "s3://AKIAKEY:SECRETKEY@bucket/p?x=1"),
            ConfigError,
            "url 's3://***@bucket/p?...' has a query string",
            id="store-url-query-with-credentials",
        ),
    ],
)
@pytest.mark.usefixtures("nothing_written")
def test_constructor_refuses(make: Any, error: type[Exception], parts: tuple[str, ...]) -> None:
    with pytest.raises(error) as info:
        make()
    assert isinstance(info.value, ConfigError)
    for part in parts:
        assert part in str(info.value)
    for secret in ("SECRET",):  # a url's query or fragment (a SAS token) is never shown
        assert secret not in str(info.value)


@pytest.mark.parametrize(
    "path",
    ["", "data/train", "a b/c d.csv", "x" * 255, "a/" * 511 + "b", "{{ ds }}/out", "data/*.csv", " lead/trail "],
)
def test_user_paths_that_are_taken(path: str) -> None:
    """The root, names with spaces, a name of 255 characters and a path of 1024: legitimate, all taken."""
    assert check_user_path(path, argument="path", datastore="lake") == path.strip("/")
