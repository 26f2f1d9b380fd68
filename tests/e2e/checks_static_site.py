"""static-site's own end-to-end checks, run inside its lifecycle deployment (tests/e2e/e2e_site.py).

`answers()` makes a small Jekyll site in a git repository, served to the instance over git's dumb
HTTP protocol from the host (the test's archive server), and a deploy key. `check_deployed()`:
* the Jekyll site, built on the instance from that repository, is served over HTTPS (pebble's
  certificate) and the build ran as the unprivileged deploy account;
* an rsync upload by the deploy key from the host replaces it: every request made during the
  upload gets the old site or the new one, never an error or a mix, and the previous release is kept;
* the deploy key can do nothing else: no command, no shell or terminal, no scp (either
  protocol), no sftp, no download, nothing written outside the site, no port forwarding.

Port 22 of the instance is only open to admin_cidr (the lifecycle's 192.0.2.0/24, which it edits
later): for these checks the host's bridge address is let in by one extra nftables rule, gone
when the firewall is reloaded at the end.
"""

from __future__ import annotations

import http.client
import os
import secrets as token
import socket
import subprocess
import threading
import time
from pathlib import Path

from acme import chain_context, http_get
from castelet.local.cloud import lxc
from e2e_site import Site

SITE = "/srv/data/site"
SSH_TIMEOUT = 120


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.org",
           "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.org"}
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def _jekyll_repository(root: Path, marker: str) -> Path:
    """A bare repository (ready for dumb HTTP) holding a Jekyll site whose front page says `marker`."""
    work = root / "jekyll-site"
    (work / "_layouts").mkdir(parents=True)
    (work / "_config.yml").write_text("title: Castelet e2e & <friends>\nmarkdown: kramdown\n")
    (work / "_layouts" / "default.html").write_text(
        "<!DOCTYPE html>\n<html><head><title>{{ site.title | escape }}</title></head>\n"
        "<body>{{ content }}</body></html>\n")
    (work / "index.md").write_text(f"---\nlayout: default\n---\n# Built by Jekyll\n\n{marker}: *ok*\n")
    (work / "about.md").write_text("---\nlayout: default\npermalink: /about/\n---\nAbout this site.\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "site")
    bare = root / "site.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    _git(bare, "repack", "-a", "-d", "-q")
    _git(bare, "update-server-info")
    return bare


def answers(site: Site) -> dict[str, str]:
    jekyll_marker = f"jekyll-{token.token_hex(8)}"
    bare = _jekyll_repository(site.tmp_path / "git", jekyll_marker)
    for path in bare.rglob("*"):
        if path.is_file():
            site.served[f"/site.git/{path.relative_to(bare).as_posix()}"] = path.read_bytes()
    # git asks for the smart protocol first; a plain file answer there means "dumb HTTP".
    site.served["/site.git/info/refs?service=git-upload-pack"] = site.served["/site.git/info/refs"]
    key = site.tmp_path / "deploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-deploy", "-f", str(key)], check=True)
    site.notes.update({"jekyll_marker": jekyll_marker, "deploy_key": key})
    return {"site_git_url": f"{site.base_url}/site.git", "site_git_ref": "main",
            "deploy_ssh_keys": key.with_suffix(".pub").read_text().strip()}


def _exec(site: Site, *argv: str) -> str:
    return lxc("exec", site.container, "--", *argv).stdout


def _body(site: Site, roots: str) -> str:
    """`STATUS\nBODY` of https://<domain>/ from the host, pebble's chain verified."""
    conn = http.client.HTTPSConnection(site.address(), 443, timeout=15, context=chain_context(roots))
    try:
        conn.request("GET", "/", headers={"Host": site.domain})
        response = conn.getresponse()
        body = response.read().decode("utf-8", "replace")
        return f"{response.status}\n{body}"
    finally:
        conn.close()


class Ssh:
    """The deploy key's SSH client options, with the instance's host key pinned."""

    def __init__(self, site: Site) -> None:
        self.address = site.address()
        host_key = _exec(site, "cat", "/etc/ssh/ssh_host_ed25519_key.pub").split()
        known = site.tmp_path / "known_hosts"
        known.write_text(f"{self.address} {host_key[0]} {host_key[1]}\n")
        key = site.notes["deploy_key"]
        self.options = ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                        "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                        "-o", "ConnectTimeout=20"]
        self.target = f"deploy@{self.address}"

    def ssh(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ssh", *self.options, *args], capture_output=True, text=True,
                              timeout=SSH_TIMEOUT, stdin=subprocess.DEVNULL)

    def rsync(self, *args: str) -> subprocess.CompletedProcess[str]:
        shell = " ".join(["ssh", *self.options])
        return subprocess.run(["rsync", "-e", shell, *args], capture_output=True, text=True, timeout=300)


def _releases(site: Site) -> list[str]:
    return sorted(_exec(site, "ls", f"{SITE}/releases").split())


def _current(site: Site) -> str:
    return _exec(site, "readlink", f"{SITE}/current").strip()


def check_deployed(site: Site) -> None:
    assert site.acme is not None
    roots = site.acme.roots_pem()

    # --- the Jekyll site, built on the instance, over HTTPS ---------------------------------------
    page = _body(site, roots)
    assert page.startswith("200\n"), page[:500]
    assert f"{site.notes['jekyll_marker']}: <em>ok</em>" in page, page[:2000]
    assert "<title>Castelet e2e &amp; &lt;friends&gt;</title>" in page, page[:2000]
    built = _exec(site, "stat", "-c", "%U", f"{SITE}/current/index.html").strip()
    assert built == "deploy", f"the build's files belong to {built}"
    assert "Built by Jekyll" in page

    # --- the host may reach SSH for these checks only -----------------------------------------------
    lxc("exec", site.container, "--", "nft", "insert", "rule", "inet", "castelet", "input",
        "ip", "saddr", site.bridge_address, "tcp", "dport", "22", "accept")
    try:
        _check_uploads_and_refusals(site, roots)
    finally:
        lxc("exec", site.container, "--", "systemctl", "reload", "nftables")


def _check_uploads_and_refusals(site: Site, roots: str) -> None:
    client = Ssh(site)
    old_page = _body(site, roots)
    before = _current(site)

    # --- an rsync upload replaces the site atomically -----------------------------------------
    upload = site.tmp_path / "upload"
    (upload / "assets").mkdir(parents=True)
    marker = f"rsync-{token.token_hex(8)}"
    (upload / "index.html").write_text(f"<!DOCTYPE html><title>uploaded</title><p>{marker}</p>\n")
    for index in range(40):  # enough bytes for the upload to take a moment
        (upload / "assets" / f"blob{index}.bin").write_bytes(os.urandom(512 * 1024))
    (upload / "assets" / "private.txt").write_text("owner only\n")
    (upload / "assets" / "private.txt").chmod(0o600)
    new_page = f"200\n<!DOCTYPE html><title>uploaded</title><p>{marker}</p>\n"

    seen: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            seen.append(_body(site, roots))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        pushed = client.rsync("-rlt", "--delete", f"{upload}/", f"{client.target}:")
        time.sleep(1)
    finally:
        stop.set()
        poller.join(30)
    assert pushed.returncode == 0, f"rsync upload failed: {pushed.stdout}{pushed.stderr}"
    assert "published" in pushed.stderr, pushed.stderr
    assert _body(site, roots) == new_page
    mixed = [body[:200] for body in seen if body not in (old_page, new_page)]
    assert not mixed, f"{len(mixed)} of {len(seen)} requests during the upload got neither site: {mixed[:3]}"
    after = _current(site)
    assert after != before and after.startswith("releases/")
    assert before.removeprefix("releases/") in _releases(site), "the previous release was not kept"
    private = http_get(site.address(), site.domain, "/assets/private.txt", roots)
    assert private.status == 200, "a file uploaded with mode 0600 is not readable by the web server"

    # --- and nothing else ------------------------------------------------------------------------
    command = client.ssh(client.target, "id")
    assert command.returncode != 0 and "uid=" not in command.stdout, command
    assert "refused" in command.stderr, command.stderr

    shell = client.ssh("-tt", client.target)
    assert shell.returncode != 0 and "uid=" not in shell.stdout, shell
    assert "PTY allocation request failed" in shell.stderr or "refused" in shell.stderr, shell.stderr

    outside = site.tmp_path / "outside.txt"
    outside.write_text("should not land\n")
    for argv in (["scp", "-O", *client.options, str(outside), f"{client.target}:/tmp/e2e-scp-legacy"],
                 ["scp", "-s", *client.options, str(outside), f"{client.target}:/tmp/e2e-scp-sftp"]):
        copied = subprocess.run(argv, capture_output=True, text=True, timeout=SSH_TIMEOUT)
        assert copied.returncode != 0, copied
    sftp = subprocess.run(["sftp", "-b", "-", *client.options, client.target], input="put /etc/hostname /tmp/x\n",
                          capture_output=True, text=True, timeout=SSH_TIMEOUT)
    assert sftp.returncode != 0, sftp

    download = client.rsync(f"{client.target}:/etc/passwd", str(site.tmp_path / "passwd"))
    assert download.returncode != 0 and not (site.tmp_path / "passwd").exists(), download
    escape = client.rsync(str(outside), f"{client.target}:../../e2e-escape.txt")
    landed = f"ls {SITE}/e2e-escape.txt {SITE}/../e2e-escape.txt /tmp/e2e-scp-* 2>/dev/null; true"
    escaped = _exec(site, "sh", "-c", landed)
    assert escaped.strip() == "", f"a file landed outside the site: {escaped} ({escape.stderr})"
    assert _body(site, roots) == new_page, "a refused attempt changed the site"

    # Local forwarding: the channel is refused (no SSH banner of the instance comes through).
    port = _free_port()
    forward = subprocess.Popen(["ssh", *client.options, "-N", "-L", f"127.0.0.1:{port}:127.0.0.1:22", client.target],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        banner = _read_through(port)
        assert not banner.startswith("SSH-"), f"local forwarding works: {banner!r}"
    finally:
        # ssh may sit in its handshake with a busy instance, where SIGTERM waits for a reply.
        forward.terminate()
        try:
            forward.wait(10)
        except subprocess.TimeoutExpired:
            forward.kill()
            forward.wait(10)
    # Remote forwarding: refused at once (a granted forward would keep `ssh -N` running).
    try:
        remote = client.ssh("-v", "-N", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=5",
                            "-R", "0:127.0.0.1:22", client.target)
    except subprocess.TimeoutExpired as exc:
        journal = _exec(site, "journalctl", "-u", "ssh", "-n", "30", "--no-pager", "-o", "cat")
        raise AssertionError(f"ssh -R did not end within {SSH_TIMEOUT} s:\n{exc.stderr!r}\nsshd:\n{journal}") from None
    assert remote.returncode != 0 and "forwarding failed" in remote.stderr, remote


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read_through(port: int) -> str:
    """What comes through a local forward within a few seconds ('' when refused)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
                conn.settimeout(5)
                try:
                    return conn.recv(64).decode("ascii", "replace")
                except TimeoutError:
                    return ""
        except ConnectionRefusedError:
            time.sleep(0.5)  # ssh is still logging in
    raise AssertionError("the local forward never listened")
