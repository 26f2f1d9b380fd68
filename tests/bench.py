"""Benchmarks for `nox -s bench`: targets are reported here, never asserted in tests.

- render: `castelet new` of each blueprint (target: under 5 s);
- check: `castelet check` of one rendered deployment, warm schema cache (target: under 5 s);
- apply (root, with `castelet local setup` done): lamp on LXD from `terraform apply` to converged,
  against the floor — a fresh container from the same image doing a bare `apt-get install` of the
  packages Puppet ended up installing — as a ratio;
- backup and restore (root, local cloud): Omeka S (stand-in release) with the e2e tests' data set
  (tests/e2e/data_set.py) backed up to a restic REST server on the host: the first `nox -s backup`
  (creates the repository), a second one (incremental), and `nox -s restore`. `--no-apply` skips
  both applies; `--backup-only` runs only this one (`nox -s bench -- --backup-only`).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "generator"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "e2e"))

from castelet.offline.check import check  # noqa: E402
from castelet.render import new  # noqa: E402

ROWS: list[tuple[str, str, float, str]] = []


def timed(action: object) -> float:
    started = time.monotonic()
    action()  # type: ignore[operator]
    return time.monotonic() - started


def bench_render_and_check(out: Path) -> None:
    from castelet.blockers import resolved_for_checks
    from castelet.manifest import load

    key = out / "render_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    given = {"admin_ssh_keys": Path(f"{key}.pub").read_text().strip()}
    for blueprint in ("lamp", "omeka-s"):
        renders = [timed(lambda b=blueprint, i=i: new(REPO_ROOT / "blueprints" / b, {**given, "project_slug": f"r{i}"},
                                                       out / f"render-{b}")) for i in range(3)]
        ROWS.append((f"render {blueprint}", "median of 3", statistics.median(renders), "< 5 s"))
    omeka = load(REPO_ROOT / "blueprints" / "omeka-s")
    deployment = new(omeka.path, resolved_for_checks(omeka, {**given, "project_slug": "bench"}), out / "check")
    check(deployment, provider="stand-in")  # warms the schema cache
    runs = [check(deployment, provider="stand-in") for _ in range(3)]
    if not all(r.ok for r in runs):
        raise SystemExit(runs[0].diagnostics)
    ROWS.append(("check omeka-s", "median of 3, warm cache", statistics.median(r.seconds for r in runs), "< 5 s"))


def lxc(*args: str) -> str:
    return subprocess.run(["lxc", *args], capture_output=True, text=True, check=True).stdout


def bench_apply(out: Path) -> None:
    from castelet.lifecycle import terraform_environment
    from castelet.local.cloud import IMAGE_ALIAS, NETWORK, PROFILE, status
    from castelet.terraform import Terraform

    if os.geteuid() != 0 or not all(c.ready for c in status()):
        ROWS.append(("apply lamp (LXD)", "skipped: needs root and `castelet local setup`", float("nan"), "-"))
        return
    from acme import Pebble, served_certificate  # tests/e2e: a real ACME CA (pebble) on the bridge

    key = out / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    bridge = lxc("network", "get", NETWORK, "ipv4.address").strip().split("/")[0]
    pebble = Pebble(out / "acme", bridge)
    pebble.start()
    domain = "bench-lamp-web1.lxd"
    deployment = new(REPO_ROOT / "blueprints" / "lamp", {
        "project_slug": "bench-lamp", "cloud": "lxd", "admin_ssh_keys": Path(f"{key}.pub").read_text().strip(),
        "domain": domain, "acme_server": pebble.directory_url, "acme_ca_certificate": pebble.api_ca_pem}, out)
    tf = Terraform(deployment, env=terraform_environment("lxd"))
    tf.init()
    certified: list[float] = []
    started = time.monotonic()

    def watch_certificate() -> None:
        # from apply start until the CA's certificate is served (chain and name verified)
        while time.monotonic() - started < 1800:
            try:
                ip = lxc("list", "bench-lamp-web1", "-c", "4", "--format", "csv").split(" ")[0]
                served_certificate(ip, domain, pebble.roots_pem())
                certified.append(time.monotonic() - started)
                return
            except (OSError, subprocess.CalledProcessError, ValueError):
                time.sleep(1)

    watcher = threading.Thread(target=watch_certificate, daemon=True)
    try:
        watcher.start()
        converged = timed(tf.apply)
        watcher.join(120)
        base = set(lxc("exec", "bench-lamp-web1", "--", "apt-mark", "showmanual").split())
    finally:
        tf.destroy()
        pebble.stop()
    floor_name = "bench-floor"
    lxc("launch", IMAGE_ALIAS, floor_name, "-p", PROFILE)
    try:
        subprocess.run(["lxc", "exec", floor_name, "--", "cloud-init", "status", "--wait"], capture_output=True)
        image_packages = set(lxc("exec", floor_name, "--", "apt-mark", "showmanual").split())
        packages = sorted(base - image_packages)
        floor = timed(lambda: subprocess.run(
            ["lxc", "exec", floor_name, "--env", "DEBIAN_FRONTEND=noninteractive", "--", "sh", "-c",
             f"apt-get update -qq && apt-get install -y -qq --no-install-recommends {' '.join(packages)}"],
            capture_output=True, check=True))
    finally:
        lxc("delete", "--force", floor_name)
    ROWS.append(("apply lamp (LXD) to converged", "terraform apply", converged, "-"))
    ROWS.append(("apply start to a valid certificate served", "pebble, HTTP-01, first boot",
                 certified[0] if certified else float("nan"), "< apply"))
    ROWS.append(("floor: bare apt-get install", f"{len(packages)} packages", floor, "-"))
    ROWS.append(("ratio apply / floor", "", converged / floor, "-"))


def bench_backup_and_restore(out: Path) -> None:
    """Backup and restore times of Omeka S with the e2e data set, as the operator runs them."""
    from castelet.local.cloud import NETWORK, status
    from castelet.manifest import load
    from castelet.pin import pin

    if os.geteuid() != 0 or not all(c.ready for c in status()):
        ROWS.append(("backup omeka-s", "skipped: needs root and `castelet local setup`", float("nan"), "-"))
        return
    import data_set  # tests/e2e
    import nox_sessions as ops
    from files_server import serving
    from omeka_standin import standin_archive
    from restic_rest import ResticRest

    key = out / "backup_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    bridge = lxc("network", "get", NETWORK, "ipv4.address").strip().split("/")[0]
    blueprint = load(REPO_ROOT / "blueprints" / "omeka-s")
    name, host = "bench-omeka", "bench-omeka-web1"
    rest = ResticRest(out / "restic-rest", bridge)
    rest.start()
    deployment = None
    try:
        with serving(bridge) as (base_url, served):
            served["/omeka-s-bench.zip"] = standin_archive("1.0.0-bench")
            deployment = new(blueprint.path, {
                "project_slug": name, "cloud": "lxd", "admin_ssh_keys": Path(f"{key}.pub").read_text().strip(),
                "backup_repository": rest.url(name)}, out / "backup")
            pin(deployment, lambda _: None, url=f"{base_url}/omeka-s-bench.zip", version="1.0.0-bench")
            ops.plan_and_apply(deployment)
        ops.ok(deployment, "backup-credentials", env=rest.environment)
        data_set.write(host, blueprint, "bench")
        size = data_set.E2E
        what = f"{size.rows} rows + {size.files} files x {size.file_kb} KiB"
        first = timed(lambda: ops.ok(deployment, "backup"))
        second = timed(lambda: ops.ok(deployment, "backup"))
        restore = timed(lambda: ops.ok(deployment, "restore", "--confirm", name))
    finally:
        if deployment is not None:
            ops.destroy_everything(deployment, name)
        rest.stop()
    ROWS.append(("backup omeka-s, first (creates the repository)", f"nox -s backup; {what}", first, "-"))
    ROWS.append(("backup omeka-s, second (incremental)", "nox -s backup", second, "-"))
    ROWS.append(("restore omeka-s (safety snapshot first)", "nox -s restore -- --confirm NAME", restore, "-"))


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="castelet-bench-") as tmp:
        if "--backup-only" in sys.argv:
            bench_backup_and_restore(Path(tmp))
        else:
            bench_render_and_check(Path(tmp))
            if "--no-apply" not in sys.argv:
                bench_apply(Path(tmp))
                bench_backup_and_restore(Path(tmp))
    table = Table(title="castelet bench (2 cores)")
    for column in ("what", "how", "seconds", "target"):
        table.add_column(column)
    for what, how, seconds, target in ROWS:
        table.add_row(what, how, f"{seconds:.2f}", target)
    Console().print(table)
    e2e = REPO_ROOT / ".nox" / "e2e-timings.json"
    if e2e.exists():
        Console().print("last `nox -s e2e` phase timings (s):", json.loads(e2e.read_text()))


if __name__ == "__main__":
    main()
