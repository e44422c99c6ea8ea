"""Errors of the copy engine. Each names the datastores and paths involved and says how to fix it.

They subclass both our ``MlpipeError`` (so ``translate_errors`` lets them through untouched) and the built-in
exception a caller would naturally catch (``FileNotFoundError``, ``FileExistsError``, ``ValueError``).
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow_mlpipe.exceptions import ConfigError, MlpipeError


class TransferError(MlpipeError):
    """Base class of every copy-engine error."""


class TransferSourceNotFoundError(TransferError, FileNotFoundError):
    """The source file or folder (or a file a caller asked for by name) does not exist."""


class TransferKindError(TransferError, ConfigError):
    """``kind="file"`` given a folder, or ``kind="directory"`` given a file (at the source or destination)."""


class TransferOverlapError(TransferError, ConfigError):
    """Source and destination are the same path, or one lies inside the other, in the same store."""


class TransferDestinationExistsError(TransferError, FileExistsError):
    """The destination holds files that differ from the source, and ``overwrite`` is off.

    ``files``: those files, relative to the destination folder; ``where``: the destination, in words."""

    def __init__(self, message: str, *, files: Sequence[str] = (), where: str = "") -> None:
        super().__init__(message)
        self.files = tuple(files)
        self.where = where


class TransferExtraFilesError(TransferDestinationExistsError):
    """The destination folder holds files the source does not have, and it is not the transfer's own to mirror
    (or its caller forbade removing them): the folder would not be a copy of the source."""


class TransferFailedError(TransferError):
    """A file could not be copied even after retries (a store went away, refused, or failed).

    Nothing was marked complete; the files copied so far are kept, so a re-run copies only what is missing.
    """

    def __init__(self, message: str, *, files_copied: int = 0, failed_path: str = "") -> None:
        super().__init__(message)
        self.files_copied = files_copied
        self.failed_path = failed_path


class TransferVerificationError(TransferError):
    """A copied file's size or checksum at the destination does not match the source."""


def some_files(files: Sequence[str], shown: int = 5) -> str:
    """A few of ``files``, then a count of the rest: ``'a.csv', 'b.csv' and 3 more``."""
    head = ", ".join(map(repr, files[:shown]))
    return head + (f" and {len(files) - shown} more" if len(files) > shown else "")
