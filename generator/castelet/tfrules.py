"""The answers' rules as Terraform validations: a hand edit of terraform.tfvars is judged by
``nox -s plan`` with the rule its answer was judged by (castelet.answers), not at first boot.

Each rule is an HCL boolean expression over one value (RE2 regexes, Terraform functions), built
from the same constants as the generator's checks. What Terraform cannot compute is left to the
generator and said here: the structure inside SSH key data (curve points, RSA modulus size) and
inside certificates (beyond the DER SEQUENCE tag and length). tests/test_tfvars_rules.py feeds
the same values to both sides.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from castelet import answers as A
from castelet.deployment import DEPLOYMENT_VARIABLES, settings_of, tfvars_of
from castelet.escape import hcl
from castelet.manifest import Blueprint, Question
from castelet.pin import RELEASE_URL, RELEASE_VERSION
from castelet.releases import RELEASES, release

# C0 and C1 controls, DEL, line and paragraph separators (castelet.answers._FORBIDDEN; Terraform
# strings are UTF-8, so no lone surrogate reaches it).
_CONTROL = r"[\x00-\x1f\x7f-\x9f\x{2028}\x{2029}]"
_CONTROL_BUT_NEWLINE = r"[\x00-\x09\x0b-\x1f\x7f-\x9f\x{2028}\x{2029}]"
# What Python's str.isspace() calls whitespace, controls aside (those are refused anyway).
SPACES = " \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
_SPACE = r"[ \x{a0}\x{1680}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}]"
_EDGE_SPACE = rf"^{_SPACE}|{_SPACE}$"

_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
_MIXED_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
SLUG = r"^[a-z][a-z0-9-]{0,28}[a-z0-9]$"
DOMAIN = rf"^({_LABEL}\.)+[a-z]{{2,63}}$"
EMAIL = rf"^[A-Za-z0-9._%+-]{{1,64}}@({_MIXED_LABEL}\.)+[A-Za-z]{{2,63}}$"
CIDR_SHAPE = r"^[0-9A-Fa-f.:]+/[0-9]{1,3}$"
# An IPv4 octet written with a leading zero (Python refuses it, Terraform's parser reads it).
_LEADING_ZERO = r"(^|[.:])0[0-9]+\.|\.0[0-9]+/"
SHA256 = r"^[0-9a-f]{64}$"
ACME_URL = r"^https://[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]{0,200})?$"
_HOST_PORT = r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?"
_REPO_PATH = r"[A-Za-z0-9._~/-]{0,200}"
RESTIC_REPOSITORY = (rf"^((s3|rest):https?://{_HOST_PORT}(/{_REPO_PATH})?"
                     rf"|sftp:([a-z_][a-z0-9_-]{{0,31}}@)?[A-Za-z0-9.-]{{1,253}}:/{_REPO_PATH}"
                     rf"|(swift|b2):[A-Za-z0-9._-]{{1,100}}:/?{_REPO_PATH}"
                     rf"|/{_REPO_PATH})$")
GIT_URL = rf"^https?://[A-Za-z0-9.-]{{1,253}}(:[0-9]{{1,5}})?/{_REPO_PATH}$"
_OCTET = r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = rf"^{_OCTET}(\.{_OCTET}){{3}}$"
GIT_REF = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$"
IDENTIFIER = r"[a-z][a-z0-9_]{0,31}"
DATABASE_ITEM = rf"^{IDENTIFIER}(:{IDENTIFIER})?$"
DEBIAN_PACKAGE = r"^[a-z0-9][a-z0-9+.-]{1,99}$"
PORT = r"^[1-9][0-9]{0,4}/(tcp|udp)$"
# RE2 refuses nested counts above 1000 ({1,76} lines, {1,200} of them): those two are checked apart.
PEM_BLOCK = r"-----BEGIN CERTIFICATE-----\n((?:[A-Za-z0-9+/=]+\n)+)-----END CERTIFICATE-----"
ACCOUNT = r"^[a-z_][a-z0-9_-]{0,31}$"
# Not str.isprintable(): separators other than the space, and controls, format characters,
# private use (unassigned code points aside: Terraform's Unicode tables are not Python's).
_NOT_PRINTABLE = r"[^ \P{Z}]|\p{C}"


@dataclass(frozen=True)
class Rule:
    """One `validation` block of the deployment's variables.tf."""

    variable: str
    condition: str
    message: str


def _re(pattern: str, expr: str) -> str:
    return f"can(regex({hcl(pattern)}, {expr}))"


def text_ok(expr: str, *, newlines: bool = False) -> str:
    """No control character or separator, no surrounding whitespace (answers.text_problem)."""
    control = _CONTROL_BUT_NEWLINE if newlines else _CONTROL
    return f"!{_re(control, expr)} && !{_re(_EDGE_SPACE, expr)}"


def cidr_ok(expr: str) -> str:
    """A network in CIDR notation with its host bits zero (answers._is_cidr)."""
    address = f'"${{split("/", {expr})[0]}}/${{strcontains({expr}, ":") ? 128 : 32}}"'
    return (f"{_re(CIDR_SHAPE, expr)} && !{_re(_LEADING_ZERO, expr)} && "
            f"try(cidrhost({expr}, 0) == cidrhost({address}, 0), false)")


def _whole_network(expr: str) -> str:
    return f"try(tonumber(split(\"/\", {expr})[1]) == 0, false)"


def _private_ipv4(expr: str) -> str:
    inside = [f'cidrhost("${{{expr}}}/{net.split("/")[1]}", 0) == {hcl(net.split("/")[0])}'
              for net in A.PRIVATE_IPV4_NETWORKS]
    return f"({_re(_IPV4, expr)} && try({' || '.join(inside)}, false))"


def git_url_ok(expr: str) -> str:
    host = f'try(regex("^https?://([A-Za-z0-9.-]+)", {expr})[0], "")'
    return (f"{_re(GIT_URL, expr)} && length(split(\"//\", {expr})) == 2 && !strcontains(\"${{{expr}}}/\", \"/../\")"
            f" && (startswith({expr}, \"https://\") || {_private_ipv4(host)})")


def git_ref_ok(expr: str) -> str:
    return (f"{_re(GIT_REF, expr)} && !strcontains({expr}, \"..\") && !strcontains({expr}, \"//\") && "
            f"!strcontains({expr}, \"/.\") && !endswith({expr}, \"/\") && !endswith({expr}, \".\") && "
            f"!endswith({expr}, \".lock\")")


def pem_ok(expr: str) -> str:
    """PEM certificate blocks separated by whitespace; each body strict base64 of at least 64
    bytes starting with a DER SEQUENCE (base64 `M`)."""
    body = 'replace(b[0], "\\n", "")'
    lines = 'split("\\n", trimsuffix(b[0], "\\n"))'
    block = (f"length({lines}) <= 200 && alltrue([for l in {lines} : length(l) <= 76]) && "
             f"{_re('^M[A-Za-z0-9+/]*={0,2}$', body)} && length({body}) % 4 == 0 && "
             f"length({body}) / 4 * 3 - length(regexall(\"=\", {body})) >= 64")
    return (f"length({expr}) <= {A.MAX_PEM_CHARS} && length(regexall({hcl(PEM_BLOCK)}, {expr})) > 0 && "
            f"trimspace(replace({expr}, {hcl('/' + PEM_BLOCK + '/')}, \"\")) == \"\" && "
            f"alltrue([for b in regexall({hcl(PEM_BLOCK)}, {expr}) : {block}])")


def _key_prefix(key_type: str) -> str:
    """The base64 text every key of that type starts with: its wire-encoded type name, cut to
    whole 3-byte groups."""
    header = len(key_type).to_bytes(4, "big") + key_type.encode()
    return base64.b64encode(header[: len(header) // 3 * 3]).decode()


def public_key_ok(expr: str) -> str:
    """TYPE BASE64 [COMMENT] (answers.parse_public_key): a known type, canonical base64 whose
    data names that type, a printable comment, no comma; ed25519 keys have their exact size."""
    types = "|".join(t.replace(".", r"\.") for t in A.KEY_TYPES)
    shape = rf"^({types}) [A-Za-z0-9+/]*([AEIMQUYcgkosw048]=|[AQgw]==|[A-Za-z0-9+/])( (.*))?$"
    parts = f'split(" ", {expr})'
    prefixes = hcl({t: _key_prefix(t) for t in A.KEY_TYPES})
    comment = f'join(" ", slice({parts}, 2, length({parts})))'
    return (f"length({expr}) <= 8192 && {text_ok(expr)} && !strcontains({expr}, \",\") && {_re(shape, expr)} && "
            f"try(length({parts}[1]) % 4 == 0 && startswith({parts}[1], {prefixes}[{parts}[0]]) && "
            f"({parts}[0] != \"ssh-ed25519\" || length({parts}[1]) == 68) && "
            f"!{_re(_NOT_PRINTABLE, comment)}, false)")


def _word_list(expr: str, item_ok: str, extra: str = "") -> str:
    """Items separated by single spaces, none empty or twice, at most MAX_LIST_ITEMS (answers._word_list);
    ``item_ok`` is a condition on ``w``."""
    words = f'split(" ", {expr})'
    return (f"({expr} == \"\" || (length({words}) <= {A.MAX_LIST_ITEMS} && length(distinct({words})) == "
            f"length({words}) && alltrue([for w in {words} : {item_ok}]){extra}))")


def databases_ok(expr: str) -> str:
    reserved = hcl(sorted(A.RESERVED_DATABASE_NAMES))
    item = (f"{_re(DATABASE_ITEM, 'w')} && length(setintersection(toset(split(\":\", w)), toset({reserved}))) == 0")
    names = f'[for w in split(" ", {expr}) : split(":", w)[0]]'
    return _word_list(expr, item, f" && length(distinct({names})) == length({names})")


def ports_ok(expr: str) -> str:
    item = f"{_re(PORT, 'w')} && try(tonumber(split(\"/\", w)[0]) <= 65535, false) && w != \"22/tcp\""
    return _word_list(expr, item)


def cidrs_ok(expr: str) -> str:
    return _word_list(expr, f"{cidr_ok('w')} && !{_whole_network('w')}")


def admin_user_ok(expr: str) -> str:
    prefixes = " || ".join(f"startswith({expr}, {hcl(p)})" for p in A.RESERVED_ACCOUNT_PREFIXES)
    return (f"{_re(ACCOUNT, expr)} && !contains({hcl(sorted(A.RESERVED_ACCOUNT_NAMES))}, {expr}) && "
            f"!({prefixes})")


def condition(q: Question, expr: str) -> str:
    """HCL that is true when ``expr`` (the string, number or bool Terraform holds for answer
    ``q``) passes the generator's rule for it."""
    optional = f"{expr} == \"\" || " if q.optional and q.type not in ("integer", "boolean") else ""
    kinds: dict[str, Any] = {
        "slug": lambda e: _re(SLUG, e),
        "domain": lambda e: f"length({e}) >= 4 && length({e}) <= 253 && {_re(DOMAIN, e)}",
        "email": lambda e: _re(EMAIL, e),
        "cidr": cidr_ok,
        "integer": lambda e: f"floor({e}) == {e} && {e} >= {q.minimum} && {e} <= {q.maximum}",
        "boolean": lambda e: f"contains([\"true\", \"false\"], {e})",
        "choice": lambda e: f"contains({hcl(list(q.choices))}, {e})",
        "sha256": lambda e: _re(SHA256, e),
        "timezone": lambda e: f"contains({hcl(sorted(A.timezones()))}, {e})",
        "acme_server": lambda e: f"({e} == \"self-signed\" || {_re(ACME_URL, e)})",
        "pem_certificates": pem_ok,
        "restic_repository": lambda e: _re(RESTIC_REPOSITORY, e),
        "git_url": git_url_ok,
        "git_ref": git_ref_ok,
        "ssh_public_keys": lambda e: f"alltrue([for k in split(\",\", {e}) : {public_key_ok('k')}])",
        "ssh_public_key": public_key_ok,
        "debian_packages": lambda e: _word_list(e, _re(DEBIAN_PACKAGE, "w")),
        "ports": ports_ok,
        "cidrs": cidrs_ok,
        "databases": databases_ok,
        "string": lambda e: _string_ok(q, e),
    }
    rule = kinds[q.type](expr)
    if q.type in ("integer", "boolean", "choice", "timezone"):
        return f"({optional}{rule})"
    return f"({optional}({text_ok(expr, newlines=q.type == 'pem_certificates')} && {rule}))"


def _string_ok(q: Question, expr: str) -> str:
    parts = []
    if q.pattern:
        parts.append(_re(f"^(?:{q.pattern})$", expr))
    if q.min_length or q.max_length:
        parts.append(_re(f"^(?s:.){{{q.min_length or 0},{q.max_length or 1000}}}$", expr))
    return " && ".join(parts) or "true"


def expected(q: Question) -> str:
    """What the generator's message says it expects (the same words in both places)."""
    if q.type == "acme_server":
        return "self-signed, or the https:// directory URL of an ACME certificate authority (auto is resolved " \
               "by castelet new)"
    text = " (no control character, no surrounding whitespace)" if q.type == "string" else ""
    return A._describe(q) + text + (", or empty" if q.optional and q.type != "ssh_public_keys" else "")


def _one(variable: str, setting: str, q: Question, expr: str) -> Rule:
    return Rule(variable, condition(q, expr), f"{setting} must be {expected(q)}.")


def _settings_rules(bp: Blueprint, answers: dict[str, Any]) -> list[Rule]:
    """`settings`: every key of the render kept (Puppet needs each), each value by its answer's rule."""
    settings = settings_of(bp, answers)
    names = list(settings)
    found = [Rule("settings", f"length(setsubtract({hcl(names)}, keys(var.settings))) == 0",
                  f"settings must keep every setting of blueprint {bp.id}: {', '.join(names)}.")]
    for q in bp.questions:
        if q.name in settings:
            found.append(_setting(f"settings.{q.name}", q.name, condition(q, f"var.settings[{hcl(q.name)}]"),
                                  expected(q)))
    if bp.release:
        for name, pattern in (("release_version", RELEASE_VERSION), ("release_url", RELEASE_URL)):
            found.append(_setting(f"settings.{name}", name, _re(pattern, f"var.settings[{hcl(name)}]"),
                                  f"text matching {pattern} (the blueprint's release)"))
    return found


def _setting(label: str, key: str, rule: str, expects: str) -> Rule:
    return Rule("settings", f"!contains(keys(var.settings), {hcl(key)}) || try({rule}, false)",
                f"{label} must be {expects}.")


def _deployment_rules(bp: Blueprint, answers: dict[str, Any]) -> list[Rule]:
    """The variables of their own (castelet.deployment.DEPLOYMENT_VARIABLES)."""
    found: list[Rule] = []
    tfvars = tfvars_of(bp, answers)
    for q in bp.questions:
        variable = DEPLOYMENT_VARIABLES.get(q.name)
        if variable not in tfvars or variable in ("image", "admin_cidr_open_to_all"):
            continue
        rule = _one(variable, variable, q, f"var.{variable}")
        if variable in ("existing_network", "external_network"):
            rule = Rule(variable, f"var.{variable} == null || (var.{variable} != \"\" && {rule.condition})",
                        f"{variable} must be null (detect it) or a name matching ^[A-Za-z0-9._-]+$.")
        found.append(rule)
    return found


def _image_rule(bp: Blueprint, cloud: str) -> list[Rule]:
    if cloud != "openstack":
        images = [release(major).local_image for major in RELEASES]
        return [Rule("image", f"contains({hcl(images)}, var.image)",
                     f"image must be one of the local cloud's images: {', '.join(images)}.")]
    if "image" not in bp.question_names:
        return []
    q = bp.question("image")
    return [Rule("image", f"var.image != \"\" && {condition(q, 'var.image')}", f"image must be {A._describe(q)}.")]


def _design_rules(bp: Blueprint) -> list[Rule]:
    """Flavors and volume sizes, by the questions that give them."""
    found = [_one("flavors", f"flavors.{role.name}", bp.question(role.flavor_question),
                  f"var.flavors[{hcl(role.name)}]") for role in bp.roles]
    for volume in bp.volumes:
        if isinstance(volume.size_gb, str) and volume.size_gb.startswith("question:"):
            q = bp.question(volume.size_gb.removeprefix("question:"))
            rule = _one("volume_sizes_gb", f"volume_sizes_gb.{volume.name}", q,
                        f"var.volume_sizes_gb[{hcl(volume.name)}]")
            found.append(Rule(rule.variable, f"try({rule.condition}, false)", rule.message))
    return found


def _list_rules(bp: Blueprint) -> list[Rule]:
    """The SSH keys and client networks: lists of one string per item."""
    found = [Rule("public_keys", f"alltrue([for k in var.public_keys : {public_key_ok('k')}])",
                  "public_keys must hold OpenSSH public key lines, one string each: TYPE BASE64 [comment] with "
                  f"TYPE one of {', '.join(A.KEY_TYPES)}; no comma, no control character.")]
    if "client_cidrs" in bp.question_names:
        cidrs = "var.client_cidrs"
        found.append(Rule("client_cidrs", f"length({cidrs}) <= {A.MAX_LIST_ITEMS} && length(distinct({cidrs})) == "
                                          f"length({cidrs}) && alltrue([for w in {cidrs} : {text_ok('w')} && "
                                          f"{cidr_ok('w')}])",
                          "Each client_cidrs item must be a network in CIDR notation such as 132.203.0.0/16 or "
                          "2001:db8::/32 (host bits zero), none twice, at most "
                          f"{A.MAX_LIST_ITEMS}."))
        found.append(Rule("client_cidrs", f"!anytrue([for w in {cidrs} : {_whole_network('w')}])",
                          "client_cidrs must not open the client services to the whole internet (0.0.0.0/0 or ::/0)."))
    return found


def _admin_user_rule() -> Rule:
    return Rule("admin_user", admin_user_ok("var.admin_user"),
                "admin_user must be a Linux user name (lowercase letters, digits, _ and -, at most 32 characters) "
                "that is not a system account or one Puppet creates: "
                f"{', '.join(sorted(A.RESERVED_ACCOUNT_NAMES))}, or a name starting with "
                f"{', '.join(A.RESERVED_ACCOUNT_PREFIXES)}.")


def rules(bp: Blueprint, answers: dict[str, Any]) -> list[Rule]:
    """Every answer-derived validation of one render (the skeleton's variables.tf places them)."""
    return [*_deployment_rules(bp, answers), *_image_rule(bp, str(answers["cloud"])), *_design_rules(bp),
            *_list_rules(bp), _admin_user_rule(), *_settings_rules(bp, answers)]
