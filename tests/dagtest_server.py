"""A warm ``airflow dags test``: one process per test worker imports Airflow and builds the in-process execution
API once, then forks a child per ``airflow dags test`` command.

A cold ``airflow dags test`` spent about 8 of its 12 CPU seconds before its first task ran: 3 s importing Airflow
and 5 s in cadwyn building the execution API's versioned routes at the first request. Every command here still
runs in a process of its own (a fork: its own environment, DB connections, module state, and exit), with the
output written to files, exactly as the CLI would; only the imports and the route building are shared.

Protocol: one JSON line per command on stdin (``args``, ``env``, ``cwd``, ``stdout``, ``stderr``), one JSON line
back (``returncode``). Run as ``python tests/dagtest_server.py``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import traceback
from typing import Any


def _warm() -> None:
    import airflow.cli.commands.dag_command  # noqa: F401  (what `dags test` imports)
    from airflow.sdk.execution_time.supervisor import in_process_api_server

    app = in_process_api_server().app  # cached for the life of the process, so forks inherit it built
    app._cadwyn_initialize()  # what the first request would do
    if threading.active_count() != 1:
        raise RuntimeError(f"threads running before fork: {threading.enumerate()}")


def _child(command: dict[str, Any]) -> int:
    os.environ.clear()
    os.environ.update(command["env"])
    os.chdir(command["cwd"])
    for fd, path in ((1, command["stdout"]), (2, command["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    from airflow import settings
    from airflow.__main__ import main

    settings.configure_vars()  # the DAGs folder and the DB of this command's environment
    settings.reconfigure_orm()
    sys.argv = ["airflow", *command["args"]]
    try:
        main()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


def serve() -> None:
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the server itself prints (Airflow's warnings on import) does not corrupt the replies
    _warm()
    for line in sys.stdin:
        command = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                code = _child(command)
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}) + "\n")
        replies.flush()


if __name__ == "__main__":
    serve()
