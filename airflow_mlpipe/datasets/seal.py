"""Seals on registry records: a record that a registration did not write, or that was changed after, is refused.

A registration writes each version's record once (create-if-absent) with a ``seal``: a hash of the record's
canonical JSON. A reader checks the record against its file name (dataset name and version), its manifest against
the manifest's own digest, and the seal against the content, and refuses the record when any disagree, naming the
record and what disagrees, rather than serve it.

Without a key the seal is a SHA-256: it catches a record rewritten or created by anything that is not a
registration (a step script, a hand edit, a copy into the wrong folder), but not one forged by code that knows
this format. With ``MLPIPE_REGISTRY_KEY`` set where registrations run (the Airflow workers) the seal is an
HMAC-SHA256 under that key, which a step script never sees (the runner drops it from the script's environment), so
forged records are refused as well; a reader without the key checks everything but the HMAC, and a reader with
it refuses records sealed without it.

A container step's runner never holds the key. The worker that launches it derives a key for that one step run
(``attempt_seal_key``: an HMAC of the step run id under the registry key) and hands it to the runner
(``MLPIPE_ATTEMPT_KEY``), which seals that step run's own records with it (``hmac-sha256-attempt``) and keeps it
from the script. A reader with the registry key derives it again from the record's step run id: a script holding
one step run's key cannot seal another's records, and registry records never take such a seal.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from typing import Any

SEAL_KEY_ENV = "MLPIPE_REGISTRY_KEY"
ATTEMPT_KEY_ENV = "MLPIPE_ATTEMPT_KEY"
SEAL_FIELD = "seal"
_SALT = b"airflow-mlpipe registry record\n"
REGISTRY_SALT = _SALT
_KEYED = "hmac-sha256"
_PLAIN = "sha256"
_ATTEMPT = "hmac-sha256-attempt"
_ATTEMPT_SALT = b"airflow-mlpipe attempt seal key\n"
# The step run whose records this process seals with its attempt key, and that key (a container's runner).
_attempt: tuple[str, bytes] | None = None


def _key() -> bytes | None:
    key = os.environ.get(SEAL_KEY_ENV, "")
    return key.encode("utf-8") if key else None


def _canonical(body: Mapping[str, Any], salt: bytes = _SALT) -> bytes:
    return salt + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("utf-8")


def seal_of(body: Mapping[str, Any], salt: bytes = _SALT) -> dict[str, str]:
    """The seal of a record's content (every field but the seal). ``salt`` tells kinds of record apart, so that a
    record of one kind never passes for another."""
    key = _key()
    if key is None:
        if _attempt is not None and body.get("step_run_id") == _attempt[0]:
            return {"alg": _ATTEMPT, "value": hmac.new(_attempt[1], _canonical(body, salt), hashlib.sha256).hexdigest()}
        return {"alg": _PLAIN, "value": hashlib.sha256(_canonical(body, salt)).hexdigest()}
    return {"alg": _KEYED, "value": hmac.new(key, _canonical(body, salt), hashlib.sha256).hexdigest()}


def attempt_seal_key(step_run_id: str) -> str | None:
    """The key a keyless runner seals the records of ``step_run_id`` with (None where this process holds no
    registry key: then no record is keyed)."""
    key = _key()
    if key is None:
        return None
    return hmac.new(key, _ATTEMPT_SALT + step_run_id.encode("utf-8"), hashlib.sha256).hexdigest()


def use_attempt_key(step_run_id: str, key: str) -> None:
    """Seal the records of ``step_run_id`` with ``key`` (``attempt_seal_key``) in this process: a runner's."""
    global _attempt
    _attempt = (step_run_id, key.encode("utf-8"))


def sealed_bytes(body: Mapping[str, Any], salt: bytes = _SALT) -> bytes:
    """What a registration stores: the record with its seal."""
    return json.dumps({**body, SEAL_FIELD: seal_of(body, salt)}, sort_keys=True, indent=1).encode("utf-8")


def seal_problem(
    data: Mapping[str, Any], salt: bytes = _SALT, *, keyless_writer: bool = False, attempt_sealed: bool = False
) -> str | None:
    """What is wrong with the seal of a stored record (None: it holds, or this process cannot check an HMAC).

    :param keyless_writer: the record may have been written where the key is kept away (a container step's
        runner): a plain seal is then checked as such even where this process holds the key.
    :param attempt_sealed: the record may carry its step run's attempt seal (a run record, never a registry
        record)."""
    seal = data.get(SEAL_FIELD)
    if seal is None:
        return "it carries no seal, so no registration wrote it"
    if not isinstance(seal, Mapping) or not isinstance(seal.get("value"), str):
        return f"its seal {seal!r} is malformed"
    body = {k: v for k, v in data.items() if k != SEAL_FIELD}
    key, alg = _key(), seal.get("alg")
    if alg == _KEYED:
        if key is None:
            return None  # the registry key is kept from this process (a step's runner): the other checks stand
        expected = hmac.new(key, _canonical(body, salt), hashlib.sha256).hexdigest()
    elif alg == _ATTEMPT and attempt_sealed:
        if key is None:
            return None  # as for a keyed seal
        attempt_key = attempt_seal_key(str(body.get("step_run_id")))
        assert attempt_key is not None
        expected = hmac.new(attempt_key.encode("utf-8"), _canonical(body, salt), hashlib.sha256).hexdigest()
    elif alg == _PLAIN:
        if key is not None and not keyless_writer:
            return f"it is sealed without the registry key ({SEAL_KEY_ENV}) that this deployment sets"
        expected = hashlib.sha256(_canonical(body, salt)).hexdigest()
    else:
        return f"its seal names an unknown algorithm {alg!r}"
    if not hmac.compare_digest(expected, seal["value"]):
        return "its content does not match its seal: it was changed after it was registered"
    return None


def is_plain(data: Mapping[str, Any]) -> bool:
    """Whether a stored record carries a plain (keyless) seal."""
    seal = data.get(SEAL_FIELD)
    return isinstance(seal, Mapping) and seal.get("alg") == _PLAIN


def keyed_seal_is_set() -> bool:
    """Whether this process seals with ``MLPIPE_REGISTRY_KEY``."""
    return _key() is not None


def resealed(data: Mapping[str, Any], salt: bytes = _SALT) -> bytes | None:
    """For ``mlpipe datasets reseal``: the record sealed under this process's key when its plain seal holds
    (written before the key was set); None when it carries another seal or its plain seal fails."""
    if not is_plain(data) or seal_problem(data, salt, keyless_writer=True) is not None:
        return None
    return sealed_bytes({k: v for k, v in data.items() if k != SEAL_FIELD}, salt)
