"""Names of datasets and outputs: they become parts of storage paths, so they must be safe ones."""

from __future__ import annotations

import re

from airflow_mlpipe.core.checks import shown
from airflow_mlpipe.exceptions import DatasetError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


def check_name(name: object, *, what: str = "dataset name") -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise DatasetError(
            f"{what} {shown(name)} cannot be used: start with a letter or digit and use only letters, digits, "
            "'_', '-' and '.' (at most 128 characters, no '..'), e.g. 'iris_clean'"
        )
    return name
