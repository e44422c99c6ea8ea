"""Benchmark of script steps (issue 4): DAG-file parse time and per-step overhead, as ratios in one run.

    .venv/bin/python bench/bench_steps.py            # 200 steps; 7 parse rounds, 5 DAG runs each (about 12 min)
    .venv/bin/python bench/bench_steps.py --quick    # 3 parse rounds, 2 DAG runs each (about 5 min)

1. Parse: a DAG file of ``--steps`` ``PythonScriptOperator``s (each reads the previous step's
   ``OutputFileDatasetConfig`` through ``.as_input()``, the first a tabular dataset, every one a
   ``PipelineParameter``) against the same DAG built from ``BashOperator``s chained with ``>>`` and a DAG ``Param``.
   Each file sits alone in a temp folder and is parsed in a fresh process the way the DAG processor does it
   (Airflow loaded, the file's ``airflow.*`` imports pre-imported, ``gc.freeze()``, then ``DagBag(folder)`` and
   ``DagSerialization.to_dict``); again with the file's own imports timed apart; and in a bare process.
2. Per-step overhead: ``airflow dags test`` (fresh process, temp AIRFLOW_HOME, SQLite) of a one-task DAG whose task
   is a ``PythonOperator`` calling a function that does nothing, or a script step running an empty script (bare,
   and with a parameter, a dataset input and an output). Phases are read from outside the product: the task log's
   timestamps, the run record's ``started_at``, the mtimes of what the step writes to the datastore, and the XCom
   rows' timestamps in the metadata DB.

Contenders run interleaved (A, B, A, B, ...) and figures are medians: the machines are shared and noisy, so only
ratios and differences from the same run mean much (CPU seconds, also shown for the parse, are steadier than wall).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
START_DATE = 'pendulum.datetime(2026, 1, 1, tz="UTC")'

# -- 1. parse time -------------------------------------------------------------------------------------------------

MLPIPE_DAG = '''\
"""{steps} script steps chained through outputs, with a dataset input and a pipeline parameter."""

import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Dataset, Datastore, OutputFileDatasetConfig, PipelineParameter, PythonScriptOperator

with DAG(dag_id="bench_mlpipe", schedule=None, start_date={start}, catchup=False):
    raw = Dataset.Tabular.from_delimited_files(path=(Datastore.get_default(), "samples/bench/*.csv"))
    learning_rate = PipelineParameter(name="learning_rate", default_value=0.1)
    previous = raw.as_named_input("raw").as_download()
    for n in range({steps}):
        output = OutputFileDatasetConfig(name=f"out_{{n}}")
        PythonScriptOperator(
            task_id=f"step_{{n}}",
            script_name="step.py",
            source_directory={source!r},
            arguments=["--input", previous, "--output", output, "--learning-rate", learning_rate],
        )
        previous = output.as_input()
'''

BASH_DAG = '''\
"""{steps} BashOperators chained with >>, with a DAG param: the shape of the script-step DAG."""

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

with DAG(
    dag_id="bench_bash",
    schedule=None,
    start_date={start},
    catchup=False,
    params={{"learning_rate": Param(0.1, type="number"), "regenerate_outputs": Param(False, type="boolean")}},
):
    previous_task = None
    previous = "samples/bench/input.csv"
    for n in range({steps}):
        output = f"dataset/out_{{n}}"
        task = BashOperator(
            task_id=f"step_{{n}}",
            bash_command=(
                f"python {source}/step.py --input {{previous}} --output {{output}} "
                "--learning-rate {{{{ params.learning_rate }}}}"
            ),
        )
        if previous_task is not None:
            previous_task >> task
        previous_task, previous = task, output
'''

# Runs in a fresh process: ``python -c PARSE_CODE FOLDER MODE [STATEMENT ...]``. Airflow is imported first (the DAG
# processor has it loaded). MODE "processor" then does what the DAG processor does before it forks a file's parser:
# import the ``airflow.*`` modules the file names (``parsing_pre_import_modules``) and ``gc.freeze()``; MODE "plain"
# does neither. Then the statements (the DAG file's own imports, to time them apart), ``DagBag(FOLDER)`` and
# ``DagSerialization.to_dict`` of each DAG. Full (generation 2) garbage collections during ``DagBag`` are counted.
PARSE_CODE = """\
import gc, importlib, json, os, sys, time
def clock():
    return time.perf_counter(), time.process_time()
marks = [("start", clock())]
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
from airflow.utils.file import iter_airflow_imports
folder, mode = sys.argv[1], sys.argv[2]
if mode == "processor":
    for name in sorted(os.listdir(folder)):
        for module in iter_airflow_imports(os.path.join(folder, name)):
            importlib.import_module(module)
    gc.freeze()
marks.append(("airflow", clock()))
heavy = ("fsspec", "pandas", "pyarrow", "numpy", "adlfs", "s3fs", "kubernetes", "docker", "typer", "xxhash")
before, namespace = set(sys.modules), {}
for stmt in sys.argv[3:]:
    exec(stmt, namespace)
    marks.append((stmt, clock()))
full_gc = []
def on_gc(phase, info):
    if info["generation"] == 2:
        full_gc.append(time.process_time())
gc.callbacks.append(on_gc)
bag = DagBag(folder)
gc.callbacks.remove(on_gc)
marks.append(("dagbag", clock()))
loaded = set(sys.modules) - before
for dag in bag.dags.values():
    DagSerialization.to_dict(dag)
marks.append(("serialize", clock()))
print(json.dumps({
    "wall": {b[0]: b[1][0] - a[1][0] for a, b in zip(marks, marks[1:])},
    "cpu": {b[0]: b[1][1] - a[1][1] for a, b in zip(marks, marks[1:])},
    "full_gc": [full_gc[i + 1] - full_gc[i] for i in range(0, len(full_gc) - 1, 2)],
    "tasks": sum(len(d.tasks) for d in bag.dags.values()),
    "errors": list(bag.import_errors.values()),
    "modules": len(loaded),
    "heavy": sorted(m for m in heavy if m in loaded),
}))
"""

# What each DAG file meets before its tasks, in order (``pendulum`` and ``airflow.sdk.DAG`` are common to both).
IMPORTS = {
    "bash": (
        "import pendulum; from airflow.sdk import DAG, Param",
        "from airflow.providers.standard.operators.bash import BashOperator",
    ),
    "mlpipe": (
        "import pendulum; from airflow.sdk import DAG",
        "from airflow_mlpipe import PythonScriptOperator",
        "from airflow_mlpipe import OutputFileDatasetConfig, PipelineParameter",
        "from airflow_mlpipe import Dataset, Datastore",
        "Datastore.get_default()",
    ),
}


def base_env(airflow_home: Path, pycache: Path) -> dict[str, str]:
    """The caller's environment without its Airflow and mlpipe settings, pointed at a temp AIRFLOW_HOME.

    Bytecode is cached (in ``pycache``, not in the venv) even where PYTHONDONTWRITEBYTECODE is set: a deployed
    Airflow has bytecode, and without it every fresh process spends seconds compiling Airflow.
    """
    skip = ("AIRFLOW", "_AIRFLOW", "MLPIPE", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(
        {
            "AIRFLOW_HOME": str(airflow_home),
            "MLPIPE_HOME": str(airflow_home / "mlpipe"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "dags"),
            "PYTHONPYCACHEPREFIX": str(pycache),
            "PYTHONPATH": str(REPO),
        }
    )
    return env


def run_json(args: Sequence[str], env: Mapping[str, str]) -> dict[str, Any]:
    proc = subprocess.run([PYTHON, *args], capture_output=True, text=True, env=dict(env), cwd=REPO, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{args[:2]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


MODES = ("processor", "plain", "split")


@dataclass
class ParseSamples:
    """Per mode, one entry per round. ``processor``: parsed as the DAG processor does; ``plain``: ``DagBag`` in a
    fresh process and nothing else; ``split``: as ``processor``, with the DAG file's own imports timed apart."""

    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {m: [] for m in MODES})
    modules: int = 0
    heavy: list[str] = field(default_factory=list)

    def values(self, mode: str, clock: str, *names: str) -> list[float]:
        return [sum(r[clock][n] for n in names) for r in self.rounds[mode]]

    def full_gcs(self, mode: str) -> list[float]:
        """Seconds of CPU in full garbage collections during ``DagBag``, per round."""
        return [sum(r["full_gc"]) for r in self.rounds[mode]]


def bench_parse(work: Path, steps: int, rounds: int) -> dict[str, ParseSamples]:
    source = work / "parse-src"
    source.mkdir(parents=True)
    (source / "step.py").write_text("")
    env = base_env(work / "parse-home", work / "pycache")
    templates = {"bash": BASH_DAG, "mlpipe": MLPIPE_DAG}
    for kind, template in templates.items():
        folder = work / f"dags-{kind}"
        folder.mkdir()
        (folder / f"bench_{kind}.py").write_text(template.format(steps=steps, source=str(source), start=START_DATE))
    samples = {kind: ParseSamples() for kind in templates}
    for n in range(rounds + 1):  # round 0 writes bytecode and warms the page cache; not counted
        for mode in MODES:
            for kind in templates:
                dags = str(work / f"dags-{kind}")
                statements = IMPORTS[kind] if mode == "split" else ()
                out = run_json(["-c", PARSE_CODE, dags, "plain" if mode == "plain" else "processor", *statements], env)
                if out["errors"] or out["tasks"] != steps:
                    raise RuntimeError(f"the {kind} DAG did not parse to {steps} tasks: {out}")
                if n:
                    samples[kind].rounds[mode].append(out)
                if mode == "split":
                    samples[kind].modules, samples[kind].heavy = out["modules"], out["heavy"]
        progress(f"parse round {n}/{rounds} done")
    return samples


# -- 2. per-step overhead ------------------------------------------------------------------------------------------

PYTHON_STEP_DAG = """\
import pendulum
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG


def nothing() -> None:
    pass


with DAG(dag_id="bench_python", schedule=None, start_date={start}, catchup=False):
    PythonOperator(task_id="step", python_callable=nothing)
"""

SCRIPT_STEP_DAG = """\
import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import PythonScriptOperator

with DAG(dag_id="bench_script", schedule=None, start_date={start}, catchup=False):
    PythonScriptOperator(task_id="step", script_name="noop.py", source_directory={source!r}, allow_reuse=False)
"""

SCRIPT_IO_STEP_DAG = """\
import pendulum
from airflow.sdk import DAG

from airflow_mlpipe import Dataset, Datastore, OutputFileDatasetConfig, PipelineParameter, PythonScriptOperator

with DAG(dag_id="bench_script_io", schedule=None, start_date={start}, catchup=False):
    data = Dataset.File.from_files(path=(Datastore.get_default(), "samples/bench/input.csv"))
    PythonScriptOperator(
        task_id="step",
        script_name="noop.py",
        source_directory={source!r},
        arguments=[
            "--input", data.as_named_input("data").as_download(),
            "--output", OutputFileDatasetConfig(name="out"),
            "--learning-rate", PipelineParameter(name="learning_rate", default_value=0.1),
        ],
        allow_reuse=False,
    )
"""

STEP_DAGS = {"python": PYTHON_STEP_DAG, "script": SCRIPT_STEP_DAG, "script_io": SCRIPT_IO_STEP_DAG}
STEP_LABELS = {
    "python": "PythonOperator, nothing",
    "script": "script step, empty script",
    "script_io": "script step + param, dataset in, output",
}

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+)Z ")
_STEP_RUN = re.compile(r"Running step (\S+) on the Airflow worker")


def _epoch(iso: str) -> float:
    return dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def log_events(text: str) -> list[tuple[float, str]]:
    events = []
    for line in text.splitlines():
        m = _STAMP.match(line)
        if m:
            events.append((_epoch(m.group(1) + "+00:00"), line[m.end() :]))
    return events


def first(events: list[tuple[float, str]], needle: str, after: float = 0.0) -> float:
    for stamp, message in events:
        if stamp >= after and needle in message:
            return stamp
    raise LookupError(f"no log line with {needle!r}")


def line_after(events: list[tuple[float, str]], needle: str) -> float:
    """The time of the line after the first one holding ``needle``."""
    for n, (_, message) in enumerate(events):
        if needle in message:
            return events[n + 1][0]
    raise LookupError(f"no log line with {needle!r}")


# Instants of a script step's ``execute``, in order, each with the phase that ends there. Log lines, the run record's
# ``started_at`` and the mtimes of what the step writes to the (local) datastore tell them apart from outside. A phase
# whose end was not seen (a bare step commits no output; a marker the product stopped logging) merges into the next.
SCRIPT_INSTANTS: tuple[tuple[str, str], ...] = (
    ("decided", "plan and reuse decision (source scan, fingerprint, history)"),
    ("snapshot", "snapshot upload"),
    ("spec_written", "step spec (git info, datastores, write)"),
    ("launch", "launch"),
    ("runner_started", "runner start (interpreter, imports, spec read)"),
    ("script_started", "runner prepare (record, snapshot fetch, inputs, outputs)"),
    ("commit_started", "script (empty), metrics, artifacts"),
    ("committed", "commit outputs (manifest, completion marker)"),
    ("log_uploaded", "log upload"),
    ("record_written", "final run record"),
    ("first_xcom", "runner exit, read record, first XCom (record link)"),
    ("step_xcoms", "more XComs (outputs, metrics)"),
    ("indexed", "reuse index"),
    ("execute_done", "the rest of execute"),
)
AIRFLOW_PHASES: tuple[tuple[str, str, str], ...] = (
    ("DAG file import and parse", "parse_start", "parse_end"),
    ("task start to execute", "task_started", "execute"),
    ("execute", "execute", "execute_done"),
    ("after execute to task end", "execute_done", "task_end"),
)


def xcom_times(db: Path, dag_id: str, start: float, end: float) -> list[tuple[str, float]]:
    """(key, time) of the XComs the task wrote, from the metadata DB (SQLite keeps naive UTC timestamps)."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT key, timestamp FROM xcom WHERE dag_id = ?", (dag_id,)).fetchall()
    found = [(str(key), _epoch(str(stamp).replace(" ", "T") + "+00:00")) for key, stamp in rows]
    return sorted(((k, t) for k, t in found if start <= t <= end), key=lambda kt: kt[1])


def step_instants(log: str, store_root: Path, xcoms: list[tuple[str, float]]) -> dict[str, float]:
    events = log_events(log)
    started = first(events, "Task started")
    t = {
        "parse_start": first(events, "Filling up the DagBag"),
        "parse_end": line_after(events, "Filling up the DagBag"),
        "task_started": started,
        "execute": first(events, "::endgroup::", started),
        "execute_done": first(events, "::group::Post Execute", started),
        "task_end": first(events, "[DAG TEST] end task", started),
    }
    m = _STEP_RUN.search(log)
    if m is None:  # a PythonOperator
        return t
    run_folder = store_root / "_mlpipe" / "runs" / m.group(1)
    record = json.loads((run_folder / "record.json").read_text())
    if record.get("status") != "Completed":
        raise RuntimeError(f"the script step did not complete: {record.get('error')}")
    with contextlib.suppress(LookupError):
        t["decided"] = first(events, "Reuse ", started)
    t["snapshot"] = first(events, "Source snapshot", started)
    t["spec_written"] = (run_folder / "spec.json").stat().st_mtime
    t["launch"] = first(events, "Running step", started)
    t["runner_started"] = _epoch(record["started_at"])
    t["script_started"] = first(events, "[mlpipe] running", started)
    for output in record.get("outputs", [])[:1]:
        dest = store_root / output["path"]
        t["commit_started"] = dest.parent.stat().st_mtime  # the staging folder renamed into place
        t["committed"] = (dest / "_MLPIPE_COMPLETE").stat().st_mtime
    t["log_uploaded"] = max(p.stat().st_mtime for p in (run_folder / "logs").glob("*.txt"))
    t["record_written"] = (run_folder / "record.json").stat().st_mtime
    pushed = [stamp for key, stamp in xcoms if key.startswith("mlpipe_") and stamp <= t["execute_done"]]
    if pushed:
        t["first_xcom"], t["step_xcoms"] = pushed[0], pushed[-1]
    index = [p.stat().st_mtime for p in (store_root / "_mlpipe" / "reuse").glob("*.json")]
    written = [m for m in index if t["record_written"] <= m <= t["execute_done"]]
    if written:
        t["indexed"] = max(written)
    return t


@dataclass
class StepRun:
    wall: float
    instants: dict[str, float]
    xcoms: list[str]

    def phase(self, start: str, end: str) -> float:
        return self.instants[end] - self.instants[start]

    def script_phases(self) -> dict[str, tuple[float, bool]]:
        """Each script-step phase whose end was seen: (seconds, whether it holds phases whose end was not)."""
        out, previous, merged = {}, "execute", False
        for instant, label in SCRIPT_INSTANTS:
            if instant in self.instants:
                out[label] = (self.phase(previous, instant), merged)
                previous, merged = instant, False
            else:
                merged = True
        return out

    @property
    def per_step(self) -> float:
        """What a step costs a worker: its DAG file's import and parse, and the task from start to end."""
        return self.phase("parse_start", "parse_end") + self.phase("task_started", "task_end")


def setup_step_home(work: Path) -> tuple[dict[str, dict[str, str]], Path]:
    home = work / "step-home"
    source = work / "step-src"
    source.mkdir(parents=True)
    (source / "noop.py").write_text("")
    # Real step folders live in git repositories: the snapshot records commit, branch and dirty state.
    git = ["git", "-C", str(source), "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "noop.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "noop"], check=True)
    store_root = home / "mlpipe" / "datastore"
    (store_root / "samples" / "bench").mkdir(parents=True)
    (store_root / "samples" / "bench" / "input.csv").write_text("a,b\n1,2\n")
    envs = {}
    for kind, template in STEP_DAGS.items():
        folder = home / f"dags-{kind}"
        folder.mkdir(parents=True)
        (folder / f"bench_{kind}.py").write_text(template.format(source=str(source), start=START_DATE))
        envs[kind] = {**base_env(home, work / "pycache"), "AIRFLOW__CORE__DAGS_FOLDER": str(folder)}
    progress("airflow db migrate (SQLite)")
    migrate = subprocess.run(
        [PYTHON, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, env=envs["python"], check=False
    )
    if migrate.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout[-3000:]}\n{migrate.stderr[-3000:]}")
    return envs, store_root


def dags_test(kind: str, env: Mapping[str, str], store_root: Path) -> StepRun:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-m", "airflow", "dags", "test", f"bench_{kind}"],
        capture_output=True,
        text=True,
        env=dict(env),
        cwd=REPO,
        check=False,
    )
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "state=success" not in log:
        raise RuntimeError(f"airflow dags test bench_{kind} failed ({proc.returncode}):\n{log[-5000:]}")
    events = log_events(log)
    window = (first(events, "Task started"), first(events, "[DAG TEST] end task"))
    xcoms = xcom_times(Path(env["AIRFLOW_HOME"]) / "airflow.db", f"bench_{kind}", *window)
    return StepRun(wall, step_instants(log, store_root, xcoms), [key for key, _ in xcoms])


def bench_step(work: Path, rounds: int) -> tuple[dict[str, list[StepRun]], dict[str, list[float]]]:
    envs, store_root = setup_step_home(work)
    runs: dict[str, list[StepRun]] = {kind: [] for kind in STEP_DAGS}
    for n in range(rounds + 1):  # round 0 uploads the snapshot and writes bytecode; not counted
        for kind in STEP_DAGS:
            run = dags_test(kind, envs[kind], store_root)
            if n:
                runs[kind].append(run)
        progress(f"step round {n}/{rounds} done")
    return runs, standalone(work, envs["script"], store_root)


def standalone(work: Path, env: Mapping[str, str], store_root: Path) -> dict[str, list[float]]:
    """Pieces of the runner's time measured alone: the interpreter, the runner's imports, a whole runner."""
    spec = sorted(store_root.glob("_mlpipe/runs/bench_script.*/spec.json"))[-1]
    # The datastore as the worker hands it to the runner (``launch_env``): no Airflow lookup in the runner.
    default = {"conn_type": "mlpipe_datastore", "extra": {"url": store_root.as_uri()}}
    runner_env = {**env, "AIRFLOW_CONN_MLPIPE_DEFAULT": json.dumps(default)}
    runner = [PYTHON, "-m", "airflow_mlpipe.runner", "--spec", spec.relative_to(store_root).as_posix()]
    commands: dict[str, list[str]] = {
        "python, empty script": [PYTHON, str(work / "step-src" / "noop.py")],
        "python -c 'import airflow_mlpipe.runner.execute'": [PYTHON, "-c", "import airflow_mlpipe.runner.execute"],
        "runner on a bare step's spec (no Airflow)": runner,
    }
    out: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(7):
        for name, cmd in commands.items():
            t0 = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=runner_env, cwd=work, check=True)
            out[name].append(time.perf_counter() - t0)
    return out


# -- report --------------------------------------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio(value: float, base: float, digits: int = 2) -> str:
    """``value / base`` as "1.23x"; "-" for a base under a millisecond (nothing to compare with)."""
    return f"{value / base:.{digits}f}x" if base >= 0.001 else "-"


def spread(values: Sequence[float]) -> str:
    return f"{min(values):.3f}-{max(values):.3f}" if values else "-"


def report_parse(samples: dict[str, ParseSamples], steps: int) -> list[str]:
    bash, ml = samples["bash"], samples["mlpipe"]
    lines = [
        f"### DAG-file parse: {steps} steps (a fresh process per parse; medians, seconds)",
        "",
        "As the DAG processor parses a file: Airflow loaded, the file's `airflow.*` imports pre-imported, "
        "`gc.freeze()`, then `DagBag(folder)` and `DagSerialization.to_dict`.",
        "",
        "| | BashOperator DAG | script-step DAG | ratio |",
        "|---|---:|---:|---:|",
    ]

    def add(label: str, a_values: list[float], b_values: list[float]) -> None:
        a, b = med(a_values), med(b_values)
        lines.append(f"| {label} | {a:.3f} | {b:.3f} | {ratio(b, a)} |")

    def row(label: str, mode: str, clock: str, *names: str) -> None:
        add(label, bash.values(mode, clock, *names), ml.values(mode, clock, *names))

    row("**`DagBag(folder)`, wall** (goal <= 1.5x)", "processor", "wall", "dagbag")
    row("`DagBag(folder)`, CPU", "processor", "cpu", "dagbag")
    row("`DagBag` + serialization (the processor's whole parse), wall", "processor", "wall", "dagbag", "serialize")
    row("`DagBag` + serialization, CPU", "processor", "cpu", "dagbag", "serialize")
    for clock in ("wall", "CPU"):
        c = clock.lower()
        # the statements each file has of its own (pendulum and airflow.sdk are common to both)
        add(
            f"of which the DAG file's own imports, {clock}",
            bash.values("split", c, *IMPORTS["bash"][1:]),
            ml.values("split", c, *IMPORTS["mlpipe"][1:]),
        )
        row(f"of which the DAG body, {steps} tasks, {clock}", "split", c, "dagbag")
    row("serialization alone, wall", "processor", "wall", "serialize")
    lines += [
        "",
        "The same in a bare fresh process (no pre-import, no `gc.freeze()`): one full garbage collection over "
        "Airflow's objects may land in the file's parse, whichever file crosses the collector's threshold.",
        "",
        "| | BashOperator DAG | script-step DAG | ratio |",
        "|---|---:|---:|---:|",
    ]
    row("`DagBag(folder)`, wall", "plain", "wall", "dagbag")
    row("`DagBag(folder)`, CPU", "plain", "cpu", "dagbag")
    add("of which full garbage collections, CPU", bash.full_gcs("plain"), ml.full_gcs("plain"))
    lines += [
        "",
        f"Airflow's own import before all this (not in the figures): "
        f"{med(bash.values('plain', 'wall', 'airflow') + ml.values('plain', 'wall', 'airflow')):.2f} s wall. "
        f"Processor-style `DagBag` wall, min-max: BashOperator {spread(bash.values('processor', 'wall', 'dagbag'))}, "
        f"script steps {spread(ml.values('processor', 'wall', 'dagbag'))}.",
        "",
        "| what each DAG file runs before its tasks, in order (`airflow.*` pre-imported) | wall s | CPU s |",
        "|---|---:|---:|",
    ]
    for kind, s in samples.items():
        for stmt in IMPORTS[kind]:
            lines.append(
                f"| {kind}: `{stmt}` | {med(s.values('split', 'wall', stmt)):.3f} "
                f"| {med(s.values('split', 'cpu', stmt)):.3f} |"
            )
    lines += [
        "",
        f"Modules the script-step DAG file loads itself at each parse: {ml.modules} (the BashOperator DAG: "
        f"{bash.modules}); heavy ones: {', '.join(ml.heavy) or 'none'}.",
    ]
    return lines


def report_step(runs: dict[str, list[StepRun]], alone: dict[str, list[float]]) -> list[str]:
    kinds = list(STEP_DAGS)
    lines = [
        "### One step in `airflow dags test` (fresh process, SQLite; medians, seconds)",
        "",
        "| | " + " | ".join(STEP_LABELS[k] for k in kinds) + " |",
        "|---|" + "---:|" * len(kinds),
    ]

    def medians(get: Callable[[StepRun], float]) -> list[float]:
        return [med([get(r) for r in runs[k]]) for k in kinds]

    def row(label: str, values: list[float], fmt: str = "{:.3f}") -> None:
        lines.append(f"| {label} | {' | '.join(fmt.format(v) for v in values)} |")

    def phase(start: str, end: str) -> Callable[[StepRun], float]:
        return lambda r: r.phase(start, end)

    row("`airflow dags test` wall", medians(lambda r: r.wall))
    for label, start, end in AIRFLOW_PHASES:
        row(label, medians(phase(start, end)))
    per_step = medians(lambda r: r.per_step)
    row("**per step: DAG file parse + task start to end**", per_step)
    row("**extra per step vs PythonOperator** (goal < 2 s)", [v - per_step[0] for v in per_step], "{:+.3f}")
    lines.append(
        "| per step, ratio to PythonOperator | " + " | ".join(ratio(v, per_step[0], 1) for v in per_step) + " |"
    )
    walls = medians(lambda r: r.wall)
    lines.append("| `airflow dags test` wall, ratio | " + " | ".join(ratio(v, walls[0]) for v in walls) + " |")
    row("XComs the task writes", medians(lambda r: len(r.xcoms)), "{:.0f}")
    keys = sorted({key for r in runs[kinds[-1]] for key in r.xcoms})
    lines += [
        "",
        f"XComs of a script step: {', '.join(keys) or 'none'} (each a round trip to the execution API and a "
        "metadata DB write).",
        "",
        "### Where a script step's `execute` goes (medians, seconds)",
        "",
        "| phase | " + " | ".join(STEP_LABELS[k] for k in kinds[1:]) + " |",
        "|---|" + "---:|" * (len(kinds) - 1),
    ]
    for _, label in SCRIPT_INSTANTS:
        cells = []
        for kind in kinds[1:]:
            values = [v for v in (r.script_phases().get(label) for r in runs[kind]) if v is not None]
            star = "*" if any(merged for _, merged in values) else ""
            cells.append(f"{med([v for v, _ in values]):.3f}{star}" if values else "-")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += [
        "",
        "\\* includes the phases above it shown as -: their end leaves no trace in that step.",
        "",
        "| measured alone (fresh processes, medians of 7) | seconds |",
        "|---|---:|",
    ]
    for name, times in alone.items():
        lines.append(f"| {name} | {med(times):.3f} |")
    return lines


def progress(message: str) -> None:
    print(f"[bench_steps] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 parses and 2 DAG runs per contender")
    parser.add_argument("--steps", type=int, default=200, help="steps in the parse benchmark's DAGs")
    parser.add_argument("--rounds", type=int, help="repetitions (default 7 parses and 5 runs; --quick 3 and 2)")
    parser.add_argument("--only", choices=["parse", "step"], help="run one of the two benchmarks")
    parser.add_argument("--json", type=Path, help="also write the raw samples as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (DAG files, AIRFLOW_HOME)")
    args = parser.parse_args(argv)
    parse_rounds = args.rounds or (3 if args.quick else 7)
    step_rounds = args.rounds or (2 if args.quick else 5)

    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-steps-"))
    raw: dict[str, Any] = {}
    print(
        f"Machine: {len(os.sched_getaffinity(0))} CPUs, Python {sys.version.split()[0]}, load average "
        f"{os.getloadavg()[0]:.1f} at start; {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    try:
        if args.only in (None, "parse"):
            parsed = bench_parse(work, args.steps, parse_rounds)
            raw["parse"] = {k: vars(v) for k, v in parsed.items()}
            save(args.json, raw)
            print("\n" + "\n".join(report_parse(parsed, args.steps)), flush=True)
        if args.only in (None, "step"):
            runs, alone = bench_step(work, step_rounds)
            raw["step"] = {k: [vars(r) for r in v] for k, v in runs.items()}
            raw["alone"] = alone
            save(args.json, raw)
            print("\n" + "\n".join(report_step(runs, alone)), flush=True)
        print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}.")
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


def save(path: Path | None, raw: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    sys.exit(main())
