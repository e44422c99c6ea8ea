"""Well-known secret files (``.env``, private keys, cloud credentials) never go into a snapshot unless the step
names them in ``include_secret_files``: a snapshot is kept in the datastore, readable by everyone who can read it.

The check runs once per kept file of a scan, so it first compares the name against a few prefixes and suffixes
(C string methods) and matches the full patterns only for those candidates. A changed list changes
``SecretFileFilter.salt`` (cached tree digests depend on it), as does a change to what the filter looks at.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field

from airflow_mlpipe.core.checks import check_str_list
from airflow_mlpipe.exceptions import ConfigError

SECRET_FILE_PATTERNS = (
    # environment files
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    # private keys and keystores
    "*.pem",
    "*.key",
    "*.ppk",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "id_rsa*",
    "id_dsa*",
    "id_ecdsa*",
    "id_ed25519*",
    "ssh_host_*_key",
    "*.p8",
    "secring.gpg",
    "*.kdbx",
    # cloud and service credentials (``credentials`` is the AWS file; not ``credentials.py``, which is code)
    "credentials",
    "*credentials*.json",
    "credentials*.csv",
    "credentials*.yaml",
    "credentials*.yml",
    "credentials*.ini",
    "credentials*.toml",
    "credentials*.txt",
    "credentials*.cfg",
    "credentials*.conf",
    "credentials*.xml",
    "credentials*.properties",
    "service-account*.json",
    "service_account*.json",
    "client_secret*.json",
    "token.json",
    "key.json",
    "*-key.json",
    "*_key.json",
    "secret*.json",
    "secret*.yaml",
    "secret*.yml",
    "secret*.toml",
    ".vault-token",
    ".s3cfg",
    ".boto",
    ".passwd-s3fs",
    "rclone.conf",
    "credentials.db",  # gcloud's
    "access_tokens.db",
    "kaggle.json",
    ".databrickscfg",
    # infrastructure state and variables (Terraform keeps every secret it handled in its state)
    "*.tfstate",
    "*.tfstate.backup",
    "*.tfvars",
    "*.tfvars.json",
    # tool credentials
    ".netrc",
    "_netrc",
    ".my.cnf",
    ".git-credentials",
    ".pgpass",
    ".npmrc",
    ".pypirc",
    ".dockercfg",
    ".htpasswd",
    "kubeconfig*",
)
# Files that are secret in a folder of that name, wherever the folder is (``home/.docker/config.json``).
SECRET_FILE_PATHS = (
    ".docker/config.json",
    ".kube/config",
    ".huggingface/token",
    "huggingface/token",  # ~/.cache/huggingface/token
    ".azure/msal_token_cache.json",
    ".azure/accessTokens.json",
)

# The check runs once per kept file of a scan: a name is matched against the patterns (one regular expression) only
# when it equals one, or starts with a pattern's text before its first '*', or ends with its text after the last.
_EXACT = frozenset(p for p in SECRET_FILE_PATTERNS if "*" not in p)
_PREFIXES = tuple(sorted({p.partition("*")[0] for p in SECRET_FILE_PATTERNS if "*" in p} - {""}))
_SUFFIXES = tuple(sorted({p.rpartition("*")[2] for p in SECRET_FILE_PATTERNS if p.startswith("*")}))
_PATTERN = re.compile("|".join(fnmatch.translate(p) for p in SECRET_FILE_PATTERNS))
_PATHS = tuple("/" + path.lower() for path in SECRET_FILE_PATHS)
_PATH_NAMES = frozenset(path.rpartition("/")[2] for path in _PATHS)


def is_secret_file_name(name: str) -> bool:
    """Whether a file's name (not its path) is one of ``SECRET_FILE_PATTERNS``, in any case (``.ENV``,
    ``Server.PEM``: some filesystems fold case, and a name's case says nothing of what it holds)."""
    name = name.lower()
    if not (name in _EXACT or name.startswith(_PREFIXES) or name.endswith(_SUFFIXES)):
        return False
    return _PATTERN.match(name) is not None


def is_secret_file(rel_path: str) -> bool:
    """Whether a file at ``rel_path`` (``/``-separated) is a secret file: its name is one of
    ``SECRET_FILE_PATTERNS``, or its path ends with one of ``SECRET_FILE_PATHS``; in any case."""
    name = rel_path.rpartition("/")[2]
    if is_secret_file_name(name):
        return True
    if name.lower() not in _PATH_NAMES:
        return False
    return ("/" + rel_path.lower()).endswith(_PATHS)


@dataclass
class SecretFileFilter:
    """Leaves secret files out of a scan, except the paths (or globs, relative to the scanned folder) in
    ``include``; ``skipped`` collects the relative paths it left out."""

    include: tuple[str, ...] = ()
    skipped: list[str] = field(default_factory=list)

    def keeps(self, rel_path: str, target: str | None = None) -> bool:
        """Whether the file at ``rel_path`` stays in the scan. ``target``: for a link that is followed, the file it
        points to (relative to the scanned folder, or absolute when outside it), whose name counts too: a link
        ``notes.txt -> .env`` carries the ``.env``'s bytes. ``include`` may name the link or a target inside."""
        if not (is_secret_file(rel_path) or (target is not None and is_secret_file(target))):
            return True
        named = (rel_path,) if target is None or target.startswith("/") else (rel_path, target)
        if any(fnmatch.fnmatchcase(path, pattern) for path in named for pattern in self.include):
            return True
        self.skipped.append(rel_path if target is None else f"{rel_path} (a link to {target})")
        return False

    @property
    def salt(self) -> str:
        """What a cached tree digest depends on besides the files (a changed filter is a changed tree)."""
        return "secret-files-v5:" + "\0".join(self.include)


def check_include_secret_files(task_id: str, value: object) -> tuple[str, ...]:
    """``include_secret_files`` as given to a step: a list of relative paths or globs."""
    items = check_str_list(f"step {task_id!r}", "include_secret_files", value, example="config/.env")
    for item in items:
        outside = item.startswith(("/", "~")) or ".." in item.split("/") or ":" in item.partition("/")[0]
        if outside or "\\" in item or not item.strip("/"):
            raise ConfigError(
                f"step {task_id!r}: include_secret_files entry {item!r} must be a path (or glob) relative to "
                "source_directory and inside it (not absolute, no '..', folders separated by '/'), e.g. "
                "'config/.env'; only files of the snapshot can be kept in it"
            )
    return tuple(item.strip("/") for item in items)
