#!/usr/bin/python3
"""castelet-tls: the certificate the web server serves, from first boot to renewal.

Written by Puppet (castelet::profile::tls) as /usr/local/sbin/castelet-tls. It reads its
settings from /etc/castelet/tls.json (written by Puppet from typed parameters), never from
the command line, and runs every program with an argument list (no shell).

The web server always reads <dir>/current/{fullchain,privkey}.pem. `current` is a symbolic
link, switched atomically, to either:
  <dir>/self-signed/                      made here at first boot: the site starts at once;
  /etc/letsencrypt/live/<domain>/         once the ACME CA issued a certificate (certbot).

  castelet-tls ensure     make the self-signed pair if missing, point `current` at the best
                          certificate there is; exit 0 (used by Puppet before the web server).
  castelet-tls issue      if no ACME certificate exists yet, ask for one (HTTP-01, webroot);
                          exit 0 when one exists or was issued, 75 while waiting (e.g. DNS
                          does not point here yet): the systemd timer retries.
  castelet-tls deployed   certbot's deploy hook (first issue and every renewal): switch
                          `current`, reload the web server (graceful: no dropped request).
  castelet-tls status     print the recorded state (JSON).

The state is recorded in /var/lib/castelet/tls-status.json for `nox -s verify`.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

CONFIG = Path("/etc/castelet/tls.json")
STATUS = Path("/var/lib/castelet/tls-status.json")
EX_TEMPFAIL = 75
SELF_SIGNED_ORG = "Castelet self-signed"


def load_config() -> dict[str, str]:
    config: dict[str, str] = json.loads(CONFIG.read_text(encoding="utf-8"))
    for key in ("domain", "dir", "acme_server", "webroot", "email", "reload_unit"):
        if not isinstance(config.get(key), str):
            raise SystemExit(f"castelet-tls: {CONFIG}: missing or invalid '{key}'")
    return config


def now() -> str:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat()


def reason_of(error: str) -> str:
    """The CA's own words from certbot's output (its `Detail:` lines), else its first line."""
    details = [line.strip().removeprefix("Detail:").strip() for line in error.splitlines()
               if line.strip().startswith("Detail:")]
    lines = [line.strip() for line in error.splitlines() if line.strip()]
    return " / ".join(details) if details else (lines[0] if lines else "")


def record(config: dict[str, str], state: str, error: str = "") -> None:
    STATUS.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "domain": config["domain"],
        "acme_server": config["acme_server"],
        "state": state,
        "serving": os.readlink(current_link(config)) if current_link(config).is_symlink() else "",
        "updated": now(),
        "last_error": error[-2000:],
        "reason": reason_of(error)[:500],
    }
    tmp = STATUS.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, STATUS)


def current_link(config: dict[str, str]) -> Path:
    return Path(config["dir"]) / "current"


def self_signed_dir(config: dict[str, str]) -> Path:
    return Path(config["dir"]) / "self-signed"


def acme_dir(config: dict[str, str]) -> Path:
    return Path("/etc/letsencrypt/live") / config["domain"]


def acme_enabled(config: dict[str, str]) -> bool:
    return config["acme_server"] != "self-signed"


def has_pair(directory: Path) -> bool:
    return (directory / "fullchain.pem").is_file() and (directory / "privkey.pem").is_file()


def make_self_signed(config: dict[str, str]) -> None:
    target = self_signed_dir(config)
    if has_pair(target):
        return
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    domain = config["domain"]
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-days", "3650", "-subj", f"/O={SELF_SIGNED_ORG}/CN={domain}",
         "-addext", f"subjectAltName=DNS:{domain}",
         "-keyout", str(target / "privkey.pem"), "-out", str(target / "fullchain.pem")],
        check=True, capture_output=True,
    )
    os.chmod(target / "privkey.pem", 0o600)


def point_current(config: dict[str, str]) -> bool:
    """Point `current` at the ACME certificate when there is one, else the self-signed one.
    Returns whether the link changed."""
    wanted = acme_dir(config) if acme_enabled(config) and has_pair(acme_dir(config)) else self_signed_dir(config)
    link = current_link(config)
    if link.is_symlink() and os.readlink(link) == str(wanted):
        return False
    tmp = link.with_name(".current.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(wanted)
    os.replace(tmp, link)
    return True


def reload_web_server(config: dict[str, str]) -> None:
    unit = config["reload_unit"]
    active = subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False)
    if active.returncode == 0:
        subprocess.run(["systemctl", "reload", unit], check=True)


def ensure(config: dict[str, str]) -> int:
    make_self_signed(config)
    point_current(config)
    state = "issued" if os.readlink(current_link(config)) == str(acme_dir(config)) else (
        "waiting" if acme_enabled(config) else "self-signed")
    previous = json.loads(STATUS.read_text(encoding="utf-8")) if STATUS.exists() else {}
    record(config, state, previous.get("last_error", "") if state == "waiting" else "")
    return 0


def certbot_environment(config: dict[str, str]) -> dict[str, str]:
    """certbot's environment: a private ACME CA (``ca_bundle``) is trusted by certbot alone, through
    REQUESTS_CA_BUNDLE, never through the system trust store."""
    env = dict(os.environ)
    if config.get("ca_bundle"):
        env["REQUESTS_CA_BUNDLE"] = config["ca_bundle"]
    return env


def issue(config: dict[str, str]) -> int:
    ensure(config)
    if not acme_enabled(config):
        return 0
    if has_pair(acme_dir(config)):
        if point_current(config):
            reload_web_server(config)
        record(config, "issued")
        return 0
    Path(config["webroot"], ".well-known", "acme-challenge").mkdir(parents=True, exist_ok=True)
    argv = ["certbot", "certonly", "--non-interactive", "--agree-tos", "--no-eff-email",
            "--webroot", "--webroot-path", config["webroot"],
            "--domain", config["domain"], "--cert-name", config["domain"],
            "--server", config["acme_server"],
            "--deploy-hook", "/usr/local/sbin/castelet-tls deployed"]
    argv += ["--email", config["email"]] if config["email"] else ["--register-unsafely-without-email"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, env=certbot_environment(config))
    if proc.returncode == 0 and has_pair(acme_dir(config)):
        if point_current(config):
            reload_web_server(config)
        record(config, "issued")
        print(f"castelet-tls: certificate issued for {config['domain']}")
        return 0
    error = (proc.stderr or proc.stdout).strip()
    record(config, "waiting", error)
    print(f"castelet-tls: no certificate yet for {config['domain']} (serving self-signed; the timer retries):\n"
          f"{error}", file=sys.stderr)
    return EX_TEMPFAIL


def deployed(config: dict[str, str]) -> int:
    point_current(config)
    # certbot replaced the files behind `live/`: reload even when the link did not move.
    reload_web_server(config)
    record(config, "issued")
    return 0


def main(argv: list[str]) -> int:
    commands = {"ensure": ensure, "issue": issue, "deployed": deployed}
    if len(argv) != 1 or argv[0] not in (*commands, "status"):
        print(__doc__, file=sys.stderr)
        return 64
    if argv[0] == "status":
        print(STATUS.read_text(encoding="utf-8") if STATUS.exists() else "{}")
        return 0
    return commands[argv[0]](load_config())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
