"""Terraform judges terraform.tfvars with the generator's rules: the same values, valid and
hostile, fed to castelet.answers and to the HCL conditions of castelet.tfrules evaluated by real
Terraform core (one `terraform console` for the whole table), get the same verdict."""

from __future__ import annotations

import json
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest

from castelet import answers as A
from castelet import tfrules
from castelet.escape import hcl
from castelet.manifest import Question
from castelet.runtime import terraform_env
from helpers import REPO_ROOT
from test_hostile_answers import corpus

ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP5iIhev2hhjgWspSDHE5XtW+bq8mxE3rWW070cE/9Zd ada@lab"
PEM_BODY = "MII" + "A" * 61 + "\n" + "B" * 40 + "\n"
PEM = f"-----BEGIN CERTIFICATE-----\n{PEM_BODY}-----END CERTIFICATE-----"

# Values per answer type beyond the hostile corpus: edge cases on both sides of each rule.
CASES: dict[str, list[str]] = {
    "slug": ["ab", "a", "my-lab", "my-", "9lab", "a" * 30, "a" * 31, "Lab"],
    "domain": ["portal.mylab.ca", "a.ca", "x.c", "-a.ca", "a-.ca", "Portal.ca", "a..ca", "a." + "b" * 63 + ".ca",
               ("a" * 63 + ".") * 4 + "ca", "xn--e1a.ca", "a_b.ca"],
    "email": ["ada@mylab.ca", "Ada.L+x@MyLab.CA", "a@b", "a@-b.ca", "@b.ca", "a b@c.ca", "a@b.c",
              "a@k\u212a.ca", "a" * 65 + "@b.ca", "a%b@c.de"],
    "cidr": ["132.203.0.0/16", "10.0.0.1/8", "2001:db8::/32", "2001:DB8::/32", "2001:0db8::/32", "010.0.0.0/8",
             "10.0.0.0/33", "10.0.0.0/08", "::/0", "0.0.0.0/0", "fe80::%eth0/64", "10.0.0.0", "10.0.0.0/255.0.0.0",
             "::ffff:10.0.0.0/104", "::ffff:010.0.0.0/104", "1.2.3/24", "::01/128", "1.2.3.4/32"],
    "cidrs": ["", "10.0.0.0/8 2001:db8::/32", "10.0.0.0/8  10.1.0.0/16", "10.0.0.0/8 10.0.0.0/8", "0.0.0.0/0",
              "10.0.0.1/8", " ".join(f"10.{i}.0.0/16" for i in range(101))],
    "timezone": ["America/Toronto", "UTC", "Europe/Paris", "Mars/Base", "localtime", "america/toronto", ""],
    "sha256": ["0" * 64, "0" * 63, "A" * 64, ""],
    "acme_server": ["self-signed", "https://acme.ca.example.org:8443/_acme_/v2~dir", "http://ca/dir",
                    "https://ca/dir?x=1", "https://user:pw@ca/dir", "https://ca.example.org"],
    "pem_certificates": ["", PEM, PEM + "\n\n" + PEM, PEM + "\n<script>", PEM.replace("MII", "NII"),
                         PEM.replace("A" * 61, "A" * 60 + "="),
                         "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
                         PEM.replace("B" * 40, "B" * 4), PEM.replace("B" * 40, "B" * 77),
                         PEM.replace(PEM_BODY, "QUJD\n" * 201), PEM.replace(PEM_BODY, PEM_BODY * 3)],
    "restic_repository": ["", "s3:https://object-arbutus.cloud.computecanada.ca/lab/atlas", "rest:http://h:8000/x",
                          "rest:http://user:pw@h:8000/x", "sftp:h:relative", "sftp:u@h:/srv", "b2:bucket:path",
                          "b2:bucket:path with space", "/srv/backup", "s3:https://h/b?x=1"],
    "git_url": ["", "https://gitlab.example.org/lab/site.git", "http://10.166.0.1:8000/site.git",
                "http://192.168.1.5/x", "http://127.0.0.1/r", "http://8.8.8.8/x", "http://172.32.0.1/x",
                "http://172.31.0.1/x", "http://010.0.0.1/x", "http://gitlab.example.org/x", "https://h//x",
                "https://h/a/../b", "https://u@h/x", "https://h/x?y", "ftp://h/x", "http://192.0.2.1/x"],
    "git_ref": ["main", "v1.2.0", "feature/x", "a..b", "a//b", "a/.b", "a/", "a.", "a.lock", "-x", "a b", ""],
    "databases": ["", "lab", "corpus survey:lab", "postgres", "lab:postgres", "a:b:c", "lab lab", "lab lab:x",
                  "Lab", "a" * 33, "lab  x", "a_1:b_2"],
    "debian_packages": ["", "jq htop", "jq jq", "j", "Jq", "jq  htop", "g++ libc6.1"],
    "ports": ["", "8080/tcp 5353/udp", "22/tcp", "22/udp", "65535/tcp", "65536/tcp", "0/tcp", "080/tcp", "80/sctp",
              "80/tcp 80/tcp"],
    "ssh_public_keys": ["", ED25519, ED25519 + "," + ED25519.replace("ada", "bob"), ED25519.replace("ssh-ed25519",
                        "ssh-dss"), ED25519[:-12], ED25519.replace(" ada@lab", ""), ED25519 + "\u202e",
                        ED25519.replace("AAAAC3", "AAAAB3"), ED25519.replace("Zd ", "Zd= "),
                        ED25519.replace(" ada", "  ada")],
    "ssh_public_key": ["", ED25519, ED25519 + "," + ED25519, ED25519 + "\n" + ED25519,
                       'restrict,command="id" ' + ED25519, ED25519.replace(" ada@lab", ""), ED25519[:-12],
                       ED25519 + " ", "command=x " + ED25519],
    "choice": ["postgresql", "mariadb", "oracle", "PostgreSQL", ""],
    "string": ["My lab", "", " x", "x ", "a\u00a0", "\u3000a", "x" * 120, "x" * 121, "tab\tx", "l\u2028x"],
}


def _questions() -> list[Question]:
    """One question of each type, as the blueprints ask it (a string: the project name)."""
    from castelet.library import load_all

    found: dict[str, Question] = {}
    for bp in load_all(REPO_ROOT)[0]:
        for q in bp.questions:
            if q.type in CASES and (q.type not in found or q.name == "project_name"):
                found[q.type] = q
    return list(found.values())


def _generator_accepts(q: Question, value: str) -> bool:
    try:
        A.coerce(q, value)
    except ValueError:
        return False
    return True


def _terraform_verdicts(expressions: list[str], tmp_path: Path, terraform_cmd: list[str]) -> list[bool]:
    """Evaluate HCL boolean expressions with real Terraform core, all in one process (a local
    of a scratch configuration, printed by `terraform console`)."""
    (tmp_path / "main.tf").write_text("locals {\n  verdicts = [\n" + "".join(f"    {e},\n" for e in expressions)
                                      + "  ]\n}\n")
    proc = subprocess.run([*terraform_cmd, "console"], cwd=tmp_path, env=terraform_env(),
                          input="jsonencode(local.verdicts)\n", capture_output=True, text=True, check=False,
                          timeout=600)
    assert proc.returncode == 0 and proc.stdout.strip(), proc.stdout[-3000:] + proc.stderr[-3000:]
    verdicts = json.loads(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert len(verdicts) == len(expressions)
    return [bool(v) for v in verdicts]


def test_python_whitespace_is_the_terraform_rules_whitespace() -> None:
    """The characters str.isspace() strips from an answer's ends, controls aside (refused anyway)."""
    spaces = {chr(c) for c in range(0x110000) if chr(c).isspace() and not A._FORBIDDEN.match(chr(c))}
    assert spaces == set(tfrules.SPACES)


def test_terraform_and_the_generator_agree_on_every_value(tmp_path: Path, terraform_cmd: list[str]) -> None:
    """Every answer type that reaches terraform.tfvars: the same verdict on each value of its
    table and of the hostile corpus (values whose Unicode NFC differs are left out: HCL reads
    them as their NFC form)."""
    table = []
    for q in _questions():
        for value in [*CASES[q.type], *corpus(tmp_path / "marker")]:
            if unicodedata.normalize("NFC", value) == value:
                table.append((q, value))
    expressions = [f"try({tfrules.condition(q, hcl(value))}, false)" for q, value in table]
    verdicts = _terraform_verdicts(expressions, tmp_path, terraform_cmd)
    disagree = [(q.name, q.type, value, verdict) for (q, value), verdict in zip(table, verdicts, strict=True)
                if verdict != _generator_accepts(q, value)]
    assert not disagree, "\n".join(f"{n} ({t}): {v!r} terraform={tf}" for n, t, v, tf in disagree)
    assert not (tmp_path / "marker").exists()


ACCOUNTS = ["ada", "castelet", "_x", "root", "www-data", "postgres", "mysql", "systemd-network", "_apt", "sshd",
            "castelet-app", "castelet-build", "deploy", "nobody", "Ada", "a" * 32, "a" * 33, "9lab", "ada-lab_2",
            "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy", "backup", "list",
            "irc", "ada lab", ""]


def test_admin_user_names_agree(tmp_path: Path, terraform_cmd: list[str]) -> None:
    """admin_user: a Linux user name that is not a system account nor one Puppet creates, on
    both sides; the reserved names of the brief are all refused."""
    expressions = [f"try({tfrules.admin_user_ok(hcl(name))}, false)" for name in ACCOUNTS]
    verdicts = _terraform_verdicts(expressions, tmp_path, terraform_cmd)
    assert verdicts == [A.admin_user_problem(name) is None for name in ACCOUNTS]
    assert [name for name, ok in zip(ACCOUNTS, verdicts, strict=True) if ok] == ["ada", "castelet", "a" * 32,
                                                                                  "ada-lab_2"]


def test_the_configuration_module_reserves_the_same_accounts() -> None:
    """terraform-modules/common/configuration (used without the skeleton too) lists the same names."""
    text = (REPO_ROOT / "terraform-modules/common/configuration/variables.tf").read_text()
    block = text[text.index('variable "admin_user"'):]
    block = block[:block.index("\n}\n")]
    names = set(re.findall(r'"([a-z_-]+)"', block[block.index("contains(["):block.index("], var.admin_user)")]))
    prefixes = re.findall(r'startswith\(var\.admin_user, "([^"]+)"\)', block)
    assert names == A.RESERVED_ACCOUNT_NAMES
    assert tuple(prefixes) == A.RESERVED_ACCOUNT_PREFIXES


@pytest.mark.parametrize("value", ["http://172.20.1.1/x.git", "http://100.64.0.1/x.git", "http://192.0.2.1/x.git"])
def test_plain_http_reaches_the_written_private_networks_only(value: str) -> None:
    """The generator no longer follows Python's version-dependent is_private: RFC 1918 and loopback."""
    q = Question(name="site_git_url", type="git_url", default="", help={"en": ""}, optional=True)
    assert _generator_accepts(q, value) == value.startswith("http://172.20.")


RELEASES_PINNED = ["http://10.166.0.1:8080/e2e/omeka-s-1.0.0-test.zip", "https://example.org/omeka-s-4.1.1.zip",
                   "file:///srv/omeka-s.zip", "ftp://example.org/x.zip", "https://example.org/a b.zip", ""]
VERSIONS_PINNED = ["4.1.1", "1.0.0-test", "2.0~rc1", "-1", "1 0", "1;rm", ""]


def test_release_settings_follow_what_castelet_pin_writes(tmp_path: Path, terraform_cmd: list[str]) -> None:
    """release_url and release_version: Terraform accepts exactly what `castelet pin` writes (an
    archive on the bridge over plain http is what the e2e pins: its SHA-256 is checked)."""
    from castelet.pin import RELEASE_URL, RELEASE_VERSION

    values = [(RELEASE_URL, url) for url in RELEASES_PINNED] + [(RELEASE_VERSION, v) for v in VERSIONS_PINNED]
    expressions = [f"can(regex({hcl(pattern)}, {hcl(value)}))" for pattern, value in values]
    verdicts = _terraform_verdicts(expressions, tmp_path, terraform_cmd)
    assert verdicts == [re.match(pattern, value) is not None for pattern, value in values]
    assert verdicts[:3] == [True, True, True] and verdicts[3:6] == [False, False, False]
