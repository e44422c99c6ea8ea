"""Benchmark of step reuse (issue 5): a rerun of the example pipeline where every step is reused, against the same
DAG shape made of no-op tasks, and the reuse decision's own cost. Ratios come from the same run.

    .venv/bin/python bench/bench_reuse.py            # 5 DAG runs per contender, 200 decisions per step
    .venv/bin/python bench/bench_reuse.py --quick    # 2 DAG runs per contender, 50 decisions per step

1. Rerun: ``airflow dags test`` (a fresh process each time, temp AIRFLOW_HOME, SQLite, local default datastore) of
   ``dags_examples/ml_pipeline.py`` after one run that computed every step, so every step is a reuse hit, against
   ``bench_reuse_noop``: the same four tasks with the same dependencies and DAG param, each a ``@task`` that does
   nothing. Both DAG files sit in the same DAGs folder, so both runs parse the same files. Reported: the whole
   command's wall time, and the tasks' own time from the metadata DB (each task instance's end minus start).
2. Decision: in this process, for each of the example's three steps, the fingerprint (source scan through the stat
   cache, input identities, the key) and the decision (index entry, the outputs' markers and listings, the step's
   history), timed apart, for a hit and for a miss whose explanation names a changed parameter.

Contenders run interleaved (A, B, A, B, ...) and figures are medians: the machines are shared and noisy, so only
ratios and differences from the same run mean much.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
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

from bench_steps import base_env, med, ratio

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
EXAMPLE = "mlpipe_example_pipeline"
NOOP = "bench_reuse_noop"
STEPS = ("data_prep", "train", "compare")

NOOP_DAG = '''\
"""The example pipeline's shape (land → prep → train → compare, compare also after prep), every task a no-op."""

import pendulum
from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="bench_reuse_noop",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"learning_rate": Param(0.1, type="number"), "regenerate_outputs": Param(False, type="boolean")},
):

    @task
    def land_sample_data() -> None:
        return None

    @task
    def data_prep() -> None:
        return None

    @task
    def train() -> None:
        return None

    @task
    def compare() -> None:
        return None

    prep, fit, judge = data_prep(), train(), compare()
    land_sample_data() >> prep >> fit >> judge
    prep >> judge
'''


@dataclass
class DagRun:
    """One ``airflow dags test``: the command's wall time and, per task, its duration in the metadata DB."""

    wall: float
    tasks: dict[str, float] = field(default_factory=dict)

    @property
    def task_total(self) -> float:
        return sum(self.tasks.values())


def setup(work: Path) -> dict[str, str]:
    home = work / "home"
    dags = home / "dags"
    dags.mkdir(parents=True)
    shutil.copy(REPO / "dags_examples" / "ml_pipeline.py", dags)
    shutil.copytree(REPO / "dags_examples" / "ml_pipeline_steps", dags / "ml_pipeline_steps")
    (dags / f"{NOOP}.py").write_text(NOOP_DAG)
    env = {**base_env(home, work / "pycache"), "AIRFLOW__CORE__DAGS_FOLDER": str(dags)}
    progress("airflow db migrate (SQLite)")
    subprocess.run([PYTHON, "-m", "airflow", "db", "migrate"], capture_output=True, env=env, check=True)
    return env


def dags_test(dag_id: str, env: Mapping[str, str]) -> DagRun:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-m", "airflow", "dags", "test", dag_id], capture_output=True, text=True, env=dict(env), check=False
    )
    wall = time.perf_counter() - t0
    log = proc.stdout + proc.stderr
    if proc.returncode != 0 or "state=success" not in log:
        raise RuntimeError(f"airflow dags test {dag_id} failed ({proc.returncode}):\n{log[-5000:]}")
    return DagRun(wall, task_durations(Path(env["AIRFLOW_HOME"]) / "airflow.db", dag_id))


def task_durations(db: Path, dag_id: str) -> dict[str, float]:
    """Each task instance's end minus start in the newest run of ``dag_id``."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, start_date, end_date FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (dag_id, dag_id),
        ).fetchall()
    return {task: (_when(end) - _when(start)).total_seconds() for task, start, end in rows}


def _when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def reused_steps(env: Mapping[str, str]) -> dict[str, str]:
    """The status of each example step in the newest run, from the run records."""
    found: dict[str, str] = {}
    root = Path(env["MLPIPE_HOME"]) / "datastore" / "_mlpipe" / "runs"
    for record_file in sorted(root.glob(f"{EXAMPLE}.*/record.json"), key=lambda p: p.stat().st_mtime):
        record = json.loads(record_file.read_text())
        found[record["task_id"]] = record["status"]
    return found


def bench_rerun(env: Mapping[str, str], rounds: int) -> dict[str, list[DagRun]]:
    progress("round 0: the example computes every step; the no-op DAG writes its bytecode (not counted)")
    dags_test(EXAMPLE, env)
    dags_test(NOOP, env)
    runs: dict[str, list[DagRun]] = {EXAMPLE: [], NOOP: []}
    for n in range(1, rounds + 1):
        for dag_id in (EXAMPLE, NOOP):
            runs[dag_id].append(dags_test(dag_id, env))
        statuses = reused_steps(env)
        if any(statuses.get(step) != "Reused" for step in STEPS):
            raise RuntimeError(f"round {n}: not every step was reused: {statuses}")
        progress(f"round {n}/{rounds} done")
    return runs


# -- 2. the decision alone -------------------------------------------------------------------------------------


def bench_decision(env: Mapping[str, str], repeats: int) -> dict[str, dict[str, list[float]]]:
    """Per step: seconds for the fingerprint, a hit's decision, and a miss's decision with its explanation."""
    os.environ["MLPIPE_HOME"] = env["MLPIPE_HOME"]
    for name in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
        del os.environ[name]
    from airflow_mlpipe.reuse.decide import decide
    from airflow_mlpipe.reuse.history import StepHistory
    from airflow_mlpipe.reuse.index import ReuseIndex
    from airflow_mlpipe.reuse.step_key import fingerprint_step
    from airflow_mlpipe.steps import records
    from airflow_mlpipe.steps.snapshot import scan_source
    from airflow_mlpipe.steps.spec import StepSpec
    from airflow_mlpipe.storage.datastore import Datastore

    store = Datastore.get_default()
    index = ReuseIndex(store)
    out: dict[str, dict[str, list[float]]] = {}
    for step in STEPS:
        history = StepHistory(EXAMPLE, step, store)
        latest = history.latest()
        entry = index.get(latest.key) if latest else None
        if latest is None or entry is None:
            raise RuntimeError(f"no reuse history or index entry for step {step}")
        spec = StepSpec.from_dict(store.read_json(records.spec_path(entry.step_run_id)))
        environment = dict(latest.components["environment"])

        def fingerprint(bump: float = 0.0, spec: StepSpec = spec, environment: dict[str, Any] = environment) -> Any:
            arguments = [
                {**a, "value": a["value"] + bump} if a.get("t") == "param" else dict(a) for a in spec.arguments
            ]
            return fingerprint_step(
                script_name=spec.script_name,
                source=scan_source(str(spec.extra["source_directory"])),
                hash_paths=None,
                arguments=arguments,
                inputs=list(spec.inputs),
                outputs=list(spec.outputs),
                environment=environment,
            )

        hit_fp = fingerprint()
        if hit_fp.digest != entry.key:
            raise RuntimeError(f"step {step}: the rebuilt key {hit_fp.digest} is not the indexed {entry.key}")
        miss_fp = fingerprint(bump=1.0) if any(a.get("t") == "param" for a in spec.arguments) else None
        timings: dict[str, list[float]] = {"fingerprint": [], "decide (hit)": [], "decide (miss, explained)": []}
        for _ in range(repeats):
            timings["fingerprint"].append(_timed(fingerprint))
            hit = _timed(lambda fp=hit_fp, h=history: _check(decide(fp, step_run_id="bench", index=index, history=h)))
            timings["decide (hit)"].append(hit)
            if miss_fp is not None:
                miss = _timed(lambda fp=miss_fp, h=history: decide(fp, step_run_id="bench", index=index, history=h))
                timings["decide (miss, explained)"].append(miss)
        out[step] = timings
    return out


def _check(decision: Any) -> None:
    if not decision.hit:
        raise RuntimeError(f"expected a hit: {decision.explanation}")


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- report ----------------------------------------------------------------------------------------------------


def report_rerun(runs: dict[str, list[DagRun]]) -> list[str]:
    reused, noop = runs[EXAMPLE], runs[NOOP]
    wall_r, wall_n = med([r.wall for r in reused]), med([r.wall for r in noop])
    task_r, task_n = med([r.task_total for r in reused]), med([r.task_total for r in noop])
    lines = [
        f"### Rerun of the example pipeline, every step reused ({len(reused)} runs each; medians, seconds)",
        "",
        "| | every step reused | no-op tasks | ratio | difference |",
        "|---|---:|---:|---:|---:|",
        f"| `airflow dags test`, whole command | {wall_r:.2f} | {wall_n:.2f} | {ratio(wall_r, wall_n)} | "
        f"{wall_r - wall_n:+.2f} |",
        f"| the 4 tasks' own time (metadata DB) | {task_r:.3f} | {task_n:.3f} | {ratio(task_r, task_n)} | "
        f"{task_r - task_n:+.3f} |",
    ]
    for task in ("land_sample_data", *STEPS):
        one_r = med([r.tasks.get(task, float("nan")) for r in reused])
        one_n = med([r.tasks.get(task, float("nan")) for r in noop])
        lines.append(f"| task `{task}` | {one_r:.3f} | {one_n:.3f} | {ratio(one_r, one_n)} | {one_r - one_n:+.3f} |")
    lines += ["", f"Goal: whole command at most 1.3x the no-op DAG; measured {ratio(wall_r, wall_n)}."]
    return lines


def report_decision(timings: dict[str, dict[str, list[float]]], repeats: int) -> list[str]:
    lines = [
        f"### The reuse decision alone ({repeats} repeats per step, local default datastore; milliseconds)",
        "",
        "| step | what | median | p90 |",
        "|---|---|---:|---:|",
    ]
    for step, parts in timings.items():
        for what, values in parts.items():
            if values:
                lines.append(f"| {step} | {what} | {med(values) * 1000:.2f} | {_p90(values) * 1000:.2f} |")
    return lines


def _p90(values: Sequence[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def progress(message: str) -> None:
    print(f"[bench_reuse] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 DAG runs per contender, 50 decisions per step")
    parser.add_argument("--rounds", type=int, help="DAG runs per contender (default 5; --quick 2)")
    parser.add_argument("--repeats", type=int, help="decisions per step (default 200; --quick 50)")
    parser.add_argument("--json", type=Path, help="also write the raw samples as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (DAGs, AIRFLOW_HOME)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (2 if args.quick else 5)
    repeats = args.repeats or (50 if args.quick else 200)
    work = Path(tempfile.mkdtemp(prefix="mlpipe-bench-reuse-"))
    print(
        f"Machine: {len(os.sched_getaffinity(0))} CPUs, Python {sys.version.split()[0]}, load average "
        f"{os.getloadavg()[0]:.1f} at start; {time.strftime('%Y-%m-%d %H:%M')}",
        flush=True,
    )
    try:
        env = setup(work)
        runs = bench_rerun(env, rounds)
        print("\n" + "\n".join(report_rerun(runs)), flush=True)
        timings = bench_decision(env, repeats)
        print("\n" + "\n".join(report_decision(timings, repeats)), flush=True)
        print(f"\nLoad average at the end: {os.getloadavg()[0]:.1f}.")
        if args.json is not None:
            raw = {"rerun": {k: [vars(r) for r in v] for k, v in runs.items()}, "decision": timings}
            args.json.write_text(json.dumps(raw, indent=1))
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
