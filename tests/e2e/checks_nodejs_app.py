"""nodejs-app's own end-to-end checks, run inside its lifecycle deployment (tests/e2e/e2e_site.py).

`answers()` scaffolds a real SvelteKit application (packages from npm, versions that build on
Debian 12's node 18 and Debian 13's node 20), commits it to a bare git repository served to the
instance over git's dumb HTTP protocol from the host's bridge, and answers its URL.
`check_deployed()`: the page is served through nginx over HTTPS with pebble's certificate,
survives a restart of the service and a reboot of the instance; a commit that does not build fails
`nox -s configure` and leaves the running release serving; a good commit is deployed by
`nox -s configure` with no failed request from the host meanwhile. That good commit's build also
attacks root (issue 21, point 1): its script plants a symbolic link to a root-owned file in its
build directory (root used to write its build marker through it) and leaves a process running in
the background; after the deploy the file is unchanged and no process of the build user is left.
The build user cannot plant anything in `releases/` either.
Then the GitLab CI's redeploy (issue 21, point 11): with the key pair made here as the answer
`redeploy_ssh_key`, `ssh castelet-redeploy@<instance> 'id; cat /etc/shadow'` deploys the next
commit and runs nothing it asked; a terminal and a shell on stdin get the redeploy again, never a
shell; the account's sudo is the one command line (other commands, other arguments refused).
"""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import threading
import time
from pathlib import Path

from acme import chain_context, http_get
from castelet.local.cloud import lxc
from e2e_site import Site, restart_container
from nox_sessions import nox, output

# Newest releases that accept node 18.20 (Debian 12) and node 20.19 (Debian 13).
DEV_DEPENDENCIES = {
    "@sveltejs/adapter-node": "5.5.7",
    "@sveltejs/kit": "2.70.4",
    "@sveltejs/vite-plugin-svelte": "4.0.4",
    "svelte": "5.57.3",
    "vite": "5.4.21",
}
FILES = {
    "svelte.config.js": "import adapter from '@sveltejs/adapter-node';\n"
                        "export default { kit: { adapter: adapter() } };\n",
    "vite.config.js": "import { sveltekit } from '@sveltejs/kit/vite';\nimport { defineConfig } from 'vite';\n"
                      "export default defineConfig({ plugins: [sveltekit()] });\n",
    "src/app.html": "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">%sveltekit.head%</head>\n"
                    "<body><div>%sveltekit.body%</div></body></html>\n",
    # Writes to DATA_DIR on every visit: the application's writable place on the data volume.
    "src/routes/+page.server.js": """import { env } from '$env/dynamic/private';
import { readFileSync, writeFileSync } from 'node:fs';
export function load() {
  const file = `${env.DATA_DIR}/visits`;
  let visits = 0;
  try { visits = Number(readFileSync(file, 'utf8')); } catch { visits = 0; }
  writeFileSync(file, String(visits + 1));
  return { visits: visits + 1 };
}
""",
}
PAGE = "src/routes/+page.svelte"
REPO = "/app.git"
REDEPLOY_USER = "castelet-redeploy"
SSH_TIMEOUT = 300
SLOTS = ("blue", "green")
BUILD_USER = "castelet-build"
# A file of root's that the build attacks (stands for /etc/shadow).
TARGET = "/etc/castelet-e2e-target"
TARGET_TEXT = "root's own"
# Planted by the build script as the build user: the marker root wrote after a build (reproduced:
# root replaced the target's content with the commit), then a process meant to outlive the build.
ATTACK = (f"ln -s {TARGET} .castelet-built && ln -s {TARGET} .castelet-entry"
          " && setsid -f sleep 987 </dev/null >/dev/null 2>&1")


def _page(release: str) -> str:
    return (f"<script>let {{ data }} = $props();</script>\n<h1>castelet e2e {release}</h1>\n"
            "<p>visits {data.visits}</p>\n")


def _git(work: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.org", "GIT_COMMITTER_NAME": "e2e",
           "GIT_COMMITTER_EMAIL": "e2e@example.org", "HOME": str(work.parent), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True, text=True).stdout


def _publish(site: Site) -> None:
    """Pushes the work tree's main to the bare repository and serves its files (dumb HTTP)."""
    work, bare = Path(site.notes["work"]), Path(site.notes["bare"])  # type: ignore[arg-type]
    _git(work, "push", "--quiet", "--force", str(bare), "main:main")
    _git(bare, "update-server-info")
    for path in bare.rglob("*"):
        if path.is_file():
            site.served[f"{REPO}/{path.relative_to(bare)}"] = path.read_bytes()
    # git asks for the smart protocol first; the plain file makes it use the dumb one.
    site.served[f"{REPO}/info/refs?service=git-upload-pack"] = (bare / "info/refs").read_bytes()


def _commit(site: Site, files: dict[str, str], message: str) -> None:
    work = Path(site.notes["work"])  # type: ignore[arg-type]
    for name, text in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", message)
    _publish(site)


def answers(site: Site) -> dict[str, str]:
    work, bare = site.tmp_path / "app", site.tmp_path / "app.git"
    work.mkdir()
    package = {"name": "castelet-e2e-app", "version": "0.0.1", "private": True, "type": "module",
               "scripts": {"build": "vite build"}, "devDependencies": DEV_DEPENDENCIES}
    (work / "package.json").write_text(json.dumps(package, indent=2) + "\n")
    for name, text in {**FILES, PAGE: _page("release 1")}.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    # The lock file `npm ci` needs, resolved from npm (nothing installed here).
    subprocess.run(["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"],
                   cwd=work, check=True, capture_output=True, text=True, timeout=600)
    _git(work, "init", "--quiet", "--initial-branch=main")
    _git(work, "add", "-A")
    _git(work, "commit", "--quiet", "-m", "release 1")
    _git(site.tmp_path, "init", "--quiet", "--bare", str(bare))
    site.notes.update(work=str(work), bare=str(bare))
    _publish(site)
    # The GitLab CI's key pair (decision 53): its public key opens the redeploy account only.
    key = site.tmp_path / "redeploy_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "e2e-ci", "-f", str(key)], check=True)
    site.notes["redeploy_key"] = str(key)
    return {"app_git_url": f"{site.base_url}{REPO}", "app_git_ref": "main",
            "redeploy_ssh_key": key.with_suffix(".pub").read_text().strip()}


def _address(site: Site) -> str:
    """The instance's address, remembered (it keeps its DHCP lease across a reboot, but has none
    for a moment while it boots)."""
    if "address" not in site.notes:
        site.notes["address"] = site.address()
    return str(site.notes["address"])


def _get(site: Site, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPSConnection(_address(site), 443, timeout=15, context=_context(site))
    try:
        conn.request("GET", path, headers={"Host": site.domain})
        answer = conn.getresponse()
        return answer.status, answer.read().decode("utf-8", "replace")
    finally:
        conn.close()


def _context(site: Site) -> ssl.SSLContext:
    assert site.acme is not None, "nodejs-app's checks need the test CA (pebble)"
    return chain_context(site.acme.roots_pem())


def _wait_for(site: Site, text: str, within: float) -> None:
    deadline, last = time.monotonic() + within, ""
    while time.monotonic() < deadline:
        try:
            status, body = _get(site)
            if status == 200 and text in body:
                return
            last = f"HTTP {status}: {body[:200]}"
        except (OSError, http.client.HTTPException) as exc:
            last = repr(exc)
        time.sleep(2)
    raise AssertionError(f"{site.domain} does not serve {text!r} after {within} s: {last}")


def _read(site: Site, script: str) -> str:
    """The output of `script` run by root on the instance, read again when the exec session
    closed before its output arrived (decision 48): an empty answer must mean empty."""
    for _ in range(3):
        out = lxc("exec", site.container, "--", "sh", "-c", f"{script}; echo '<end>'").stdout
        if out.rstrip().endswith("<end>"):
            return out.rstrip().removesuffix("<end>").strip()
    raise AssertionError(f"no complete answer from {site.container} to {script!r}")


def _attack_in_the_build(site: Site) -> None:
    """The next commit's build script attacks root (ATTACK); the target exists, root's."""
    lxc("exec", site.container, "--", "sh", "-c",
        f"rm -f {TARGET} && echo \"{TARGET_TEXT}\" > {TARGET} && chmod 0644 {TARGET}")
    work = Path(site.notes["work"])  # type: ignore[arg-type]
    package = json.loads((work / "package.json").read_text())
    package["scripts"]["build"] = f"vite build && {ATTACK}"
    (work / "package.json").write_text(json.dumps(package, indent=2) + "\n")


def _check_the_attack_failed(site: Site) -> None:
    """After a deploy whose build attacked: the target is unchanged, no process of the build user
    survives the deploy (nor its transient services), and it cannot plant anything in releases/."""
    target = _read(site, f"stat -c '%U %a %F' {TARGET} && cat {TARGET}")
    assert target == f"root 644 regular file\n{TARGET_TEXT}", \
        f"the build made root write through its symbolic link: {target!r}"
    left = _read(site, f"for d in $(find /proc -maxdepth 1 -name '[0-9]*' -user {BUILD_USER}); do "
                       "echo \"$(basename $d) $(tr '\\0' ' ' < $d/cmdline)\"; done")
    assert left == "", f"processes of {BUILD_USER} outlived the deploy: {left}"
    units = _read(site, "systemctl list-units --all --plain --no-legend 'castelet-node-*'")
    assert units == "", f"transient services of the build are left: {units}"
    plant = lxc("exec", site.container, "--", "setpriv", f"--reuid={BUILD_USER}", f"--regid={BUILD_USER}",
                "--clear-groups", "ln", "-s", TARGET, "/var/lib/castelet-node/releases/planted", check=False)
    assert plant.returncode != 0, f"{BUILD_USER} can plant a symbolic link in releases/"
    assert _read(site, "ls -A /var/lib/castelet-node/releases | grep -c planted || true") == "0"


def _active_slot(site: Site) -> dict[str, object]:
    state: dict[str, object] = json.loads(lxc("exec", site.container, "--", "cat",
                                              "/var/lib/castelet-node/state.json").stdout)
    return state


def check_deployed(site: Site) -> None:
    assert site.deployment is not None
    # Served through nginx over HTTPS with the CA's certificate; the page writes to DATA_DIR.
    status, body = _get(site)
    assert status == 200 and "castelet e2e release 1" in body, (status, body[:500])
    visits = lxc("exec", site.container, "--", "stat", "-c", "%U %a", "/srv/data/app/visits").stdout.split()
    assert visits[0] == "castelet-app", visits
    assert http_get(_address(site), site.domain, "/").status == 301

    # A restart of the service, then a reboot of the instance.
    slot = str(_active_slot(site)["active"])
    lxc("exec", site.container, "--", "systemctl", "restart", f"castelet-nodejs-app@{slot}.service")
    _wait_for(site, "castelet e2e release 1", 60)
    restart_container(site.container)
    _wait_for(site, "castelet e2e release 1", 300)
    assert str(_active_slot(site)["active"]) == slot

    # A commit that does not build: configure fails, the running release keeps serving.
    _commit(site, {PAGE: "<script>let {{ data = $props();</script>\n<h1>broken</h1>\n"}, "broken")
    failed = nox(site.deployment, "configure", "-auto-approve")
    assert failed.returncode != 0, output(failed)
    assert "castelet-nodejs-app-deploy" in output(failed, 20000), output(failed)
    status, body = _get(site)
    assert status == 200 and "castelet e2e release 1" in body, (status, body[:500])
    assert str(_active_slot(site)["active"]) == slot

    # A good commit: configure builds it aside, switches, and no request fails meanwhile. Its
    # build attacks root (its lock file is unchanged: node_modules is reused, no new download).
    _attack_in_the_build(site)
    _commit(site, {PAGE: _page("release 2")}, "release 2")
    failures: list[str] = []
    seen: list[str] = []
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                code, text = _get(site)
                if code != 200:
                    failures.append(f"HTTP {code}")
                seen.append("2" if "castelet e2e release 2" in text else "1")
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
            time.sleep(0.05)

    worker = threading.Thread(target=load, daemon=True)
    worker.start()
    try:
        deployed = nox(site.deployment, "configure", "-auto-approve")
        time.sleep(2)
    finally:
        stop.set()
        worker.join(60)
    assert deployed.returncode == 0, output(deployed)
    _check_the_attack_failed(site)
    assert failures == [], f"{len(failures)} failed requests of {len(seen) + len(failures)}: {failures[:10]}"
    assert "1" in seen and seen[-1] == "2", f"{len(seen)} requests; last {seen[-5:]}"
    state = _active_slot(site)
    assert state["active"] != slot, state
    idle = lxc("exec", site.container, "--", "systemctl", "is-active", f"castelet-nodejs-app@{slot}.service",
               check=False).stdout.strip()
    assert idle != "active", idle
    _check_the_ci_redeploy(site)


def _check_the_ci_redeploy(site: Site) -> None:
    """The redeploy account, over SSH from the host (let in for these checks only, as the admin
    network would be), with the instance's host key pinned."""
    lxc("exec", site.container, "--", "nft", "insert", "rule", "inet", "castelet", "input",
        "ip", "saddr", site.bridge_address, "tcp", "dport", "22", "accept")
    try:
        host_key = lxc("exec", site.container, "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub").stdout.split()
        known = site.tmp_path / "known_hosts_redeploy"
        known.write_text(f"{_address(site)} {host_key[0]} {host_key[1]}\n")
        options = ["-i", str(site.notes["redeploy_key"]), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                   "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=20"]
        target = f"{REDEPLOY_USER}@{_address(site)}"

        def ssh(*args: str, stdin: str = "") -> tuple[int, str]:
            done = subprocess.run(["ssh", *options, *args], input=stdin, capture_output=True, text=True,
                                  timeout=SSH_TIMEOUT)
            return done.returncode, done.stdout + done.stderr

        # Whatever the client asks, the configured ref is deployed, and nothing else runs.
        _commit(site, {PAGE: _page("release 3")}, "release 3")
        code, said = ssh(target, "id; cat /etc/shadow")
        assert code == 0, said
        assert "uid=" not in said and "root:" not in said, f"the client's command ran: {said}"
        assert "castelet-node-deploy: main (" in said and "serves from slot" in said, said
        status, body = _get(site)
        assert status == 200 and "castelet e2e release 3" in body, (status, body[:500])

        # A terminal is refused; a login without a command, or with a shell's, fed commands on
        # stdin: the redeploy again (nothing new: it says so), never a shell.
        code, said = ssh("-tt", target, stdin="touch /tmp/e2e-redeploy-shell; id; exit\n")
        assert "PTY allocation request failed" in said and "uid=" not in said, (code, said)
        for argv in ([target], [target, "sudo -l; sh -i"]):
            code, said = ssh(*argv, stdin="touch /tmp/e2e-redeploy-shell; id\n")
            assert code == 0 and "already runs in slot" in said, (argv, code, said)
            assert "uid=" not in said and "may run" not in said, (argv, code, said)
        assert _read(site, "ls /tmp/e2e-redeploy-shell 2>/dev/null | wc -l") == "0", "a shell ran"

        # Its sudo, were it to get a shell: the one command line.
        listed = _read(site, f"runuser -u {REDEPLOY_USER} -- sudo -n -l")
        granted = [line.strip() for line in listed.partition("may run the following commands")[2].splitlines()[1:]
                   if line.strip()]
        assert granted == ["(root) NOPASSWD: /usr/local/sbin/castelet-node-deploy deploy"], listed
        for attempt in ("sudo -n /bin/sh -c id", "sudo -n /usr/local/sbin/castelet-node-deploy status",
                        "sudo -n /usr/local/sbin/castelet-node-deploy deploy --config /tmp/x.json",
                        "sudo -n -u castelet-app /usr/local/sbin/castelet-node-deploy deploy",
                        "sudo -n -E /usr/local/sbin/castelet-node-deploy deploy"):
            refused = lxc("exec", site.container, "--", "runuser", "-u", REDEPLOY_USER, "--", "sh", "-c", attempt,
                          check=False)
            assert refused.returncode != 0 and "uid=" not in refused.stdout, (attempt, refused.stdout)
    finally:
        lxc("exec", site.container, "--", "systemctl", "reload", "nftables")
