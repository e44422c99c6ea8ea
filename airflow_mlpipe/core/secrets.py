"""One scrubber for everything mlpipe prints or stores about configuration: ``scrub(value)`` replaces credentials
with ``***`` in strings, dicts and lists, however deeply nested. No Airflow import.

What counts as a credential:
- the value of a key that names one (``account_key``, ``connection_string``, ``sas_token``, ``password``,
  ``secret``, ``token``, ``credential``, ``key``, ``sig`` ... in any case, as a word of the key's name);
- the password in a URL's user info (``s3://AKID:SECRET@bucket``, ``ftp://user:PW@host``);
- a token whose shape shows what it is, however it is named (GitHub ``ghp_...``, Hugging Face ``hf_...``, OpenAI
  ``sk-...``, Slack ``xoxb-...`` and webhook URLs, GitLab ``glpat-...``, an AWS access key id, a JWT), and a PEM
  or PGP private key;
- signature and token query parameters (a SAS token's ``sig=``, ``X-Amz-Signature=``, ``access_token=``), and
  the secret parts of a connection string (``AccountKey=``, ``SharedAccessSignature=``, ``Password=``);
- any of the ``known`` values given (a datastore's credentials, wherever they appear in a text).

Records (``scrub(record, names=False)``) use names only for maps of environment variables: elsewhere in a record
a name such as ``key`` is mlpipe's own (the reuse key), and only credentials inside texts are replaced.
``connection_secrets(environ)`` lists the credentials of the connections a process was given
(``AIRFLOW_CONN_*``): what a step runner must keep out of what it writes.

What a step spec stores instead of a credential: ``private_digest(name, value)`` for an environment variable that
holds one (``is_private_variable``), the value itself travelling only in the runner's environment; and
``argument_credential`` finds a step argument that would put one into the spec, to refuse it.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

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
        "authorization",
        "cookie",
        "auth",
        "assertion",
        "bearer",
        "creds",
        "cred",
        "pass",
        "pat",
    }
)
# Credential words that also count inside a longer word of a name (``PGPASSWORD``, ``SECRETKEY``, ``DBPASSWD``);
# ``secrets`` alone names where secrets are kept (``SECRETS_DIR``, ``AIRFLOW__SECRETS__BACKEND``), not one.
_INNER_WORDS = ("password", "passwd", "secret")
# ... and at the end of a longer word (``HFTOKEN``, ``OPENAIAPIKEY``): not ``tokens`` (``MAX_TOKENS``, a count) nor
# ``tokenizer`` (``TOKENIZERS_PARALLELISM``).
_SUFFIX_WORDS = ("token", "apikey", "accesskey", "accountkey", "privatekey")
# Short words that say "credential" only with a word before them (``DB_PASS``, ``GH_PAT``): ``pass=2`` or ``pat: x``
# in a text is left alone.
_QUALIFIED_WORDS = frozenset({"pass", "pat"})
# Names of options that hold no credential although a word says so (the S3 ``key`` is the access key id: secret
# enough to hide; these are not).
_PUBLIC_NAMES = frozenset({"key_prefix", "sse_kms_key_id", "token_refresh_interval", "include_secret_files"})
# Values of secret-named options that name a way to authenticate rather than hold a credential (gcsfs ``token``).
_MODE_VALUES = frozenset({"anon", "google_default", "cloud", "browser", "cache"})
# Keys whose value maps environment variable names to values: scrubbed by name even where names are not used.
ENV_MAP_KEYS = frozenset({"env", "env_vars", "environment_variables", "private_env"})
CONN_ENV_PREFIX = "AIRFLOW_CONN_"
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")  # snake_case, kebab-case and CamelCase words

# The password may hold '/' (an S3 secret): it runs to the '@' before the host.
_URL_USERINFO = re.compile(
    r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@'\"]*):(?P<secret>[^\s'\"]+?)@(?=[^@\s'\"/]*(?:[/\s'\"?#]|$))"
)
# ``client_secret VALUE``: an identifier-like credential name (with '_' or '-', so not prose), a space, a value.
_SPACED_PARAM = re.compile(
    r"(?P<head>(?<![\w.\-])(?P<name>[A-Za-z]\w*[_\-][\w\-]*)[ \t]+)(?P<secret>[\w+/~%.][^\s\"',;]{5,})"
)
_SECRET_PARAM = re.compile(
    r"(?P<head>(?<![\w-])(?:sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|access_token|"
    r"token|password|passwd|pwd|secret|client_secret|accountkey|account_key|sharedaccesssignature|sharedaccesskey|"
    r"sas_token)=)(?![bB]['\"])(?P<secret>[^&;\s#'\"]+)",  # not ``b'...'``, a bytes repr: see _NAMED_PARAM
    re.IGNORECASE,
)
# Any ``name=value`` whose name says it holds a credential (``aws_secret_access_key=...`` in a string of options);
# a name whose only credential word is ``key`` counts when another word says which (``access_key``, ``api_key``),
# not ``key`` alone nor ``sort_key``.
_NAMED_PARAM = re.compile(
    r"(?P<head>(?<![\w.\-])(?P<name>[A-Za-z][\w.\-]*)(?:[ \t]*=[ \t]*|:[ \t]*)(?P<q>(?:[bB](?=[\"']))?[\"']?))"
    r"(?P<secret>[\w+/~%\-.][^&;\s#'\",\])}]*)"
)
# A token as a URL's whole user info (``https://ghp_...@github.com``): long, so not a user name.
_URL_TOKEN_USER = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<secret>[^/\s:@'\"]{20,})@")
# ``--password hunter2`` and ``--db-password=hunter2`` in a command line shown as text.
_FLAG_VALUE = re.compile(r"(?P<head>(?<![\w-])--?(?P<flag>[A-Za-z][\w-]*)(?:[ \t]+|=))(?P<secret>[^\s\-'\"][^\s'\"]*)")
# ``secret<TAB>VALUE``: a credential name and its value in a tab-separated listing (a space would be prose).
_TAB_PARAM = re.compile(r"(?P<head>(?<![\w.\-])(?P<name>[A-Za-z][\w.\-]*)\t+)(?P<secret>[^\s\"',;]+)")
# ``<Password>VALUE</Password>``: a credential element of an XML text (``<SecretAccessKey>``; not ``<Key>``).
_XML_ELEMENT = re.compile(r"(?P<head><(?P<name>[A-Za-z][\w.\-:]*)(?:\s[^<>]*)?>)(?P<secret>[^<]+)(?=</(?P=name)\s*>)")
# A URL-encoded signature or token parameter (``%26sig%3DVALUE``, a SAS URL inside another URL's query).
_ENCODED_PARAM = re.compile(
    r"(?P<head>(?:(?<=%26)|(?<=%3F)|(?<=%3f)|(?<![\w-]))(?:sig|signature|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token|access_token|token|password|secret|client_secret|sas_token)%3D)"
    r"(?P<secret>(?:[^&;\s#'\"%]|%(?!26)[0-9A-Fa-f]{2})+)",
    re.IGNORECASE,
)
_KEY_QUALIFIERS = frozenset(
    {"access", "account", "secret", "api", "private", "master", "shared", "storage", "client", "sas", "signing", "auth"}
)
# An HTTP authorization value: ``Bearer <token>``, ``Basic <base64>``.
_AUTH_VALUE = re.compile(r"(?P<head>\b(?:[Bb]earer|BEARER|[Bb]asic|BASIC)\s+)(?P<secret>[A-Za-z0-9\-._~+/]{8,}=*)")
# ``authorization: token ghp_...`` (a scheme word other than Bearer/Basic before the credential).
_AUTH_HEADER = re.compile(r"(?P<head>\bauthorization[\"']?\s*[:=]\s*[\"']?[A-Za-z]+\s+)(?P<secret>[^\s\"',]{8,})", re.I)
# ``('secret', 'value')``, ``['secret', 'value']``: a pair in the repr of a tuple or list (the name first), and
# ``'--password', 'value'`` anywhere in the repr of a list of arguments. The value is only looked at, not taken,
# so that it can be the name of the next pair.
_QUOTED_PAIR = re.compile(r"(?P<q>['\"])(?P<key>[\w.\-]+)(?P=q)\s*,\s*(?=[bB]?(?P<v>['\"])(?P<secret>[^'\"]*)(?P=v))")
# ``'secret': 'value'`` in the repr of a dict (``b'value'`` for bytes), or ``\"secret\": \"value\"`` in JSON inside
# a JSON string.
_QUOTED_KEY = re.compile(
    r"(?P<head>[bB]?(?P<q>\\*['\"])(?P<key>[\w.\-]+)(?P=q)\s*:\s*[bB]?)"
    r"(?P<v>\\*['\"])(?P<secret>(?:[^'\"\\]|\\(?!\\*['\"]))*?)(?P=v)"
)
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
# A PEM private key (``-----BEGIN RSA PRIVATE KEY-----``) or an armored PGP one (``-----BEGIN PGP PRIVATE KEY
# BLOCK-----``): its body up to the END line, or to the end of a text that holds no END line (a key cut short).
_PEM_KEY = re.compile(
    r"(?P<head>-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----)"
    r"(?P<secret>.*?)(?=-----END (?P=kind)-----|\Z)",
    re.DOTALL,
)
# Credentials known by their shape alone, whatever names them (a variable ``HF``, a bare argument): what each is,
# texts one of them always holds (a cheap test before the pattern), and the pattern; ``head`` is kept. The lengths
# and character classes keep ordinary words and names out (``sk-learn``, ``sk-gradient-boosting-v2``,
# ``hf_hub_download``, a hex digest after ``hf_``, ``xoxo-hugs``, ``ASIAPACIFIC2024SALES``).
_NOT_AFTER = r"(?<![\w\-])"
_TOKEN_SHAPES: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = (
    (
        "a GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        re.compile(_NOT_AFTER + r"(?P<secret>gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})(?![A-Za-z0-9])"),
    ),
    # Hugging Face: letters of both cases (a hex digest after 'hf_' is a cache name, not a token).
    (
        "a Hugging Face token",
        ("hf_",),
        re.compile(_NOT_AFTER + r"(?P<secret>hf_(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])[A-Za-z0-9]{30,})(?![\w\-])"),
    ),
    # OpenAI and Anthropic: a known prefix and a long body, or 'sk-' and 32+ letters and digits of both cases with
    # no '-' ('sk-gradient-boosting-v2' is a model's name).
    (
        "an OpenAI key",
        ("sk-",),
        re.compile(
            _NOT_AFTER
            + r"(?P<secret>sk-(?:proj|svcacct|admin|ant-api\d\d|ant-admin\d\d)-[A-Za-z0-9_\-]{40,}"
            + r"|sk-(?=[A-Za-z0-9]*[0-9])(?=[A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])[A-Za-z0-9]{32,})(?![\w\-])"
        ),
    ),
    # Slack: xoxb-/xoxp-/... then the workspace's number; app tokens xapp-1-A0123-456-hex.
    (
        "a Slack token",
        ("xox", "xapp-"),
        re.compile(
            _NOT_AFTER
            + r"(?P<secret>xox[abprse]-[0-9]{6,}-[A-Za-z0-9\-]{10,}|xapp-[0-9]-[A-Z0-9]{6,}-[0-9]{6,}-[A-Za-z0-9]{20,})"
        ),
    ),
    (
        "a Slack webhook URL",
        ("hooks.slack.com/",),
        re.compile(
            r"(?P<head>\bhooks\.slack\.com/(?:services|workflows|triggers)/)(?P<secret>[A-Za-z0-9_\-][\w/\-]{7,})"
        ),
    ),
    ("a GitLab token", ("glpat-",), re.compile(_NOT_AFTER + r"(?P<secret>glpat-[A-Za-z0-9_\-]{20,})")),
    (
        "an AWS access key id",
        ("AKIA", "ASIA"),
        # AWS key ids are base32: 'ASIAPACIFIC2024SALES' (a 0, a 1) is no key.
        re.compile(r"(?<![A-Za-z0-9])(?P<secret>(?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Za-z0-9])"),
    ),
    (
        "a JSON Web Token",
        ("eyJ",),
        re.compile(_NOT_AFTER + r"(?P<secret>eyJ[\w\-]{10,}\.eyJ[\w\-]{10,}\.[\w\-]{10,})", re.ASCII),
    ),
)


def is_secret_key(name: object) -> bool:
    """Whether an option or field called ``name`` holds a credential."""
    if not isinstance(name, str):
        return False
    if name.lower() in _PUBLIC_NAMES:
        return False
    words = [word.lower() for word in _WORD.findall(name)]
    pairs = [a + b for a, b in itertools.pairwise(words)]  # "connection_string", "ConnectionString"
    return bool(_SECRET_WORDS.intersection(words + pairs)) or any(map(_hides_credential, words))


def _hides_credential(word: str) -> bool:
    """A lowercase word with a credential word inside (``pgpassword``, ``secretkey``) or at its end (``hftoken``)."""
    return word != "secrets" and (any(inner in word for inner in _INNER_WORDS) or word.endswith(_SUFFIX_WORDS))


def scrub_text(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with every credential it shows replaced by ``***``."""
    return _scrub_text(text, _prepared(known))


def _prepared(known: Iterable[str]) -> tuple[str, ...]:
    """Known credentials worth searching for, longest first (so that one inside another is masked whole)."""
    return tuple(sorted({str(k) for k in known if k and len(str(k)) >= 4}, key=len, reverse=True))


def _scrub_text(text: str, known: tuple[str, ...]) -> str:
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    # Each pattern needs a character most texts lack: skipping it keeps scrubbing a large record cheap.
    if "PRIVATE KEY" in text:
        text = _PEM_KEY.sub(lambda m: m["head"] + MASK if m["secret"].strip() else m[0], text)
    for _what, marks, pattern in _TOKEN_SHAPES:
        if any(mark in text for mark in marks):
            text = pattern.sub(_mask_token, text)
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
        text = _URL_TOKEN_USER.sub(lambda m: f"{m['head']}{MASK}@", text)
    if "earer" in text or "asic" in text or "EARER" in text or "ASIC" in text:
        text = _AUTH_VALUE.sub(lambda m: m["head"] + MASK, text)
    if "=" in text:
        text = _SECRET_PARAM.sub(lambda m: m["head"] + MASK, text)
    if "%3D" in text or "%3d" in text:
        text = _ENCODED_PARAM.sub(lambda m: m["head"] + MASK, text)
    if ":" in text or "=" in text:
        text = _AUTH_HEADER.sub(lambda m: m["head"] + MASK, text)
        text = _NAMED_PARAM.sub(_mask_named, text)
    if ":" in text:
        text = _QUOTED_KEY.sub(_mask_quoted, text)
    if "(" in text or "[" in text:
        text = _mask_pairs(text)
    if "-" in text:
        text = _FLAG_VALUE.sub(_mask_flag, text)
    if "_" in text or "-" in text:
        text = _SPACED_PARAM.sub(_mask_named, text)
    if "\t" in text:
        text = _TAB_PARAM.sub(_mask_named, text)
    if "</" in text:
        text = _XML_ELEMENT.sub(_mask_named, text)
    return text


def _mask_token(match: re.Match[str]) -> str:
    return match[0][: match.start("secret") - match.start()] + MASK


def token_shape(text: str) -> str | None:
    """What credential ``text`` shows by its shape alone (``"a Hugging Face token"``), or None."""
    for what, marks, pattern in _TOKEN_SHAPES:
        if any(mark in text for mark in marks) and pattern.search(text):
            return what
    return None


def _mask_flag(match: re.Match[str]) -> str:
    if not is_credential_option(match["flag"]) or match["secret"] == MASK:
        return match[0]
    return match["head"] + MASK


def _mask_pairs(text: str) -> str:
    """``text`` with the value of each credential pair (``_QUOTED_PAIR``) masked."""
    spans: list[tuple[int, int]] = []
    for match in _QUOTED_PAIR.finditer(text):
        key, opener = match["key"], text[: match.start()].rstrip()[-1:]
        if key.startswith("-"):
            secret = opener in ("(", "[", ",") and is_credential_option(key) and holds_secret_value(match["secret"])
        else:
            secret = opener in ("(", "[") and is_secret_key(key)
        if secret and match["secret"] and match["secret"] != MASK:
            spans.append((match.start("secret"), match.end("secret")))
    for start, end in reversed(spans):
        text = text[:start] + MASK + text[end:]
    return text


def _is_credential_param(name: str, value: str) -> bool:
    """Whether ``name=value`` in a text holds a credential (stricter than ``is_secret_key`` about ``key``, and about
    ``pass`` and ``pat``, which count before a value that is not a number or a switch: ``first_pass=2`` is not)."""
    if not is_secret_key(name):
        return False
    words = [word.lower() for word in _WORD.findall(name)]
    pairs = [a + b for a, b in itertools.pairwise(words)]
    if (_SECRET_WORDS - {"key"} - _QUALIFIED_WORDS).intersection(words + pairs) or any(map(_hides_credential, words)):
        return True
    if len(words) > 1 and _QUALIFIED_WORDS.intersection(words) and holds_secret_value(value):
        return True
    return any(words[n - 1] in _KEY_QUALIFIERS for n in range(1, len(words)) if words[n] == "key")


def _mask_named(match: re.Match[str]) -> str:
    if match["secret"] == MASK or not _is_credential_param(match["name"], match["secret"]):
        return match[0]
    return match["head"] + MASK


def _mask_quoted(match: re.Match[str]) -> str:
    if not is_secret_key(match["key"]) or not match["secret"]:
        return match[0]
    return f"{match['head']}{match['v']}{MASK}{match['v']}"


def scrub(value: Any, known: Iterable[str] = (), *, names: bool = True) -> Any:
    """A copy of ``value`` (strings, mappings, lists and tuples, nested) with every credential replaced by
    ``***``: values under secret keys whole (with ``names=False`` only inside maps of environment variables), and
    credentials inside strings."""
    return _scrub(value, _prepared(known), names)


def _scrub(value: Any, known: tuple[str, ...], names: bool) -> Any:
    if isinstance(value, str):
        return _scrub_text(value, known)
    if isinstance(value, Mapping):
        return {k: _scrub_item(k, v, known, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        items = [_scrub(v, known, names) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


# Keys whose text values name a place in a datastore (``record["outputs"][].path``, ``uri``): the names in them
# are what a user chose, kept as they are by the registry and the reuse index, and read back from records (gc,
# lineage, readers). A name that looks like a token (``models/sk-.../run``) is kept; what a URL carries (user
# info, a signature in its query) and known credentials are still masked.
LOCATION_KEYS = frozenset({"path", "uri"})


def _scrub_location(text: str, known: tuple[str, ...]) -> str:
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
        text = _URL_TOKEN_USER.sub(lambda m: f"{m['head']}{MASK}@", text)
    if "=" in text:
        text = _SECRET_PARAM.sub(lambda m: m["head"] + MASK, text)
    if "%3D" in text or "%3d" in text:
        text = _ENCODED_PARAM.sub(lambda m: m["head"] + MASK, text)
    return text


def _scrub_item(key: Any, value: Any, known: tuple[str, ...], names: bool) -> Any:
    if key in LOCATION_KEYS and isinstance(value, str):
        return _scrub_location(value, known)
    mode = isinstance(value, str) and value in _MODE_VALUES
    if names and is_secret_key(key) and value not in (None, "", False) and not mode:
        return MASK
    return _scrub(value, known, names or (key in ENV_MAP_KEYS and isinstance(value, Mapping)))


def scrub_labels(labels: Mapping[str, str]) -> dict[str, str]:
    """A map of free-form labels (a dataset's tags) scrubbed: credentials inside each value, and the whole value of
    a label whose name says it holds one by the rule for ``name=value`` in a text (``token``, ``source_sas``,
    ``api_key``; not ``key`` nor ``partition_key``, which name a column as often as a credential)."""
    return {
        name: MASK if _is_credential_param(str(name), str(value)) and value else _scrub_text(str(value), ())
        for name, value in labels.items()
    }


def secret_values(value: Any) -> Iterator[str]:
    """Every credential in ``value`` (nested options, URLs): what a log masker should hide wherever it appears."""
    if isinstance(value, str):
        patterns = (_URL_USERINFO, _URL_TOKEN_USER, _SECRET_PARAM, _AUTH_VALUE, *(p for _, _, p in _TOKEN_SHAPES))
        for pattern in patterns:
            for match in pattern.finditer(value):
                yield match["secret"]
        for match in _NAMED_PARAM.finditer(value):
            if _is_credential_param(match["name"], match["secret"]):
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


class LineScrubber:
    """Scrubs a stream of lines (a process's output, a log file): patterns, the ``known`` values, and the lines
    of a PEM private key printed across lines, which become ``***`` up to its END line (no one line shows that
    it is part of a key)."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._prepared = _prepared(known)
        self._in_key = False

    def text(self, line: str) -> str:
        if self._in_key:  # the key's body: nothing of it is kept, up to its END line
            closed = _PEM_END.search(line)
            self._in_key = closed is None
            line = MASK + line[len(line.rstrip("\r\n")) :] if closed is None else MASK + line[closed.start() :]
        else:
            opened = _PEM_BEGIN.search(line)
            self._in_key = opened is not None and _PEM_END.search(line, opened.end()) is None
        return _scrub_text(line, self._prepared)

    def bytes(self, line: bytes) -> bytes:
        """A line as bytes; bytes that are not UTF-8 are kept."""
        text = line.decode("utf-8", "surrogateescape")
        shown = self.text(text)
        return line if shown == text else shown.encode("utf-8", "surrogateescape")


def scrub_file(source: str, target: str, known: Iterable[str] = ()) -> None:
    """Copy the text file ``source`` to ``target`` line by line, scrubbed (:class:`LineScrubber`); bytes that are
    not UTF-8 are kept."""
    scrubber = LineScrubber(known)
    with (
        open(source, encoding="utf-8", errors="surrogateescape", newline="") as src,
        open(target, "w", encoding="utf-8", errors="surrogateescape", newline="") as dst,
    ):
        for line in src:
            dst.write(scrubber.text(line))


def connection_secrets(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The credentials of every Airflow connection in ``environ`` (``AIRFLOW_CONN_<NAME>``, as JSON or as a URI):
    a step runner's datastores, which it must keep out of the records and logs it writes."""
    found: list[str] = []
    for name, text in environ.items():
        if not name.startswith(CONN_ENV_PREFIX) or not text:
            continue
        found += secret_values(_connection_fields(text))
    return tuple(dict.fromkeys(found))


def _connection_fields(text: str) -> Any:
    try:
        fields = json.loads(text)
    except ValueError:
        return text  # the URI form: its password and query parameters
    if isinstance(fields, dict) and isinstance(fields.get("extra"), str):
        with contextlib.suppress(ValueError):
            fields = {**fields, "extra": json.loads(fields["extra"])}
    return fields


# -- what a step's spec may hold ------------------------------------------------------------------------------------
PRIVATE_PREFIX = "***sha256:"
_PRIVATE_SALT = b"airflow-mlpipe private environment variable\n"
_SWITCHES = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null"})
# Option names that announce a credential as the next argument (``--password hunter2``) or after ``=``; not
# ``--key`` alone, which names a sort or lookup key as often as a credential.
_SECRET_FLAGS = frozenset(
    {
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "secretkey",
        "accountkey",
        "secretaccesskey",
        "sas",
        "sastoken",
        "connectionstring",
        "connstr",
        "credential",
        "credentials",
        "clientsecret",
        "authtoken",
        "accesstoken",
        "bearertoken",
        "privatekey",
    }
)


# The last word of a credential option's name (``--db-password``, ``--hf-token``, ``--client-secret``).
_OPTION_LAST_WORDS = frozenset(
    {"password", "passwd", "pwd", "passphrase", "secret", "token", "credential", "credentials", "creds", "apikey"}
)
# Tokenizer options name a special token, not a credential (``--pad-token '[PAD]'``, ``--eos-token '</s>'``).
_SPECIAL_TOKENS = frozenset({"pad", "eos", "bos", "unk", "sep", "cls", "mask", "special", "start", "end", "stop"})


def is_credential_option(option: str) -> bool:
    """Whether the value of command-line option ``option`` (``--db-password``, ``db_password``) is a credential:
    its name, split into words at ``-``, ``_`` and case changes, ends with a credential word (``password``,
    ``passwd``, ``pwd``, ``passphrase``, ``secret``, ``token``, ``credential(s)``, ``creds``, ``apikey``, or a last
    word that ends with one of ``_SUFFIX_WORDS`` or holds one of ``_INNER_WORDS``: ``--pgpassword``, ``--hftoken``),
    ends with ``key`` after ``api``, ``access``, ``account``, ``private``, ``secret`` ... (``--openai-api-key``,
    ``--aws-secret-access-key``, ``--storage-account-key``; not ``--key`` nor ``--sort-key``), or is one of
    ``_SECRET_FLAGS`` (``--sas``, ``--connection-string``). A credential word elsewhere in the name says nothing
    of the value (``--max-tokens``, ``--tokenizer``, ``--token-limit``, ``--password-file``, ``--secret-name``), and
    nor does the name of a tokenizer's special token (``--pad-token``)."""
    words = [word.lower() for word in _WORD.findall(option)]
    if not words:
        return False
    last, before = words[-1], words[-2] if len(words) > 1 else ""
    if "".join(words) in _SECRET_FLAGS or before + last == "connectionstring":
        return True
    if last == "key":
        return before in _KEY_QUALIFIERS
    if last == "token" and before in _SPECIAL_TOKENS:
        return False
    return last in _OPTION_LAST_WORDS or _hides_credential(last)


def holds_secret_value(value: object) -> bool:
    """A plain value that may be a credential: not empty, a switch or a number (``HF_HUB_DISABLE_TOKEN=1``)."""
    text = str(value).strip() if value is not None else ""
    return bool(text) and text.lower() not in _SWITCHES and not text.replace(".", "", 1).isdigit()


def is_private_variable(name: str, value: object, known: Iterable[str] = ()) -> bool:
    """Whether environment variable ``name=value`` holds a credential: its name says so (``HF_TOKEN``) and its
    value is not a switch or a number, or its value shows one (a URL password, a signature, a datastore's key)."""
    if is_secret_key(name) and holds_secret_value(value):
        return True
    text = str(value)
    return scrub_text(text, known) != text


def private_values(env: Mapping[str, object], known: Iterable[str] = ()) -> list[str]:
    """The credentials a map of environment variables holds: the whole value of each private variable
    (``is_private_variable``) and the credentials inside it (a URL's password), for a masker to hide."""
    found: list[str] = []
    for name, value in env.items():
        if is_private_variable(name, value, known):
            found += [str(value), *secret_values(str(value))]
    return list(dict.fromkeys(found))


def private_digest(name: str, value: str) -> str:
    """What a spec (and the reuse key) holds for a private variable: a digest that changes with the value, so that
    a new value computes anew, and that never shows it."""
    return PRIVATE_PREFIX + hashlib.sha256(_PRIVATE_SALT + f"{name}={value}".encode()).hexdigest()


def is_private_digest(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PRIVATE_PREFIX)


def argument_credential(arguments: Sequence[str], known: Iterable[str] = ()) -> tuple[int, str] | None:
    """The first argument that shows a credential, and how (None: none does): a datastore's credential, a URL
    password, a signature or key parameter, or the value of a credential option (``--password hunter2``,
    ``--token=...``)."""
    prepared = _prepared(known)
    for n, text in enumerate(arguments):
        if any(secret in text for secret in prepared):
            return n, "a datastore's credential"
        if text.startswith("-") and "=" in text:
            flag, _, value = text.partition("=")
            if is_credential_option(flag):
                if holds_secret_value(value):
                    return n, f"the value of option {flag!r}"
                continue  # ``--token=5``: a number or a switch
        shape = token_shape(text)
        if shape is not None:
            return n, shape
        if _scrub_text(text, ()) != text:
            return n, "a credential (a URL password, a signature or a key parameter)"
        following = arguments[n + 1] if n + 1 < len(arguments) else ""
        secret_flag = text.startswith("-") and is_credential_option(text)
        if secret_flag and holds_secret_value(following) and not following.startswith("-"):
            return n + 1, f"the value of option {text!r}"
    return None


def mask_in_task_log(secrets: Iterable[str]) -> None:
    """Keep credentials out of task logs, whoever logs them: a datastore's (with its URL password and SAS
    signature: connections from the environment are not masked by Airflow's lookup), a step's private variables."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:
        return
    for secret in secrets:
        mask_secret(secret)


_C = TypeVar("_C", bound=type)


def scrubbed_repr(cls: _C) -> _C:
    """Class decorator (above ``@dataclass``): the class's ``repr()`` with credentials replaced by ``***`` (a URL
    password in an ``env`` value shows in messages and logs that print the object)."""
    plain: Any = cls.__repr__

    def __repr__(self: Any) -> str:
        return scrub_text(str(plain(self)))

    cls.__repr__ = __repr__  # type: ignore[assignment]
    return cls
