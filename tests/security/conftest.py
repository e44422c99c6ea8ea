from __future__ import annotations

import pytest

from airflow_mlpipe.storage.datastore import Datastore


@pytest.fixture
def default_store(local_home: dict[str, str]) -> Datastore:
    return Datastore.get_default()
