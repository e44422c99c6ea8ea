"""Turn backend exceptions into errors that name the datastore and the setting, never a secret."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from airflow_mlpipe.core.secrets import scrub_text
from airflow_mlpipe.exceptions import DatastoreAccessError, MlpipeError
from airflow_mlpipe.storage.retry import could_not_reach

if TYPE_CHECKING:
    from airflow_mlpipe.storage.config import DatastoreConfig

_CREDENTIAL_HINTS = {
    "abfs": "check the connection's login (storage account name) and password (account key), or its extra "
    "connection_string / sas_token / service principal settings",
    "s3": "check the connection's login (access key id), password (secret access key), and extra endpoint_url "
    "and region_name",
    "gcs": "check the connection's password (service account token) or extra token",
    "file": "check that the folder exists and that this user may read and write it",
    "memory": "memory datastores exist only inside one process",
}

_AUTH_MARKERS = (
    "AuthenticationFailed",
    "AuthorizationFailure",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "Forbidden",
    "ClientAuthenticationError",
    "403",
)
_REACH_MARKERS = (
    "Cannot connect",
    "Connection refused",
    "EndpointConnectionError",
    "ServiceRequestError",
    "Could not connect",
    "Name or service not known",
    "ConnectTimeout",
    "timed out",
    # A store that took the connection and sent nothing within the read timeout (storage.timeouts).
    "ServiceResponseTimeoutError",
    "ReadTimeoutError",
    "Read timeout on endpoint",
    "Timeout on reading data",
)

# What a store answers when the container or bucket of the datastore's url is missing (s3fs turns S3's
# NoSuchBucket into a FileNotFoundError with the first text; Azure answers ContainerNotFound).
_MISSING_ROOT_MARKERS = (
    "The specified bucket does not exist",
    "NoSuchBucket",
    "The specified container does not exist",
    "ContainerNotFound",
)
_MISSING_ROOT_CODES = frozenset({"NoSuchBucket", "ContainerNotFound"})
# "Not found" answers about something else than the container or bucket: a multipart upload the store no longer
# knows (an earlier part timed out, or the upload was aborted), an object or a blob.
_OTHER_NOT_FOUND_CODES = frozenset({"NoSuchUpload", "NoSuchKey", "NoSuchVersion", "BlobNotFound"})
_OTHER_NOT_FOUND_MARKERS = (
    *_OTHER_NOT_FOUND_CODES,
    "The specified upload does not exist",
    "The specified key does not exist",
    "The specified blob does not exist",
)
# Actions that write: a "not found" answer to one of them on an object store, which says nothing else, means its
# container or bucket is missing (a write creates the object, and the folders above it are no objects of their own).
_WRITE_ACTIONS = frozenset({"write", "create", "upload to", "mark complete", "create the root folder"})


def store_error_code(exc: BaseException) -> str | None:
    """The error code the store answered (S3's ``NoSuchUpload``, Azure's ``ContainerNotFound``), from ``exc`` or
    the errors it was raised from (s3fs raises a ``FileNotFoundError`` from botocore's ``ClientError``)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        response = getattr(current, "response", None)
        if isinstance(response, Mapping) and isinstance(response.get("Error"), Mapping):
            code = response["Error"].get("Code")
            if code:
                return str(code)
        code = getattr(current, "error_code", None)  # azure-core's HttpResponseError
        if code:
            return str(getattr(code, "value", code))
        current = current.__cause__ or current.__context__
    return None


def _missing_root(
    config: DatastoreConfig, action: str, text: str, *, writes: bool = True, code: str | None = None
) -> str | None:
    """The words for a missing container or bucket, when the store's answer (``text``, its error ``code``) says
    so, or (``writes``: ``text`` is a "not found" answer) when a write on an object store was answered so with
    nothing that names another missing thing; None otherwise."""
    parsed = config.parsed
    if parsed.protocol in ("file", "memory"):
        return None
    said = code in _MISSING_ROOT_CODES or any(m in text for m in _MISSING_ROOT_MARKERS)
    other = code in _OTHER_NOT_FOUND_CODES or any(m in text for m in _OTHER_NOT_FOUND_MARKERS)
    if not said and (other or not (writes and action in _WRITE_ACTIONS)):
        return None
    word = "container" if parsed.protocol == "abfs" else "bucket"
    name = parsed.root.split("/", 1)[0]
    state = "does not exist" if said else "may not exist (the store answered 'not found' to a write)"
    return (
        f"the {word} {name!r} of the datastore's url ({parsed.scheme}://{parsed.root}) {state}: create it, or correct "
        "the connection's url"
    )


def _patience(config: DatastoreConfig) -> str:
    """How long the clients tried, and the setting that says so (object stores only: a folder does not wait)."""
    if config.parsed.protocol in ("file", "memory"):
        return ""
    from airflow_mlpipe.storage.timeouts import TIMEOUT_ENV, TIMEOUT_OPTION, store_budget

    try:
        seconds = store_budget(config.name, config.storage_options).seconds
    except ValueError:
        return ""
    return (
        f" (tries are given up after about {seconds:g} s: {TIMEOUT_ENV}, or the connection's extra "
        f"{TIMEOUT_OPTION!r}, sets how long)"
    )


def hint(protocol: str) -> str:
    return _CREDENTIAL_HINTS.get(protocol, "check the connection's settings")


@contextlib.contextmanager
def translate_errors(config: DatastoreConfig, action: str, path: str = "") -> Iterator[None]:
    """Re-raise backend errors as ``DatastoreAccessError`` naming datastore, action and fix.

    ``FileNotFoundError``, ``FileExistsError`` and our own errors pass through (callers act on them), with
    the path shown relative to the datastore.
    """
    try:
        yield
    except MlpipeError:
        raise
    except FileNotFoundError as exc:
        code = store_error_code(exc)
        missing_root = _missing_root(config, action, str(exc), code=code)
        if missing_root:
            raise FileNotFoundError(
                f"datastore {config.name!r}: cannot {action} {path or '/'!r}: {missing_root}"
            ) from None
        if code == "NoSuchUpload" or "The specified upload does not exist" in str(exc):
            raise FileNotFoundError(
                f"datastore {config.name!r}: cannot {action} {path or '/'!r}: the store no longer knows the "
                "multipart upload of this write (NoSuchUpload: it was aborted, e.g. after one of its parts timed "
                "out); write it again"
            ) from None
        raise FileNotFoundError(f"datastore {config.name!r}: {path or '/'!r} does not exist") from None
    except FileExistsError:
        raise FileExistsError(f"datastore {config.name!r}: {path or '/'!r} already exists") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"datastore {config.name!r}: {path or '/'!r} is a folder, not a file") from None
    except NotADirectoryError:
        raise NotADirectoryError(f"datastore {config.name!r}: {path or '/'!r} is a file, not a folder") from None
    except Exception as exc:
        text = scrub_text(f"{type(exc).__name__}: {exc}", config.secret_values)
        first_line = text.splitlines()[0][:400] if text else type(exc).__name__
        protocol = config.parsed.protocol
        where = f"datastore {config.name!r} ({config.parsed.scheme}://{config.parsed.root})"
        # The clients' own verdict first: a timed-out request's text (its URL, a port such as 40353) may hold an
        # auth marker by chance.
        unreachable = could_not_reach(exc)
        if not unreachable and (isinstance(exc, PermissionError) or any(m in text for m in _AUTH_MARKERS)):
            msg = f"{where}: access denied while trying to {action} {path or '/'!r} ({first_line}); {hint(protocol)}"
        elif (
            unreachable
            or isinstance(exc, (ConnectionError, TimeoutError, OSError))
            or any(m in text for m in _REACH_MARKERS)
        ):
            msg = (
                f"{where}: cannot {action} {path or '/'!r}: the store could not be reached ({first_line}); check "
                f"the connection's url and extra endpoint settings and that the service is up{_patience(config)}"
            )
        elif missing_root := _missing_root(config, action, text, writes=False, code=store_error_code(exc)):
            msg = f"{where}: cannot {action} {path or '/'!r}: {missing_root}"
        else:
            msg = f"{where}: failed to {action} {path or '/'!r} ({first_line})"
        raise DatastoreAccessError(msg) from None
