"""What an attempt commits and hands over: an empty output to register commits nothing, a failed registration
leaves every output without its completion marker, the script never sees the registry key, a consumer cannot
write into a producer's committed files, and two step runs never write one fixed destination at once. The runner
runs in this process (its script in a subprocess), on the local store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.datasets.registry import REGISTRY_ROOT, DatasetRegistry
from airflow_mlpipe.datasets.seal import SEAL_KEY_ENV
from airflow_mlpipe.exceptions import DatastoreAccessError
from airflow_mlpipe.runner import execute
from airflow_mlpipe.runner.claims import DestinationClaim, DestinationClaimedError, check_claim, claim, claim_path
from airflow_mlpipe.runner.inputs import materialize_inputs
from airflow_mlpipe.runner.outputs import prepare_outputs, stage
from airflow_mlpipe.steps import records
from airflow_mlpipe.steps.finish import RegistrationFailedError, finish_committed
from airflow_mlpipe.steps.snapshot import scan_source, store_snapshot
from airflow_mlpipe.steps.spec import StepSpec
from airflow_mlpipe.storage import resolve
from airflow_mlpipe.storage.datastore import Datastore

SCRIPT = """
import os, sys
model, extra = sys.argv[1], sys.argv[2]
if sys.argv[3] == "write":
    with open(os.path.join(model, "weights.txt"), "w") as fh:
        fh.write(os.environ.get("MLPIPE_REGISTRY_KEY", "no key"))
    with open(os.path.join(extra, "notes.txt"), "w") as fh:
        fh.write("notes")
"""


@pytest.fixture(autouse=True)
def _runner_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's SIGTERM/SIGINT handlers would outlive it here: pytest keeps its own."""
    monkeypatch.setattr(execute, "install_signal_handlers", lambda process: None)


def _spec(store: Datastore, tmp_path: Path, run: str, script: str = SCRIPT) -> StepSpec:
    """A step with two outputs, ``model`` registered as dataset ``guarded``, ``extra`` not."""
    outputs = tuple(
        {"name": name, "datastore": store.name, "path": f"out/{run}/{name}", "path_template": "out/{run-id}",
         "mode": "mount", "registration": {"name": "guarded", "description": "", "tags": {}} if name == "model"
         else None}
        for name in ("model", "extra")
    )  # fmt: skip
    arguments = ({"t": "output", "name": "model"}, {"t": "output", "name": "extra"}, {"t": "str", "v": run})
    return _step(store, tmp_path, run, script, outputs=outputs, arguments=arguments)


def _step(
    store: Datastore,
    tmp_path: Path,
    run: str,
    script: str,
    *,
    outputs: tuple[dict[str, Any], ...],
    arguments: tuple[dict[str, Any], ...],
    inputs: tuple[dict[str, Any], ...] = (),
) -> StepSpec:
    source = tmp_path / f"src-{run}"
    source.mkdir(exist_ok=True)
    (source / "step.py").write_text(script)
    tree = scan_source(str(source))
    store_snapshot(str(source), tree, store)
    spec = StepSpec(
        attempt=AttemptId("d", run, "t"), script_name="step.py", snapshot=tree.digest, outputs=outputs,
        inputs=inputs, arguments=arguments,
    )  # fmt: skip
    assert records.write_spec(spec, store)
    return spec


def _run(store: Datastore, spec: StepSpec) -> tuple[int, dict[str, Any]]:
    code = execute.run_step(records.spec_path(spec.step_run_id))
    return code, records.read_record(spec.step_run_id, store)


def _markers(store: Datastore) -> list[str]:
    return [p for p in store.list("", recursive=True) if p.endswith("_MLPIPE_COMPLETE")]


def test_an_empty_output_to_register_commits_nothing(local_default: Datastore, tmp_path: Path) -> None:
    spec = _spec(local_default, tmp_path, "empty")
    code, record = _run(local_default, spec)
    assert code == 1 and record["status"] == records.FAILED
    assert (
        "output 'model' is empty" in record["error"] and "nothing to register as dataset 'guarded'" in record["error"]
    )
    assert "nothing was committed" in record["error"] and "Traceback" not in record.get("log_tail", "")
    assert records.read_commit(spec.step_run_id, local_default) is None
    assert not _markers(local_default) and not local_default.exists(f"{REGISTRY_ROOT}/guarded")


def test_an_upload_glob_that_matches_nothing_commits_nothing(local_default: Datastore, tmp_path: Path) -> None:
    """The user named the files to upload: an output without them is never committed as if complete."""
    outputs = tuple(
        {"name": name, "datastore": local_default.name, "path": f"out/globs/{name}", "path_template": "out/{run-id}",
         "mode": "upload", "source_globs": globs, "registration": None}
        for name, globs in (("model", ["*.txt"]), ("extra", ["*.txt", "*.csv"]))
    )  # fmt: skip
    arguments = ({"t": "output", "name": "model"}, {"t": "output", "name": "extra"}, {"t": "str", "v": "write"})
    spec = _step(local_default, tmp_path, "globs", SCRIPT, outputs=outputs, arguments=arguments)
    code, record = _run(local_default, spec)
    assert code == 1 and record["status"] == records.FAILED
    assert record["error"].startswith(
        "StagingError: output 'extra': source_globs ['*.csv'] match no file in the folder the script wrote for it "
        "(it holds 1 file, e.g. ['notes.txt']); nothing was committed: write the files there"
    ), record["error"]
    assert records.read_commit(spec.step_run_id, local_default) is None
    assert not _markers(local_default) and not local_default.exists("out/globs")


def test_a_failed_registration_leaves_every_output_unmarked(
    local_default: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(local_default, tmp_path, "write")
    code, record = _run(local_default, spec)
    assert code == 0 and record["status"] == records.COMMITTED

    def unreachable(self: DatasetRegistry, **kwargs: Any) -> Any:
        raise DatastoreAccessError("datastore 'mlpipe_default': cannot create '...': the store could not be reached")

    with monkeypatch.context() as patched:
        patched.setattr(DatasetRegistry, "register", unreachable)
        with pytest.raises(RegistrationFailedError) as caught:
            finish_committed(spec, local_default)
    message = str(caught.value)
    assert "output 'model'" in message and "dataset 'guarded' failed" in message and "could not be reached" in message
    assert "nothing was committed" in message
    assert not _markers(local_default)  # neither the registered output nor the other one
    assert not local_default.exists(f"{REGISTRY_ROOT}/guarded")

    finished = finish_committed(spec, local_default)  # the next try finishes the same commit
    assert finished["status"] == records.COMPLETED
    assert sorted(_markers(local_default)) == ["out/write/extra/_MLPIPE_COMPLETE", "out/write/model/_MLPIPE_COMPLETE"]
    assert DatasetRegistry().get("guarded").version == 1


def test_the_script_never_sees_the_registry_key(
    local_default: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    spec = _spec(local_default, tmp_path, "write")
    assert _run(local_default, spec)[0] == 0
    assert local_default.read_text("out/write/model/weights.txt") == "no key"
    finish_committed(spec, local_default)
    assert local_default.read_json(f"{REGISTRY_ROOT}/guarded/1.json")["seal"]["alg"] == "hmac-sha256"


# -- inputs handed over read-only -----------------------------------------------------------------------------------
CONSUMER = """
import json, os, sys
data, out = sys.argv[1], sys.argv[2]
tried = {"path": os.path.realpath(data)}
for what, name, mode in (("rewrite", "weights.txt", "a"), ("create", "new.txt", "w")):
    try:
        with open(os.path.join(data, name), mode) as fh:
            fh.write("written by the consumer")
        tried[what] = "written"
    except OSError as exc:
        tried[what] = type(exc).__name__
with open(os.path.join(out, "tried.json"), "w") as fh:
    json.dump(tried, fh)
"""


def _produce(store: Datastore, tmp_path: Path) -> dict[str, Any]:
    """A committed, marked output ``out/write/model`` holding ``weights.txt``: its commit entry."""
    spec = _spec(store, tmp_path, "write")
    assert _run(store, spec)[0] == 0
    finish_committed(spec, store)
    commit = records.read_commit(spec.step_run_id, store)
    assert commit is not None
    return next(o for o in commit["outputs"] if o["name"] == "model")


def _mounted(store: Datastore, committed: dict[str, Any]) -> dict[str, Any]:
    """The consumer's input spec: the producer's folder in mount mode, pinned to its committed manifest."""
    source = {"type": "folder", "datastore": store.name, "path": committed["path"], "producer": "train"}
    return {"name": "data", "mode": "mount", "source": source, "pin": {"manifest": committed["manifest"]}}


def test_a_consumer_in_mount_mode_never_writes_into_the_producers_output(
    local_default: Datastore, tmp_path: Path
) -> None:
    """Tests run as root, which permission bits do not stop: what keeps the producer's bytes is that a mounted
    input is a tree of its own, so whatever the consumer writes there never reaches them."""
    committed = _produce(local_default, tmp_path)
    folder = Path(local_default.full_path(committed["path"]))
    assert {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}["weights.txt"] == 0o444
    before = (folder / "weights.txt").read_bytes()

    outputs = ({"name": "report", "datastore": local_default.name, "path": "out/consumer/report", "mode": "mount"},)
    arguments = ({"t": "input", "name": "data"}, {"t": "output", "name": "report"})
    spec = _step(
        local_default, tmp_path, "consumer", CONSUMER, outputs=outputs, arguments=arguments,
        inputs=(_mounted(local_default, committed),),
    )  # fmt: skip
    assert _run(local_default, spec)[0] == 0
    tried = local_default.read_json("out/consumer/report/tried.json")
    assert not tried["path"].startswith(local_default.root)  # a view of its own, outside the datastore
    assert (folder / "weights.txt").read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["_MLPIPE_COMPLETE", "weights.txt"]


PROBE = """
import json, sys
tried = {}
for name, path in (("producer", sys.argv[1]), ("view", sys.argv[2])):
    try:
        with open(path, "a") as fh:
            fh.write("written by the consumer")
        tried[name] = "written"
    except OSError as exc:
        tried[name] = type(exc).__name__
print(json.dumps(tried))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to switch to 'nobody'")
def test_an_unprivileged_owner_cannot_write_into_committed_files_or_its_view(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The permission bits, proven for a user they bind: the datastore and the consumer's view handed to
    ``nobody`` (as the worker's user owns them in a deployment), which then tries to write into both."""
    base = Path(tempfile.mkdtemp(prefix="mlpipe-ro-", dir="/tmp"))  # tmp_path's parents are closed to others
    try:
        base.chmod(0o755)
        monkeypatch.setenv("MLPIPE_HOME", str(base / "mlpipe"))
        resolve.clear_cache()
        store = Datastore.get_default()
        committed = _produce(store, tmp_path)
        view = materialize_inputs((_mounted(store, committed),), str(base / "work"))["data"]["path"]
        for path in (base, *base.rglob("*")):
            os.chown(path, 65534, 65534, follow_symlinks=False)
        producer_file = store.full_path(f"{committed['path']}/weights.txt")
        probe = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", PROBE]
        done = subprocess.run(
            [*probe, producer_file, os.path.join(view, "weights.txt")],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        assert json.loads(done.stdout) == {"producer": "PermissionError", "view": "PermissionError"}
    finally:
        shutil.rmtree(base, ignore_errors=True)


# -- one writer at a time for a fixed destination ---------------------------------------------------------------------
SLOW_WRITER = """
import os, sys, time
out, go, who = sys.argv[1], sys.argv[2], sys.argv[3]
open(go + ".started", "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.05)
with open(os.path.join(out, "weights.txt"), "w") as fh:
    fh.write("by " + who)
"""
FIXED = "models/latest"


def _fixed_writer(store: Datastore, tmp_path: Path, run: str, go: Path) -> StepSpec:
    outputs = ({"name": "model", "datastore": store.name, "path": FIXED, "path_template": FIXED, "mode": "mount"},)
    arguments = ({"t": "output", "name": "model"}, {"t": "str", "v": str(go)}, {"t": "str", "v": run})
    return _step(store, tmp_path, run, SLOW_WRITER, outputs=outputs, arguments=arguments)


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert path.exists(), f"{path} never appeared"


def test_a_second_writer_of_a_fixed_destination_fails_while_the_first_writes(
    local_default: Datastore, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    first = _fixed_writer(local_default, tmp_path, "first", go)
    runner = [sys.executable, "-m", "airflow_mlpipe.runner", "--spec", records.spec_path(first.step_run_id)]
    writing = subprocess.Popen(runner, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        _wait_for(tmp_path / "go.started")  # its script runs: it holds the claim
        go.touch()  # the second is released at once: whatever it gets to, it must not write
        code, record = _run(local_default, _fixed_writer(local_default, tmp_path, "second", go))
        assert code == 1 and record["status"] == records.FAILED
        error = record["error"]
        assert f"'{FIXED}' in datastore 'mlpipe_default' is claimed by step run {first.step_run_id}" in error
        assert "nothing was committed" in error and "add {run-id} to the destination" in error
        assert writing.wait(timeout=60) == 0
    finally:
        writing.kill()
    assert local_default.read_text(f"{FIXED}/weights.txt") == "by first"
    assert records.read_commit(first.step_run_id, local_default) is not None


def test_the_claim_is_checked_again_at_the_commit(local_default: Datastore, tmp_path: Path) -> None:
    """A writer whose claim was taken over meanwhile (it looked dead) stages nothing."""
    mine, theirs = AttemptId("d", "mine", "t"), AttemptId("d", "theirs", "t")
    outputs = ({"name": "model", "datastore": local_default.name, "path": FIXED, "path_template": FIXED},)
    plans = prepare_outputs(outputs, str(tmp_path / "work"), mine)
    (Path(plans["model"].staging) / "weights.txt").write_text("mine")
    local_default.write_json(claim_path(FIXED), DestinationClaim(FIXED, theirs, "2026-01-01T00:00:00").to_dict())
    with pytest.raises(DestinationClaimedError) as caught:
        stage(plans["model"])
    assert f"no longer this step run's to write (step run {theirs.step_run_id} took it over)" in str(caught.value)
    assert "nothing was committed" in str(caught.value) and not local_default.exists(f"{FIXED}/weights.txt")


def test_a_claim_passes_to_a_later_try_or_from_a_failed_holder(local_default: Datastore) -> None:
    def status(attempt: AttemptId, value: str) -> None:
        records.write_record({"step_run_id": attempt.step_run_id, "status": value}, local_default)

    first_try, retry, other_run = (AttemptId("d", "r1", "t", try_number=1), AttemptId("d", "r1", "t", try_number=2),
                                   AttemptId("d", "r2", "t"))  # fmt: skip
    status(first_try, records.RUNNING)
    claim("model", local_default, FIXED, first_try)
    claim("model", local_default, FIXED, first_try)  # kept
    claim("model", local_default, FIXED, retry)  # an earlier try of the same task instance: Airflow ended it
    status(retry, records.RUNNING)
    with pytest.raises(DestinationClaimedError, match=f"claimed by step run {retry.step_run_id} .*which writes it now"):
        claim("model", local_default, FIXED, other_run)
    status(retry, records.FAILED)
    claim("model", local_default, FIXED, other_run)
    check_claim("model", local_default, FIXED, other_run)


def test_a_claim_passes_from_a_killed_holder_whose_lease_ended(local_default: Datastore) -> None:
    """A holder whose record still says Running but whose lease on its reuse key was released or stopped being
    renewed was killed: another DAG run takes its claim over. One whose lease is live keeps it."""
    from airflow_mlpipe.reuse.lease import Leases

    holder, other_run = AttemptId("d", "r1", "t"), AttemptId("d", "r2", "t")
    from tests.reuse.reuse_helpers import fingerprint

    fp = fingerprint(outputs=[])  # a key whose components the spec below pins (no input, no output)
    key = fp.digest
    spec = StepSpec(
        attempt=holder, kind="gather", script_name="g", reuse={"key": key, "components": fp.key.components()}
    )
    assert records.write_spec(spec, local_default)
    records.write_record({"step_run_id": holder.step_run_id, "status": records.RUNNING}, local_default)
    lease = Leases(local_default).acquire(key, "worker-1", ttl=300, info={"step_run_id": holder.step_run_id})
    assert lease is not None
    claim("model", local_default, FIXED, holder)
    with pytest.raises(DestinationClaimedError, match="which writes it now"):
        claim("model", local_default, FIXED, other_run)  # its lease is live: it may still write
    lease.release()
    claim("model", local_default, FIXED, other_run)  # released without a commit: the holder stopped
    check_claim("model", local_default, FIXED, other_run)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda store, path: store.write_bytes(path, b"garbage"), id="garbage"),
        pytest.param(lambda store, path: store.write_bytes(path, b"[1, 2]"), id="not-an-object"),
        pytest.param(lambda store, path: store.delete(path), id="deleted"),
    ],
)
def test_a_claim_whose_holders_record_is_corrupt_or_gone_passes_only_once_its_lease_ended(
    local_default: Datastore, monkeypatch: pytest.MonkeyPatch, damage: Any
) -> None:
    """A step script can overwrite or delete its record: that says nothing of whether it still writes, so its
    lease decides. Alive: the claim stays (another run refuses to write); expired: it passes."""
    from airflow_mlpipe.reuse.lease import Leases
    from airflow_mlpipe.runner.writer_lease import writer_lease_key

    monkeypatch.setenv("MLPIPE_REUSE_CLOCK_SKEW", "0")
    holder, other_run = AttemptId("d", "r1", "t"), AttemptId("d", "r2", "t")
    records.write_record({"step_run_id": holder.step_run_id, "status": records.RUNNING}, local_default)
    leases = Leases(local_default, clock_skew=0)
    info = {"step_run_id": holder.step_run_id}
    lease = leases.acquire(writer_lease_key(holder.step_run_id), "worker-1", ttl=0.5, info=info)
    assert lease is not None
    claim("model", local_default, FIXED, holder)
    damage(local_default, records.record_path(holder.step_run_id))

    with pytest.raises(DestinationClaimedError) as caught:
        claim("model", local_default, FIXED, other_run)
    assert f"claimed by step run {holder.step_run_id}" in str(caught.value)
    assert "may write it still: its run record is missing or corrupt, but its lease is alive" in str(caught.value)
    check_claim("model", local_default, FIXED, holder)  # still the holder's
    time.sleep(0.7)  # no heartbeat for longer than the ttl: its process was killed
    claim("model", local_default, FIXED, other_run)
    check_claim("model", local_default, FIXED, other_run)


def test_a_claim_whose_holders_record_is_corrupt_and_who_holds_no_lease_passes(local_default: Datastore) -> None:
    holder, other_run = AttemptId("d", "r1", "t"), AttemptId("d", "r2", "t")
    claim("model", local_default, FIXED, holder)
    local_default.write_bytes(records.record_path(holder.step_run_id), b"garbage")
    claim("model", local_default, FIXED, other_run)
    check_claim("model", local_default, FIXED, other_run)


ATTEMPT_SCRIPT = """
import os, sys
os.makedirs(sys.argv[1], exist_ok=True)
with open(os.path.join(sys.argv[1], "weights.txt"), "w") as fh:
    fh.write(os.environ.get("MLPIPE_ATTEMPT_KEY", "no key") + " " + os.environ.get("MLPIPE_REGISTRY_KEY", "no key"))
os.makedirs(sys.argv[2], exist_ok=True)
"""


def test_a_container_runner_seals_with_its_attempt_key_which_its_script_never_sees(
    local_default: Datastore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in a pod: the runner holds no registry key, only the attempt key its worker derived for this step run;
    what it writes is read by a worker holding the registry key, and the outputs are registered."""
    from airflow_mlpipe.datasets import seal

    monkeypatch.setattr(seal, "_attempt", None)
    spec = _spec(local_default, tmp_path, "pod", ATTEMPT_SCRIPT)
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")
    key = seal.attempt_seal_key(spec.step_run_id)
    assert key
    monkeypatch.delenv(SEAL_KEY_ENV)
    monkeypatch.setenv(seal.ATTEMPT_KEY_ENV, key)
    code = execute.run_step(records.spec_path(spec.step_run_id))
    assert code == 0
    monkeypatch.delenv(seal.ATTEMPT_KEY_ENV)
    for path in (records.record_path(spec.step_run_id), records.commit_path(spec.step_run_id)):
        assert local_default.read_json(path)["seal"]["alg"] == "hmac-sha256-attempt"
    monkeypatch.setenv(SEAL_KEY_ENV, "worker-secret")  # the worker finishes the attempt
    assert records.read_commit(spec.step_run_id, local_default) is not None
    finish_committed(spec, local_default)
    assert records.read_record(spec.step_run_id, local_default)["status"] == records.COMPLETED
    assert local_default.read_text("out/pod/model/weights.txt") == "no key no key"
