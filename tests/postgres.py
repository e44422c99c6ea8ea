"""A private PostgreSQL cluster on 127.0.0.1 for the Airflow deployments of the scheduler tests (SQLite refuses
some of what they do, such as creating a backfill while the scheduler runs). ``scripts/postgres.sh`` installs the
server programs; the test command runs it."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.emulators import free_port

USER = "airflow"
TEMPLATE = "airflow_migrated"


def _bin() -> Path:
    script = Path(__file__).resolve().parent.parent / "scripts" / "postgres.sh"
    found = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
    if found.returncode != 0:
        raise RuntimeError(f"PostgreSQL is not available: {found.stderr.strip()} (run scripts/postgres.sh as root)")
    return Path(found.stdout.strip().splitlines()[-1])


class PostgresCluster:
    def __init__(self, folder: Path) -> None:
        self.bin = _bin()
        self.folder = folder
        self.data = folder / "data"
        self.port = free_port()
        # The server refuses to run as root: as root, it runs as the postgres user of Debian's package.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self._template_ready = False

    def _run(self, *argv: str) -> None:
        subprocess.run([*self.as_user, *argv], check=True, capture_output=True, cwd="/")

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.as_user:
            uid = pwd.getpwnam("postgres").pw_uid
            os.chown(self.folder, uid, -1)
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", USER, "--no-sync")
        options = f"-p {self.port} -k {self.folder} -h 127.0.0.1 -c fsync=off -c max_connections=200"
        log = str(self.folder / "server.log")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def url(self, name: str) -> str:
        return f"postgresql+psycopg2://{USER}@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str) -> str:
        """A new Airflow metadata database, already migrated (a copy of one migrated once per cluster: a copy
        takes a fraction of a second, ``airflow db migrate`` about ten); returns its SQLAlchemy URL."""
        if not self._template_ready:
            self._createdb(TEMPLATE)
            env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
            env.update(
                AIRFLOW_HOME=tempfile.mkdtemp(prefix="mlpipe-migrate-"),
                AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.url(TEMPLATE),
            )
            subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True)
            self._template_ready = True
        self._createdb(name, "-T", TEMPLATE)
        return self.url(name)

    def _createdb(self, name: str, *options: str) -> None:
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, *options, name)

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       capture_output=True, check=False, cwd="/")  # fmt: skip
        shutil.rmtree(self.folder, ignore_errors=True)
