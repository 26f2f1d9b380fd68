"""The ``castelet`` command line: list, show, new, validate, sandbox, doctor."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from castelet import __version__
from castelet.answers import AnswersError, _describe, coerce, validate
from castelet.answers_file import read_answers_file
from castelet.blockers import before_apply
from castelet.library import LibraryNotFound, find_blueprint, library_root, load_all
from castelet.manifest import Blueprint, ManifestError, Question, load
from castelet.releases import DEFAULT_RELEASE, RELEASES
from castelet.render import new
from castelet.rerender import TargetExists
from castelet.runtime import TerraformNotFound, find_terraform
from castelet.validate import problems, write_cookiecutter_json

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _lang(args: argparse.Namespace) -> str:
    if getattr(args, "lang", None):
        return str(args.lang)
    return "fr" if os.environ.get("LANG", "").lower().startswith("fr") else "en"


def catalogue_markdown(blueprints: Sequence[Blueprint]) -> str:
    """The catalogue as a Markdown table (the README embeds it; a test keeps it current)."""
    lines = ["| blueprint | what it deploys | category | maturity |", "| --- | --- | --- | --- |"]
    for bp in blueprints:
        lines.append(f"| `{bp.id}` | {bp.title['en']} / {bp.title['fr']} | {bp.category} | {bp.maturity} |")
    return "\n".join(lines) + "\n"


def cmd_list(args: argparse.Namespace) -> int:
    blueprints, errors = load_all(library_root())
    if args.markdown:
        sys.stdout.write(catalogue_markdown(blueprints))
    else:
        lang = _lang(args)
        table = Table(title=f"Castelet blueprints ({len(blueprints)})")
        for column in ("blueprint", "title", "category", "maturity", "roles", "public ports"):
            table.add_column(column)
        for bp in blueprints:
            ports = ", ".join(f"{s.port}/{s.protocol}" for s in bp.services if s.exposure == "public")
            roles = ", ".join(f"{r.name} x{r.count}" for r in bp.roles)
            table.add_row(bp.id, bp.title[lang], bp.category, bp.maturity, roles, ports or "-")
        out.print(table)
    for error in errors:
        err.print(f"[red]invalid blueprint[/red] {error}")
    return EXIT_FAIL if errors else EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    bp = load(find_blueprint(library_root(), args.name))
    lang = _lang(args)
    out.print(f"[bold]{bp.id}[/bold] {bp.version} — {bp.title[lang]} ({bp.category}, {bp.maturity})")
    out.print(bp.description[lang])
    if bp.upstream:
        version = f" {bp.upstream['version']}" if bp.upstream.get("version") else ""
        license_ = f", {bp.upstream['license']}" if bp.upstream.get("license") else ""
        out.print(f"upstream: {bp.upstream['name']}{version} ({bp.upstream['url']}{license_})", markup=False)
    if bp.release:
        out.print(f"release: {bp.release['version']} from {bp.release['url']} (checksums: {bp.release['checksums']})",
                  markup=False, soft_wrap=True)
    for role in bp.roles:
        out.print(f"role [bold]{role.name}[/bold] x{role.count}: {role.puppet_class}, ≥{role.min_vcpus} vCPU "
                  f"{role.min_ram_mb} MB RAM {role.min_disk_gb} GB disk, public IP: {role.public}")
    for s in bp.services:
        health = f", health {s.health.path} → {s.health.status}" if s.health else ""
        out.print(f"service {s.name}: {s.port}/{s.protocol} on {s.role}, {s.exposure}{health}")
    for v in bp.volumes:
        out.print(f"volume {v.name}: {v.mount} on {v.role}, size {v.size_gb}")
    table = Table(title="questions")
    for column in ("name", "type", "default", "help"):
        table.add_column(column)
    for q in bp.questions:
        table.add_row(q.name, q.type, repr(q.default), q.help[lang])
    out.print(table)
    return EXIT_OK


def _prompt(q: Question, lang: str, current: Any) -> Any:
    while True:
        shown = "" if current == "" else f" [{current}]"
        if q.type == "choice":
            shown = f" ({'/'.join(q.choices)}){shown}"
        out.print(f"[dim]{q.help[lang]}[/dim]")
        raw = input(f"{q.name}{shown}: ")
        value = current if raw == "" else raw
        try:
            return coerce(q, value)
        except (ValueError, TypeError):
            err.print(f"{q.name}: {value!r} is not valid: {_describe(q)}", markup=False, soft_wrap=True)


def _sandbox_ttl(args: argparse.Namespace) -> timedelta | None:
    """The time to live of ``new --sandbox [--ttl]`` (None: not a sandbox); raises SandboxError."""
    from castelet.sandbox import DEFAULT_TTL, SandboxError, parse_ttl

    if not args.sandbox:
        if args.ttl is not None:
            raise SandboxError("--ttl needs --sandbox (only a sandbox expires)")
        return None
    if args.force:
        raise SandboxError("--sandbox makes a new deployment; it cannot be combined with --force")
    return parse_ttl(args.ttl if args.ttl is not None else DEFAULT_TTL)


def cmd_new(args: argparse.Namespace) -> int:
    from castelet.sandbox import SandboxError

    try:
        ttl = _sandbox_ttl(args)
    except SandboxError as exc:
        err.print(f"error {exc}; nothing was written", soft_wrap=True, markup=False)
        return EXIT_USAGE
    root = library_root()
    blueprint_dir = find_blueprint(root, args.name)
    bp = load(blueprint_dir)
    given = read_answers_file(Path(args.answers)) if args.answers else {}
    if not args.no_input:
        if not sys.stdin.isatty():
            err.print("stdin is not a terminal: use --no-input (with --answers FILE) to render unattended")
            return EXIT_USAGE
        for q in bp.questions:
            if q.name not in given:
                given[q.name] = _prompt(q, _lang(args), q.default)
    started = time.monotonic()
    with err.status(f"rendering {bp.id}…"):
        target = new(blueprint_dir, given, Path(args.output_dir), force=args.force)
    files = sum(1 for p in target.rglob("*") if p.is_file() and ".git" not in p.relative_to(target).parts)
    elapsed = time.monotonic() - started
    out.print(f"[green]rendered[/green] {bp.id} into {target} ({files} files, {elapsed:.1f} s)", soft_wrap=True)
    answers = validate(bp, given)
    if ttl is not None and not _make_sandbox(target, ttl, str(answers["cloud"])):
        return EXIT_FAIL
    blockers = before_apply(bp, answers)
    lang = _lang(args)
    if blockers:
        out.print("[yellow]before you apply[/yellow] (also in its README.md; `nox -s plan` refuses until done):")
        for blocker in blockers:
            out.print(f"  - {blocker.text(lang)}", soft_wrap=True, markup=False)
    release = answers["debian_release"]
    setup = f"{_command('castelet')} local setup --release {release}   # once per machine, as root\n  "
    first = setup if answers["cloud"] == "lxd" else ""
    pin = f"{_command('castelet')} pin .\n  " if any(b.question == "release_sha256" for b in blockers) else ""
    out.print(f"next:\n  cd {target}\n  {first}{pin}{_command('nox')} -s plan", soft_wrap=True, markup=False)
    return EXIT_OK


#: Live sandbox instances under the current directory above which `new --sandbox` warns (half of a
#: typical 20-instance allocation; the real quota is the preflight's business).
SANDBOX_INSTANCES_WARNING = 10


def _make_sandbox(target: Path, ttl: timedelta, cloud: str) -> bool:
    """Mark a fresh render as a sandbox (removing the render if that fails); on OpenStack, run the
    preflight when castelet has one and warn when sandboxes here already hold many instances."""
    from castelet import sandbox

    try:
        marked = sandbox.mark(target, ttl)
    except (sandbox.SandboxError, OSError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        err.print(f"error could not mark {target} as a sandbox, the render was removed: {exc}", soft_wrap=True,
                  markup=False)
        return False
    out.print(f"[green]sandbox[/green] expires {sandbox.format_time(marked.expires)} (owner {escape(marked.owner)}); "
              "`castelet sandbox gc` destroys it after that, `nox -s extend -- 2h` moves it", soft_wrap=True)
    if cloud != "openstack":
        return True
    if importlib.util.find_spec("castelet.preflight") is None:
        out.print("[yellow]preflight not available[/yellow] in this castelet: quotas were not checked")
    else:
        try:
            check = getattr(importlib.import_module("castelet.preflight"), "preflight", None)
            if callable(check):
                out.print(str(check(target)), soft_wrap=True, markup=False)
            else:
                out.print("[yellow]preflight not available[/yellow]: castelet.preflight has no preflight()")
        except Exception as exc:  # an optional check must not undo the render
            err.print(f"warning the preflight failed: {exc}", soft_wrap=True, markup=False)
    held = sum(1 for row in sandbox.listing([Path.cwd()]) if row.sandbox and row.sandbox.cloud == "openstack"
               and not row.sandbox.expired(datetime.now(UTC))
               for address in row.resources if address.endswith(".openstack_compute_instance_v2.instance"))
    if held >= SANDBOX_INSTANCES_WARNING:
        out.print(f"[yellow]warning[/yellow] sandboxes under {Path.cwd()} already hold {held} instances: "
                  "`castelet sandbox list` shows them, `castelet sandbox gc` frees the expired ones", soft_wrap=True)
    return True


def cmd_sandbox(args: argparse.Namespace) -> int:
    from castelet import sandbox

    roots = [Path(p) for p in args.dirs] if getattr(args, "dirs", None) else [Path.cwd()]
    if args.sandbox_command == "list":
        now = datetime.now(UTC)
        rows = sandbox.listing(roots)
        table = Table(title=f"sandboxes ({len(rows)})")
        for column in ("path", "blueprint", "cloud", "owner", "expires (UTC)", "time left", "resources"):
            table.add_column(column)
        for row in rows:
            if row.sandbox is None:
                table.add_row(escape(str(row.path)), "?", "?", "?", "?", "[red]unreadable[/red]",
                              escape(row.problem[:80]))
                continue
            s = row.sandbox
            left = sandbox.describe_left(s.left(now))
            table.add_row(escape(str(row.path)), escape(s.blueprint), escape(s.cloud), escape(s.owner),
                          sandbox.format_time(s.expires),
                          f"[red]{left}[/red]" if s.expired(now) else left, str(len(row.resources)))
        out.print(table, soft_wrap=True)
        return EXIT_FAIL if any(row.sandbox is None for row in rows) else EXIT_OK
    if args.sandbox_command == "extend":
        try:
            sandbox.extend(Path(args.deployment), args.duration,
                           lambda line: out.print(line, soft_wrap=True, markup=False), apply=not args.no_apply)
        except sandbox.SandboxError as exc:
            err.print(f"error {exc}", soft_wrap=True, markup=False)
            return EXIT_FAIL
        return EXIT_OK

    def log(line: str) -> None:
        print(f"{datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ} castelet sandbox gc: {line}", flush=True)

    try:
        report = sandbox.gc(roots, log, dry_run=args.dry_run)
    except KeyboardInterrupt:
        log("interrupted: Terraform was stopped cleanly where possible; run gc again to finish")
        return 130
    return EXIT_OK if report.ok else EXIT_FAIL


def _command(name: str) -> str:
    """How to run a tool of this installation as printed: the one beside this interpreter when
    it is not the one on PATH (a venv need not be activated)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and shutil.which(name) != str(beside):
        return str(beside)
    return name


def cmd_pin(args: argparse.Namespace) -> int:
    from castelet.pin import PinError, pin

    deployment = Path(args.deployment)
    try:
        with err.status("pinning…") as status:
            pinned = pin(deployment, lambda line: status.update(line), url=args.url, version=args.release_version,
                         file=Path(args.file) if args.file else None)
    except PinError as exc:
        err.print(f"error {exc}", soft_wrap=True, markup=False)
        return EXIT_FAIL
    out.print(f"[green]pinned[/green] {pinned.url} ({pinned.size} bytes)", soft_wrap=True)
    out.print(f"  sha256 {pinned.sha256}", markup=False)
    if pinned.checksums:
        out.print(f"  compare it with the checksum upstream publishes: {pinned.checksums}", soft_wrap=True,
                  markup=False)
    out.print(f"  recorded in {deployment / 'terraform.tfvars'} (settings.release_sha256); then `nox -s plan`",
              soft_wrap=True, markup=False)
    return EXIT_OK


def cmd_blueprint_new(args: argparse.Namespace) -> int:
    from castelet.scaffold import ScaffoldError, create

    root = library_root()
    try:
        created = create(root, args.name)
    except ScaffoldError as exc:
        err.print(f"error {exc}", soft_wrap=True, markup=False)
        return EXIT_USAGE
    for path in created:
        out.print(f"[green]created[/green] {path.relative_to(root)}", soft_wrap=True)
    out.print(f"next: {_command('castelet')} validate blueprints/{args.name}, then follow docs/adding-a-blueprint.md",
              soft_wrap=True, markup=False)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    root = library_root()
    paths = [Path(p) for p in args.paths] or [p.parent for p in sorted(root.glob("blueprints/*/blueprint.yaml"))]
    failed = 0
    for path in paths:
        if args.fix:
            try:
                written = write_cookiecutter_json(path.resolve())
                out.print(f"wrote {written}")
            except ManifestError as exc:
                err.print(f"✗ {path}: {exc}", soft_wrap=True, markup=False)
        found = problems(path.resolve(), root)
        if found:
            failed += 1
            err.print(f"[red]✗[/red] {path}")
            for problem in found:
                err.print(f"    {problem}")
        else:
            out.print(f"[green]✓[/green] {path}")
    return EXIT_FAIL if failed else EXIT_OK


def _version_of(command: list[str]) -> str:
    try:
        proc = subprocess.run([*command], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unusable ({exc})"
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr) else "?"


def cmd_doctor(args: argparse.Namespace) -> int:
    table = Table(title=f"castelet {__version__} — tools")
    for column in ("tool", "needed for", "found"):
        table.add_column(column)
    missing_required = False
    try:
        tf = find_terraform()
        table.add_row("terraform", "plan/apply (required)", f"{' '.join(tf)}: {_version_of([*tf, 'version'])}")
    except TerraformNotFound as exc:
        missing_required = True
        table.add_row("terraform", "plan/apply (required)", f"[red]missing[/red]: {exc}")
    optional = [("puppet", "Puppet checks", ["--version"]), ("puppet-lint", "lint", ["--version"]),
                ("lxd", "local cloud", ["--version"]), ("lxc", "local cloud", ["--version"]),
                ("debootstrap", "local image", ["--version"]), ("nox", "lifecycle sessions", ["--version"])]
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for name, purpose, flags in optional:
        path = shutil.which(name, path=search)
        table.add_row(name, purpose, f"{path}: {_version_of([path, *flags])}" if path else "[yellow]missing[/yellow]")
    try:
        table.add_row("library", "blueprints", str(library_root()))
    except LibraryNotFound as exc:
        table.add_row("library", "blueprints", f"[red]{exc}[/red]")
    out.print(table)
    return EXIT_FAIL if missing_required else EXIT_OK


def cmd_local(args: argparse.Namespace) -> int:
    from castelet.local import cloud

    def progress(message: str) -> None:
        err.print(f"[cyan]local[/cyan] {message}")

    if args.action == "status":
        table = Table(title="castelet local cloud (LXD)")
        for column in ("component", "ready", "detail"):
            table.add_column(column)
        components = cloud.status(tuple(args.release or [DEFAULT_RELEASE]))
        for c in components:
            table.add_row(c.name, "[green]yes[/green]" if c.ready else "[red]no[/red]", c.detail)
        out.print(table)
        return EXIT_OK if all(c.ready for c in components) else EXIT_FAIL
    started = time.monotonic()
    try:
        if args.action == "setup":
            cloud.setup(progress, tuple(args.release or [DEFAULT_RELEASE]))
        else:
            cloud.teardown(progress)
    except cloud.SetupError as exc:
        err.print(f"error {exc}", soft_wrap=True, markup=False)
        return EXIT_FAIL
    out.print(f"[green]{args.action} done[/green] in {time.monotonic() - started:.0f} s")
    return EXIT_OK


def cmd_check(args: argparse.Namespace) -> int:
    from castelet.lifecycle import deployment_cloud
    from castelet.offline.check import check

    deployment = Path(args.deployment)
    if (deployment / ".castelet-answers.yaml").is_file() and deployment_cloud(deployment)[0] != "openstack":
        err.print("castelet check plans OpenStack deployments offline; an lxd deployment is checked for real "
                  "with `castelet lifecycle`")
        return EXIT_USAGE
    report = check(deployment, lambda line: err.print(f"[cyan]check[/cyan] {line}"), provider=args.provider)
    for line in report.summary_lines():
        out.print(line, soft_wrap=True)
    if not report.ok:
        err.print(report.diagnostics, soft_wrap=True, markup=False)
        return EXIT_FAIL
    if args.no_checkov:
        err.print("checkov skipped (--no-checkov)")
        return EXIT_OK
    return _checkov(deployment)


def _checkov(deployment: Path) -> int:
    from castelet.checkov import CheckovMissing, run_checkov

    err.print("[cyan]check[/cyan] checkov (static security analysis)…")
    try:
        found = run_checkov(deployment)
    except CheckovMissing as exc:
        err.print(str(exc), markup=False)
        return EXIT_FAIL
    out.print(found.summary(), soft_wrap=True, markup=False)
    for finding in found.failed:
        err.print(f"  {finding}", soft_wrap=True, markup=False)
    if not found.ok:
        err.print("fix them, or suppress one next to its resource with `#checkov:skip=<ID>:<reason>`", markup=False)
        return EXIT_FAIL
    return EXIT_OK


def cmd_preflight(args: argparse.Namespace) -> int:
    from castelet.preflight import preflight

    report = preflight(Path(args.deployment), address=args.public_address)
    out.print(str(report), soft_wrap=True, markup=False, highlight=False)
    return EXIT_OK if report.ok else EXIT_FAIL


def cmd_lifecycle(args: argparse.Namespace) -> int:
    from castelet.lifecycle import LifecycleError, lifecycle

    def progress(message: str) -> None:
        err.print(f"[cyan]lifecycle[/cyan] {message}")

    try:
        report = lifecycle(Path(args.deployment), progress, keep=args.keep)
    except LifecycleError as exc:
        err.print(f"error {exc}", soft_wrap=True, markup=False)
        return EXIT_USAGE
    table = Table(title=f"lifecycle of {report.deployment.name}")
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    for name, seconds in report.timings.items():
        mark = " [red](failed)[/red]" if name == report.failed_phase else ""
        table.add_row(name + mark, f"{seconds:.1f}")
    out.print(table)
    if not report.ok:
        err.print(f"[red]failed[/red] in phase {report.failed_phase}:", soft_wrap=True)
        err.print(report.error, soft_wrap=True, markup=False)
        return EXIT_FAIL
    out.print("[green]lifecycle passed[/green]")
    return EXIT_OK


def parser() -> argparse.ArgumentParser:
    # Global options are accepted before or after the sub-command (castelet --lang fr new ... and
    # castelet new ... --lang fr): each sub-parser shares them without overriding a value given first.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--lang", choices=["en", "fr"], default=argparse.SUPPRESS,
                        help="language of titles and help (default from LANG)")
    p = argparse.ArgumentParser(prog="castelet", description="Blueprints of research web services.",
                                parents=[common])
    p.add_argument("--version", action="version", version=f"castelet {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, parents=[common])

    s = command("list", "the catalogue of blueprints")
    s.add_argument("--markdown", action="store_true", help="print a Markdown table")
    s.set_defaults(func=cmd_list)
    s = command("show", "one blueprint: roles, services, volumes, questions")
    s.add_argument("name")
    s.set_defaults(func=cmd_show)
    s = command("new", "render a blueprint into a deployment repo")
    s.add_argument("name", help="blueprint id (or path to a blueprint folder)")
    s.add_argument("--no-input", action="store_true", help="ask nothing: defaults plus --answers")
    s.add_argument("--answers", metavar="FILE", help="YAML answers (or an earlier .castelet-answers.yaml)")
    s.add_argument("-o", "--output-dir", default=".", help="where the deployment folder is created")
    s.add_argument("--force", action="store_true",
                   help="re-render an existing deployment in place: keeps .git, state and what you edited, "
                        "or refuses listing what would be lost")
    s.add_argument("--sandbox", action="store_true",
                   help="a throwaway deployment that `castelet sandbox gc` destroys once expired")
    s.add_argument("--ttl", help="time to live of a --sandbox, e.g. 30m, 4h, 2d (default 8h, at most 14d)")
    s.set_defaults(func=cmd_new)
    s = command("pin", "download a deployment's pinned upstream release and record its SHA-256")
    s.add_argument("deployment", nargs="?", default=".", help="a rendered deployment folder (default: .)")
    s.add_argument("--url", help="release archive URL (default: settings.release_url of terraform.tfvars)")
    s.add_argument("--release-version", help="version of that release (recorded as settings.release_version)")
    s.add_argument("--file", help="hash this already downloaded archive instead of downloading")
    s.set_defaults(func=cmd_pin)
    s = command("blueprint", "work on the blueprint library itself")
    blueprint_sub = s.add_subparsers(dest="blueprint_command", required=True)
    b = blueprint_sub.add_parser("new", help="scaffold a blueprint (its folder and one role class)",
                                 parents=[common])
    b.add_argument("name", help="blueprint id: lowercase letters, digits and dashes")
    b.set_defaults(func=cmd_blueprint_new)
    s = command("validate", "check blueprints against the schema and their templates")
    s.add_argument("paths", nargs="*", help="blueprint folders (default: all)")
    s.add_argument("--fix", action="store_true", help="write cookiecutter.json from the manifest first")
    s.set_defaults(func=cmd_validate)
    s = command("local", "a local LXD cloud to apply and verify deployments on")
    s.add_argument("action", choices=["setup", "status", "teardown"])
    s.add_argument("--release", action="append", choices=list(RELEASES),
                   help=f"Debian release whose image to build or check; repeatable (default {DEFAULT_RELEASE})")
    s.set_defaults(func=cmd_local)
    s = command("check", "fmt, validate and plan an OpenStack deployment offline (real Terraform core)")
    s.add_argument("deployment", help="a rendered deployment folder (left untouched)")
    s.add_argument("--provider", choices=["stand-in", "real", "auto", "registry"],
                   default=os.environ.get("CASTELET_CHECK_PROVIDER", "stand-in"),
                   help="stand-in: castelet's plan-only provider (default, no network); real: validate with "
                        "terraform-provider-openstack built from its Go module (needs Go and the Go module "
                        "proxy, once), then plan with the stand-in; auto: try the real provider from the "
                        "registry first (online); registry: real provider only")
    s.add_argument("--no-checkov", action="store_true",
                   help="skip checkov's static security analysis (run by default after the plan)")
    s.set_defaults(func=cmd_check)
    s = command("preflight", "ask the OpenStack project whether a deployment fits: credentials, image, flavors, "
                             "networks, quotas, admin_cidr (needs castelet[preflight])")
    s.add_argument("deployment", nargs="?", default=".", help="a rendered OpenStack deployment (default: .)")
    s.add_argument("--public-address", default=None,
                   help="this machine's public address (default: $CASTELET_PUBLIC_ADDRESS, else asked online)")
    s.set_defaults(func=cmd_preflight)
    s = command("lifecycle", "apply, verify, check idempotence, re-plan and destroy a deployment")
    s.add_argument("deployment", help="a rendered deployment folder")
    s.add_argument("--keep", action="store_true", help="do not destroy at the end (debugging)")
    s.set_defaults(func=cmd_lifecycle)
    s = command("sandbox", "deployments with a time to live: list, extend, garbage-collect")
    sandbox_sub = s.add_subparsers(dest="sandbox_command", required=True)
    b = sandbox_sub.add_parser("list", help="sandboxes under DIRs (default .): owner, time left, resources",
                               parents=[common])
    b.add_argument("dirs", nargs="*", metavar="DIR")
    b.set_defaults(func=cmd_sandbox)
    b = sandbox_sub.add_parser("gc", help="terraform destroy every expired sandbox under DIRs (default .)",
                               parents=[common])
    b.add_argument("dirs", nargs="*", metavar="DIR")
    b.add_argument("--dry-run", action="store_true", help="say what would be destroyed, destroy nothing")
    b.set_defaults(func=cmd_sandbox)
    b = sandbox_sub.add_parser("extend", help="move a sandbox's expiry and apply it in place", parents=[common])
    b.add_argument("deployment", help="a sandbox deployment folder")
    b.add_argument("duration", help="how much later, e.g. 2h (at most 14 days after creation)")
    b.add_argument("--no-apply", action="store_true", help="only edit terraform.tfvars")
    b.set_defaults(func=cmd_sandbox)
    s = command("doctor", "which tools castelet found")
    s.set_defaults(func=cmd_doctor)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except AnswersError as exc:
        for problem in exc.problems:
            err.print(f"error {problem}", soft_wrap=True, markup=False)
        err.print("nothing was written")
        return EXIT_USAGE
    except (ManifestError, LookupError, TargetExists, LibraryNotFound) as exc:
        err.print(f"error {exc}", soft_wrap=True, markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
