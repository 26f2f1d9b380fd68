"""Answers to a blueprint's questions: coercion and validation, before anything is written.

Answers are data typed by strangers (or sent by a colleague), so validation is exact: a value is
accepted as written or refused with a reason; nothing is stripped or repaired silently.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import reprlib
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from castelet.manifest import Blueprint, Question
from castelet.releases import RELEASES

_SLUG = re.compile(r"[a-z][a-z0-9-]{0,28}[a-z0-9]")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"(?=.{{4,253}}\Z){_LABEL}(\.{_LABEL})*\.[a-z]{{2,63}}")
# re.ASCII: with IGNORECASE alone, [a-z] also matches the Kelvin sign and the long s.
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@" + rf"{_LABEL}(\.{_LABEL})*\.[a-z]{{2,63}}", re.IGNORECASE | re.ASCII)
_CIDR = re.compile(r"[0-9A-Fa-f.:]+/[0-9]{1,3}")  # no netmask form, no IPv6 scope (%eth0)
_SHA256 = re.compile(r"[0-9a-f]{64}")
# An ACME directory: https, a host name or IPv4 address, an optional port, a plain path (no query,
# no credentials). Puppet's castelet::profile::tls accepts the same shape.
_ACME_URL = re.compile(r"https://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]{0,200})?")
_HOST_PORT = r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?"
_REPO_PATH = r"[A-Za-z0-9._~/-]{0,200}"
#: restic repository strings without credentials (those reach the instance by `nox -s backup-credentials`).
_RESTIC_REPOSITORY = re.compile(
    rf"(s3|rest):https?://{_HOST_PORT}(/{_REPO_PATH})?"
    rf"|sftp:([a-z_][a-z0-9_-]{{0,31}}@)?[A-Za-z0-9.-]{{1,253}}:/{_REPO_PATH}"
    rf"|(swift|b2):[A-Za-z0-9._-]{{1,100}}:/?{_REPO_PATH}"
    rf"|/{_REPO_PATH}"
)
#: git repositories: https (any host), or plain http to a private/loopback IPv4 address only (a
#: lab's mirror, the local cloud's bridge). No credentials, query or fragment.
_GIT_URL = re.compile(rf"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]{{1,253}})(:[0-9]{{1,5}})?/{_REPO_PATH}")
#: The networks plain http may reach (RFC 1918 and loopback): written out rather than Python's
#: ``is_private``, whose list changes between Python versions, so Terraform checks the same list.
PRIVATE_IPV4_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8")
_GIT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")
_IDENTIFIER = re.compile(r"[a-z][a-z0-9_]{0,31}")
#: database and role names a `databases` answer may not take (the servers' own, or Castelet's).
RESERVED_DATABASE_NAMES = frozenset({
    "postgres", "template0", "template1", "mysql", "information_schema", "performance_schema", "sys", "root",
    "castelet", "public",
})
#: Account names an administrator account (``admin_user``) may not take: Debian's system accounts,
#: those of the packages the blueprints install, and the ones Puppet creates (``deploy``,
#: ``castelet-app``...). ``castelet`` itself is the default administrator, so it is not listed.
RESERVED_ACCOUNT_NAMES = frozenset({
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "www-data",
    "backup", "list", "irc", "gnats", "nobody", "postgres", "mysql", "sshd", "messagebus", "polkitd", "puppet",
    "tss", "uuidd", "dnsmasq", "tcpdump", "statd", "nginx", "deploy",
})
#: Prefixes of reserved account names: systemd's, Debian's new system accounts (_apt, _chrony...)
#: and Puppet's service accounts.
RESERVED_ACCOUNT_PREFIXES = ("systemd-", "_", "castelet-")
_ACCOUNT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
_PEM_BLOCK = re.compile(r"-----BEGIN CERTIFICATE-----\n((?:[A-Za-z0-9+/=]{1,76}\n){1,200})-----END CERTIFICATE-----")
MAX_PEM_CHARS = 32768
_DECIMAL = re.compile(r"[+-]?[0-9]+")
# Debian Policy 5.6.1: lowercase letters, digits, + - . ; at least two characters, alphanumeric first.
_DEBIAN_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]{1,99}", re.ASCII)
_PORT = re.compile(r"([1-9][0-9]{0,4})/(tcp|udp)", re.ASCII)
MAX_LIST_ITEMS = 100
_TRUE = {"true", "yes", "y", "1", "on", "oui"}
_FALSE = {"false", "no", "n", "0", "off", "non"}

# C0 controls (tab, newline, carriage return, NUL...), DEL, C1 controls, line and paragraph
# separators, and lone surrogates (not encodable: a file could not be written with them).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_FORBIDDEN_BUT_NEWLINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

#: The question that must be true for ``admin_cidr`` to be a whole address family (prefix length 0).
OPEN_TO_ALL = "admin_cidr_open_to_all"

ALLOWED = {
    "slug": "2-30 characters: lowercase letters, digits and dashes, starting with a letter",
    "domain": "a fully qualified domain name such as portal.mylab.ca (lowercase)",
    "email": "an e-mail address such as someone@mylab.ca",
    "cidr": "an IPv4 or IPv6 network in CIDR notation such as 132.203.0.0/16 (host bits zero)",
    "integer": "a whole number",
    "boolean": "yes or no",
    "ssh_public_keys": "OpenSSH public key lines (TYPE BASE64 [comment]: ed25519, ECDSA, RSA of at least 2048 bits "
                       "or FIDO sk- keys), separated by commas or newlines",
    "ssh_public_key": "one OpenSSH public key line (TYPE BASE64 [comment]: ed25519, ECDSA, RSA of at least 2048 "
                      "bits or a FIDO sk- key), without options",
    "sha256": "64 lowercase hexadecimal characters",
    "debian_release": "a supported Debian release: " + ", ".join(RELEASES),
    "timezone": "a tz database time zone name such as America/Toronto or UTC",
    "debian_packages": "Debian package names separated by single spaces, such as `htop jq` (lowercase letters, "
                       "digits, + - . ; at least 2 characters, starting with a letter or digit), or nothing",
    "ports": "ports separated by single spaces, each PORT/tcp or PORT/udp with PORT from 1 to 65535, such as "
             "`8080/tcp 5353/udp` (22/tcp stays admin SSH), or nothing",
    "acme_server": "auto, self-signed, or the https:// directory URL of an ACME certificate authority",
    "restic_repository": "a restic repository without credentials: s3:https://HOST/BUCKET/PATH, "
                         "rest:https://HOST[:PORT]/PATH, sftp:[USER@]HOST:/PATH, swift:CONTAINER:/PATH, "
                         "b2:BUCKET:PATH or /PATH, or nothing (no backups)",
    "pem_certificates": "one or more PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
    "git_url": "a git repository URL without credentials: https://HOST[:PORT]/PATH (http:// only to a private "
               "IPv4 address such as a lab mirror)",
    "git_ref": "a git branch, tag or commit such as main, v1.2.0 or a commit hash (letters, digits, . _ / -; "
               "no `..`)",
    "cidrs": "IPv4 or IPv6 networks in CIDR notation separated by single spaces, such as `132.203.0.0/16 "
             "2001:db8::/32` (host bits zero; not 0.0.0.0/0 or ::/0), or nothing",
    "databases": "database names separated by single spaces, each NAME or NAME:OWNER (lowercase letters, digits "
                 "and _, starting with a letter, at most 32 characters; not a server's own name such as "
                 "postgres or mysql), such as `corpus survey:lab`",
}

#: Unknown question names listed one by one; the rest are counted (a file of junk stays readable).
MAX_UNKNOWN_LISTED = 10

#: Longest echo of a value in a message (characters of its repr, before the ellipsis).
SHOWN_LIMIT = 80

_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxdict, _repr.maxlist, _repr.maxtuple, _repr.maxset = 2, 4, 4, 4, 4
_repr.maxstring = _repr.maxother = _repr.maxlong = SHOWN_LIMIT


def bounded_repr(value: Any, limit: int = SHOWN_LIMIT) -> str:
    """``repr(value)`` cut to at most ``limit`` characters plus an ellipsis: never floods a terminal."""
    if isinstance(value, str):
        text = repr(value[: limit + 1])
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 4 * limit:
        text = f"<an integer of {value.bit_length()} bits>"
    else:
        try:
            text = _repr.repr(value)
        except Exception:  # a hostile __repr__, an int too long to print...
            text = f"<{type(value).__name__}>"
    if len(text) > limit or (isinstance(value, str) and len(value) > limit):
        return text[:limit] + "…"
    return text


_PLAIN_FIELD = re.compile(r"[A-Za-z0-9_()-][A-Za-z0-9_ ().-]{0,63}")


@dataclass(frozen=True)
class AnswerProblem:
    """One refused answer. ``reason`` says what is wrong without echoing the value."""

    field: str
    value: Any
    allowed: str
    reason: str = ""

    def __str__(self) -> str:
        field = self.field if isinstance(self.field, str) and _PLAIN_FIELD.fullmatch(self.field) \
            else bounded_repr(self.field, 40)
        reason = f" ({_cut(self.reason, 200)})" if self.reason else ""
        return f"{field}: {bounded_repr(self.value)} is not valid{reason}; expected {self.allowed}"


class AnswersError(ValueError):
    def __init__(self, problems: list[AnswerProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class InvalidAnswer(ValueError):
    """Raised by :func:`coerce`; ``reason`` is safe to show (it never contains the value)."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


def _kind(value: Any) -> str:
    return "empty (null)" if value is None else f"a {type(value).__name__}"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def text_problem(text: str, *, newlines: bool = False) -> str | None:
    """Why ``text`` cannot be an answer as written (control character, separator, surrounding
    whitespace), or None. ``newlines`` allows ``\\n`` (only where a type separates items by lines)."""
    found = (_FORBIDDEN_BUT_NEWLINE if newlines else _FORBIDDEN).search(text)
    if found:
        char = found.group()
        kind = "line separator" if char in "\u2028\u2029" else \
            "unpaired surrogate" if "\ud800" <= char <= "\udfff" else "control character"
        return f"{kind} U+{ord(char):04X} at position {found.start() + 1}"
    if text[:1].isspace() or text[-1:].isspace():
        return "leading or trailing whitespace"
    return None


# --- SSH public keys -------------------------------------------------------------------------

KEY_TYPES = (
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
)
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384  # OpenSSH's own limit
_MAX_KEY_LINE = 8192  # a 16384-bit RSA key is about 2,800 characters

# NIST curves (SEC 2): field prime p and coefficient b of y^2 = x^3 - 3x + b; coordinate bytes.
_CURVES: dict[str, tuple[int, int, int]] = {
    "nistp256": (
        2**256 - 2**224 + 2**192 + 2**96 - 1,
        0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        32,
    ),
    "nistp384": (
        2**384 - 2**128 - 2**96 + 2**32 - 1,
        0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        48,
    ),
    "nistp521": (
        2**521 - 1,
        0x0051953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
        66,
    ),
}
_CURVE_BITS = {"nistp256": 256, "nistp384": 384, "nistp521": 521}


class PublicKeyError(ValueError):
    """A key line that is not a well-formed OpenSSH public key; the message never echoes the key."""


@dataclass(frozen=True)
class PublicKey:
    type: str
    bits: int
    comment: str
    line: str


class _Blob:
    """Reader of the SSH wire encoding (RFC 4251): uint32-length strings and mpints."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def string(self, what: str) -> bytes:
        if len(self.data) - self.pos < 4:
            raise PublicKeyError(f"key data ends before the {what}")
        length = int.from_bytes(self.data[self.pos:self.pos + 4], "big")
        start = self.pos + 4
        if length > len(self.data) - start:
            raise PublicKeyError(f"key data ends inside the {what}")
        self.pos = start + length
        return self.data[start:self.pos]

    def mpint(self, what: str) -> int:
        raw = self.string(what)
        if raw and raw[0] & 0x80:
            raise PublicKeyError(f"the {what} is negative")
        if raw[:1] == b"\x00" and (len(raw) == 1 or not raw[1] & 0x80):
            raise PublicKeyError(f"the {what} is not minimally encoded")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        if self.pos != len(self.data):
            raise PublicKeyError(f"{len(self.data) - self.pos} unexpected bytes after the key")


def _ed25519(blob: _Blob) -> int:
    if len(blob.string("ed25519 key")) != 32:
        raise PublicKeyError("the ed25519 key is not 32 bytes")
    return 256


def _ecdsa(blob: _Blob, curve: str) -> int:
    if blob.string("curve name") != curve.encode():
        raise PublicKeyError(f"the curve name inside the key is not {curve}")
    point = blob.string("curve point")
    p, b, size = _CURVES[curve]
    if len(point) != 1 + 2 * size or point[0] != 4:
        raise PublicKeyError(f"the curve point is not an uncompressed {curve} point ({1 + 2 * size} bytes)")
    x, y = int.from_bytes(point[1:1 + size], "big"), int.from_bytes(point[1 + size:], "big")
    if x >= p or y >= p or (y * y - (x * x * x - 3 * x + b)) % p:
        raise PublicKeyError(f"the point is not on the curve {curve}")
    return _CURVE_BITS[curve]


def _rsa(blob: _Blob) -> int:
    e = blob.mpint("RSA exponent")
    n = blob.mpint("RSA modulus")
    if e < 3 or e % 2 == 0:
        raise PublicKeyError("the RSA exponent is not an odd number of at least 3")
    bits = n.bit_length()
    if bits < MIN_RSA_BITS:
        raise PublicKeyError(f"RSA key of {bits} bits; at least {MIN_RSA_BITS} are required")
    if bits > MAX_RSA_BITS or n % 2 == 0:
        raise PublicKeyError(f"the RSA modulus is not usable ({bits} bits{', even' if n % 2 == 0 else ''})")
    return bits


def _application(blob: _Blob) -> None:
    application = blob.string("security key application")
    if not application or not all(0x20 < c < 0x7F for c in application):
        raise PublicKeyError("the security key application is not printable ASCII text")


def parse_public_key(line: str) -> PublicKey:
    """Parse one OpenSSH public key line ``TYPE BASE64 [COMMENT]`` (the format of ``*.pub`` files).

    The key data is decoded strictly and its whole structure checked against TYPE; RSA keys need
    at least 2048 bits. The comment is printable text without commas. Raises PublicKeyError.
    """
    if not isinstance(line, str):
        raise PublicKeyError("a key line is text")
    if len(line) > _MAX_KEY_LINE:
        raise PublicKeyError(f"longer than {_MAX_KEY_LINE} characters")
    problem = text_problem(line)
    if problem:
        raise PublicKeyError(problem)
    if "," in line:
        raise PublicKeyError("a comma inside a key (commas separate keys)")
    parts = line.split(" ", 2)
    if len(parts) < 2:
        raise PublicKeyError("expected TYPE BASE64 [COMMENT]")
    key_type, data, comment = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if not data:
        raise PublicKeyError("expected TYPE BASE64 [COMMENT], separated by single spaces")
    if key_type not in KEY_TYPES:
        raise PublicKeyError(f"unsupported key type {bounded_repr(key_type, 40)} (accepted: {', '.join(KEY_TYPES)})")
    if not comment.isprintable():
        char = next(c for c in comment if not c.isprintable())
        raise PublicKeyError(f"the comment contains the non-printable character U+{ord(char):04X}")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise PublicKeyError("the key data is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != data:
        raise PublicKeyError("the key data is not canonical base64")
    blob = _Blob(raw)
    inner = blob.string("key type")
    if inner != key_type.encode():
        raise PublicKeyError(f"the key data is not a {key_type} key")
    if key_type == "ssh-ed25519":
        bits = _ed25519(blob)
    elif key_type == "ssh-rsa":
        bits = _rsa(blob)
    elif key_type.startswith("ecdsa-sha2-"):
        bits = _ecdsa(blob, key_type.removeprefix("ecdsa-sha2-"))
    elif key_type == "sk-ssh-ed25519@openssh.com":
        bits = _ed25519(blob)
        _application(blob)
    else:  # sk-ecdsa-sha2-nistp256@openssh.com
        bits = _ecdsa(blob, "nistp256")
        _application(blob)
    blob.end()
    return PublicKey(type=key_type, bits=bits, comment=comment, line=line)


_KEY_SEPARATOR = re.compile(r" *(?:, *\n?|\n) *")


def split_keys(value: str) -> list[str]:
    """The key lines of an ``ssh_public_keys`` answer, separated by a comma, a newline or a comma
    then a newline (spaces around a separator belong to it). Empty entries are kept, for
    validation to refuse them; the empty answer has no keys."""
    return [] if value == "" else _KEY_SEPARATOR.split(value)


def _public_keys(text: str) -> str:
    lines = []
    for index, entry in enumerate(split_keys(text), start=1):
        if entry == "":
            raise InvalidAnswer(f"key {index} is empty")
        try:
            lines.append(parse_public_key(entry).line)
        except PublicKeyError as exc:
            raise InvalidAnswer(f"key {index}: {exc}") from None
    return ",".join(lines)


# --- coercion ----------------------------------------------------------------------------------


@cache
def timezones() -> frozenset[str]:
    """Names of the tz database (the system's, else the ``tzdata`` package's)."""
    return frozenset(zoneinfo.available_timezones() - {"localtime"})  # localtime: a link to this host's


def _describe(q: Question) -> str:
    if q.type == "choice":
        return "one of: " + ", ".join(q.choices)
    if q.type == "integer" and (q.minimum is not None or q.maximum is not None):
        return f"a whole number between {q.minimum} and {q.maximum}"
    if q.type == "string":
        parts = []
        if q.pattern:
            parts.append(f"text matching {q.pattern}")
        if q.min_length or q.max_length:
            parts.append(f"{q.min_length or 0}-{q.max_length or 'any'} characters")
        return ", ".join(parts) or "text"
    return ALLOWED[q.type]


def _integer(q: Question, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidAnswer("yes/no is not a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        problem = text_problem(value)
        if problem:
            raise InvalidAnswer(problem)
        if not _DECIMAL.fullmatch(value):
            raise InvalidAnswer("not a decimal number")
        try:
            number = int(value)
        except ValueError:  # more digits than Python converts
            raise InvalidAnswer("too many digits") from None
    else:
        raise InvalidAnswer(f"{_kind(value)}, not a number")
    if (q.minimum is not None and number < q.minimum) or (q.maximum is not None and number > q.maximum):
        raise InvalidAnswer("out of range")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        raise InvalidAnswer(f"{_kind(value)}, not yes or no")
    problem = text_problem(value)
    if problem:
        raise InvalidAnswer(problem)
    text = value.lower() if value.isascii() else value
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidAnswer


def coerce(q: Question, value: Any) -> Any:
    """Return the typed value of one answer; raise ValueError (InvalidAnswer, with a reason) when
    it is not acceptable as written."""
    if q.type == "integer":
        return _integer(q, value)
    if q.type == "boolean":
        return _boolean(value)
    if q.type == "debian_release" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # `debian_release: 13` in a YAML answers file
    if not isinstance(value, str):
        raise InvalidAnswer(f"{_kind(value)}, not text")
    if value == "" and q.optional:
        return ""
    problem = text_problem(value, newlines=q.type in ("ssh_public_keys", "pem_certificates"))
    if problem:
        raise InvalidAnswer(problem)
    if q.type == "ssh_public_keys":
        return _public_keys(value)
    if q.type == "ssh_public_key":
        # One key line, exactly as a *.pub file has it: no second key, and no options prefix
        # (`restrict,command=...`): castelet writes the options of the account the key opens.
        try:
            return parse_public_key(value).line
        except PublicKeyError as exc:
            raise InvalidAnswer(str(exc)) from None
    if q.type in ("debian_packages", "ports", "cidrs", "databases"):
        return _word_list(q.type, value)
    checks: dict[str, Callable[[str], bool]] = {
        "slug": lambda t: bool(_SLUG.fullmatch(t)),
        "domain": lambda t: bool(_DOMAIN.fullmatch(t)),
        "email": lambda t: bool(_EMAIL.fullmatch(t)),
        "cidr": _is_cidr,
        "choice": lambda t: t in q.choices,
        "sha256": lambda t: bool(_SHA256.fullmatch(t)),
        "timezone": lambda t: t in timezones(),
        "debian_release": lambda t: t in RELEASES,
        "acme_server": lambda t: t in ("auto", "self-signed") or bool(_ACME_URL.fullmatch(t)),
        "pem_certificates": _is_pem_certificates,
        "restic_repository": lambda t: bool(_RESTIC_REPOSITORY.fullmatch(t)),
        "git_url": _is_git_url,
        "git_ref": _is_git_ref,
        "string": lambda t: _string_ok(q, t),
    }
    if not checks[q.type](value):
        raise InvalidAnswer
    return value


def _is_pem_certificates(text: str) -> bool:
    """PEM certificate blocks and nothing else; each decodes to a DER SEQUENCE."""
    if len(text) > MAX_PEM_CHARS:
        return False
    blocks = list(_PEM_BLOCK.finditer(text.strip() + "\n"))
    rest = _PEM_BLOCK.sub("", text.strip() + "\n").strip()
    if not blocks or rest:
        return False
    for block in blocks:
        try:
            der = base64.b64decode(block.group(1).replace("\n", ""), validate=True)
        except ValueError:
            return False
        if len(der) < 64 or der[0] != 0x30:
            return False
    return True


def _is_git_url(text: str) -> bool:
    match = _GIT_URL.fullmatch(text)
    if not match or "//" in text.split("://", 1)[1] or "/../" in f"{text}/":
        return False
    if match["scheme"] == "https":
        return True
    try:
        address = ipaddress.IPv4Address(match["host"])
    except ValueError:
        return False
    return any(address in ipaddress.IPv4Network(network) for network in PRIVATE_IPV4_NETWORKS)


def admin_user_problem(name: str) -> str | None:
    """Why ``name`` cannot be the administrator account (None when it can): a Linux user name,
    not one of the system's or Puppet's own accounts."""
    if not _ACCOUNT.fullmatch(name):
        return "not a Linux user name (lowercase letters, digits, _ and -, starting with a letter or _, " \
               "at most 32 characters)"
    if name in RESERVED_ACCOUNT_NAMES or name.startswith(RESERVED_ACCOUNT_PREFIXES):
        return "a system account or one Puppet creates"
    return None


def _is_git_ref(text: str) -> bool:
    """A ref git itself accepts (git check-ref-format, the subset Castelet allows)."""
    return (bool(_GIT_REF.fullmatch(text)) and ".." not in text and "//" not in text and "/." not in text
            and not text.endswith(("/", ".", ".lock")))


def _list_item_problem(kind: str, index: int, item: str, owners: dict[str, str]) -> str | None:
    """Why one item of a space-separated list answer is refused (None when it is fine)."""
    if kind == "debian_packages" and not _DEBIAN_PACKAGE.fullmatch(item):
        return f"item {index} is not a Debian package name"
    if kind == "ports":
        port = _PORT.fullmatch(item)
        if not port or int(port.group(1)) > 65535:
            return f"item {index} is not PORT/tcp or PORT/udp with PORT from 1 to 65535"
        if item == "22/tcp":
            return f"item {index} is SSH, which stays open to admin_cidr only"
    if kind == "cidrs":
        if not _is_cidr(item):
            return f"item {index} is not a network in CIDR notation with its host bits zero"
        if ipaddress.ip_network(item).prefixlen == 0:
            return f"item {index} is the whole internet"
    if kind == "databases":
        name, _, owner = item.partition(":")
        owner = owner or name
        for part, what in ((name, "name"), (owner, "owner")):
            if not _IDENTIFIER.fullmatch(part):
                return f"item {index}: the {what} is not lowercase letters, digits and _ starting with a letter " \
                       "(at most 32 characters)"
            if part in RESERVED_DATABASE_NAMES:
                return f"item {index}: the {what} is reserved"
        if item.count(":") > 1:
            return f"item {index} has more than one `:`"
        if name in owners:
            return f"item {index} names a database given twice"
        owners[name] = owner
    return None


def _word_list(kind: str, text: str) -> str:
    """A list of Debian package names, PORT/PROTOCOL, CIDRs or databases, separated by single
    spaces, none twice."""
    if text == "":
        return ""
    items = text.split(" ")
    if len(items) > MAX_LIST_ITEMS:
        raise InvalidAnswer(f"more than {MAX_LIST_ITEMS} items")
    seen: set[str] = set()
    owners: dict[str, str] = {}
    for index, item in enumerate(items, start=1):
        if item == "":
            raise InvalidAnswer(f"item {index} is empty (separate items by single spaces)")
        problem = _list_item_problem(kind, index, item, owners)
        if problem:
            raise InvalidAnswer(problem)
        if item in seen:
            raise InvalidAnswer(f"item {index} is given twice")
        seen.add(item)
    return text


def _is_cidr(text: str) -> bool:
    if not _CIDR.fullmatch(text):
        return False
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return True


def _string_ok(q: Question, text: str) -> bool:
    if q.min_length is not None and len(text) < q.min_length:
        return False
    if q.max_length is not None and len(text) > q.max_length:
        return False
    return not (q.pattern and not re.fullmatch(q.pattern, text))


# --- validation --------------------------------------------------------------------------------


def cross_field_problems(answers: dict[str, Any]) -> list[AnswerProblem]:
    """Rules between answers, checked once every answer has its type.

    - on OpenStack at least one SSH key is needed (instances are administered over SSH); the
      local LXD cloud may have none (``lxc exec``).
    - ``admin_cidr`` with prefix length 0 (``0.0.0.0/0``, ``::/0``) opens SSH to the whole
      internet: refused unless ``admin_cidr_open_to_all`` is true (false when not asked).
    """
    problems: list[AnswerProblem] = []
    keys = answers.get("admin_ssh_keys")
    if answers.get("cloud") == "openstack" and keys is not None and not split_keys(keys):
        problems.append(AnswerProblem(
            "admin_ssh_keys", "", "at least one OpenSSH public key",
            "OpenStack instances are administered over SSH (the lxd cloud may go without: lxc exec)"))
    cidr = answers.get("admin_cidr")
    if isinstance(cidr, str) and cidr and ipaddress.ip_network(cidr).prefixlen == 0 \
            and answers.get(OPEN_TO_ALL) is not True:
        problems.append(AnswerProblem(
            "admin_cidr", cidr, f"a narrower network, or {OPEN_TO_ALL}: yes to accept it",
            "it would open SSH and admin services to the whole internet"))
    return problems


def validate(blueprint: Blueprint, given: dict[str, Any], *, allow_private: bool = True) -> dict[str, Any]:
    """Merge ``given`` over the defaults and check every answer.

    Returns the typed answers. Raises AnswersError naming every bad field. Keys starting with
    ``_`` (cookiecutter's private context) are ignored when ``allow_private``.
    """
    problems: list[AnswerProblem] = []
    known = set(blueprint.question_names)
    questions = f"one of the questions of {blueprint.id}: {', '.join(blueprint.question_names)}"
    unknown = [name for name in sorted(given, key=lambda n: (0, n) if isinstance(n, str) else (1, type(n).__name__))
               if not isinstance(name, str) or (name not in known and not (allow_private and name.startswith("_")))]
    for name in unknown[:MAX_UNKNOWN_LISTED]:
        if isinstance(name, str):
            problems.append(AnswerProblem(name, given[name], questions))
        else:
            problems.append(AnswerProblem("(question name)", name, "text naming " + questions))
    if len(unknown) > MAX_UNKNOWN_LISTED:
        problems.append(AnswerProblem("(more names)", len(unknown) - MAX_UNKNOWN_LISTED, questions,
                                      "further unknown question names, not listed"))
    answers: dict[str, Any] = {}
    for q in blueprint.questions:
        value = given.get(q.name, q.default)
        try:
            answers[q.name] = coerce(q, value)
        except (ValueError, TypeError) as exc:
            reason = exc.reason if isinstance(exc, InvalidAnswer) else ""
            problems.append(AnswerProblem(q.name, value, _describe(q), reason))
    problems.extend(cross_field_problems(answers))
    if problems:
        raise AnswersError(problems)
    return answers
