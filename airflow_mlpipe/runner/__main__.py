"""``python -m airflow_mlpipe.runner --spec _mlpipe/runs/<step_run_id>/spec.json``"""

from __future__ import annotations

import argparse
import sys

from airflow_mlpipe.exceptions import DatastoreAccessError, TamperedRecordError
from airflow_mlpipe.runner.execute import run_step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m airflow_mlpipe.runner", description=__doc__)
    parser.add_argument("--spec", required=True, help="path of the step spec in the default datastore")
    parser.add_argument("--python", help="the interpreter of the script (a cached virtualenv's, on local compute)")
    args = parser.parse_args(argv)
    try:
        return run_step(args.spec, python=args.python)
    except (DatastoreAccessError, TamperedRecordError) as exc:  # the message names the file or store and the fix
        print(f"step runner: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
