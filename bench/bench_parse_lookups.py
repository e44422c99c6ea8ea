"""Benchmark of connection lookups while a DAG file is parsed (issue 17): how many times a secrets backend is
asked for a connection per parse of a pipeline of pod steps.

    .venv/bin/python bench/bench_parse_lookups.py             # 50 pod steps, 3 datastores, 5 parses each
    .venv/bin/python bench/bench_parse_lookups.py --steps 200

Airflow's best practices forbid network calls at the top level of a DAG file; with a secrets backend such as
Vault, every connection lookup is one. The DAG file below has ``--steps`` ``PythonScriptOperator``s on
``KubernetesCompute``, each writing an output to one of three datastores. Each configuration parses it in a fresh
process through ``DagBag`` with Airflow's ``[secrets] backend`` set to ``CountingSecretsBackend`` (this module),
which counts every ``get_conn_value`` call and answers with a datastore connection on object storage:

- ``default``: the parse-time reachability check judges only connections in the environment (no lookup);
- ``check at parse``: ``MLPIPE_CHECK_DATASTORES_AT_PARSE=1``, each datastore looked up once per DAG file.

``--source DIR`` runs the same against another copy of the package (e.g. an older commit from ``git archive``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from airflow.secrets import BaseSecretsBackend

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COUNT_FILE_ENV = "MLPIPE_BENCH_LOOKUP_COUNTS"
DATASTORES = ("mlpipe_default", "features", "models")

DAG_FILE = """
import pendulum
from airflow.sdk import DAG
from airflow_mlpipe import KubernetesCompute, OutputFileDatasetConfig, PythonScriptOperator

GPU = KubernetesCompute(image="python:3.11", gpu=1, secrets=["ds"], datastore_secrets="ds", shm_size="8Gi")
with DAG("parse_lookups", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    for n in range({steps}):
        out = OutputFileDatasetConfig(f"out{{n}}", destination=({stores!r}[n % 3], f"x/{{n}}"))
        PythonScriptOperator(task_id=f"s{{n}}", script_name="t.py", source_directory=".", arguments=[out],
                             compute_target=GPU)
"""


class CountingSecretsBackend(BaseSecretsBackend):
    """A secrets backend that counts the connections asked of it (a remote one would make a request for each)."""

    def get_conn_value(self, conn_id: str, team_name: str | None = None) -> str | None:
        with open(os.environ[COUNT_FILE_ENV], "a") as counts:
            counts.write(conn_id + "\n")
        if conn_id not in DATASTORES:
            return None
        return json.dumps({"conn_type": "mlpipe_datastore", "extra": {"url": f"s3://bench-bucket/{conn_id}"}})


def parse_once(folder: Path, env: dict[str, str]) -> dict[str, Any]:
    counts = folder / "counts.txt"
    counts.write_text("")
    code = (
        "import time; from airflow.dag_processing.dagbag import DagBag; t=time.perf_counter(); "
        f"b=DagBag({str(folder / 'dags')!r}); "
        "import json; print(json.dumps({'errors': {k: v[-300:] for k, v in b.import_errors.items()}, "
        "'dags': len(b.dags), 'ms': (time.perf_counter()-t)*1000}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, COUNT_FILE_ENV: str(counts)},
        cwd=folder,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise SystemExit(f"the parse failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["lookups"] = [line for line in counts.read_text().splitlines() if line]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--parses", type=int, default=5)
    parser.add_argument("--source", type=Path, default=REPO, help="the folder holding airflow_mlpipe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "dags").mkdir()
        (folder / "dags" / "pipeline.py").write_text(DAG_FILE.format(steps=args.steps, stores=DATASTORES))
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "MLPIPE_CHECK"))}
        base.update(
            AIRFLOW__SECRETS__BACKEND="bench_parse_lookups.CountingSecretsBackend",
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            PYTHONPATH=os.pathsep.join([str(args.source), str(HERE)]),
            MLPIPE_HOME=str(folder / "mlpipe"),
        )
        configs = {"default": base, "check at parse": {**base, "MLPIPE_CHECK_DATASTORES_AT_PARSE": "1"}}
        print(
            f"{args.steps} pod steps, {len(DATASTORES)} datastores, source {args.source}, load {os.getloadavg()[0]:.1f}"
        )
        print("| configuration | connection lookups per parse | DagBag ms (median) | import errors |")
        print("|---|---|---|---|")
        for label, env in configs.items():
            runs = [parse_once(folder, env) for _ in range(args.parses)]
            lookups = sorted({len(r["lookups"]) for r in runs})
            ms = sorted(r["ms"] for r in runs)[len(runs) // 2]
            errors = sum(len(r["errors"]) for r in runs)
            print(f"| {label} | {'/'.join(map(str, lookups))} | {ms:.0f} | {errors} |")
            if errors:
                print(next(iter(runs[0]["errors"].values())))
        time.sleep(0)


if __name__ == "__main__":
    main()
