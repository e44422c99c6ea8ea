"""Values for strict JSON. A script may log a metric that is not a finite number (a diverged loss: NaN, an
infinity); Python's ``json`` writes and reads those as ``NaN`` and ``Infinity``, which is how the step run records
keep them, but strict JSON has no such tokens: Airflow's XCom refuses them, and browsers and ``jq`` do not parse
them. What leaves mlpipe as strict JSON (XCom, ``mlpipe ... --json``, the UI's chart data) carries ``null``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def strict_json(value: Any) -> Any:
    """``value`` with every float that is not finite replaced by ``None``, in mappings, lists and tuples at any
    depth (other values as they are)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(item) for item in value]
    return value
