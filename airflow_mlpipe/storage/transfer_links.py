"""No write of mlpipe's goes through a symbolic link on a local datastore.

Reading through a link inside the datastore is harmless, but a write through one changes whatever the link names:
a file outside the datastore, a file of another folder (one a registered dataset version names), or, for a link
to nothing, a new file wherever it points. So a transfer's destination and a v1 upload's targets are refused when
any link lies on the way, dangling or not: the folders below the datastore root that lead to them, the path
itself, and (for a transfer) anything below its destination folder. All of it is checked before the first write.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from airflow_mlpipe.exceptions import ConfigError
from airflow_mlpipe.storage.confine import check_resolved
from airflow_mlpipe.storage.datastore import Datastore


class DestinationLinkError(ConfigError):
    """A write would go through a symbolic link (inside the datastore, or to nothing) on a local datastore."""


def link_refusal(store: Datastore, full: str, *, argument: str, shown: str) -> Exception:
    """The error for the link at backend path ``full``. A link that leads out of the root (or into ``_mlpipe/``)
    raises ``check_resolved``'s error at once; any other is returned, for the caller to raise."""
    check_resolved(store, full, argument=argument, shown=shown)
    target = os.readlink(full)
    gone = "" if os.path.exists(full) else ", which does not exist"
    return DestinationLinkError(
        f"{argument}: datastore {store.name!r}: path {shown!r} is a symbolic link (to {target}{gone}); mlpipe never "
        "writes through a link, which would change or create a file elsewhere: remove the link (or replace it by a "
        "real folder or file), or choose another destination; nothing was written"
    )


def refuse_links_on_the_way(store: Datastore, paths: Iterable[str], *, argument: str) -> None:
    """Refuse each relative path of a local ``store`` that is a link, or lies below one (dangling links too).
    Every folder is looked at once, however many paths share it."""
    if store.protocol != "file":
        return
    seen: set[str] = set()
    for rel in paths:
        parts = [p for p in rel.split("/") if p]
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if prefix in seen:
                continue
            seen.add(prefix)
            full = store.full_path(prefix)
            if os.path.islink(full):
                raise link_refusal(store, full, argument=argument, shown=prefix)
