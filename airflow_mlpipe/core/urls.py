"""Datastore URLs: which fsspec backend serves them and where their root is.

One scheme table (as fsspec's ``registry``): the URL scheme users write, the fsspec protocol, the module that must
be importable, and the pip package that provides it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from airflow_mlpipe.core.paths import RESERVED_ROOT, is_reserved_name, stored_name
from airflow_mlpipe.core.secrets import scrub_text
from airflow_mlpipe.exceptions import ConfigError, ReservedPathError, UnsupportedSchemeError


@dataclass(frozen=True)
class Backend:
    protocol: str
    module: str | None
    package: str | None
    label: str


BACKENDS: dict[str, Backend] = {
    "file": Backend("file", None, None, "local folder"),
    "memory": Backend("memory", None, None, "in-memory (tests)"),
    "az": Backend("abfs", "adlfs", "adlfs", "Azure Blob Storage / ADLS Gen2"),
    "abfs": Backend("abfs", "adlfs", "adlfs", "Azure Blob Storage / ADLS Gen2"),
    "abfss": Backend("abfs", "adlfs", "adlfs", "Azure Blob Storage / ADLS Gen2"),
    "s3": Backend("s3", "s3fs", "s3fs", "Amazon S3 and S3-compatible stores"),
    "s3a": Backend("s3", "s3fs", "s3fs", "Amazon S3 and S3-compatible stores"),
    "gs": Backend("gcs", "gcsfs", "gcsfs", "Google Cloud Storage"),
    "gcs": Backend("gcs", "gcsfs", "gcsfs", "Google Cloud Storage"),
}


@dataclass(frozen=True)
class ParsedUrl:
    """A datastore URL split into the backend, its root path and options implied by the URL itself."""

    scheme: str
    backend: Backend
    root: str
    # The URL's user info (an S3 key and secret): kept out of repr, which error messages and logs show.
    url_options: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def protocol(self) -> str:
        return self.backend.protocol


def supported_schemes() -> str:
    return ", ".join(f"{s}:// ({b.label})" for s, b in BACKENDS.items())


def parse_datastore_url(url: str, *, datastore: str = "?") -> ParsedUrl:
    """Parse ``file:///data``, ``az://container/prefix``, ``abfs://container@account.dfs.core.windows.net/p``,
    ``s3://bucket/prefix``, ``memory://name`` (or a bare absolute path, taken as ``file://``)."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            f"datastore {datastore!r}: url {url!r} is empty; set the connection's extra "
            '{"url": "file:///data" | "az://container/prefix" | "s3://bucket/prefix"}'
        )
    url = url.strip()
    if url.startswith("/"):
        url = "file://" + url
    parts = urlsplit(url)
    shown = scrub_text(url)  # what error messages may echo
    scheme = parts.scheme.lower()
    if scheme not in BACKENDS:
        raise UnsupportedSchemeError(
            f"datastore {datastore!r}: url {shown!r} has scheme {scheme + '://' if scheme else '(none)'!r}, "
            f"which is not supported; use one of {supported_schemes()}"
        )
    backend = BACKENDS[scheme]
    path = unquote(parts.path)
    options: list[tuple[str, str]] = []
    # USER:PASSWORD@ before the bucket, found in the text itself: a secret may hold '/' (AWS's own example key
    # does), which urlsplit takes for the start of the path, leaving the secret in the bucket's name.
    after = url.split("://", 1)[1] if "://" in url else ""
    credentials = re.match(r"[^:/@]*:[^@]*@(?=[^@]*$)", after)
    _refuse_query(after[credentials.end() :] if credentials else after, scheme, bool(credentials), datastore)
    if credentials and backend.protocol not in ("s3", "gcs"):
        raise ConfigError(
            f"datastore {datastore!r}: url {shown!r} holds a password, which {scheme}:// urls do not take; put the "
            "credentials in the connection's extra (e.g. account_key, sas_token or connection_string)"
        )
    if credentials:
        user, _, password = credentials.group(0)[:-1].partition(":")
        netloc, _, tail = after[credentials.end() :].partition("/")
        if not netloc:
            raise ConfigError(f"datastore {datastore!r}: url {shown!r} has no bucket; write {scheme}://BUCKET/prefix")
        options += [(k, unquote(v)) for k, v in (("key", user), ("secret", password)) if v]
        root = (netloc + unquote("/" + tail.split("?", 1)[0].split("#", 1)[0])).rstrip("/")
        _refuse_reserved_root(scheme, backend, root, shown, datastore)
        return ParsedUrl(scheme=scheme, backend=backend, root=root, url_options=tuple(options))
    if backend.protocol == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"datastore {datastore!r}: url {shown!r} names host {scrub_text(parts.netloc + '/')[:-1]!r}; a local "
                "folder url is "
                "file:///absolute/path (three slashes)"
            )
        root = path.rstrip("/") or "/"
    elif backend.protocol == "memory":
        root = "/" + (parts.netloc + path).strip("/")
    else:
        netloc = parts.netloc
        if not netloc:
            raise ConfigError(
                f"datastore {datastore!r}: url {shown!r} has no container or bucket; write "
                f"{scheme}://CONTAINER_OR_BUCKET/optional/prefix"
            )
        if "@" in netloc and backend.protocol in ("s3", "gcs"):
            # s3://KEY:SECRET@bucket/prefix: the credentials become storage options (kept secret), never the root
            userinfo, netloc = netloc.rsplit("@", 1)
            user, _, password = userinfo.partition(":")
            options += [(k, unquote(v)) for k, v in (("key", user), ("secret", password)) if v]
        if "@" in netloc and backend.protocol == "abfs":
            container, host = netloc.split("@", 1)
            options.append(("account_name", host.split(".", 1)[0]))
            netloc = container
        root = (netloc + path).rstrip("/")
    _refuse_reserved_root(scheme, backend, root, shown, datastore)
    return ParsedUrl(scheme=scheme, backend=backend, root=root, url_options=tuple(options))


def _refuse_reserved_root(scheme: str, backend: Backend, root: str, shown: str, datastore: str) -> None:
    """A root below a folder named ``_mlpipe`` (as stores keep names: any case, trailing dots and spaces dropped)
    lies inside another datastore's records, and one named as a marker or journal is a file mlpipe writes: every
    output, transfer or upload through the datastore would write into that registry, reuse index or marker."""
    segments = root.split("/")
    for i, segment in enumerate(segments):
        if stored_name(segment) == RESERVED_ROOT:
            what = (
                f"the folder {segment + '/'!r}, the name mlpipe reserves (at any depth, in any case, trailing dots "
                "and spaces dropped) for the registry, reuse index and run records of the datastore it lies in"
            )
        elif is_reserved_name(segment):
            what = f"{segment!r}, the name of the file mlpipe writes to mark a folder complete or journal a transfer"
        else:
            continue
        example = display_url(ParsedUrl(scheme, backend, "/".join([*segments[:i], "data"])))
        raise ReservedPathError(
            f"datastore {datastore!r}: url {shown!r} has a root path through {what}: every write through this "
            f"datastore would land in another datastore's records; choose a root without that folder, e.g. "
            f"{example!r}"
        )


def _refuse_query(rest: str, scheme: str, credentials: bool, datastore: str) -> None:
    """A query string or fragment would be dropped silently (``?sig=...``, a SAS token, never authenticates the
    store): refused, showing the URL up to it and never the query itself, which may hold a secret. ``rest``: the
    URL after ``scheme://`` and any user info."""
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=-1)
    if cut < 0:
        return
    what = "a query string ('?...')" if rest[cut] == "?" else "a fragment ('#...')"
    shown = scrub_text(f"{scheme}://{'***@' if credentials else ''}{rest[:cut]}{rest[cut]}...")
    raise ConfigError(
        f"datastore {datastore!r}: url {shown!r} has {what}, which a datastore url does not take (it would be "
        "dropped); the url names the store and its root folder only: put credentials such as a SAS token or keys in "
        "the connection's extra (e.g. sas_token, account_key, connection_string) or its storage_options, and write a "
        "'?' or '#' that is part of a folder name as %3F or %23"
    )


def display_url(parsed: ParsedUrl) -> str:
    """The canonical URL of a root, as we show it to users."""
    if parsed.backend.protocol == "file":
        return "file://" + parsed.root
    if parsed.backend.protocol == "memory":
        return "memory://" + parsed.root
    return f"{parsed.scheme}://{parsed.root}"
