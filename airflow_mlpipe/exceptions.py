"""Errors raised by airflow-mlpipe.

Configuration errors subclass ``ValueError`` and name the bad value and the fix. Nothing here imports Airflow:
the step runner and the storage layer use these without paying for Airflow's import. Task failures that Airflow
should show as such are raised from the operators and subclass ``AirflowException`` there.
"""

from __future__ import annotations


class MlpipeError(Exception):
    """Base class of every airflow-mlpipe error."""


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


def step_failed_error(message: str) -> Exception:
    """A task failure for Airflow (``AirflowException``): imported lazily so this module stays Airflow-free."""
    from airflow.sdk.exceptions import AirflowException

    class StepFailedError(AirflowException):
        """A script step whose script failed, or that could not run."""

    return StepFailedError(message)
