"""Leases on reuse keys: which step run is computing a key right now, so identical steps elsewhere wait for it.

Layout in the default datastore: ``_mlpipe/leases/<key>/<generation>.json``, generations 1, 2, 3, ... The lease's
current state is its highest generation. Each generation record has exactly one writer, the holder that created
it with ``create_if_absent``, so no write can ever overwrite another holder's record:

- acquiring a free key (no record, or the latest one released or expired) creates generation ``latest + 1``;
  of racing acquirers exactly one creates it, the others see a live holder and wait;
- taking over an expired lease is the same step, so two waiters that saw the same expired record cannot both win;
- a heartbeat rewrites the holder's own record with a new expiry, after checking that no newer generation exists:
  a holder that was taken over learns it at its next heartbeat (``LeaseLostError``);
- releasing marks the holder's own record released (deleting it would let numbering restart under a waiter that
  still holds an old view of the chain).

Generations are created in order (``n + 1`` only by someone who read ``n``), so the highest one is the truth. An
acquirer re-lists after creating its record and backs off if a higher generation exists (it had a stale view), and
the winner prunes generations older than its predecessor.

Expiry and clock skew. Holders and waiters run on different machines, and an object store's Last-Modified time
is a third clock, of one-second resolution, that costs a request per look. So expiry is judged twice, neither
time comparing two machines' clocks closely:

1. The holder's own timestamps: a record says ``renewed_at`` and ``ttl`` by the holder's clock; another machine
   calls it expired only after ``renewed_at + ttl + clock_skew`` by its own clock. The generous ``clock_skew``
   margin (default 60 s) absorbs unsynchronised clocks; this judgement catches holders that died long ago at once.
2. A waiter that polls (``LeaseWatch``) also measures, by its own monotonic clock, how long the record has gone
   unchanged. Every heartbeat changes it (``beat`` counts up), so a record unchanged for longer than its ``ttl``
   belongs to a holder that stopped beating, whatever the clocks say. This judgement is skew-free and bounds how
   long a waiter waits for a crashed holder to about ``ttl`` plus one poll.

Hand-overs. A deferrable pod step's heartbeats move from its worker to the triggerer, and back to a worker when
the pod is done. Between the two nobody beats: Airflow must first see the task deferred and the triggerer pick the
trigger up (or a worker the resumed task), which on a busy deployment can take longer than a short ttl. The last
beat before a hand-over therefore adds a grace (``handoff``, ``MLPIPE_REUSE_LEASE_HANDOFF``) to the ttl it
announces, and the next ordinary beat takes it off again. A holder that dies during a hand-over is taken over
``handoff`` seconds later than one that dies while beating.

Correctness of results never rests on the lease: every step run writes its outputs under its own run id and the
reuse index entry is written after they are complete, so two runs computing the same key (a holder paused for
longer than its ttl and then resuming) only cost compute. The lease saves that compute.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from airflow_mlpipe.core.model import Record
from airflow_mlpipe.exceptions import ConfigError, LeaseLostError, MlpipeError
from airflow_mlpipe.storage.datastore import Datastore

log = logging.getLogger(__name__)

LEASES_ROOT = "_mlpipe/leases"
RECORD_FORMAT = 1
DEFAULT_TTL = 120.0
DEFAULT_CLOCK_SKEW = 60.0
DEFAULT_HANDOFF = 60.0
# Heartbeats per ttl: three may be lost to a slow store before a waiter may take the lease over.
BEATS_PER_TTL = 4

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_GENERATION_FILE = re.compile(r"^(\d+)\.json$")


def check_key(key: str) -> str:
    """A reuse key names a folder in the datastore: letters, digits, ``.``, ``_``, ``-`` only."""
    if not isinstance(key, str) or not _KEY_PATTERN.match(key):
        raise ConfigError(
            f"reuse key {key!r} is not a key: expected letters, digits, '.', '_' or '-' (at most 200), such as the "
            "hex digest a step's reuse decision reports"
        )
    return key


@dataclass(frozen=True)
class LeaseRecord(Record):
    """One generation of a lease, as stored. Times are seconds since the epoch by the holder's clock."""

    FORMAT = RECORD_FORMAT
    LABEL = "lease record"

    key: str
    generation: int
    holder: str
    ttl: float
    acquired_at: float
    renewed_at: float
    beat: int = 0
    released: bool = False
    info: Mapping[str, Any] = field(default_factory=dict)
    # Seconds added to ``ttl`` by a beat written just before the heartbeats move to another process.
    handoff: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if not self.handoff:  # written only while granted: records stay as they were written before
            data.pop("handoff", None)
        return data

    @property
    def silence_allowed(self) -> float:
        """How long this record may go unchanged before its holder is judged dead: its ttl, plus any hand-over grace."""
        return self.ttl + self.handoff

    @property
    def expires_at(self) -> float:
        return self.renewed_at + self.silence_allowed

    @property
    def version(self) -> tuple[int, int, bool]:
        """Changes with every write of the lease: a waiter compares versions to see heartbeats."""
        return (self.generation, self.beat, self.released)

    def expired(self, now: float, clock_skew: float = DEFAULT_CLOCK_SKEW) -> bool:
        """Expired by the holder's own timestamps, allowing ``clock_skew`` between its clock and ``now``'s."""
        return now > self.expires_at + clock_skew

    def is_free(self, now: float, clock_skew: float = DEFAULT_CLOCK_SKEW) -> bool:
        return self.released or self.expired(now, clock_skew)

    def same_as(self, other: LeaseRecord | None) -> bool:
        """The same holder's record, not written since ``other`` was read."""
        return other is not None and (self.key, self.holder, self.version) == (other.key, other.holder, other.version)


def _unreadable(key: str, generation: int, reason: str) -> LeaseRecord:
    """Stands for a record that cannot be parsed: free, so the next acquirer replaces it with a newer generation."""
    return LeaseRecord(key, generation, "", 0.0, 0.0, 0.0, released=True, info={"unreadable": reason})


def holder_info(**fields: Any) -> dict[str, Any]:
    """Who holds a lease, for people and logs: the given fields plus this host and process."""
    return {"host": socket.gethostname(), "pid": os.getpid(), **fields}


class Leases:
    """The leases kept in a datastore (the default datastore unless another is given)."""

    def __init__(
        self,
        store: Datastore | None = None,
        *,
        clock_skew: float = DEFAULT_CLOCK_SKEW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self.clock_skew = float(clock_skew)
        self.clock = clock

    @property
    def store(self) -> Datastore:
        if self._store is None:
            self._store = Datastore.get_default()
        return self._store

    @staticmethod
    def folder(key: str) -> str:
        return f"{LEASES_ROOT}/{check_key(key)}"

    @classmethod
    def path(cls, key: str, generation: int) -> str:
        return f"{cls.folder(key)}/{generation}.json"

    # -- reading --------------------------------------------------------------------------------------------
    def generations(self, key: str) -> list[int]:
        """The generations stored for ``key``, ascending (temporary files of local writes are not records)."""
        try:
            names = self.store.list(self.folder(key))
        except FileNotFoundError:
            return []
        found = (_GENERATION_FILE.match(name.rsplit("/", 1)[-1]) for name in names)
        return sorted(int(m.group(1)) for m in found if m)

    def read(self, key: str) -> LeaseRecord | None:
        """The lease's current state (its highest generation), or None when the key was never leased."""
        for _ in range(5):
            generations = self.generations(key)
            if not generations:
                return None
            record = self._read_generation(key, generations[-1])
            if record is not None:
                return record
            # pruned between listing and reading: a newer generation exists, list again
        raise MlpipeError(f"lease {key!r}: its records kept changing while being read; try again")

    def _read_generation(self, key: str, generation: int) -> LeaseRecord | None:
        try:
            data = self.store.read_json(self.path(key, generation))
        except FileNotFoundError:
            return None
        except ValueError as exc:  # not JSON
            log.warning("lease %s generation %d is unreadable (%s): treating it as free", key, generation, exc)
            return _unreadable(key, generation, str(exc))
        try:
            return LeaseRecord.from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("lease %s generation %d is unreadable (%s): treating it as free", key, generation, exc)
            return _unreadable(key, generation, str(exc))

    def history(self, key: str) -> list[LeaseRecord]:
        """The generations still stored for ``key``, oldest first: the current one and its predecessor (older ones
        are pruned), so who held the lease before its holder now."""
        found = (self._read_generation(key, generation) for generation in self.generations(key))
        return [record for record in found if record is not None]

    def is_free(self, record: LeaseRecord | None) -> bool:
        return record is None or record.is_free(self.clock(), self.clock_skew)

    # -- acquiring ------------------------------------------------------------------------------------------
    def acquire(
        self,
        key: str,
        holder: str,
        ttl: float = DEFAULT_TTL,
        *,
        info: Mapping[str, Any] | None = None,
        take_over: LeaseRecord | None = None,
    ) -> Lease | None:
        """Become the holder of ``key``'s lease, or return None when another live holder has it.

        :param take_over: a record the caller has judged dead by watching it (``LeaseWatch``); it is taken over if
            it is still the current one and has not been written since. A record free by its own timestamps
            (released, or expired beyond the clock-skew margin) is taken over without this.
        """
        check_key(key)
        if not ttl > 0:
            raise ConfigError(f"lease ttl {ttl!r} must be a positive number of seconds")
        for _ in range(5):
            current = self.read(key)
            if current is not None and not self.is_free(current) and not current.same_as(take_over):
                return None
            generation = current.generation + 1 if current else 1
            now = self.clock()
            record = LeaseRecord(key, generation, holder, float(ttl), now, now, info=dict(info or {}))
            if not self.store.create_json_if_absent(self.path(key, generation), record.to_dict()):
                return None  # another acquirer created this generation first: it holds the lease now
            latest = self.generations(key)
            if latest and latest[-1] != generation:
                # our view was stale (a newer generation existed already): give ours up and look again
                self.store.write_json(self.path(key, generation), replace(record, released=True).to_dict())
                continue
            self._prune(key, generation)
            if current is not None and not current.released:
                earlier = current.info.get("step_run_id") or current.holder or "a run whose record is unreadable"
                log.info(
                    "reuse key %s: %s, which was computing it, stopped (no heartbeat for longer than %g s); this run "
                    "computes it instead",
                    key,
                    earlier,
                    current.silence_allowed,
                )
            return Lease(self, record)
        return None

    def _prune(self, key: str, generation: int) -> None:
        """Drop generations older than the predecessor: they can no longer matter to anyone."""
        for old in self.generations(key):
            if old >= generation - 1:
                break
            try:
                self.store.delete(self.path(key, old), missing_ok=True)
            except Exception as exc:  # tidiness only: an old record left behind is harmless
                log.debug("lease %s: could not prune generation %d: %s", key, old, exc)

    def adopt(self, key: str, *, holder: str | None = None, step_run_id: str | None = None) -> Lease | None:
        """The lease as its holder left it (named by ``holder``, or by the step run that took it), to heartbeat or
        release it from another process: the triggerer, or the worker that resumes a deferred task. None when it
        was released or another run has taken it over since."""
        record = self.read(key)
        if record is None or record.released:
            return None
        if holder is not None and record.holder != holder:
            return None
        if step_run_id is not None and record.info.get("step_run_id") != step_run_id:
            return None
        return Lease(self, record)

    def delete(self, key: str) -> None:
        """Forget every generation of ``key`` (for garbage collection of keys idle for a long time only: a waiter
        that still holds an old view of the chain could otherwise recreate an old generation)."""
        self.store.delete(self.folder(key), recursive=True, missing_ok=True)


class Lease:
    """A lease held by this process: heartbeat it while computing, release it when done."""

    def __init__(self, leases: Leases, record: LeaseRecord) -> None:
        self.leases = leases
        self.record = record
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def holder(self) -> str:
        return self.record.holder

    @property
    def ttl(self) -> float:
        return self.record.ttl

    def __repr__(self) -> str:
        return f"Lease(key={self.key!r}, holder={self.holder!r}, generation={self.record.generation})"

    def still_held(self) -> bool:
        """No newer generation exists (reading only; a holder that stopped beating may still be taken over)."""
        generations = self.leases.generations(self.key)
        return bool(generations) and generations[-1] == self.record.generation and not self.record.released

    def heartbeat(self, *, handoff: float = 0.0) -> LeaseRecord:
        """Push the expiry forward. Raises ``LeaseLostError`` when another run has taken the lease over.

        ``handoff``: seconds of grace on top of the ttl, for the last beat before the heartbeats move to another
        process (see the module's doc); an ordinary beat (0) takes an earlier grace off again."""
        with self._lock:
            if self.record.released:
                raise LeaseLostError(f"lease {self.key!r} was released by {self.holder!r}; it cannot be renewed")
            if not self.still_held():
                raise LeaseLostError(
                    f"lease {self.key!r}: {self.holder!r} was taken over by another run after its heartbeats "
                    f"stopped for longer than {self.ttl:g} s"
                )
            renewed = replace(
                self.record, renewed_at=self.leases.clock(), beat=self.record.beat + 1, handoff=float(handoff)
            )
            self.leases.store.write_json(self.leases.path(self.key, renewed.generation), renewed.to_dict())
            self.record = renewed
            return renewed

    def release(self) -> None:
        """Let the key go, so waiters look for the index entry (or take over) without waiting for the ttl."""
        with self._lock:
            if self.record.released:
                return
            released = replace(self.record, released=True, renewed_at=self.leases.clock())
            if self.still_held():
                self.leases.store.write_json(self.leases.path(self.key, released.generation), released.to_dict())
            self.record = released

    def keep_alive(self, interval: float | None = None, *, release_on_exit: bool = True) -> LeaseKeeper:
        """A context manager that heartbeats from a background thread (see ``LeaseKeeper``)."""
        return LeaseKeeper(self, interval, release_on_exit=release_on_exit)


class LeaseKeeper:
    """Heartbeats a lease every ``interval`` seconds (default ``ttl / 4``) from a daemon thread.

    ``with lease.keep_alive() as keeper:`` starts it; leaving the block stops the thread (at once: it sleeps on an
    event) and releases the lease unless ``release_on_exit`` is False. A store error in one heartbeat is logged and
    the next one tries again; a lease taken over sets ``keeper.lost`` and stops the beating, and the work goes on
    (its results are its own; see the module's notes).
    """

    def __init__(self, lease: Lease, interval: float | None = None, *, release_on_exit: bool = True) -> None:
        self.lease = lease
        self.interval = float(interval) if interval is not None else lease.ttl / BEATS_PER_TTL
        if not self.interval > 0:
            raise ConfigError(f"heartbeat interval {interval!r} must be a positive number of seconds")
        self.release_on_exit = release_on_exit
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeaseKeeper:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
        if self.release_on_exit and not self.lost.is_set():
            try:
                self.lease.release()
            except Exception as error:  # waiters still take over after the ttl
                log.warning("could not release lease %s: %s", self.lease.key, error)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._beat, name=f"mlpipe-lease-{self.lease.key[:12]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            # a heartbeat in flight finishes its store call first; a hung store must not hang the task
            thread.join(timeout=self.interval + 30)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.lease.heartbeat()
            except LeaseLostError as exc:
                log.warning("%s", exc)
                self.lost.set()
                return
            except Exception as exc:
                log.warning("lease %s: heartbeat failed (%s); trying again in %g s", self.lease.key, exc, self.interval)


class LeaseWatch:
    """A waiter's view of a lease over time: judges a holder dead when its record stops changing.

    ``observe`` returns True once the current record has stayed the same (no heartbeat) for longer than its ttl
    (or ``ttl`` given here), measured by this process's monotonic clock: no other machine's clock is involved.
    """

    def __init__(self, ttl: float | None = None, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.monotonic = monotonic
        self._seen: tuple[str, tuple[int, int, bool]] | None = None
        self._since = 0.0

    def observe(self, record: LeaseRecord) -> bool:
        now = self.monotonic()
        seen = (record.holder, record.version)
        if seen != self._seen:
            self._seen, self._since = seen, now
            return False
        ttl = self.ttl if self.ttl is not None else record.ttl
        return now - self._since > ttl + record.handoff

    def unchanged_for(self) -> float:
        return self.monotonic() - self._since if self._seen is not None else 0.0


def acquire(
    key: str,
    holder: str,
    ttl: float = DEFAULT_TTL,
    *,
    info: Mapping[str, Any] | None = None,
    store: Datastore | None = None,
) -> Lease | None:
    """``Leases(store).acquire(...)`` on the default datastore unless ``store`` is given."""
    return Leases(store).acquire(key, holder, ttl, info=info)


def read(key: str, *, store: Datastore | None = None) -> LeaseRecord | None:
    """``Leases(store).read(key)`` on the default datastore unless ``store`` is given."""
    return Leases(store).read(key)
