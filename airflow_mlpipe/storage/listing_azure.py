"""List an Azure Blob folder from the raw List Blobs XML: about 2.5x faster than adlfs ``find``.

adlfs (through the SDK) turns every blob of a listing into a model object, field by field, at about half a
millisecond of CPU a blob: 5 s for 10,000 blobs, which would be most of an up-to-date re-run. Here the same
request goes through the same SDK pipeline (authentication, retries, the account's endpoint) and ElementTree
reads the four fields we need. The pipeline is reached through the generated client's ``_send_request``: where a
future SDK lacks it, ``list_azure`` returns None and the caller falls back to ``find``.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_PAGE = 5000


def _page_url(container_url: str, prefix: str, marker: str) -> str:
    parts = urlsplit(container_url)
    query = dict(parse_qsl(parts.query))  # keeps a SAS token in the account URL
    query.update({"restype": "container", "comp": "list", "prefix": prefix, "include": "metadata"})
    query["maxresults"] = str(_PAGE)
    if marker:
        query["marker"] = marker
    return urlunsplit(parts._replace(query=urlencode(query)))


def _is_folder_placeholder(blob: ET.Element) -> bool:
    metadata = blob.find("Metadata")
    if metadata is None:
        return False
    flags = {child.tag.lower(): (child.text or "").lower() for child in metadata}
    return flags.get("is_directory") == "true" or flags.get("hdi_isfolder") == "true"


def _entries(body: bytes, add: Callable[[str, int, str, str | None], None]) -> str:
    """Feed each blob of one page to ``add``; return the next page's marker ("" at the end)."""
    root = ET.fromstring(body)
    for blob in root.iter("Blob"):
        props = blob.find("Properties")
        name = blob.findtext("Name")
        if props is None or name is None or _is_folder_placeholder(blob):
            continue
        md5 = props.findtext("Content-MD5")
        add(
            name,
            int(props.findtext("Content-Length") or 0),
            (props.findtext("Etag") or "").strip('"'),
            base64.b64decode(md5).hex() if md5 else None,
        )
    return root.findtext("NextMarker") or ""


async def _list(fs: Any, container: str, prefix: str) -> list[tuple[str, int, str, str | None]] | None:
    from azure.core.rest import HttpRequest

    client = fs.service_client.get_container_client(container)
    send = getattr(getattr(client, "_client", None), "_send_request", None)
    if send is None:
        return None
    found: list[tuple[str, int, str, str | None]] = []
    marker = ""
    while True:
        response = await send(HttpRequest("GET", _page_url(client.url, prefix, marker)))
        if response.status_code == 404:
            return []  # no such container: nothing below the path
        response.raise_for_status()
        marker = _entries(await response.read(), lambda *entry: found.append(entry))
        if not marker:
            return found


def list_azure(fs: Any, full: str) -> list[tuple[str, int, str, str | None]] | None:
    """(blob name below the container, size, ETag, MD5 hex or None) of every blob under the folder ``full``."""
    from fsspec.asyn import sync

    container, _, path = full.strip("/").partition("/")
    prefix = f"{path}/" if path else ""
    found: list[tuple[str, int, str, str | None]] | None = sync(fs.loop, _list, fs, container, prefix)
    return found
