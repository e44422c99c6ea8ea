"""File identities of a local datastore come from content hashes, through the stat cache."""

from __future__ import annotations

from pathlib import Path

import xxhash

from airflow_mlpipe.fingerprint.identity import identities
from airflow_mlpipe.fingerprint.statcache import StatCache
from airflow_mlpipe.storage.datastore import Datastore


def test_local_identities_use_the_stat_cache(tmp_path: Path, cache: StatCache) -> None:
    store = Datastore("local", (tmp_path / "store").as_uri())
    store.write_bytes("data/a.csv", b"1,2\n")
    store.write_bytes("data/b.csv", b"3,4\n")
    infos = store.list("data", recursive=True, detail=True)
    first = identities(store, infos, cache=cache)
    assert {rel: (i.kind, i.value) for rel, i in first.items()} == {
        "data/a.csv": ("xxh3", xxhash.xxh3_128_hexdigest(b"1,2\n")),
        "data/b.csv": ("xxh3", xxhash.xxh3_128_hexdigest(b"3,4\n")),
    }
    assert identities(store, infos, cache=cache) == first
    assert (cache.hits, cache.misses) == (2, 2)


def test_identities_without_a_cache(tmp_path: Path) -> None:
    store = Datastore("local", (tmp_path / "store").as_uri())
    store.write_bytes("a.csv", b"x")
    ident = identities(store, store.list("", recursive=True, detail=True), cache=False)
    assert ident["a.csv"].value == xxhash.xxh3_128_hexdigest(b"x")
