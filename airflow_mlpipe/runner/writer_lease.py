"""The lease that keeps a step run's claims on fixed destinations its own while it may write them.

A claim (``runner.claims``) passes from a holder recorded as Running only once the holder is known to have
stopped: its lease was released, or stopped being renewed. A step run that computes its reuse key holds the key's
lease (``reuse.dedup``) for as long as it may write. One that holds no such lease (``allow_reuse=False``, a run
asked for fresh outputs that does not wait for another computing the same key) and writes a fixed destination
holds a lease on itself instead, key ``step-run.<step run id>``, kept exactly as the reuse lease is: heartbeaten
from a thread of the task that launched the step (by the triggerer while a deferrable pod runs), released when
the step finished or failed. A holder killed with SIGKILL therefore loses its claims once the lease's ttl and the
clock-skew margin have passed (``MLPIPE_REUSE_LEASE_TTL``, ``MLPIPE_REUSE_CLOCK_SKEW``: every run judges a lease
alike), and a live one keeps them however long it runs.

Nobody else ever acquires this key, so a holder that was only paused (not killed) renews its lease when it wakes
up; by then its claim may have passed to another step run, and its check at the commit (``check_claim``) fails.
"""

from __future__ import annotations

from airflow_mlpipe.core.attempt import AttemptId
from airflow_mlpipe.exceptions import MlpipeError
from airflow_mlpipe.reuse.dedup import DedupSettings, holder_id
from airflow_mlpipe.reuse.lease import Lease, Leases
from airflow_mlpipe.storage.datastore import Datastore

KEY_PREFIX = "step-run."


def writer_lease_key(step_run_id: str) -> str:
    """The lease key of a step run's own lease (a step run id is at most ~175 characters of the key alphabet)."""
    return f"{KEY_PREFIX}{step_run_id}"


def acquire_writer_lease(
    attempt: AttemptId, store: Datastore | None = None, settings: DedupSettings | None = None
) -> Lease:
    """The step run's own lease, held from now on (the default datastore unless ``store`` is given). An earlier
    process of the same attempt (a task resumed in the same try) may have left it held: it is this step run's, so
    it is adopted."""
    settings = settings or DedupSettings.from_env()
    leases = Leases(store, clock_skew=settings.clock_skew)
    srid = attempt.step_run_id
    key = writer_lease_key(srid)
    info = {"step_run_id": srid, **attempt.to_dict()}
    for _ in range(3):
        lease = leases.acquire(key, holder_id(srid, attempt.try_number), settings.lease_ttl, info=info)
        lease = lease or leases.adopt(key, step_run_id=srid)
        if lease is not None:
            return lease
    raise MlpipeError(f"step run {srid}: its lease {key!r} kept changing hands while it was being taken")
