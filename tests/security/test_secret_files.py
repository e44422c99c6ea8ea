"""Snapshots leave well-known secret files out unless a step lists them in ``include_secret_files``."""

from __future__ import annotations

import os
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


def test_a_link_to_a_file_outside_the_source_is_refused_and_a_link_to_a_secret_left_out(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text("aws_secret_access_key=LinkedPlant1\n")
    (home / "notes.txt").write_text("LinkedPlant2\n")
    src = tmp_path / "src"
    (src / "conf").mkdir(parents=True)
    (src / "train.py").write_text("pass\n")
    (src / "conf" / ".env").write_text("TOKEN=LinkedPlant3\n")
    (src / "aws.txt").symlink_to(home / ".aws" / "credentials")  # the secret-file filter sees the target's name
    (src / "settings.txt").symlink_to("conf/.env")
    (src / "also_train.py").symlink_to("train.py")  # inside, not secret: kept as the file
    secret_files = SecretFileFilter()
    tree = scan_source(str(src), secret_files)
    assert sorted(tree.entries) == ["also_train.py", "train.py"]
    outside = os.path.realpath(home / ".aws" / "credentials")
    assert sorted(secret_files.skipped) == [
        f"aws.txt (a link to {outside})",
        "conf/.env",
        "settings.txt (a link to conf/.env)",
    ]
    store = Datastore("snap", (tmp_path / "store").as_uri())
    store_snapshot(str(src), tree, store)
    stored = b"".join(p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert b"LinkedPlant" not in stored
    # listed in include_secret_files: the link to a secret inside is kept
    assert "settings.txt" in scan_source(str(src), SecretFileFilter(("settings.txt",))).entries

    # a link to any other file outside: refused, as a link to a folder outside is, before anything is stored
    (src / "notes.txt").symlink_to(home / "notes.txt")
    for _ in range(2):  # a first scan, then one from the stat cache
        with pytest.raises(ConfigError, match=r"source file 'notes.txt' in '.*src' is a link to '.*/home/notes.txt', "
                           r"outside the source folder: .* copy the file in \(or point the link inside\)"):  # fmt: skip
            scan_source(str(src))
    # listed in include_secret_files, a link out to a secret is still refused
    with pytest.raises(ConfigError, match=r"'aws.txt' in .* is a link to '.*/\.aws/credentials', outside"):
        scan_source(str(src), SecretFileFilter(("aws.txt",)))
