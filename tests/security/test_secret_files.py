"""Snapshots leave well-known secret files out unless a step lists them in ``include_secret_files``."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_mlpipe import PythonScriptOperator
from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.fingerprint.secret_files import SecretFileFilter, is_secret_file_name
from airflow_mlpipe.steps.snapshot import fetch_snapshot, scan_source, store_snapshot
from airflow_mlpipe.storage.datastore import Datastore

SECRETS = [
    ".env",
    ".env.production",
    "server.pem",
    "tls.key",
    "id_rsa",
    "id_rsa.pub",
    "id_ed25519",
    "credentials.json",
    "credentials-prod.json",
    "secrets.json",
    "secrets.dev.json",
    ".netrc",
    ".pypirc",
    "cert.p12",
    "cert.pfx",
    # any case: some filesystems fold it, and it says nothing of what a file holds
    ".ENV",
    "Server.PEM",
    "tls.KEY",
    "ID_RSA",
    "Credentials.json",
    # cloud, tool and keystore credentials
    "credentials",
    ".git-credentials",
    ".pgpass",
    ".npmrc",
    "secrets.yaml",
    "secrets.yml",
    "secrets.prod.toml",
    "service-account.json",
    "service-account-prod.json",
    "store.jks",
    "cert.P12",
    "release.keystore",
]
ORDINARY = [
    "train.py",
    "environment.yml",
    "keys.py",
    "secrets.py",
    "credentials.md",
    "credentials.py",
    "env.txt",
    "monkey.json",
    "service_account.md",
    "keystore.py",
    "npmrc.md",
    "secrets_test.txt",
]


@pytest.mark.parametrize("name", SECRETS)
def test_secret_names(name: str) -> None:
    assert is_secret_file_name(name)


@pytest.mark.parametrize("name", ORDINARY)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_file_name(name)


@pytest.fixture
def source(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "conf").mkdir(parents=True)
    for name in ORDINARY:
        (src / name).write_text(f"{name}\n")
    for name in SECRETS:
        (src / "conf" / name).write_text("planted-secret-value\n")
    (src / ".env").write_text("TOKEN=planted-secret-value\n")
    return src


def test_snapshot_leaves_secret_files_out_and_says_which(source: Path, tmp_path: Path) -> None:
    secret_files = SecretFileFilter()
    tree = scan_source(str(source), secret_files)
    assert sorted(tree.entries) == sorted(ORDINARY)
    assert sorted(secret_files.skipped) == sorted([".env", *(f"conf/{n}" for n in SECRETS)])
    store = Datastore("snap", (tmp_path / "store").as_uri())
    store_snapshot(str(source), tree, store)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert b"planted-secret-value" not in stored
    fetch_snapshot(tree.digest, store, str(tmp_path / "fetched"), cache=False)
    assert not (tmp_path / "fetched/.env").exists() and (tmp_path / "fetched/train.py").exists()


def test_listed_secret_files_are_kept(source: Path) -> None:
    secret_files = SecretFileFilter(("conf/.env", "conf/*.pem"))
    tree = scan_source(str(source), secret_files)
    assert {"conf/.env", "conf/server.pem"} <= set(tree.entries)
    assert ".env" in secret_files.skipped and "conf/tls.key" in secret_files.skipped
    assert tree.digest != scan_source(str(source)).digest  # a kept file counts, even with a warm stat cache


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            ".env",
            r"include_secret_files '.env' must be a list of strings; write include_secret_files=\['.env'\]",
            id="string",
        ),
        pytest.param(3, "include_secret_files 3 must be a list", id="int"),
        pytest.param(["/etc/.env"], "include_secret_files entry '/etc/.env' must be a path .*relative", id="absolute"),
        pytest.param([None], "include_secret_files entry None must be a non-empty string", id="none"),
    ],
)
def test_include_secret_files_is_checked_at_parse_time(value: object, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=rf"step 'train': {message}"):
        PythonScriptOperator(
            task_id="train", script_name="t.py", source_directory=str(tmp_path), include_secret_files=value
        )
