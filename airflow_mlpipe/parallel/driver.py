"""Run an entry script over one mini-batch: the process the step runner starts for a ``ParallelRunStep`` batch.

Started as ``python driver.py ENTRY_SCRIPT --mini-batch DIR --results DIR --settings JSON -- ARGS...`` by the
runner (``runner.execute``), in the step's interpreter, which may lack airflow-mlpipe: this file imports nothing
of it. The mini-batch's files are shared among ``process_count_per_node`` worker processes in order; each calls
``init()`` once, then ``run()`` on its share, under ``run_invocation_timeout``, up to ``run_max_try`` times. A
share whose ``run()`` keeps raising, times out or returns another number of results than it was given items
counts its items as failed (the gather step applies the error threshold over the whole input). A script without
``run()`` or whose ``init()`` raises fails the mini-batch: nothing of it is committed.

Writes into the results folder ``summary.json`` (items, failures with their errors, timings), ``results.txt``
(``append_row``: one line per result, in item order) and ``files/`` (what the script wrote to
``EntryScript().output_dir``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import sys
import time
import traceback
from typing import Any

SHIM = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "compat", "azureml_shim")
OUTPUT_DIR_ENV = "MLPIPE_PARALLEL_OUTPUT_DIR"
RESULTS_FILE = "results.txt"
SUMMARY_FILE = "summary.json"
FILES_DIR = "files"
EXIT_BAD_SCRIPT = 3


class EntryScriptError(Exception):
    """The entry script cannot score anything (no ``run()``, ``init()`` raised): the mini-batch fails."""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mlpipe-parallel-driver")
    parser.add_argument("entry_script")
    parser.add_argument("--mini-batch", required=True)
    parser.add_argument("--results", required=True)
    parser.add_argument("--settings", required=True)
    own, user_args = _split(argv)
    args = parser.parse_args(own)
    # The mini-batch's number is the map index: kept out of the settings, which are keyed.
    settings = {**json.loads(args.settings), "index": _int(os.environ.get("MLPIPE_MAP_INDEX"))}
    files = os.path.join(args.results, FILES_DIR)
    os.makedirs(files, exist_ok=True)
    os.environ[OUTPUT_DIR_ENV] = files
    os.environ["MLPIPE_PARALLEL_LOG_LEVEL"] = str(settings.get("logging_level") or "INFO")
    if os.path.isdir(SHIM) and SHIM not in sys.path:
        sys.path.append(SHIM)  # azureml_user.parallel_run.EntryScript, after a real SDK if there is one
    items = _items(args.mini_batch)
    started = time.monotonic()
    try:
        shares = _run_shares(args.entry_script, user_args, items, settings)
    except EntryScriptError as exc:
        _say(f"mini-batch {settings.get('index')}: {exc}")
        return EXIT_BAD_SCRIPT
    summary = _summarize(items, shares, settings, time.monotonic() - started, args.mini_batch)
    if settings.get("output_action") == "append_row":
        with open(os.path.join(args.results, RESULTS_FILE), "w", encoding="utf-8") as fh:
            for share in shares:
                fh.writelines(line + "\n" for line in share.get("lines", ()))
    with open(os.path.join(args.results, SUMMARY_FILE), "w", encoding="utf-8") as fh:
        json.dump(summary, fh, indent=1)
    _log_metrics(summary)
    _say(
        f"mini-batch {summary['index']}: {summary['items']} items, {summary['succeeded']} done, "
        f"{summary['failed_items']} failed in {summary['seconds']:.2f}s ({summary['rate']:.1f} items/s)"
    )
    return 0


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def _split(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, []


def _items(folder: str) -> list[str]:
    """The mini-batch's files, in path order (the order of the pinned manifest)."""
    found = []
    for dirpath, _, names in os.walk(folder):
        found += [os.path.join(dirpath, n) for n in names]
    return sorted(found, key=lambda p: os.path.relpath(p, folder).replace(os.sep, "/"))


def _shares(items: list[str], processes: int) -> list[list[str]]:
    count = max(1, min(processes, len(items)))
    size, extra = divmod(len(items), count)
    out, start = [], 0
    for n in range(count):
        end = start + size + (1 if n < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _run_shares(script: str, user_args: list[str], items: list[str], settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Start one worker per share and collect each share's outcome; retry failed shares up to ``run_max_try``."""
    shares = _shares(items, int(settings.get("process_count_per_node") or 1))
    outcomes: list[dict[str, Any] | None] = [None] * len(shares)
    tries = int(settings.get("run_max_try") or 1)
    for attempt in range(1, tries + 1):
        pending = [n for n, o in enumerate(outcomes) if o is None or not o["ok"]]
        if not pending:
            break
        running = {n: _Worker(script, user_args, shares[n], settings) for n in pending}
        for n, worker in running.items():
            outcomes[n] = worker.wait(float(settings.get("run_invocation_timeout") or 60))
            outcome = outcomes[n] or {}
            if not outcome.get("ok"):
                _say(f"mini-batch {settings.get('index')}: try {attempt} of {tries}: {outcome.get('error')}")
    return [{**(o or {"ok": False, "error": "no result"}), "items": s} for o, s in zip(outcomes, shares, strict=True)]


class _Worker:
    """One worker process: ``init()``, then ``run(share)``; its answer comes back through a pipe."""

    def __init__(self, script: str, user_args: list[str], share: list[str], settings: dict[str, Any]) -> None:
        context: Any = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
        self.receiver, sender = context.Pipe(duplex=False)
        self.share = share
        self.process = context.Process(target=_work, args=(sender, script, user_args, share, settings), daemon=True)
        self.process.start()
        sender.close()

    def wait(self, timeout: float) -> dict[str, Any]:
        """The worker's outcome; the timeout counts from the end of ``init()`` (it covers ``run()`` only)."""
        message = self._receive(None)
        if message.get("phase") == "init":
            message = self._receive(timeout)
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
        if message.get("fatal"):
            raise EntryScriptError(str(message["error"]))
        return message

    def _receive(self, timeout: float | None) -> dict[str, Any]:
        if self.receiver.poll(timeout):
            try:
                return dict(self.receiver.recv())
            except EOFError:
                pass
        else:
            self.process.kill()
            self.process.join()
            return {"ok": False, "error": f"run() did not return within run_invocation_timeout ({timeout:g}s)"}
        self.process.join()
        return {"ok": False, "error": f"the worker process died (exit code {self.process.exitcode})"}


def _work(sender: Any, script: str, user_args: list[str], share: list[str], settings: dict[str, Any]) -> None:
    try:
        module = _load(script, user_args)
        run = getattr(module, "run", None)
        if not callable(run):
            sender.send({"fatal": True, "error": f"entry script {os.path.basename(script)} defines no run(mini_batch)"})
            return
        init = getattr(module, "init", None)
        if callable(init):
            try:
                init()
            except BaseException:
                error = _last_words()
                sender.send({"fatal": True, "error": f"init() of {os.path.basename(script)} raised: {error}"})
                return
        sender.send({"phase": "init"})
        sender.send(_score(run, share, settings))
    except BaseException:
        sender.send({"fatal": True, "error": f"entry script {os.path.basename(script)} failed: {_last_words()}"})
    finally:
        sender.close()


def _load(script: str, user_args: list[str]) -> Any:
    sys.argv = [script, *user_args]
    folder = os.path.dirname(os.path.abspath(script))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location("mlpipe_entry_script", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _score(run: Any, share: list[str], settings: dict[str, Any]) -> dict[str, Any]:
    mini_batch: Any = _table(share, settings) if settings.get("kind") == "tabular" else list(share)
    expected = len(mini_batch)
    try:
        result = run(mini_batch)
    except BaseException:
        return {"ok": False, "count": expected, "error": f"run() raised: {_last_words()}"}
    lines = _lines(result)
    if lines is None:
        error = f"run() returned {type(result).__name__}; return a list or a pandas DataFrame"
        return {"ok": False, "count": expected, "error": error}
    if len(lines) != expected:
        error = f"run() returned {len(lines)} results for {expected} items"
        return {"ok": False, "count": expected, "error": error}
    return {"ok": True, "lines": lines if settings.get("output_action") == "append_row" else [], "count": expected}


def _table(share: list[str], settings: dict[str, Any]) -> Any:
    import pandas as pd

    options = settings.get("options") or {}
    frames = []
    for path in share:
        if options.get("format") == "parquet" or path.lower().endswith((".parquet", ".pq")):
            frames.append(pd.read_parquet(path))
        else:
            header = 0 if options.get("header", True) else None
            frames.append(pd.read_csv(path, sep=options.get("separator", ","), header=header))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _lines(result: Any) -> list[str] | None:
    """One text line per result: list elements as text, DataFrame rows with their values joined by spaces."""
    if hasattr(result, "itertuples") and hasattr(result, "columns"):
        return [" ".join(str(v) for v in row) for row in result.itertuples(index=False, name=None)]
    if isinstance(result, (list, tuple)):
        return [str(v) for v in result]
    return None


def _summarize(
    items: list[str], shares: list[dict[str, Any]], settings: dict[str, Any], seconds: float, folder: str
) -> dict[str, Any]:
    failed: list[dict[str, str]] = []
    succeeded = failed_items = 0
    for share in shares:
        count = int(share.get("count") or len(share["items"]))
        if share.get("ok"):
            succeeded += count
            continue
        failed_items += count
        error = str(share.get("error"))
        failed += [{"item": os.path.relpath(p, folder).replace(os.sep, "/"), "error": error} for p in share["items"]]
    return {
        "index": settings.get("index"),
        "input": settings.get("input"),
        "items": succeeded + failed_items,
        "files": len(items),
        "succeeded": succeeded,
        "failed_items": failed_items,
        "failed": failed,
        "seconds": round(seconds, 4),
        "rate": (len(items) / seconds) if seconds > 0 else 0.0,
        "processes": len(shares),
    }


def _log_metrics(summary: dict[str, Any]) -> None:
    """The mini-batch's figures as metrics of its step run (``run.log`` writes the same lines)."""
    context = os.environ.get("MLPIPE_RUN_CONTEXT")
    if not context or not os.path.exists(context):
        return
    with open(context, encoding="utf-8") as fh:
        metrics_file = json.load(fh).get("metrics_file")
    if not metrics_file:
        return
    figures = {
        "items": summary["items"],
        "items_succeeded": summary["succeeded"],
        "items_failed": summary["failed_items"],
        "seconds": summary["seconds"],
        "items_per_second": round(summary["rate"], 2),
    }
    with open(metrics_file, "a", encoding="utf-8") as fh:
        for name, value in figures.items():
            fh.write(json.dumps({"name": name, "kind": "scalar", "value": value}) + "\n")


def _last_words() -> str:
    kind, value, _ = sys.exc_info()
    tail = traceback.format_exc().strip().splitlines()[-3:]
    return f"{kind.__name__ if kind else 'Error'}: {value}" + ("\n" + "\n".join(tail) if tail else "")


def _say(message: str) -> None:
    sys.stdout.write(f"[mlpipe] {message}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
