"""Names of datasets and outputs: they become parts of storage paths, so they must be safe ones."""

from __future__ import annotations

import re

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import DatasetError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_name(name: object, *, what: str = "dataset name", existing: bool = False) -> str:
    """``name`` as a folder of the registry may be named. A new name may not end in ``.``: Azure Blob drops
    trailing dots from folder names, so ``iris.`` would share ``iris``'s records there. ``existing=True`` (a
    lookup of what is registered already) takes such a name, so records made before this rule can still be read."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise DatasetError(
            f"{what} {shown(name)} cannot be used: start with a letter or digit and use only letters, digits, "
            "'_', '-' and '.' (at most 128 characters, no '..'), e.g. 'iris_clean'"
        )
    if name.endswith(".") and not existing:
        raise DatasetError(
            f"{what} {shown(name)} cannot be used: it ends in '.', which Azure Blob drops from folder names, so its "
            f"records would mix with those of {name.rstrip('.')!r}; end it with a letter, a digit, '_' or '-', e.g. "
            f"{name.rstrip('.') + '_1'!r}"
        )
    return name
