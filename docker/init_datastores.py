"""Create the container or bucket of each named datastore if it is missing (storage emulators start empty)."""

from __future__ import annotations

import sys
import time

from airflow_mlpipe.storage.datastore import Datastore
from airflow_mlpipe.storage.resolve import find_config


def ensure(name: str, *, timeout: float = 60.0) -> None:
    config = find_config(name)
    if config is None:
        raise SystemExit(f"no connection {name!r}: set AIRFLOW_CONN_{name.upper()}")
    store = Datastore.from_config(config)
    bucket = config.parsed.root.split("/", 1)[0]
    deadline = time.monotonic() + timeout
    while True:  # the storage service may still be starting
        try:
            if not store.fs.exists(bucket):
                store.fs.mkdir(bucket)
            store.check_access()
            break
        except Exception as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"datastore {name!r} ({store.url}) is not reachable: {exc}") from None
            time.sleep(1)
    print(f"datastore {name!r} ready at {store.url}")


if __name__ == "__main__":
    for datastore in sys.argv[1:]:
        ensure(datastore)
