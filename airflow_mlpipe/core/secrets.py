"""One scrubber for everything mlpipe prints or stores about configuration: ``scrub(value)`` replaces credentials
with ``***`` in strings, dicts and lists, however deeply nested. No Airflow import.

What counts as a credential:
- the value of a key that names one (``account_key``, ``connection_string``, ``sas_token``, ``password``,
  ``secret``, ``token``, ``credential``, ``key``, ``sig`` ... in any case, as a word of the key's name);
- the password in a URL's user info (``s3://AKID:SECRET@bucket``, ``ftp://user:PW@host``);
- signature and token query parameters (a SAS token's ``sig=``, ``X-Amz-Signature=``, ``access_token=``), and
  the secret parts of a connection string (``AccountKey=``, ``SharedAccessSignature=``, ``Password=``);
- any of the ``known`` values given (a datastore's credentials, wherever they appear in a text).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

MASK = "***"

# Words of an option name that make its value a credential ("aws_secret_access_key" has "secret" and "key").
_SECRET_WORDS = frozenset(
    {
        "key",
        "secret",
        "password",
        "passwd",
        "pwd",
        "token",
        "sas",
        "sig",
        "signature",
        "credential",
        "credentials",
        "apikey",
        "passphrase",
        "connectionstring",
    }
)
# Names of options that hold no credential although a word says so (the S3 ``key`` is the access key id: secret
# enough to hide; these are not).
_PUBLIC_NAMES = frozenset({"key_prefix", "sse_kms_key_id", "token_refresh_interval"})
# Values of secret-named options that name a way to authenticate rather than hold a credential (gcsfs ``token``).
_MODE_VALUES = frozenset({"anon", "google_default", "cloud", "browser", "cache"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")  # snake_case, kebab-case and CamelCase words

_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@'\"]*):(?P<secret>[^/\s@'\"]+)@")
_SECRET_PARAM = re.compile(
    r"(?P<head>(?<![\w-])(?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|access_token|"
    r"token|password|passwd|pwd|secret|client_secret|accountkey|account_key|sharedaccesssignature|sharedaccesskey|"
    r"sas_token)=)(?P<secret>[^&;\s#'\"]+)",
    re.IGNORECASE,
)
_QUOTED_KEY = re.compile(r"(?P<head>(?P<q>['\"])(?P<key>[\w.\-]+)(?P=q)\s*:\s*)(?P<v>['\"])(?P<secret>[^'\"]*)(?P=v)")


def is_secret_key(name: object) -> bool:
    """Whether an option or field called ``name`` holds a credential."""
    if not isinstance(name, str):
        return False
    if name.lower() in _PUBLIC_NAMES:
        return False
    words = [word.lower() for word in _WORD.findall(name)]
    pairs = [a + b for a, b in itertools.pairwise(words)]  # "connection_string", "ConnectionString"
    return bool(_SECRET_WORDS.intersection(words + pairs))


def scrub_text(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every credential it shows replaced by ``***``."""
    for secret in sorted({str(k) for k in known if k}, key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    text = _SECRET_PARAM.sub(lambda m: m["head"] + MASK, text)
    return _QUOTED_KEY.sub(_mask_quoted, text)


def _mask_quoted(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]) or not match["secret"]:
        return match[0]
    return f"{match['head']}{match['v']}{MASK}{match['v']}"


def scrub(value: Any, known: Iterable[str] = ()) -> Any:
    """A copy of ``value`` (strings, mappings, lists and tuples, nested) with every credential replaced by
    ``***``: values under secret keys whole, and credentials inside strings."""
    known = tuple(known)
    if isinstance(value, str):
        return scrub_text(value, known)
    if isinstance(value, Mapping):
        return {k: _scrub_item(k, v, known) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [scrub(v, known) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _scrub_item(key: Any, value: Any, known: tuple[str, ...]) -> Any:
    if is_secret_key(key) and value not in (None, "", False) and not (isinstance(value, str) and value in _MODE_VALUES):
        return MASK
    return scrub(value, known)


def secret_values(value: Any) -> Iterator[str]:
    """Every credential in ``value`` (nested options, URLs): what a log masker should hide wherever it appears."""
    if isinstance(value, str):
        for pattern in (_URL_USERINFO, _SECRET_PARAM):
            for match in pattern.finditer(value):
                yield match["secret"]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if is_secret_key(key) and isinstance(item, (str, int)) and not isinstance(item, bool):
                if str(item) and str(item) not in _MODE_VALUES:
                    yield str(item)
                    yield from secret_values(str(item))  # a SAS's sig, a connection string's AccountKey
            else:
                yield from secret_values(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from secret_values(item)
