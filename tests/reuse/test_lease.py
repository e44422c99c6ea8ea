"""Leases on reuse keys: one holder among racers on every backend, heartbeats, expiry, race-safe take-over, and a
holder process killed while it holds the lease."""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest

from airflow_mlpipe.exceptions import ConfigError, LeaseLostError
from airflow_mlpipe.reuse.lease import Lease, LeaseRecord, Leases, LeaseWatch, check_key
from airflow_mlpipe.storage.datastore import Datastore
from tests.reuse.lease_helpers import FakeClock, start_holder

KEY = "0f" * 16


def _race(n: int, attempt: object) -> list[object]:
    barrier = threading.Barrier(n)

    def one(i: int) -> object:
        barrier.wait()
        return attempt(i)  # type: ignore[operator]

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_racing_acquirers_get_exactly_one_holder(datastore: Datastore) -> None:
    leases = Leases(datastore)
    won = _race(12, lambda i: leases.acquire(KEY, f"holder-{i}", ttl=60))
    holders = [lease for lease in won if lease is not None]
    assert len(holders) == 1
    current = leases.read(KEY)
    assert current is not None and current.holder == holders[0].holder and current.generation == 1  # type: ignore[union-attr]


def test_racing_take_over_of_an_expired_lease_has_one_winner(datastore: Datastore) -> None:
    clock = FakeClock()
    leases = Leases(datastore, clock_skew=5, clock=clock)
    first = leases.acquire(KEY, "crashed", ttl=10)
    assert first is not None
    clock.advance(14)  # past the ttl, within the clock-skew margin: still held
    assert leases.acquire(KEY, "early", ttl=10) is None
    clock.advance(2)
    won = _race(10, lambda i: leases.acquire(KEY, f"waiter-{i}", ttl=10))
    winners = [lease for lease in won if lease is not None]
    assert len(winners) == 1
    current = leases.read(KEY)
    assert current is not None and current.generation == 2 and current.holder == winners[0].holder  # type: ignore[union-attr]
    # the crashed holder, come back, learns it lost the lease and cannot clobber the new holder's record
    with pytest.raises(LeaseLostError, match="taken over"):
        first.heartbeat()
    first.release()
    assert leases.read(KEY) == current


def test_heartbeat_keeps_a_lease_alive_and_release_frees_it(tmp_path: object) -> None:
    clock = FakeClock()
    leases = Leases(Datastore("local", f"file://{tmp_path}/store"), clock_skew=0, clock=clock)
    lease = leases.acquire(KEY, "holder", ttl=10)
    assert lease is not None
    for _ in range(5):  # 40 s in all, never 10 s without a heartbeat
        clock.advance(8)
        lease.heartbeat()
    assert leases.acquire(KEY, "waiter", ttl=10) is None
    record = leases.read(KEY)
    assert record is not None and record.beat == 5 and record.renewed_at == clock.now
    lease.release()
    assert leases.read(KEY).released  # type: ignore[union-attr]
    with pytest.raises(LeaseLostError, match="released"):
        lease.heartbeat()
    nxt = leases.acquire(KEY, "next", ttl=10)
    assert nxt is not None and nxt.record.generation == 2


def test_an_unrenewed_lease_expires_after_ttl_plus_clock_skew(tmp_path: object) -> None:
    clock = FakeClock()
    leases = Leases(Datastore("local", f"file://{tmp_path}/store"), clock_skew=30, clock=clock)
    assert leases.acquire(KEY, "holder", ttl=10) is not None
    clock.advance(40)
    assert leases.acquire(KEY, "waiter", ttl=10) is None  # exactly at the margin: not yet
    clock.advance(0.5)
    taken = leases.acquire(KEY, "waiter", ttl=10)
    assert taken is not None and taken.record.generation == 2


def test_take_over_of_a_record_seen_stale_needs_it_unchanged(tmp_path: object) -> None:
    leases = Leases(Datastore("local", f"file://{tmp_path}/store"))
    lease = leases.acquire(KEY, "holder", ttl=60)
    assert lease is not None
    seen = leases.read(KEY)
    lease.heartbeat()  # the holder is alive after all: the stale view no longer matches
    assert leases.acquire(KEY, "waiter", ttl=60, take_over=seen) is None
    seen = leases.read(KEY)
    taken = leases.acquire(KEY, "waiter", ttl=60, take_over=seen)
    assert taken is not None and taken.record.generation == 2
    with pytest.raises(LeaseLostError):
        lease.heartbeat()


def test_an_acquirer_with_a_stale_view_backs_off(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Datastore("local", f"file://{tmp_path}/store")
    leases = Leases(store)
    for i in range(4):  # generations 1..4, each released; then generation 2 is pruned away
        lease = leases.acquire(KEY, f"h{i}", ttl=60)
        assert lease is not None
        lease.release()
    assert leases.generations(KEY) == [3, 4]
    stale = replace(leases.read(KEY), generation=1)  # type: ignore[type-var]
    real_read = Leases.read
    calls = iter([stale])
    monkeypatch.setattr(Leases, "read", lambda self, key: next(calls, None) or real_read(self, key))
    lease = leases.acquire(KEY, "late", ttl=60)
    # it created generation 2 from its stale view, saw 4 above it, gave 2 up, and took 5
    assert lease is not None and lease.record.generation == 5
    assert leases.read(KEY) == lease.record


def test_old_generations_are_pruned_but_the_predecessor_is_kept(tmp_path: object) -> None:
    leases = Leases(Datastore("local", f"file://{tmp_path}/store"))
    for i in range(5):
        lease = leases.acquire(KEY, f"h{i}", ttl=60)
        assert lease is not None
        lease.release()
    assert leases.generations(KEY) == [4, 5]


def test_an_unreadable_record_counts_as_free(tmp_path: object) -> None:
    store = Datastore("local", f"file://{tmp_path}/store")
    store.write_bytes(Leases.path(KEY, 1), b"{not json")
    leases = Leases(store)
    assert leases.read(KEY).info.get("unreadable")  # type: ignore[union-attr]
    lease = leases.acquire(KEY, "holder", ttl=60)
    assert lease is not None and lease.record.generation == 2


def test_record_round_trip_and_format_check() -> None:
    record = LeaseRecord(KEY, 3, "h", 10.0, 1.0, 2.0, beat=4, info={"step_run_id": "s"})
    assert LeaseRecord.from_dict(record.to_dict()) == record
    with pytest.raises(ValueError, match="format"):
        LeaseRecord.from_dict({**record.to_dict(), "format": 99})


@pytest.mark.parametrize(
    "key",
    [pytest.param("../etc", id="dotdot"), pytest.param("a/b", id="slash"), pytest.param("", id="empty")],
)
def test_keys_that_are_not_keys_are_refused(key: str) -> None:
    with pytest.raises(ConfigError, match="is not a key"):
        check_key(key)


def test_a_watch_calls_a_record_stale_only_when_it_stops_changing() -> None:
    clock = FakeClock(0.0)
    watch = LeaseWatch(monotonic=clock)
    record = LeaseRecord(KEY, 1, "h", 10.0, 0.0, 0.0)
    assert not watch.observe(record)
    clock.advance(9)
    assert not watch.observe(record)
    clock.advance(2)
    assert not watch.observe(replace(record, beat=1))  # a heartbeat: the count starts again
    clock.advance(10)
    assert not watch.observe(replace(record, beat=1))
    clock.advance(0.5)
    assert watch.observe(replace(record, beat=1))
    assert LeaseWatch(ttl=1, monotonic=clock).observe(record) is False  # a first look never judges


def test_a_hand_over_beat_grants_its_grace_once_and_the_next_beat_takes_it_off(tmp_path: object) -> None:
    """The last beat before the heartbeats move to the triggerer (or back to a worker) adds a grace: neither a
    waiter's watch nor another machine's clock calls the holder dead during it; the next ordinary beat ends it."""
    clock = FakeClock()
    leases = Leases(Datastore("local", f"file://{tmp_path}/store"), clock_skew=30, clock=clock)
    lease = leases.acquire(KEY, "holder", ttl=10)
    assert lease is not None
    handed = lease.heartbeat(handoff=60)
    assert (handed.handoff, handed.silence_allowed, leases.read(KEY).handoff) == (60.0, 70.0, 60.0)  # type: ignore[union-attr]

    watch_clock = FakeClock(0.0)
    watch = LeaseWatch(monotonic=watch_clock)
    assert not watch.observe(handed)
    watch_clock.advance(69)
    assert not watch.observe(handed)  # past the ttl, within the grace: still alive
    watch_clock.advance(2)
    assert watch.observe(handed)  # past both: the holder died during the hand-over

    clock.advance(99)  # renewed_at + ttl + handoff + clock_skew = 100
    assert leases.acquire(KEY, "waiter", ttl=10) is None
    clock.advance(0.5)
    assert leases.read(KEY).handoff == 60.0  # type: ignore[union-attr]
    ordinary = lease.heartbeat()  # the triggerer's first beat
    assert (ordinary.handoff, ordinary.silence_allowed) == (0.0, 10.0)
    clock.advance(40.5)
    assert leases.acquire(KEY, "waiter", ttl=10) is not None  # judged by the ttl alone again


def test_a_record_written_before_hand_overs_existed_reads_with_no_grace() -> None:
    data = LeaseRecord(KEY, 1, "h", 10.0, 0.0, 0.0).to_dict()
    assert "handoff" not in data  # written only while a grace is granted
    assert LeaseRecord.from_dict(data).silence_allowed == 10.0


def test_the_keeper_beats_in_the_background_stops_cleanly_and_releases(tmp_path: object) -> None:
    leases = Leases(Datastore("local", f"file://{tmp_path}/store"))
    lease = leases.acquire(KEY, "holder", ttl=0.2)
    assert lease is not None
    with lease.keep_alive() as keeper:
        _wait_until(lambda: (leases.read(KEY).beat or 0) >= 3)  # type: ignore[union-attr]
        thread = keeper._thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()
    assert leases.read(KEY).released  # type: ignore[union-attr]
    assert not keeper.lost.is_set()


def test_the_keeper_notices_a_take_over(tmp_path: object) -> None:
    leases = Leases(Datastore("local", f"file://{tmp_path}/store"))
    lease = leases.acquire(KEY, "holder", ttl=0.2)
    assert lease is not None
    with lease.keep_alive(interval=0.05) as keeper:
        taken = leases.acquire(KEY, "other", ttl=60, take_over=leases.read(KEY))
        if taken is None:  # a heartbeat landed between our read and acquire: look again
            taken = leases.acquire(KEY, "other", ttl=60, take_over=leases.read(KEY))
        assert taken is not None
        assert keeper.lost.wait(5)
    assert leases.read(KEY) == taken.record  # the lost holder did not release the new holder's lease


@pytest.mark.parametrize("backend", ["local", "azurite"])
def test_a_killed_holder_does_not_block_forever(backend: str, tmp_path: object, request: pytest.FixtureRequest) -> None:
    """A process holds the lease with a heartbeat thread: it stays held for longer than its ttl while the process
    lives; once the process is SIGKILLed the record stops changing and a waiter takes over after about the ttl."""
    if backend == "local":
        store = Datastore("mlpipe_default", f"file://{tmp_path}/store")
    else:
        from tests.conftest import make_azurite_datastore

        store = make_azurite_datastore(request.getfixturevalue("azurite"), name="mlpipe_default")
    ttl = 1.0
    holder = start_holder(store, KEY, "doomed", ttl)
    leases = Leases(store, clock_skew=0)
    try:
        first = leases.read(KEY)
        assert first is not None and first.holder == "doomed"
        # alive for several ttls: heartbeats keep it held
        _wait_until(lambda: leases.read(KEY).beat >= 6)  # type: ignore[union-attr]
        assert leases.acquire(KEY, "waiter", ttl=ttl) is None
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    watch = LeaseWatch()
    taken: Lease | None = None
    while taken is None:
        record = leases.read(KEY)
        assert record is not None and record.holder == "doomed"
        if watch.observe(record):
            taken = leases.acquire(KEY, "waiter", ttl=ttl, take_over=record)
        else:
            time.sleep(0.1)
    assert taken.record.generation == first.generation + 1
    assert leases.read(KEY).holder == "waiter"  # type: ignore[union-attr]


def _wait_until(condition: object, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.02)


def test_a_deferring_step_hands_its_lease_over_with_the_deployments_grace(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import logging

    from airflow_mlpipe.operators.attempt import _hand_over

    leases = Leases(Datastore("local", f"file://{tmp_path}/store"))
    lease = leases.acquire(KEY, "holder", ttl=10)
    assert lease is not None
    monkeypatch.setenv("MLPIPE_REUSE_LEASE_HANDOFF", "45")
    _hand_over(logging.getLogger("test"), lease)
    assert (leases.read(KEY).handoff, leases.read(KEY).beat) == (45.0, 1)  # type: ignore[union-attr]
    monkeypatch.setenv("MLPIPE_REUSE_LEASE_HANDOFF", "soon")
    with pytest.raises(ConfigError, match="MLPIPE_REUSE_LEASE_HANDOFF='soon' is not a non-negative number"):
        _hand_over(logging.getLogger("test"), lease)
