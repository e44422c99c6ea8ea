"""Session fixtures: a private Airflow home on SQLite, and real storage servers (Azurite, moto S3)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

# Airflow reads its settings when first imported: point it at a private home before anything imports it.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="mlpipe-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["MLPIPE_HOME"] = str(_AIRFLOW_HOME / "mlpipe")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")
os.environ["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
for _key in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
    del os.environ[_key]

import pytest  # noqa: E402

from airflow_mlpipe.storage import resolve  # noqa: E402
from airflow_mlpipe.storage.datastore import Datastore  # noqa: E402
from tests.emulators import Azurite, MotoS3  # noqa: E402
from tests.kubernetes_env import kubernetes_env  # noqa: E402, F401 -- a session fixture for every test folder


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    server = Azurite()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Migrate the SQLite metadata DB once per session."""
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
    )
    return _AIRFLOW_HOME


@pytest.fixture(autouse=True)
def _fresh_datastore_cache() -> Iterator[None]:
    resolve.clear_cache()
    yield
    resolve.clear_cache()


@pytest.fixture
def local_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """A private MLPIPE_HOME (its local default datastore) for this process and the DAG runs it starts: pass the
    returned environment to ``airflow_dags_test``."""
    env = {"MLPIPE_HOME": str(tmp_path / "mlpipe")}
    monkeypatch.setenv("MLPIPE_HOME", env["MLPIPE_HOME"])
    resolve.clear_cache()
    return env


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def make_azurite_datastore(azurite: Azurite, name: str = "azure") -> Datastore:
    container = unique("c")
    store = Datastore(name, f"az://{container}/root", {"connection_string": azurite.connection_string})
    store.fs.mkdir(container)
    return store


def make_s3_datastore(moto_s3: MotoS3, name: str = "s3") -> Datastore:
    bucket = unique("b")
    store = Datastore(name, f"s3://{bucket}/root", moto_s3.storage_options())
    store.fs.mkdir(bucket)
    return store


BACKENDS = ["local", "memory", "azurite", "moto"]


@pytest.fixture(params=BACKENDS)
def datastore(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Datastore]:
    """The same datastore tests on every backend (as fsspec's abstract test classes do)."""
    kind = request.param
    if kind == "local":
        store = Datastore("local", (tmp_path / "store").as_uri())
    elif kind == "memory":
        store = Datastore("mem", f"memory://{unique('m')}")
    elif kind == "azurite":
        store = make_azurite_datastore(request.getfixturevalue("azurite"))
    else:
        store = make_s3_datastore(request.getfixturevalue("moto_s3"))
    yield store
    if kind == "memory" and store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


# Test files that each hold minutes of work (whole pipelines on real Airflow services), collected first. xdist
# (``--dist loadfile``) hands out the files with the most tests first and keeps this order among equals; handing
# these out first of all (``--no-loadscope-reorder``) started every scheduler deployment at once and overloaded
# two CPUs.
_LONG_FILES = (
    "tests/attempts/test_attempts_azure.py",
    "tests/attempts/test_attempts_local.py",
    "tests/compute/test_pipeline_on_kubernetes.py",
    "tests/datasets/test_registry_pointer.py",
    "tests/steps/test_example_pipeline.py",
    "tests/attempts/test_celery.py",
    "tests/compute/test_pipeline_on_docker.py",
    "tests/ui/test_browser.py",
    "tests/reuse/test_reuse_runs.py",
    "tests/storage/test_paged.py",
    "tests/reuse/test_sensor_reuse.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return _LONG_FILES.index(path) if path in _LONG_FILES else len(_LONG_FILES)

    items.sort(key=rank)  # stable: tests keep their order within a file
