"""Errors raised by airflow-mlpipe.

Configuration errors subclass ``ValueError`` and name the bad value and the fix. Nothing here imports Airflow:
the step runner and the storage layer use these without paying for Airflow's import. Task failures that Airflow
should show as such are ``StepFailedError``: one line in the task log, no traceback (see its docstring).
"""

from __future__ import annotations


class MlpipeError(Exception):
    """Base class of every airflow-mlpipe error. Its message is scrubbed of credentials (``core.secrets``) when
    the error is made, so that no log, task failure or CLI line that shows it can show one: a URL's password, a
    SAS signature, a secret-named option, a bearer token."""

    def __init__(self, *args: object) -> None:
        from airflow_mlpipe.core.secrets import scrub_text

        super().__init__(*(scrub_text(a) if isinstance(a, str) else a for a in args))


class ConfigError(MlpipeError, ValueError):
    """A bad value in a DAG file, a connection or a call: the message names it and how to fix it."""


class DatastoreNotFoundError(ConfigError, LookupError):
    """No datastore connection with that name."""


class UnsupportedSchemeError(ConfigError):
    """A datastore URL whose scheme no installed fsspec backend serves."""


class PathOutsideDatastoreError(ConfigError):
    """A path that would leave the datastore's root (``..``, an absolute path)."""


class ReservedPathError(PathOutsideDatastoreError):
    """A user path inside mlpipe's own folder (``_mlpipe/``) of a datastore."""


class DatastoreAccessError(MlpipeError):
    """The store refused or could not be reached: names the datastore and the setting, never a secret."""


class IncompleteFolderError(MlpipeError):
    """A folder without its completion marker was read as if it were complete."""


class DatasetError(ConfigError):
    """A dataset definition, name or version that cannot be used."""


class DatasetNotFoundError(DatasetError, LookupError):
    """No registered dataset (or version) with that name."""


class TamperedRecordError(DatasetError):
    """A registry record that disagrees with its name, its manifest or its seal: refused, never served."""


class EnvironmentBuildError(MlpipeError):
    """A step's environment could not be built (pip failed): names the package and shows pip's last words."""


class FingerprintError(ConfigError):
    """A file or folder that a fingerprint needs cannot be read: the message names the path and the fix."""


class FingerprintPathNotFoundError(FingerprintError, FileNotFoundError):
    """A source folder or ``hash_paths`` entry that does not exist."""


class UnreadableFileError(FingerprintError, OSError):
    """A file in a source folder or ``hash_paths`` that cannot be read (permission denied, not a regular file)."""


class LeaseLostError(MlpipeError):
    """A step run's lease on a reuse key was taken over by another run (its heartbeats stopped for too long)."""


class StepFailedError(MlpipeError, SystemExit):
    """A step that failed or could not run: the task fails, and is retried as its ``retries`` allow.

    Airflow's task runner logs an ``AirflowException`` (or any ``Exception``) with its traceback, but a
    ``SystemExit`` as one line (``Task exited exit_code=1``), retries included; so this is a ``SystemExit`` as well
    as an ``MlpipeError``, and the operator logs its message as one ERROR line before raising it
    (``operators.failures.fails_cleanly``). The task log then shows what failed and how to fix it, and no frames
    of mlpipe's or Airflow's code, which say nothing to the DAG's author. Code that catches ``Exception`` still
    catches it; if nothing does, the process exits with status 1 after printing the message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.code = 1


def step_failed_error(message: str) -> StepFailedError:
    """The task failure for ``message`` (``StepFailedError``)."""
    return StepFailedError(message)
