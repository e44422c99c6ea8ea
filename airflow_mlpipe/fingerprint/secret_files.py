"""Well-known secret files (``.env``, private keys, cloud credentials) never go into a snapshot unless the step
names them in ``include_secret_files``: a snapshot is kept in the datastore, readable by everyone who can read it.

The check runs once per kept file of a scan, so it first compares the name against a few prefixes and suffixes
(C string methods) and matches the full patterns only for those candidates.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from airflow_mlpipe.core.checks import check_str_list
from airflow_mlpipe.exceptions import ConfigError

SECRET_FILE_PATTERNS = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "credentials",
    "credentials*.json",
    "service-account*.json",
    "secrets*.json",
    "secrets*.yaml",
    "secrets*.yml",
    "secrets*.toml",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "kubeconfig*",
    ".dockercfg",
    ".htpasswd",
    "client_secret*.json",
    "token.json",
)
_PREFIXES = (
    ".env",
    "id_",
    "credentials",
    "service-account",
    "secrets",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    "kubeconfig",
    ".dockercfg",
    ".htpasswd",
    "client_secret",
    "token.json",
)
_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore")


def is_secret_file_name(name: str) -> bool:
    """Whether a file's name (not its path) is one of ``SECRET_FILE_PATTERNS``, in any case (``.ENV``,
    ``Server.PEM``: some filesystems fold case, and a name's case says nothing of what it holds)."""
    name = name.lower()
    if not (name.startswith(_PREFIXES) or name.endswith(_SUFFIXES)):
        return False
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in SECRET_FILE_PATTERNS)


@dataclass
class SecretFileFilter:
    """Leaves secret files out of a scan, except the paths (or globs, relative to the scanned folder) in
    ``include``; ``skipped`` collects the relative paths it left out."""

    include: tuple[str, ...] = ()
    skipped: list[str] = field(default_factory=list)

    def keeps(self, rel_path: str) -> bool:
        name = rel_path.rpartition("/")[2]
        if not is_secret_file_name(name):
            return True
        if any(fnmatch.fnmatchcase(rel_path, pattern) for pattern in self.include):
            return True
        self.skipped.append(rel_path)
        return False

    @property
    def salt(self) -> str:
        """What a cached tree digest depends on besides the files (a changed filter is a changed tree)."""
        return "secret-files-v3:" + "\0".join(self.include)


def check_include_secret_files(task_id: str, value: object) -> tuple[str, ...]:
    """``include_secret_files`` as given to a step: a list of relative paths or globs."""
    items = check_str_list(f"step {task_id!r}", "include_secret_files", value, example="config/.env")
    for item in items:
        if item.startswith("/"):
            raise ConfigError(
                f"step {task_id!r}: include_secret_files entry {item!r} must be a path (or glob) relative to "
                "source_directory, e.g. 'config/.env'"
            )
    return tuple(item.strip("/") for item in items)
