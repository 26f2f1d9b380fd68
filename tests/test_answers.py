"""Answer validation: good and bad input, and (property-based) nothing written for bad answers."""

from __future__ import annotations

import base64
import re
import shutil
import string
import struct
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from castelet.answers import (
    OPEN_TO_ALL,
    AnswersError,
    InvalidAnswer,
    PublicKey,
    PublicKeyError,
    bounded_repr,
    coerce,
    cross_field_problems,
    parse_public_key,
    split_keys,
    timezones,
    validate,
)
from castelet.manifest import Question, load, shared_questions
from castelet.render import new
from helpers import REPO_ROOT

OMEKA = REPO_ROOT / "blueprints" / "omeka-s"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ admin@lab"
WITH_KEY = {"admin_ssh_keys": KEY}  # OpenStack, the default cloud, needs one
# omeka-s's own sha256 question (of the upstream release), whatever its name.
SHA256_FIELD = next(q.name for q in load(OMEKA).questions if q.type == "sha256")


@pytest.fixture(scope="module")
def omeka():
    return load(OMEKA)


def test_defaults_are_valid(omeka):
    """Defaults plus the one answer a default cannot give on OpenStack: an administrator key."""
    answers = validate(omeka, {"admin_ssh_keys": KEY})
    assert answers["project_slug"] == "omeka"
    assert answers["data_volume_gb"] == 20  # typed, not the string cookiecutter passes
    assert answers["admin_ssh_keys"] == KEY and answers["admin_cidr_open_to_all"] is False
    assert validate(omeka, {"cloud": "lxd"})["admin_ssh_keys"] == ""


def test_openstack_requires_a_key(omeka):
    with pytest.raises(AnswersError) as refused:
        validate(omeka, {})
    assert [p.field for p in refused.value.problems] == ["admin_ssh_keys"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("domain", "portal.mylab.ca"), ("domain", "xn--bcher-kva.example"), ("admin_email", "a.b+c@lab.ulaval.ca"),
     ("admin_cidr", "132.203.0.0/16"), ("admin_cidr", "2001:db8::/32"), ("admin_ssh_keys", f"{KEY}, {KEY}"),
     ("data_volume_gb", "500"), ("project_slug", "atlas-2"), (SHA256_FIELD, "a" * 64)],
)
def test_good_answers_pass(omeka, field, value):
    validate(omeka, {**WITH_KEY, field: value})


@pytest.mark.parametrize(
    ("field", "value"),
    [("domain", "not_a_domain"), ("domain", "localhost"), ("domain", "Portal.Lab.CA"), ("domain", "a..b.ca"),
     ("admin_email", "admin"), ("admin_email", "a@b"), ("admin_cidr", "10.0.0.1/8"), ("admin_cidr", "10.0.0.0"),
     ("admin_cidr", "300.1.1.0/24"), ("admin_ssh_keys", "ssh-dss AAAA"), ("data_volume_gb", "0"),
     ("data_volume_gb", "lots"), ("project_slug", "Atlas"), ("project_slug", "a"), ("cloud", "aws"),
     ("image", "debian 12"), ("project_name", "two\nlines"), (SHA256_FIELD, "abc")],
)
def test_bad_answers_name_the_field(omeka, field, value):
    with pytest.raises(AnswersError) as caught:
        validate(omeka, {**WITH_KEY, field: value})
    assert [p.field for p in caught.value.problems] == [field]
    assert field in str(caught.value) and "expected" in str(caught.value)


def test_unknown_question_is_an_error(omeka):
    with pytest.raises(AnswersError, match="colour"):
        validate(omeka, {**WITH_KEY, "colour": "blue"})


junk = st.text(alphabet=string.printable, max_size=40)
bad_answer_sets = st.fixed_dictionaries(
    {},
    optional={
        "domain": st.one_of(junk, st.just("bad_domain")),
        "admin_email": st.one_of(junk, st.just("nobody")),
        "admin_cidr": st.one_of(junk, st.just("10.0.0.1/8")),
        "data_volume_gb": st.one_of(st.integers(-5, 0), junk),
        "project_slug": junk,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=bad_answer_sets)
def test_no_invalid_answer_set_ever_produces_a_directory(omeka, tmp_path_factory, answers):
    try:
        validate(omeka, answers)
    except AnswersError:
        out: Path = tmp_path_factory.mktemp("out")
        with pytest.raises(AnswersError):
            new(OMEKA, answers, out)
        assert list(out.iterdir()) == []


# --- exact validation: refuse, never strip -------------------------------------------------------

GOOD = {
    "domain": "portal.mylab.ca", "admin_email": "a.b@lab.ulaval.ca", "admin_cidr": "132.203.0.0/16",
    "project_slug": "atlas", "project_name": "Atlas project", "image": "Debian-12", "cloud": "lxd",
    "timezone": "America/Toronto", SHA256_FIELD: "a" * 64, "data_volume_gb": "500",
    "admin_ssh_keys": KEY,
}
# Control characters (C0, DEL, C1), Unicode line/paragraph separators and surrounding whitespace.
FORBIDDEN = ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"]
SPACES = [" ", "\u00a0", "\u3000"]


def _refusal(bp, field, value):
    with pytest.raises(AnswersError) as caught:
        validate(bp, {**WITH_KEY, field: value})
    assert [p.field for p in caught.value.problems] == [field], caught.value.problems
    return caught.value.problems[0]


@pytest.mark.parametrize("field", sorted(GOOD))
def test_good_values_of_every_type_pass_as_written(omeka, field):
    expected = 500 if field == "data_volume_gb" else GOOD[field]
    assert validate(omeka, {**WITH_KEY, field: GOOD[field]})[field] == expected


@pytest.mark.parametrize("field", sorted(GOOD))
@pytest.mark.parametrize("char", FORBIDDEN)
def test_control_characters_and_separators_are_refused_everywhere(omeka, field, char):
    good = GOOD[field]
    for bad in (good + char, char + good, good[:2] + char + good[2:]):
        problem = _refusal(omeka, field, bad)
        if field == "admin_ssh_keys" and char == "\n" and bad == good[:2] + char + good[2:]:
            assert problem.reason.startswith("key 1: "), problem  # newlines separate keys: "ss" is no key
        else:
            assert any(word in problem.reason for word in ("control character", "line separator", "whitespace")), \
                (bad, problem)


@pytest.mark.parametrize("field", sorted(GOOD))
@pytest.mark.parametrize("space", SPACES)
def test_surrounding_whitespace_is_refused_not_stripped(omeka, field, space):
    for bad in (GOOD[field] + space, space + GOOD[field]):
        problem = _refusal(omeka, field, bad)
        assert problem.reason == "leading or trailing whitespace", problem


def q(type_: str, **extra) -> Question:
    return Question(name="x", type=type_, default="", help={"en": "x", "fr": "x"}, **extra)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(500, 500), ("500", 500), ("+7", 7), ("-3", -3), ("007", 7)],
)
def test_integers_keep_their_coercion(value, expected):
    assert coerce(q("integer"), value) == expected


@pytest.mark.parametrize("value", [" 500", "500 ", "500\n", "1_000", "\uff15\uff10\uff10", "0x10", "5.0", 5.0, True,
                                   None, "", "1e3"])
def test_integers_refuse_anything_else(value):
    with pytest.raises(ValueError):
        coerce(q("integer"), value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), (False, False), ("yes", True), ("Oui", True), ("NO", False), ("off", False), (1, True), (0, False)],
)
def test_booleans_keep_their_coercion(value, expected):
    assert coerce(q("boolean"), value) is expected


@pytest.mark.parametrize("value", [" yes", "yes ", "yes\n", "\tno", "maybe", 2, None, "\uff59\uff45\uff53", "YES\x00"])
def test_booleans_refuse_anything_else(value):
    with pytest.raises(ValueError):
        coerce(q("boolean"), value)


@pytest.mark.parametrize("value", ["Atlas", "Atlas de l'été 🗺", "a" * 120])
def test_strings_take_any_printable_text(value):
    assert coerce(q("string", max_length=120), value) == value


@pytest.mark.parametrize("value", ["two\nlines", "tab\there", "nul\x00", "del\x7f", "nel\x85", "ls\u2028x", "ps\u2029x",
                                   "lone\udc80", " lead", "trail ", "trail\u00a0"])
def test_strings_refuse_control_characters_and_surrounding_space(value):
    with pytest.raises(InvalidAnswer) as caught:
        coerce(q("string"), value)
    assert caught.value.reason


@pytest.mark.parametrize("value", ["10.0.0.0/255.0.0.0", "10.0.0.0/0.255.255.255", "fe80::%eth0/64", "10.0.0.0 /8"])
def test_cidr_is_prefix_notation_only(value):
    with pytest.raises(ValueError):
        coerce(q("cidr"), value)


def test_email_domain_is_ascii_even_ignoring_case():
    with pytest.raises(ValueError):
        coerce(q("email"), "a@\u017ftanford.edu")  # long s: matches [a-z] under IGNORECASE without ASCII
    assert coerce(q("email"), "A@Stanford.edu") == "A@Stanford.edu"


# --- time zones ------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["America/Toronto", "UTC", "Europe/Paris", "America/Argentina/Buenos_Aires"])
def test_time_zones_of_the_tz_database_are_accepted(omeka, value):
    assert value in timezones()
    assert validate(omeka, {**WITH_KEY, "timezone": value})["timezone"] == value


@pytest.mark.parametrize("value", ["Mars/Olympus_Mons", "america/toronto", "America/Toronto ", "localtime",
                                   "../../../etc/passwd", "America", "", "UTC+5"])
def test_time_zones_outside_the_tz_database_are_refused(omeka, value):
    problem = _refusal(omeka, "timezone", value)
    assert "tz database" in problem.allowed


def test_timezone_question_uses_the_new_type():
    assert shared_questions()["timezone"]["type"] == "timezone"
    assert "pattern" not in shared_questions()["timezone"]


# --- SSH public keys -------------------------------------------------------------------------------

KEYGEN = {"ed25519": ["-t", "ed25519"], "rsa2048": ["-t", "rsa", "-b", "2048"], "rsa3072": ["-t", "rsa", "-b", "3072"],
          "rsa1024": ["-t", "rsa", "-b", "1024"], "ecdsa256": ["-t", "ecdsa", "-b", "256"],
          "ecdsa384": ["-t", "ecdsa", "-b", "384"], "ecdsa521": ["-t", "ecdsa", "-b", "521"]}
COMMENT = "ada@lab été 🔑"


@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, str]:
    """Real public key lines made by ssh-keygen."""
    if shutil.which("ssh-keygen") is None:  # pragma: no cover
        pytest.skip("ssh-keygen is not installed (apt-get install openssh-client)")
    folder = tmp_path_factory.mktemp("keys")
    lines = {}
    for name, args in KEYGEN.items():
        subprocess.run(["ssh-keygen", "-q", *args, "-N", "", "-C", COMMENT, "-f", str(folder / name)], check=True)
        lines[name] = (folder / f"{name}.pub").read_text("utf-8").removesuffix("\n")
    return lines


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _blob(line: str) -> bytes:
    return base64.b64decode(line.split(" ")[1])


def _line(key_type: str, blob: bytes, comment: str = "") -> str:
    return f"{key_type} {base64.b64encode(blob).decode()}" + (f" {comment}" if comment else "")


def _fields(blob: bytes) -> list[bytes]:
    """The SSH strings of a blob (mpints included)."""
    out, pos = [], 0
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        out.append(blob[pos + 4:pos + 4 + length])
        pos += 4 + length
    return out


@pytest.mark.parametrize(
    ("name", "key_type", "bits"),
    [("ed25519", "ssh-ed25519", 256), ("rsa2048", "ssh-rsa", 2048), ("rsa3072", "ssh-rsa", 3072),
     ("ecdsa256", "ecdsa-sha2-nistp256", 256), ("ecdsa384", "ecdsa-sha2-nistp384", 384),
     ("ecdsa521", "ecdsa-sha2-nistp521", 521)],
)
def test_real_keys_are_parsed(keys, name, key_type, bits):
    key = parse_public_key(keys[name])
    assert key == PublicKey(type=key_type, bits=bits, comment=COMMENT, line=keys[name])
    bare = " ".join(keys[name].split(" ")[:2])
    assert parse_public_key(bare) == PublicKey(type=key_type, bits=bits, comment="", line=bare)


def test_short_rsa_keys_are_refused(keys):
    with pytest.raises(PublicKeyError, match="1024 bits; at least 2048"):
        parse_public_key(keys["rsa1024"])


def test_several_real_keys_in_one_answer(omeka, keys):
    lines = [keys["ed25519"], keys["rsa3072"], keys["ecdsa384"]]
    for separator in (",", ", ", "\n", " ,\n"):
        joined = separator.join(lines)
        assert validate(omeka, {**WITH_KEY, "admin_ssh_keys": joined})["admin_ssh_keys"] == ",".join(lines)
        assert split_keys(separator.join(lines)) == lines


def test_split_keys_keeps_empty_entries_for_validation_to_refuse():
    assert split_keys("") == []
    assert split_keys("a, b\nc") == ["a", "b", "c"]
    assert split_keys("a,,b") == ["a", "", "b"]


@pytest.mark.parametrize("answer", ["{k},,{k}", "{k},", ",{k}", "{k}\n\n{k}", "{k}\r\n{k}", "{k}\t,{k}"])
def test_empty_keys_and_stray_characters_are_refused(omeka, keys, answer):
    problem = _refusal(omeka, "admin_ssh_keys", answer.format(k=keys["ed25519"]))
    assert problem.reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [("ssh-rsa AAAA", "ends before"), ("ssh-rsa AAAA…", "base64"), ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "unsupported"),
     ("ssh-ed25519", "TYPE BASE64"), ("ssh-ed25519  AAAA", "single spaces"), ("", "TYPE BASE64"),
     ("AAAAC3NzaC1lZDI1NTE5AAAAIC7bOCtDd4z0fbvNtNvHVn1v9Kkp7oPNq7d0bH5vY3zQ", "TYPE BASE64")],
)
def test_malformed_key_lines_are_refused(line, reason):
    with pytest.raises(PublicKeyError, match=reason):
        parse_public_key(line)


@pytest.mark.parametrize("name", ["ed25519", "rsa2048", "ecdsa256", "ecdsa521"])
def test_truncated_or_garbled_base64_is_refused(keys, name):
    key_type, data, _ = keys[name].split(" ", 2)
    for bad in (data[:-4], data[:-1], data[:40], data[:-8] + "!" + data[-7:], data + "AAAA", data + "=",
                data[:20] + "\u00e9" + data[21:], data[:20] + " " + data[20:]):
        with pytest.raises(PublicKeyError):
            parse_public_key(f"{key_type} {bad}")


@pytest.mark.parametrize("name", ["ed25519", "rsa2048", "ecdsa256"])
def test_extra_bytes_after_the_key_are_refused(keys, name):
    key_type = keys[name].split(" ")[0]
    with pytest.raises(PublicKeyError, match="unexpected bytes"):
        parse_public_key(_line(key_type, _blob(keys[name]) + b"\x00"))


@pytest.mark.parametrize(
    ("outer", "inner"),
    [("ssh-rsa", "ed25519"), ("ssh-ed25519", "rsa2048"), ("ecdsa-sha2-nistp384", "ecdsa256"),
     ("ecdsa-sha2-nistp256", "ed25519"), ("sk-ssh-ed25519@openssh.com", "ed25519")],
)
def test_the_type_inside_the_blob_must_be_the_type_of_the_line(keys, outer, inner):
    data = keys[inner].split(" ")[1]
    with pytest.raises(PublicKeyError, match=f"not a {outer} key"):
        parse_public_key(f"{outer} {data}")


def test_ecdsa_curve_and_point_are_checked(keys):
    kind, curve, point = _fields(_blob(keys["ecdsa256"]))
    assert (kind, curve) == (b"ecdsa-sha2-nistp256", b"nistp256")
    wrong_curve = _ssh_string(kind) + _ssh_string(b"nistp384") + _ssh_string(point)
    with pytest.raises(PublicKeyError, match="curve name"):
        parse_public_key(_line("ecdsa-sha2-nistp256", wrong_curve))
    moved = point[:-1] + bytes([point[-1] ^ 1])  # a point that is not on the curve
    with pytest.raises(PublicKeyError, match="not on the curve"):
        parse_public_key(_line("ecdsa-sha2-nistp256", _ssh_string(kind) + _ssh_string(curve) + _ssh_string(moved)))
    compressed = bytes([2 + point[-1] % 2]) + point[1:33]
    with pytest.raises(PublicKeyError, match="uncompressed"):
        parse_public_key(_line("ecdsa-sha2-nistp256", _ssh_string(kind) + _ssh_string(curve) + _ssh_string(compressed)))


def test_rsa_structure_is_checked(keys):
    kind, e, n = _fields(_blob(keys["rsa2048"]))
    with pytest.raises(PublicKeyError, match="ends"):
        parse_public_key(_line("ssh-rsa", _ssh_string(kind) + _ssh_string(e)))
    with pytest.raises(PublicKeyError, match="negative"):
        parse_public_key(_line("ssh-rsa", _ssh_string(kind) + _ssh_string(e) + _ssh_string(n[1:])))
    with pytest.raises(PublicKeyError, match="minimally"):
        parse_public_key(_line("ssh-rsa", _ssh_string(kind) + _ssh_string(e) + _ssh_string(b"\x00" + n)))
    with pytest.raises(PublicKeyError, match="exponent"):
        parse_public_key(_line("ssh-rsa", _ssh_string(kind) + _ssh_string(b"\x02") + _ssh_string(n)))


def test_ed25519_key_must_be_32_bytes(keys):
    kind, public = _fields(_blob(keys["ed25519"]))
    for size in (31, 33):
        with pytest.raises(PublicKeyError, match="32 bytes"):
            parse_public_key(_line("ssh-ed25519", _ssh_string(kind) + _ssh_string((public * 2)[:size])))


def test_security_keys_built_by_hand(keys):
    _, ed_public = _fields(_blob(keys["ed25519"]))
    _, _, point = _fields(_blob(keys["ecdsa256"]))
    sk_ed = "sk-ssh-ed25519@openssh.com"
    sk_ec = "sk-ecdsa-sha2-nistp256@openssh.com"
    ed_body = _ssh_string(sk_ed.encode()) + _ssh_string(ed_public)
    ec_body = _ssh_string(sk_ec.encode()) + _ssh_string(b"nistp256") + _ssh_string(point)
    assert parse_public_key(_line(sk_ed, ed_body + _ssh_string(b"ssh:"), "yubi")) == PublicKey(
        sk_ed, 256, "yubi", _line(sk_ed, ed_body + _ssh_string(b"ssh:"), "yubi"))
    assert parse_public_key(_line(sk_ec, ec_body + _ssh_string(b"ssh:"))).bits == 256
    for body in (ed_body, ec_body):
        key_type = sk_ed if body is ed_body else sk_ec
        with pytest.raises(PublicKeyError, match="application"):
            parse_public_key(_line(key_type, body))  # no application string
        with pytest.raises(PublicKeyError, match="application"):
            parse_public_key(_line(key_type, body + _ssh_string(b"")))
        with pytest.raises(PublicKeyError, match="application"):
            parse_public_key(_line(key_type, body + _ssh_string(b"ssh:\x00")))
        with pytest.raises(PublicKeyError, match="unexpected bytes"):
            parse_public_key(_line(key_type, body + _ssh_string(b"ssh:") + b"\x00"))


def test_base64_must_be_canonical(keys):
    _, ed_public = _fields(_blob(keys["ed25519"]))
    sk_ed = "sk-ssh-ed25519@openssh.com"
    blob = _ssh_string(sk_ed.encode()) + _ssh_string(ed_public) + _ssh_string(b"ssh:")
    data = base64.b64encode(blob).decode()
    assert data.endswith("=") and not data.endswith("==")  # 2 unused bits in the last character
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
    tweaked = data[:-2] + alphabet[alphabet.index(data[-2]) + 1] + "="
    assert base64.b64decode(tweaked) == blob  # a lax decoder would accept it
    with pytest.raises(PublicKeyError, match="canonical"):
        parse_public_key(f"{sk_ed} {tweaked}")


@pytest.mark.parametrize("comment", ["a,b", "tab\there", "bidi\u202eoverride", "nul\x00", "nbsp\u00a0inside",
                                     "trailing ", "ls\u2028"])
def test_comments_are_printable_text_without_commas(keys, comment):
    with pytest.raises(PublicKeyError):
        parse_public_key(" ".join(keys["ed25519"].split(" ")[:2]) + " " + comment)


@pytest.mark.parametrize("comment", ["ada@laptop", "Ada Lovelace (work laptop)", "été 🔑 clé", "a  b"])
def test_comments_accept_printable_unicode_and_spaces(keys, comment):
    line = " ".join(keys["ed25519"].split(" ")[:2]) + " " + comment
    assert parse_public_key(line).comment == comment


# --- admin_cidr open to the whole internet ---------------------------------------------------------

@pytest.fixture(scope="module")
def omeka_with_open_flag(omeka):
    raw = shared_questions()[OPEN_TO_ALL]
    flag = Question(name=raw["name"], type=raw["type"], default=raw["default"], help=raw["help"])
    return replace(omeka, questions=(*omeka.questions, flag))


def test_open_to_all_question_is_shared():
    raw = shared_questions()[OPEN_TO_ALL]
    assert raw["type"] == "boolean" and raw["default"] is False
    assert "internet" in raw["help"]["en"].lower() and "internet" in raw["help"]["fr"].lower()


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
def test_whole_internet_admin_cidr_is_refused_by_default(omeka, omeka_with_open_flag, cidr):
    problem = _refusal(omeka, "admin_cidr", cidr)  # the flag is not even asked: treated as false
    assert "whole internet" in problem.reason and OPEN_TO_ALL in problem.allowed
    problem = _refusal(omeka_with_open_flag, "admin_cidr", cidr)  # asked, left at its default
    assert "whole internet" in problem.reason
    with pytest.raises(AnswersError, match="whole internet"):
        validate(omeka_with_open_flag, {**WITH_KEY, "admin_cidr": cidr, OPEN_TO_ALL: "no"})


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0"])
@pytest.mark.parametrize("flag", [True, "yes", "oui"])
def test_whole_internet_admin_cidr_needs_the_explicit_answer(omeka_with_open_flag, cidr, flag):
    answers = validate(omeka_with_open_flag, {**WITH_KEY, "admin_cidr": cidr, OPEN_TO_ALL: flag})
    assert answers["admin_cidr"] == cidr and answers[OPEN_TO_ALL] is True


def test_cross_field_rules_are_one_function():
    assert cross_field_problems({"admin_cidr": "10.0.0.0/8"}) == []
    assert [p.field for p in cross_field_problems({"admin_cidr": "0.0.0.0/0"})] == ["admin_cidr"]
    assert cross_field_problems({"admin_cidr": "::/0", OPEN_TO_ALL: True}) == []
    assert cross_field_problems({"admin_cidr": "::/0", OPEN_TO_ALL: "yes"}) != []  # typed answers only
    assert cross_field_problems({}) == []


def test_narrow_networks_need_no_flag(omeka):
    assert validate(omeka, {**WITH_KEY, "admin_cidr": "0.0.0.0/1"})["admin_cidr"] == "0.0.0.0/1"


# --- messages stay short ---------------------------------------------------------------------------

HOSTILE = {
    "huge text": ("project_name", lambda: "x" * 100_000),
    "terminal escapes": ("domain", lambda: "\x1b[2J" * 10_000),
    "huge integer": ("data_volume_gb", lambda: 10**5000),
    "huge decimal text": ("data_volume_gb", lambda: "9" * 100_000),
    "nested lists": ("domain", lambda: [["deep"] * 1000] * 1000),
    "mapping": ("domain", lambda: {"k" * 1000: "v" * 1000}),
    "huge question name": ("k" * 100_000, lambda: "v"),
    "escape in question name": ("\x1b[31mred", lambda: "v"),
    "huge key": ("admin_ssh_keys", lambda: "ssh-ed25519 " + "A" * 100_000),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_messages_echo_values_bounded_and_escaped(omeka, case):
    field, make = HOSTILE[case]
    value = make()
    with pytest.raises(AnswersError) as caught:
        validate(omeka, {**WITH_KEY, field: value})
    message = str(caught.value)
    assert len(message) < 500, message
    assert "\x1b" not in message  # repr: escapes are shown, never sent to the terminal


def test_a_flood_of_unknown_names_is_counted_not_listed(omeka):
    with pytest.raises(AnswersError) as caught:
        validate(omeka, {f"junk{i:05}": "x" * 1000 for i in range(5000)} | {1: "a", ("t",): "b"} | WITH_KEY)
    fields = [p.field for p in caught.value.problems]
    assert fields == [f"junk{i:05}" for i in range(10)] + ["(more names)"]
    assert caught.value.problems[-1].value == 4992
    assert len(str(caught.value)) < 11 * 500


def test_non_text_question_names_are_refused(omeka):
    with pytest.raises(AnswersError) as caught:
        validate(omeka, {**WITH_KEY, 1: "a"})
    assert [p.field for p in caught.value.problems] == ["(question name)"]


def test_bounded_repr():
    assert bounded_repr("short") == "'short'"
    assert bounded_repr("x" * 1000) == "'" + "x" * 79 + "…"
    assert len(bounded_repr("\x00" * 1000)) <= 81
    assert bounded_repr(10**5000).startswith("<an integer of")
    assert len(bounded_repr(list(range(10_000)))) <= 81


# --- properties --------------------------------------------------------------------------------------

forbidden_chars = st.sampled_from(FORBIDDEN + SPACES + ["\x01", "\x0b", "\x0c", "\x1f", "\x80"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(GOOD)), char=forbidden_chars, where=st.sampled_from(["start", "end", "inside"]))
def test_no_good_value_survives_a_stray_character(omeka, field, char, where):
    good = GOOD[field]
    bad = {"start": char + good, "end": good + char, "inside": good[:3] + char + good[3:]}[where]
    assume(not (where == "inside" and char in SPACES))  # "Atlas project" is a fine name
    with pytest.raises(AnswersError):
        validate(omeka, {**WITH_KEY, field: bad})


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=1, max_size=60))
def test_accepted_text_is_returned_exactly(text):
    try:
        result = coerce(q("string"), text)
    except InvalidAnswer:
        assert any(0x00 <= ord(c) <= 0x1F or 0x7F <= ord(c) <= 0x9F or c in "\u2028\u2029"
                   or 0xD800 <= ord(c) <= 0xDFFF for c in text) \
            or text[0].isspace() or text[-1].isspace()
    else:
        assert result == text


def test_debian_release_is_one_of_the_supported_ones(omeka):
    from castelet.releases import RELEASES

    for major in RELEASES:
        assert validate(omeka, {**WITH_KEY, "debian_release": major})["debian_release"] == major
    assert validate(omeka, {**WITH_KEY, "debian_release": 13})["debian_release"] == "13"  # a YAML number
    for bad in ("11", "14", "sid", "13 ", "trixie"):
        with pytest.raises(AnswersError):
            validate(omeka, {**WITH_KEY, "debian_release": bad})


@pytest.mark.parametrize("value", ["^Debian-13", "^Debian-12-x64", "^Debian-13.*x64$", "Debian-13-x64-2026-03",
                                   "^(Debian|debian)-13", "^Debian-1[23]"])
def test_image_is_a_name_regex(omeka, value):
    """The OpenStack image answer is a name regex (most recent match): regex syntax passes."""
    assert validate(omeka, {**WITH_KEY, "image": value})["image"] == value


@pytest.mark.parametrize("value", ["${file(\"/etc/passwd\")}", "%{ if true }x%{ endif }", "Debian 13", "a\"b",
                                   "^Debian-13\\d", "{{ cookiecutter.x }}", "$Debian", "^"])
def test_image_regex_refuses_template_and_quote_characters(omeka, value):
    with pytest.raises(AnswersError) as caught:
        validate(omeka, {**WITH_KEY, "image": value})
    assert [p.field for p in caught.value.problems] == ["image"]


# --- the one key of an account (nodejs-app's redeploy_ssh_key) ----------------------------------

REDEPLOY = load(REPO_ROOT / "blueprints" / "nodejs-app").question("redeploy_ssh_key")


def test_redeploy_key_is_one_key_line_or_nothing() -> None:
    """The CI's redeploy key opens an account whose options castelet writes: exactly one key as a
    *.pub file has it; a second key, an options prefix or a newline is refused."""
    assert REDEPLOY.type == "ssh_public_key" and REDEPLOY.optional
    assert coerce(REDEPLOY, "") == ""
    assert coerce(REDEPLOY, KEY) == KEY
    for bad in (f"{KEY},{KEY}", f"{KEY}\n{KEY}", f'restrict,command="/bin/sh" {KEY}', f"command=\"id\" {KEY}",
                f"{KEY}\n", f" {KEY}", KEY.replace("ssh-ed25519", "ssh-dss"), KEY[:-20]):
        with pytest.raises(InvalidAnswer):
            coerce(REDEPLOY, bad)


def test_redeploy_key_reaches_the_settings(tmp_path: Path) -> None:
    deployment = new(REPO_ROOT / "blueprints" / "nodejs-app",
                     {"cloud": "lxd", "redeploy_ssh_key": KEY, "app_git_url": "https://git.example.org/a.git"},
                     tmp_path / "out")
    assert re.search(rf'^  redeploy_ssh_key += "{re.escape(KEY)}"$', (deployment / "terraform.tfvars").read_text(),
                     re.MULTILINE)
    with pytest.raises(AnswersError, match=r"^redeploy_ssh_key: "):
        new(REPO_ROOT / "blueprints" / "nodejs-app", {"cloud": "lxd", "redeploy_ssh_key": f"{KEY},{KEY}"},
            tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
