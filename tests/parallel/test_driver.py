"""The mini-batch driver on its own: the entry-script contract and each way a script can go wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.parallel import driver

SCRIPT = """
import os, sys, time
from azureml_user.parallel_run import EntryScript
CALLS = []
def init():
    {init}
    CALLS.append(os.getpid())
def run(mini_batch):
    {run}
"""


def _drive(tmp_path: Path, *, init: str = "pass", run: str, items: int = 4, **settings: Any) -> tuple[int, str, dict]:
    batch, results = tmp_path / "batch", tmp_path / "results"
    (batch / "sub").mkdir(parents=True, exist_ok=True)
    for n in range(items):
        (batch / ("sub" if n == items - 1 else "") / f"f{n}.txt").write_text(str(n))
    script = tmp_path / "entry.py"
    script.write_text(SCRIPT.format(init=init, run=run))
    config = {"process_count_per_node": 1, "run_invocation_timeout": 5, "run_max_try": 1, "output_action": "append_row"}
    config.update(settings)
    args = [sys.executable, driver.__file__, str(script), "--mini-batch", str(batch), "--results", str(results)]
    args += ["--settings", json.dumps(config), "--", "--scale", "3"]
    context = tmp_path / "run_context.json"
    context.write_text(json.dumps({"metrics_file": str(tmp_path / "metrics.jsonl")}))
    env = {**os.environ, "MLPIPE_MAP_INDEX": "7", "MLPIPE_RUN_CONTEXT": str(context)}
    proc = subprocess.run(args, capture_output=True, text=True, env=env, timeout=60, check=False)
    summary = results / driver.SUMMARY_FILE
    return proc.returncode, proc.stdout + proc.stderr, json.loads(summary.read_text()) if summary.exists() else {}


def test_results_in_item_order_from_several_processes(tmp_path: Path) -> None:
    run = "return [f'{os.path.basename(p)} {sys.argv[1:]} {len(CALLS)}' for p in mini_batch]"
    code, out, summary = _drive(tmp_path, run=run, items=5, process_count_per_node=2)
    assert code == 0, out
    lines = (tmp_path / "results" / driver.RESULTS_FILE).read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["f0.txt", "f1.txt", "f2.txt", "f3.txt", "f4.txt"]
    assert all("['--scale', '3'] 1" in line for line in lines)  # the script's own arguments; init() once
    assert summary["index"] == 7 and summary["processes"] == 2
    assert (summary["items"], summary["succeeded"], summary["failed"]) == (5, 5, [])
    assert "mini-batch 7: 5 items, 5 done, 0 failed" in out
    metrics = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {m["name"]: m["value"] for m in metrics if m["name"].startswith("items")} == {
        "items": 5,
        "items_succeeded": 5,
        "items_failed": 0,
        "items_per_second": pytest.approx(metrics[-1]["value"]),
    }


def test_a_dataframe_result_and_output_dir(tmp_path: Path) -> None:
    run = (
        "import pandas as pd; open(os.path.join(EntryScript().output_dir, 'extra.txt'), 'w').write('x'); "
        "return pd.DataFrame({'f': [os.path.basename(p) for p in mini_batch], 'v': range(len(mini_batch))})"
    )
    code, out, _ = _drive(tmp_path, run=run, items=2)
    assert code == 0, out
    assert (tmp_path / "results" / driver.RESULTS_FILE).read_text() == "f0.txt 0\nf1.txt 1\n"
    assert (tmp_path / "results" / driver.FILES_DIR / "extra.txt").read_text() == "x"


@pytest.mark.parametrize(
    ("init", "run", "message"),
    [
        pytest.param("pass", "pass\ndel run", "defines no run(mini_batch)", id="no-run"),
        pytest.param(
            "raise RuntimeError('no model')", "return mini_batch", "init() of entry.py raised: Runtime", id="init"
        ),
        pytest.param(
            "pass", "return mini_batch\nsyntax error", "entry script entry.py failed: SyntaxError", id="syntax"
        ),
    ],
)
def test_a_script_that_cannot_score_fails_the_mini_batch(tmp_path: Path, init: str, run: str, message: str) -> None:
    code, out, summary = _drive(tmp_path, init=init, run=run)
    assert code == driver.EXIT_BAD_SCRIPT and message in out and summary == {}


@pytest.mark.parametrize(
    ("run", "settings", "error"),
    [
        pytest.param("return mini_batch[:1]", {}, "run() returned 1 results for 2 items", id="count"),
        pytest.param("return 'text'", {}, "run() returned str; return a list or a pandas DataFrame", id="type"),
        pytest.param(
            "time.sleep(10)", {"run_invocation_timeout": 1}, "within run_invocation_timeout (1s)", id="timeout"
        ),
        pytest.param(
            "raise ValueError('bad pixel')", {"run_max_try": 2}, "run() raised: ValueError: bad pixel", id="raise"
        ),
    ],
)
def test_a_failing_run_counts_its_items_as_failed(
    tmp_path: Path, run: str, settings: dict[str, Any], error: str
) -> None:
    code, out, summary = _drive(tmp_path, run=run, items=4, process_count_per_node=2, **settings)
    assert code == 0, out
    assert summary["succeeded"] == 0 and summary["failed_items"] == 4
    assert [f["item"] for f in summary["failed"]] == ["f0.txt", "f1.txt", "f2.txt", "sub/f3.txt"]
    assert all(error in f["error"] for f in summary["failed"]), summary["failed"][0]
    tries = settings.get("run_max_try", 1)
    assert out.count("try 1 of") == 2 and out.count(f"try {tries} of {tries}") == 2


def test_a_tabular_mini_batch_is_one_dataframe_and_rows_are_the_items(tmp_path: Path) -> None:
    run = "return [f'{r.a}:{r.b}' for r in mini_batch.itertuples()] if len(mini_batch) == 4 else []"
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "p0.csv").write_text("a;b\n1;x\n2;y\n")
    (batch / "p1.csv").write_text("a;b\n3;z\n4;w\n")
    settings = {"kind": "tabular", "options": {"separator": ";", "header": True}}
    code, out, summary = _drive(tmp_path, run=run, items=0, **settings)
    assert code == 0, out
    assert (tmp_path / "results" / driver.RESULTS_FILE).read_text() == "1:x\n2:y\n3:z\n4:w\n"
    assert (summary["items"], summary["files"], summary["succeeded"]) == (4, 2, 4)
