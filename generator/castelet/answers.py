"""Answers to a blueprint's questions: coercion and validation, before anything is written."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from castelet.manifest import Blueprint, Question

_SLUG = re.compile(r"^[a-z][a-z0-9-]{0,28}[a-z0-9]$")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?=.{{4,253}}$){_LABEL}(\.{_LABEL})*\.[a-z]{{2,63}}$")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@" + rf"{_LABEL}(\.{_LABEL})*\.[a-z]{{2,63}}$", re.IGNORECASE)
_SSH_KEY = re.compile(
    r"^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|"
    r"sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]{16,}={0,3}( [^,\n]*)?$"
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TRUE = {"true", "yes", "y", "1", "on", "oui"}
_FALSE = {"false", "no", "n", "0", "off", "non"}

ALLOWED = {
    "slug": "2-30 characters: lowercase letters, digits and dashes, starting with a letter",
    "domain": "a fully qualified domain name such as portal.mylab.ca (lowercase)",
    "email": "an e-mail address such as someone@mylab.ca",
    "cidr": "an IPv4 or IPv6 network in CIDR notation such as 132.203.0.0/16 (host bits zero)",
    "integer": "a whole number",
    "boolean": "yes or no",
    "ssh_public_keys": "OpenSSH public key lines (ssh-ed25519 AAAA... comment), comma-separated",
    "sha256": "64 lowercase hexadecimal characters",
}


@dataclass(frozen=True)
class AnswerProblem:
    field: str
    value: Any
    allowed: str

    def __str__(self) -> str:
        return f"{self.field}: {self.value!r} is not valid; expected {self.allowed}"


class AnswersError(ValueError):
    def __init__(self, problems: list[AnswerProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def split_keys(value: str) -> list[str]:
    """The individual keys of an ``ssh_public_keys`` answer."""
    return [k.strip() for k in re.split(r"[,\n]", value) if k.strip()]


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


def coerce(q: Question, value: Any) -> Any:
    """Return the typed value of one answer; raise ValueError when it is not acceptable."""
    if q.type == "integer":
        if isinstance(value, bool):
            raise ValueError
        number = int(str(value).strip()) if not isinstance(value, int) else value
        if (q.minimum is not None and number < q.minimum) or (q.maximum is not None and number > q.maximum):
            raise ValueError
        return number
    if q.type == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError
    if not isinstance(value, str):
        raise ValueError
    text = value.strip()
    if text == "" and q.optional:
        return ""
    checks: dict[str, Callable[[str], bool]] = {
        "slug": lambda t: bool(_SLUG.match(t)),
        "domain": lambda t: bool(_DOMAIN.match(t)),
        "email": lambda t: bool(_EMAIL.match(t)),
        "cidr": _is_cidr,
        "choice": lambda t: t in q.choices,
        "ssh_public_keys": lambda t: bool(split_keys(t)) and all(_SSH_KEY.match(k) for k in split_keys(t)),
        "sha256": lambda t: bool(_SHA256.match(t)),
        "string": lambda t: _string_ok(q, t),
    }
    if not checks[q.type](text):
        raise ValueError
    if q.type == "ssh_public_keys":
        return ",".join(split_keys(text))
    return text


def _is_cidr(text: str) -> bool:
    if "/" not in text:
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
    if any(ch in text for ch in "\n\r\x00"):
        return False
    return not (q.pattern and not re.fullmatch(q.pattern, text))


def validate(blueprint: Blueprint, given: dict[str, Any], *, allow_private: bool = True) -> dict[str, Any]:
    """Merge ``given`` over the defaults and check every answer.

    Returns the typed answers. Raises AnswersError naming every bad field. Keys starting with
    ``_`` (cookiecutter's private context) are ignored when ``allow_private``.
    """
    problems: list[AnswerProblem] = []
    known = set(blueprint.question_names)
    for name in sorted(given):
        if name not in known and not (allow_private and name.startswith("_")):
            problems.append(AnswerProblem(name, given[name], f"one of the questions of "
                                          f"{blueprint.id}: {', '.join(blueprint.question_names)}"))
    answers: dict[str, Any] = {}
    for q in blueprint.questions:
        value = given.get(q.name, q.default)
        try:
            answers[q.name] = coerce(q, value)
        except (ValueError, TypeError):
            problems.append(AnswerProblem(q.name, value, _describe(q)))
    if problems:
        raise AnswersError(problems)
    return answers
