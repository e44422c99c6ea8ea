"""The ``mlpipe`` command line on bad input: a bad option is one line naming the option, the value and the fix
(exit code 2, no traceback, no framed box) before anything is read or written; a record or connection that cannot
be read is a row with its error, and the rest is still listed; a long value is never echoed whole."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_mlpipe.cli import output
from airflow_mlpipe.cli.main import main
from airflow_mlpipe.datasets import seal_dates
from airflow_mlpipe.steps import record_seals
from airflow_mlpipe.storage.datastore import Datastore

LONG = "a" * 100_000
CUT = "...' (100000 characters)"


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def mlpipe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], local_home: dict[str, str]) -> object:
    """``mlpipe ARGS`` in this process, as the entry point runs it: (exit code, stdout, stderr)."""
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")  # what main() sets; undone after the test
    monkeypatch.setattr(sys, "stdout", sys.stdout)  # main() points it at stderr

    def run(*args: str) -> Result:
        buffer = io.StringIO()
        monkeypatch.setattr(output, "_STDOUT", buffer)
        capsys.readouterr()
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        return Result(code, buffer.getvalue(), capsys.readouterr().err)

    return run


def files_under(root: str) -> list[str]:
    return sorted(str(p) for p in Path(root).rglob("*"))


def assert_usage_error(result: Result, *parts: str) -> None:
    lines = result.err.splitlines()
    assert result.code == 2, result.err
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert "Traceback" not in result.err and "╭" not in result.err and "│" not in result.err
    for part in parts:
        assert part in lines[0], lines[0]
    assert result.out == ""


@pytest.mark.parametrize(
    ("args", "parts"),
    [
        pytest.param(
            ["runs", "list", "--limit", "abc"],
            ["--limit 'abc' must be a whole number from 1 to 5000", "write e.g. --limit 50"],
            id="runs-limit-text",
        ),
        pytest.param(["runs", "list", "--limit", "0"], ["--limit '0' must be a whole number"], id="runs-limit-zero"),
        pytest.param(["runs", "list", "--limit", "-5"], ["--limit '-5' must be a whole number"], id="runs-limit-neg"),
        pytest.param(["runs", "list", "--limit", "1.5"], ["--limit '1.5' must be a whole"], id="runs-limit-float"),
        pytest.param(["runs", "list", "--limit", "99999"], ["--limit '99999' must be"], id="runs-limit-too-many"),
        pytest.param(
            ["runs", "list", "--limit", "9" * 5000],
            ["--limit '9999", "...' (5000 characters) must be a whole number"],
            id="runs-limit-5000-digits",
        ),
        pytest.param(
            ["datasets", "list", "--limit", "abc"],
            ["--limit 'abc' must be a whole number from 1 to 1000", "--limit 100"],
            id="datasets-limit-text",
        ),
        pytest.param(["datasets", "list", "--limit", "0"], ["--limit '0' must be"], id="datasets-limit-zero"),
        pytest.param(["datasets", "list", "--limit", "1001"], ["--limit '1001' must be"], id="datasets-limit-big"),
        pytest.param(
            ["datasets", "show", "iris", "--version", "1.5"],
            ["--version '1.5' must be a version number (1, 2, ...) or 'latest'", "--version 1"],
            id="version-float",
        ),
        pytest.param(["datasets", "show", "iris", "-v", "0"], ["--version '0' must be"], id="version-zero"),
        pytest.param(["datasets", "show", "iris", "-v", "-1"], ["--version '-1' must be"], id="version-negative"),
        pytest.param(["datasets", "show", "iris", "-v", "newest"], ["--version 'newest' must"], id="version-word"),
        pytest.param(["datasets", "show", "iris", "-v", "²"], ["--version '²' must"], id="version-superscript"),
        pytest.param(["datasets", "show", "iris", "-v", "00"], ["--version '00' must"], id="version-zeros"),
        pytest.param(
            ["datasets", "show", "a b"],
            ["NAME: dataset name 'a b' cannot be used", "e.g. 'iris_clean'"],
            id="dataset-name-space",
        ),
        pytest.param(["datasets", "show", "../x"], ["dataset name '../x' cannot be used"], id="dataset-name-dots"),
        pytest.param(["datasets", "show", LONG], ["dataset name 'aaaa", CUT], id="dataset-name-long"),
        pytest.param(
            ["gc", "--older-than", "xyz", "--dry-run"],
            ["--older-than 'xyz' is not a duration", "unit s, m, h, d or w", "--older-than 30d"],
            id="gc-older-than-word",
        ),
        pytest.param(["gc", "--older-than", "-3d"], ["--older-than '-3d' is not a duration"], id="gc-older-neg"),
        pytest.param(["gc", "--older-than", "3y"], ["--older-than '3y' is not a duration"], id="gc-older-years"),
        pytest.param(["gc", "--grace", "soon"], ["--grace 'soon' is not a duration", "--grace 1h"], id="gc-grace"),
        pytest.param(
            ["gc", "--older-than", "30", "--dry-run"],
            ["--older-than '30' has no unit (seconds? days?)", "unit s, m, h, d or w", "--older-than 30d"],
            id="gc-older-than-no-unit",
        ),
        pytest.param(["gc", "--grace", "60"], ["--grace '60' has no unit", "--grace 1h"], id="gc-grace-no-unit"),
        pytest.param(
            ["gc", "--older-than", "99999999999d", "--dry-run"],
            ["--older-than '99999999999d' is longer than 100 years", "at most '36525d'", "--older-than 30d"],
            id="gc-older-than-huge-days",
        ),
        pytest.param(
            ["gc", "--older-than", "1" + "0" * 30 + "s"], ["is longer than 100 years"], id="gc-older-than-huge-s"
        ),
        pytest.param(["gc", "--older-than", "100000000w"], ["is longer than 100 years"], id="gc-older-than-huge-w"),
        pytest.param(["gc", "--grace", "999999999d"], ["--grace '999999999d' is longer than 100"], id="gc-grace-huge"),
        pytest.param(["gc", "--older-than", "9" * 400 + "d"], ["(401 characters)", "100 years"], id="gc-many-digits"),
        pytest.param(
            ["gc", "--dag", "", "--dry-run"],
            ["--dag '' is not a valid DAG id", "letters, digits, '_', '.' and '-'", "--dag train_iris"],
            id="gc-dag-empty",
        ),
        pytest.param(["gc", "--dag", "../x"], ["--dag '../x' is not a valid DAG id"], id="gc-dag-dots"),
        pytest.param(
            ["runs", "list", "--dag", "../x"],
            ["--dag '../x' is not a valid DAG id", "--dag train_iris"],
            id="runs-dag-dots",
        ),
        pytest.param(["runs", "list", "--dag", ".."], ["--dag '..' is not a valid DAG id"], id="runs-dag-dotdot"),
        pytest.param(["runs", "list", "--dag", "d", "--task", "a/b"], ["--task 'a/b' is not"], id="runs-task-slash"),
        pytest.param(
            ["runs", "list", "--after", "garbage"],
            ["--after 'garbage' is not a token a page of this listing printed", "leave --after out"],
            id="runs-after-garbage",
        ),
        pytest.param(
            ["runs", "list", "--after", "_mlpipe/index/runs/all/../../../x.json"],
            ["--after '_mlpipe/index/runs/all/../../../x.json' is not a token", "without '..'"],
            id="runs-after-dotdot",
        ),
        pytest.param(
            ["runs", "list", "--dag", "d", "--after", "_mlpipe/index/runs/all/000001/1_x.json"],
            ["is not a token a page of this listing printed", "with the same --dag and --task"],
            id="runs-after-other-listing",
        ),
        pytest.param(
            ["datasets", "list", "--after", "!!!"],
            ["--after '!!!' is not a token a page printed (the name of the last dataset listed)"],
            id="datasets-after-garbage",
        ),
        pytest.param(
            ["reuse", "explain", "../x", "s"],
            ["DAG_ID '../x' is not a valid DAG id", "mlpipe reuse explain train_iris train"],
            id="reuse-explain-dag-dots",
        ),
        pytest.param(["reuse", "explain", "d", "a b"], ["TASK_ID 'a b' is not a valid task id"], id="reuse-task"),
        pytest.param(
            ["reuse", "explain", "d", LONG], ["TASK_ID 'aaaa", CUT, "is not a valid task id"], id="reuse-long"
        ),
        pytest.param(
            ["gc", "--keep-last", "-1"],
            ["--keep-last '-1' must be a whole number of at least 0", "--keep-last 3"],
            id="gc-keep-last-neg",
        ),
        pytest.param(["gc", "--keep-last", "many"], ["--keep-last 'many' must be"], id="gc-keep-last-word"),
        pytest.param(
            ["reuse", "explain", "d", "t", "--map-index", "-1"],
            ["--map-index '-1' must be a whole number of at least 0"],
            id="map-index-negative",
        ),
        pytest.param(["reuse", "explain", "d", "t", "--map-index", "x"], ["--map-index 'x' must"], id="map-index"),
        pytest.param(
            ["reuse", "explain", "d", "t", "--run", ""],
            ["--run '' is empty", "give a DAG run id or a step run id", "leave --run out for the latest step run"],
            id="reuse-run-empty",
        ),
        pytest.param(["reuse", "explain", "d", "t", "--run", "  "], ["--run '", "' is empty"], id="reuse-run-blank"),
        pytest.param(
            ["reuse", "explain", "d", "t", "--run", "../../registry"],
            ["--run '../../registry' is not a DAG run id or a step run id"],
            id="reuse-run-path",
        ),
        pytest.param(
            ["reuse", "explain", "d", "t", "--run", ".."], ["--run '..' is not a DAG run"], id="reuse-run-dots"
        ),
        pytest.param(
            ["reuse", "explain", "d", "t", "--run", "a\nb"],
            ["--run 'a\\nb' holds a control character"],
            id="reuse-run-nl",
        ),
        pytest.param(
            ["transfer", "nocolon", "mlpipe_default:b"],
            ["SOURCE 'nocolon' names no datastore", "write DATASTORE:path"],
            id="transfer-no-datastore",
        ),
        pytest.param(
            ["transfer", "mlpipe_default:a", "mlpipe://bad"],
            ["DESTINATION: dataset path 'mlpipe://bad' is not a datastore path"],
            id="transfer-bad-url",
        ),
        pytest.param(
            ["transfer", "mlpipe_default:a", f"{LONG}:b"],
            ["DESTINATION 'aaaa", CUT, "no datastore named 'aaaa"],
            id="transfer-long-datastore",
        ),
        pytest.param(
            ["runs", "list", "--task", "train"],
            ["--task needs --dag", "add --dag DAG_ID"],
            id="task-without-dag",
        ),
        pytest.param(
            ["runs", "list", "--bogus"],
            ["No such option: --bogus", "(see: mlpipe runs list --help)"],
            id="unknown-option",
        ),
        pytest.param(["datasets", "show"], ["Missing argument", "mlpipe datasets show --help"], id="missing-name"),
    ],
)
def test_bad_option_is_one_line_before_anything_is_done(mlpipe: object, args: list[str], parts: list[str]) -> None:
    home = Datastore.get_default().full_path("")
    before = files_under(home)
    result = mlpipe(*args)  # type: ignore[operator]
    assert_usage_error(result, *parts)
    assert len(result.err) < 800
    assert files_under(home) == before


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["datasets", "list", "--datastore", "nope"], id="datasets-list"),
        pytest.param(["datasets", "show", "iris", "--datastore", "nope"], id="datasets-show"),
        pytest.param(["runs", "list", "--datastore", "nope"], id="runs-list"),
        pytest.param(["transfer", "nope:a", "mlpipe_default:b"], id="transfer-source"),
    ],
)
def test_unknown_datastore_is_a_usage_error(mlpipe: object, args: list[str]) -> None:
    result = mlpipe(*args)  # type: ignore[operator]
    assert_usage_error(result, "no datastore named 'nope'", "AIRFLOW_CONN_NOPE", "known datastores: ")


def test_json_mode_gives_the_usage_error_as_json(mlpipe: object) -> None:
    result = mlpipe("runs", "list", "--limit", "abc", "--json")  # type: ignore[operator]
    assert result.code == 2 and result.err == ""
    assert json.loads(result.out) == {
        "error": "--limit 'abc' must be a whole number from 1 to 5000; write e.g. --limit 50"
    }


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["runs", "show", LONG], id="runs-show"),
        pytest.param(["runs", "show", LONG, "--json"], id="runs-show-json"),
    ],
)
def test_long_value_in_a_library_error_is_cut(mlpipe: object, args: list[str]) -> None:
    """Commands that take any id: the error made from it is one line, the value cut."""
    result = mlpipe(*args)  # type: ignore[operator]
    assert result.code == 1
    shown = json.loads(result.out)["error"] if "--json" in args else result.err.removeprefix("error: ")
    assert shown.rstrip("\n").count("\n") == 0 and " characters)" in shown
    assert len(shown) < 1000, shown[:1000]


# -- a record that cannot be read is a row -----------------------------------------------------------------------
def _register(store: Datastore, name: str) -> None:
    from airflow_mlpipe import Dataset

    store.write_text(f"data/{name}.csv", "a\n1\n")
    Dataset.File.from_files((store, f"data/{name}.csv")).register(name)


def test_datasets_list_shows_a_corrupt_record_as_a_row(mlpipe: object) -> None:
    store = Datastore.get_default()
    _register(store, "alpha")
    _register(store, "omega")
    store.write_text("_mlpipe/registry/datasets/broken/1.json", "{not json")

    listed = mlpipe("datasets", "list", "--json")  # type: ignore[operator]
    assert listed.code == 0, listed.err
    rows = {row["name"]: row for row in json.loads(listed.out)["datasets"]}
    assert sorted(rows) == ["alpha", "broken", "omega"]
    assert rows["alpha"]["latest_version"] == 1 and rows["alpha"]["error"] is None
    error = rows["broken"]["error"]
    assert "'_mlpipe/registry/datasets/broken/1.json'" in error and "is unreadable (JSONDecodeError" in error
    assert "restore it from a backup or delete it" in error and rows["broken"]["latest_version"] is None

    table = mlpipe("datasets", "list")  # type: ignore[operator]
    assert table.code == 0, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["NAME", "LATEST_VERSION", "KIND", "FILES", "SIZE", "CREATED_AT", "DESCRIPTION", "ERROR"]
    assert [line.split()[0] for line in lines[1:]] == ["alpha", "broken", "omega"]
    assert "broken/1.json" in lines[2] and "JSONDecodeError" in lines[2]


def test_runs_list_shows_a_corrupt_summary_as_a_row(mlpipe: object) -> None:
    from airflow_mlpipe.steps import records
    from airflow_mlpipe.steps.run_index import RUN_INDEX_ROOT

    store = Datastore.get_default()
    for task, started in (("one", "2026-01-01T00:00:00+00:00"), ("two", "2026-01-02T00:00:00+00:00")):
        records.write_record(
            {
                "step_run_id": f"d.r.{task}",
                "dag_id": "d",
                "run_id": "r",
                "task_id": task,
                "status": "Completed",
                "created_at": started,
            },
            store,
        )
    assert mlpipe("runs", "list", "--json").code == 0  # type: ignore[operator]
    summaries = [p for p in store.list(f"{RUN_INDEX_ROOT}/all", recursive=True) if p.endswith("d.r.one.json")]
    assert len(summaries) == 1
    store.write_text(summaries[0], "{not json")

    listed = mlpipe("runs", "list", "--json")  # type: ignore[operator]
    assert listed.code == 0, listed.err
    rows = {row["step_run_id"]: row for row in json.loads(listed.out)["runs"]}
    assert rows["d.r.two"]["status"] == "Completed" and not rows["d.r.two"].get("error")
    assert rows["d.r.one"]["status"] is None
    assert rows["d.r.one"]["error"].startswith(f"unreadable run summary {summaries[0]}: ")

    table = mlpipe("runs", "list")  # type: ignore[operator]
    assert table.code == 0 and "unreadable run summary" in table.out and "d.r.two" in table.out


UNSEALED = {"step_run_id": "d.r.t", "status": "Completed", "dag_id": "d", "task_id": "t"}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        pytest.param("{oops", "it is not JSON: Expecting property name", id="not-json"),
        pytest.param("[1, 2]", "it holds a JSON list, not an object", id="not-an-object"),
        pytest.param('"text"', "it holds a JSON string, not an object", id="a-string"),
        pytest.param(
            json.dumps({**UNSEALED, "outputs": [{}]}), "an entry of its 'outputs' has no name: {}", id="output-no-name"
        ),
        pytest.param(
            json.dumps({**UNSEALED, "inputs": ["x"]}), "its 'inputs' is ['x'], not a list of objects", id="input-str"
        ),
        pytest.param(json.dumps({**UNSEALED, "metrics": [1]}), "its 'metrics' is [1], not an object", id="metrics"),
        pytest.param(
            json.dumps({k: v for k, v in UNSEALED.items() if k != "status"}),
            "its status is None, not a status such as 'Running'",
            id="no-status",
        ),
        pytest.param(
            json.dumps({**UNSEALED, "snapshot_info": "x"}), "its 'snapshot_info' is 'x', not an object", id="snapshot"
        ),
    ],
)
def test_a_corrupt_run_record_is_one_line_and_a_row_in_the_listings(mlpipe: object, body: str, problem: str) -> None:
    """Unsealed records (older code's, in a store without the seals marker) too: one line naming the step run,
    the problem and the fix, never half a record and a traceback; ``runs reindex`` reports it and goes on, and
    the listings show it as a row with its error."""
    from airflow_mlpipe.steps import records
    from airflow_mlpipe.ui import views

    store = Datastore.get_default()
    seal_dates._SINCE.clear()
    store.write_text("_mlpipe/runs/d.r.t/record.json", body)  # before the first sealed record: older code's
    time.sleep(0.05)
    records.write_record({**UNSEALED, "step_run_id": "d.r.ok", "created_at": "2026-01-01T00:00:00+00:00"}, store)
    assert store.exists(record_seals.SEALED_MARKER)
    error = f"its record '_mlpipe/runs/d.r.t/record.json' in datastore 'mlpipe_default' is corrupt ({problem}"
    fix = "; restore it from a backup or delete it"

    shown = mlpipe("runs", "show", "d.r.t")  # type: ignore[operator]
    assert shown.code == 1 and shown.out == ""
    assert shown.err.startswith(f"error: step run d.r.t: {error}") and fix in shown.err
    assert shown.err.count("\n") == 1 and "Traceback" not in shown.err
    as_json = mlpipe("runs", "show", "d.r.t", "--json")  # type: ignore[operator]
    assert as_json.code == 1 and json.loads(as_json.out)["error"].startswith(f"step run d.r.t: {error}")
    with pytest.raises(views.NotFound) as page:  # the UI's step run page (and its files) says the same
        views.step_run(store, "d.r.t")
    assert str(page.value).startswith(f"step run d.r.t: {error}")
    explained = mlpipe("reuse", "explain", "d", "t", "--run", "d.r.t")  # type: ignore[operator]
    assert explained.code == 1 and explained.err.startswith("error: no reuse decision for step run 'd.r.t'")

    listed = mlpipe("runs", "list", "--json")  # the first listing of a store without a run index builds it
    assert listed.code == 0, listed.err
    rows = {row["step_run_id"]: row for row in json.loads(listed.out)["runs"]}
    assert rows["d.r.ok"]["status"] == "Completed" and rows["d.r.ok"]["error"] is None
    assert rows["d.r.t"]["status"] is None and rows["d.r.t"]["error"].startswith(error)
    table = mlpipe("runs", "list")  # type: ignore[operator]
    assert table.code == 0 and "d.r.ok" in table.out and "is corrupt" in table.out and "Traceback" not in table.err

    reindexed = mlpipe("runs", "reindex", "--json")  # type: ignore[operator]
    assert reindexed.code == 0, reindexed.err
    assert json.loads(reindexed.out)["indexed"] == 1
    assert [u[:90] for u in json.loads(reindexed.out)["unreadable"]] == [f"step run d.r.t: {error}"[:90]]
    reindexed = mlpipe("runs", "reindex")  # type: ignore[operator]
    assert reindexed.code == 0 and reindexed.out.startswith("indexed 1 step runs\n1 records cannot be read")
    assert f"  - step run d.r.t: {error}" in reindexed.out
    again = json.loads(mlpipe("runs", "list", "--json").out)["runs"]  # type: ignore[operator]
    assert sorted(row["step_run_id"] for row in again) == ["d.r.ok", "d.r.t"]  # no new row at each reindex


def test_the_tokens_pages_print_are_taken(mlpipe: object) -> None:
    """What the --after checks let through: the token the previous page printed, in either listing."""
    from airflow_mlpipe.steps import records

    store = Datastore.get_default()
    for task in ("one", "two", "three"):
        records.write_record(
            {"step_run_id": f"d.r.{task}", "dag_id": "d", "run_id": "r", "task_id": task, "status": "Completed",
             "created_at": "2026-01-01T00:00:00+00:00"},
            store,
        )  # fmt: skip
    for name in ("alpha", "beta", "gamma"):
        _register(store, name)
    for listing, key in ((["runs", "list", "--dag", "d"], "runs"), (["datasets", "list"], "datasets")):
        first = mlpipe(*listing, "--limit", "2", "--json")  # type: ignore[operator]
        token = json.loads(first.out)["next"]
        assert first.code == 0 and token, first.err
        rest = mlpipe(*listing, "--limit", "2", "--after", token, "--json")  # type: ignore[operator]
        assert rest.code == 0, rest.err
        assert len(json.loads(first.out)[key]) == 2 and len(json.loads(rest.out)[key]) == 1


# -- a connection that cannot be read is a row -------------------------------------------------------------------
SECRET = "Sup3rS3cretK3y"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(
            json.dumps({"conn_type": "mlpipe_datastore", "extra": '{"url": "az://c", "account_key": "' + SECRET}),
            "datastore 'broken': the connection's extra is not valid JSON",
            id="extra-not-json",
        ),
        pytest.param(
            json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": f"ftp://user:{SECRET}@host/x"}}),
            "datastore 'broken': url 'ftp://user:***@host/x' has scheme 'ftp://', which is not supported",
            id="bad-url-with-password",
        ),
        pytest.param(
            "mlpipe-datastore://?__extra__="
            + json.dumps({"url": "bogus://x", "sas_token": SECRET}).replace(" ", "").replace('"', "%22"),
            "datastore 'broken': url 'bogus://x' has scheme 'bogus://'",
            id="uri-form-bogus-scheme",
        ),
        pytest.param(
            json.dumps({"conn_type": "mlpipe_datastore", "extra": {"account_key": SECRET}}),
            "datastore 'broken': the connection has no url",
            id="no-url",
        ),
        pytest.param(
            json.dumps(
                {"conn_type": "mlpipe_datastore", "extra": {"url": "file:///x", "storage_options": f"key={SECRET}"}}
            ),
            "the storage options",
            id="bogus-storage-options",
        ),
        pytest.param('{"conn_type": "mlpipe_datastore", ', "AIRFLOW_CONN_BROKEN is not valid JSON", id="not-json"),
    ],
)
def test_datastores_list_shows_a_broken_connection_as_a_row(
    mlpipe: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str, error: str
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BROKEN", value)
    monkeypatch.setenv(
        "AIRFLOW_CONN_GOOD", json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": tmp_path.as_uri()}})
    )
    monkeypatch.setenv("AIRFLOW_CONN_PG", f"postgres://user:{SECRET}@host/db")  # not a datastore: left out

    listed = mlpipe("datastores", "list", "--json")  # type: ignore[operator]
    assert listed.code == 0, listed.err
    assert SECRET not in listed.out + listed.err
    rows = {row["name"]: row for row in json.loads(listed.out)["datastores"]}
    assert sorted(rows) == ["broken", "good", "mlpipe_default"]
    assert rows["good"]["error"] is None and rows["good"]["backend"] == "local folder"
    assert error in rows["broken"]["error"] and rows["broken"]["url"] is None

    table = mlpipe("datastores", "list")  # type: ignore[operator]
    assert table.code == 0 and SECRET not in table.out
    assert table.out.splitlines()[0].split() == ["NAME", "URL", "BACKEND", "DESCRIPTION", "ERROR"]
    assert any(line.startswith("broken") and error[:40] in line for line in table.out.splitlines())


def test_datastores_list_shows_a_broken_connection_of_the_metadata_db_as_a_row(
    mlpipe: object, airflow_db: Path
) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    extra = json.dumps({"url": f"ftp://user:{SECRET}@host/x", "account_key": SECRET})
    with create_session() as session:
        session.add(Connection(conn_id="broken_in_db", conn_type="mlpipe_datastore", extra=extra))
        # a row written under another Fernet key: Airflow fails to load it, and used to fail the whole query
        session.add(Connection(conn_id="rotated_in_db", conn_type="mlpipe_datastore", extra='{"url": "file:///x"}'))
        session.flush()
        session.query(Connection).filter(Connection.conn_id == "rotated_in_db").update(
            {Connection._password: "gAAAAAB-not-a-token", Connection.is_encrypted: True}, synchronize_session=False
        )
    try:
        listed = mlpipe("datastores", "list", "--json")  # type: ignore[operator]
    finally:
        with create_session() as session:
            session.query(Connection).filter(Connection.conn_id.in_(["broken_in_db", "rotated_in_db"])).delete()
    assert listed.code == 0, listed.err
    assert SECRET not in listed.out + listed.err
    rows = {row["name"]: row for row in json.loads(listed.out)["datastores"]}
    assert "url 'ftp://user:***@host/x' has scheme 'ftp://'" in rows["broken_in_db"]["error"], rows
    assert rows["broken_in_db"]["url"] is None and rows["mlpipe_default"]["error"] is None
    rotated = rows["rotated_in_db"]  # listed whether or not this process has a Fernet key (without one, as is)
    if rotated["error"] is not None:
        assert rotated["error"].startswith("connection 'rotated_in_db' in the metadata DB cannot be read (")
        assert "check [core] fernet_key" in rotated["error"] and rotated["url"] is None


def test_the_installed_entry_point_gives_one_line_and_exit_code_2(local_home: dict[str, str]) -> None:
    """What a shell sees: the console script's module, in its own process."""
    done = subprocess.run(
        [sys.executable, "-m", "airflow_mlpipe.cli.main", "runs", "list", "--limit", "abc"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr == "error: --limit 'abc' must be a whole number from 1 to 5000; write e.g. --limit 50\n"
    assert done.stdout == ""


class _UndecryptableRow:
    """A metadata DB row as Airflow's model gives it when its Fernet key cannot decrypt the password."""

    conn_id, conn_type, login, host = "rotated", "mlpipe_datastore", None, None

    @property
    def password(self) -> str:
        raise ValueError("Can't decrypt encrypted password, FERNET_KEY configuration is missing")

    extra = None


def test_a_connection_that_cannot_be_decrypted_is_a_row_with_its_error() -> None:
    """Before, its error emptied the whole metadata DB part of the listing (every other connection vanished)."""
    from airflow_mlpipe.storage.resolve import _read_row

    conn_id, read, secrets = _read_row(_UndecryptableRow())
    assert (conn_id, secrets) == ("rotated", []) and isinstance(read, ValueError)
    assert str(read).startswith(
        "connection 'rotated' in the metadata DB cannot be read (ValueError: Can't decrypt encrypted password, "
        "FERNET_KEY configuration is missing); if its password or extra cannot be decrypted, check [core] fernet_key"
    )
