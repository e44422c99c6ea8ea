"""The v1-style example (dags_examples/ml_pipeline_v1.py) as an Airflow DAG in a folder of its own (dag.test)."""

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[3] / "dags_examples" / "ml_pipeline_v1.py"
dag = runpy.run_path(str(EXAMPLE))["pipeline_run"].dag
