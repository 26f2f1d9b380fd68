"""Preflight of an OpenStack deployment: will ``nox -s apply`` fit in this project?

Asks the cloud (openstacksdk: clouds.yaml, an application credential, a token or OS_* variables)
what a plan cannot know: the credentials work; the image (``image`` is a name regex, most recent
match), the flavors and the networks exist; each flavor meets its role's minimum (a flavor
without a root disk boots from a volume sized by the role's minimum disk); the quotas have room
for what this deployment creates; the operator's public address is inside ``admin_cidr`` (the
day-2 step reaches the instances over SSH from here). The quota lines are printed as a table
needed / used / limit and the preflight fails with the first line that does not fit.

What the deployment needs is read from the deployment itself: its resolved manifest
(``.castelet/blueprint.json``: roles, minimums, services, volumes) and the values of its
variables, evaluated by Terraform core from ``variables.tf`` and ``terraform.tfvars`` (so HCL is
never parsed here). Only documented API calls are made, all reads:

* Keystone ``POST /v3/auth/tokens`` (through keystoneauth, which openstacksdk configures);
* Glance ``GET /v2/images``; Nova ``GET /flavors/detail``, ``GET /os-quota-sets/{project}/detail``;
* Neutron ``GET /v2.0/networks``, ``/v2.0/subnets``, ``/v2.0/floatingips``,
  ``/v2.0/quotas/{project}/details``; Cinder ``GET /os-quota-sets/{project}?usage=true``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where the operator's public address comes from when it is not given: a plain-text echo service
#: (as Magic Castle asks one). ``CASTELET_PUBLIC_ADDRESS`` (or ``--public-address``) replaces it.
PUBLIC_ADDRESS_ENV = "CASTELET_PUBLIC_ADDRESS"
PUBLIC_ADDRESS_URL = "https://ipv4.icanhazip.com"
#: Boot volumes are never smaller than this (GB), as terraform-modules/openstack sizes them.
MIN_BOOT_VOLUME_GB = 10
#: Neutron adds an IPv4 and an IPv6 egress rule to every new security group.
DEFAULT_EGRESS_RULES = 2

JSON = dict[str, Any]


class PreflightError(Exception):
    """A check that failed: what is wrong and what to do about it."""


@dataclass(frozen=True)
class RoleNeed:
    name: str
    count: int
    public: bool
    flavor: str
    min_vcpus: int
    min_ram_mb: int
    min_disk_gb: int
    firewall_rules: int  # ingress rules of its security group (SSH + its services, IPv6 twins, client networks)


@dataclass(frozen=True)
class Needs:
    """What one deployment asks of its OpenStack project."""

    name: str
    image: str  # name regex
    roles: tuple[RoleNeed, ...]
    volume_gb: tuple[int, ...]  # one entry per data volume to create
    admin_cidr: str
    os_cloud: str | None = None
    existing_network: str | None = None
    external_network: str | None = None
    create_network: bool = False
    floating_ips: dict[str, str] = field(default_factory=dict)

    @property
    def public_hosts(self) -> list[str]:
        return [f"{self.name}-{r.name}{i}" for r in self.roles if r.public for i in range(1, r.count + 1)]


@dataclass(frozen=True)
class Existing:
    """What the deployment's Terraform state already holds. A second plan, a rebuild or an apply
    after a change counts only the rest against the quotas: the project's usage already includes
    these, and this deployment's own floating IP is associated with its own port."""

    instances: frozenset[str] = frozenset()  # instance names
    volume_gb: tuple[int, ...] = ()  # sizes of the volumes the state manages
    floating_ips: frozenset[str] = frozenset()  # addresses this deployment allocated
    ports: frozenset[str] = frozenset()  # port ids
    security_groups: int = 0
    security_group_rules: int = 0


def existing_from_state(state: JSON) -> Existing:
    """:class:`Existing` from a Terraform state (format 4, as `terraform state pull` prints it)."""
    found: dict[str, list[JSON]] = {}
    for resource in state.get("resources") or []:
        if resource.get("mode") == "managed":
            attributes = [dict(i.get("attributes") or {}) for i in resource.get("instances") or []]
            found.setdefault(str(resource.get("type")), []).extend(attributes)
    return Existing(
        instances=frozenset(str(a.get("name")) for a in found.get("openstack_compute_instance_v2", [])),
        volume_gb=tuple(int(a.get("size") or 0) for a in found.get("openstack_blockstorage_volume_v3", [])),
        floating_ips=frozenset(str(a.get("address")) for a in found.get("openstack_networking_floatingip_v2", [])),
        ports=frozenset(str(a.get("id")) for a in found.get("openstack_networking_port_v2", [])),
        security_groups=len(found.get("openstack_networking_secgroup_v2", [])),
        security_group_rules=len(found.get("openstack_networking_secgroup_rule_v2", [])),
    )


def existing_of(deployment: Path, terraform: list[str] | None = None) -> Existing:
    """What the deployment's state holds: `terraform state pull` once it is initialised (any
    backend), else its local terraform.tfstate, else nothing (a first plan)."""
    local = deployment / "terraform.tfstate"
    if (deployment / ".terraform").is_dir():
        from castelet.runtime import find_terraform, terraform_env

        proc = subprocess.run([*(terraform or find_terraform()), "state", "pull"], cwd=deployment,
                              env=terraform_env(dict(os.environ)), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise PreflightError(f"terraform state pull failed: {(proc.stderr or proc.stdout).strip()[-1500:]}")
        text = proc.stdout
    elif local.is_file():
        text = local.read_text(encoding="utf-8")
    else:
        return Existing()
    try:
        state = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise PreflightError(f"the deployment's Terraform state is not JSON: {exc}") from exc
    return existing_from_state(state)


@dataclass(frozen=True)
class QuotaLine:
    resource: str
    needed: int
    used: int
    limit: int  # -1: unlimited

    @property
    def fits(self) -> bool:
        return self.needed == 0 or self.limit < 0 or self.used + self.needed <= self.limit


@dataclass
class Report:
    checks: list[tuple[str, str]] = field(default_factory=list)  # (what, what was found)
    quotas: list[QuotaLine] = field(default_factory=list)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def __str__(self) -> str:
        lines = [f"{'ok':<5} {what:<14} {found}" for what, found in self.checks]
        if self.quotas:
            lines.append("")
            lines.append(f"{'quota':<22} {'needed':>8} {'used':>8} {'limit':>8}")
            for q in self.quotas:
                limit = "unlimited" if q.limit < 0 else str(q.limit)
                mark = "" if q.fits else "   <- does not fit"
                lines.append(f"{q.resource:<22} {q.needed:>8} {q.used:>8} {limit:>8}{mark}")
        lines.append("")
        lines.append(f"preflight FAILED: {self.failure}" if self.failure else "preflight passed")
        return "\n".join(lines)


# --- what the deployment needs ----------------------------------------------------------------

_VARIABLE = re.compile(r'^variable\s+"([A-Za-z_][A-Za-z0-9_-]*)"', re.M)


def deployment_values(deployment: Path, terraform: list[str] | None = None) -> JSON:
    """The values of the deployment's variables (terraform.tfvars over variables.tf defaults),
    evaluated by Terraform core in a scratch module holding only those two files."""
    from castelet.runtime import find_terraform, terraform_env

    command = terraform or find_terraform()
    declared = (deployment / "variables.tf").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="castelet-preflight-") as scratch:
        work = Path(scratch)
        shutil.copy2(deployment / "variables.tf", work / "variables.tf")
        for tfvars in [deployment / "terraform.tfvars", *sorted(deployment.glob("*.auto.tfvars"))]:
            if tfvars.exists():
                shutil.copy2(tfvars, work / tfvars.name)
        (work / "values.tf").write_text(
            "".join(f'output "{n}" {{\n  value = var.{n}\n}}\n' for n in _VARIABLE.findall(declared)))
        env = terraform_env(dict(os.environ))
        for args in (["init", "-input=false", "-backend=false"], ["apply", "-input=false", "-auto-approve"]):
            proc = subprocess.run([*command, *args, "-no-color"], cwd=work, env=env, capture_output=True,
                                  text=True, check=False)
            if proc.returncode != 0:
                raise PreflightError(f"terraform.tfvars does not evaluate (terraform {args[0]}):\n"
                                     f"{(proc.stderr or proc.stdout).strip()}")
        out = subprocess.run([*command, "output", "-json"], cwd=work, env=env, capture_output=True, text=True,
                             check=True)
    return {name: value["value"] for name, value in json.loads(out.stdout).items()}


def needs_of(deployment: Path, values: JSON | None = None) -> Needs:
    """What ``deployment`` creates, from its resolved manifest and its variables' values."""
    manifest = json.loads((deployment / ".castelet" / "blueprint.json").read_text(encoding="utf-8"))
    if manifest.get("cloud", "openstack") != "openstack":
        raise PreflightError(f"{deployment} deploys on {manifest['cloud']}: the preflight checks OpenStack projects")
    v = deployment_values(deployment) if values is None else values
    services = manifest.get("services", [])
    # rules per service: public = 0.0.0.0/0 + its ::/0 twin, admin = admin_cidr, clients = one
    # per distinct client network (as the design module: canonical form, each once)
    clients = len({str(ipaddress.ip_network(c, strict=False)) for c in v.get("client_cidrs") or []})
    per_exposure = {"public": 2, "admin": 1, "clients": clients}
    roles = []
    for r in manifest["roles"]:
        own = [s for s in services if s["role"] == r["name"]]
        roles.append(RoleNeed(
            name=r["name"], count=int(r["count"]), public=bool(r["public"]), flavor=str(v["flavors"][r["name"]]),
            min_vcpus=int(r["min_vcpus"]), min_ram_mb=int(r["min_ram_mb"]), min_disk_gb=int(r["min_disk_gb"]),
            firewall_rules=1 + sum(per_exposure[s["exposure"]] for s in own),
        ))
    counts = {r.name: r.count for r in roles}
    sizes = v.get("volume_sizes_gb") or {}
    volume_gb = tuple(int(sizes.get(name, vol["size_gb"]))
                      for name, vol in manifest.get("volumes", {}).items() for _ in range(counts[vol["role"]]))
    return Needs(
        name=str(v["name"]), image=str(v["image"]), roles=tuple(roles), volume_gb=volume_gb,
        admin_cidr=str(v["admin_cidr"]), os_cloud=v.get("os_cloud"), existing_network=v.get("existing_network"),
        external_network=v.get("external_network"), create_network=bool(v.get("create_network", False)),
        floating_ips=dict(v.get("floating_ips") or {}),
    )


# --- what the cloud has -----------------------------------------------------------------------


class Cloud:
    """The few reads the preflight makes, over an authenticated keystoneauth session."""

    def __init__(self, session: Any, region: str | None = None) -> None:
        self.session = session
        self.region = region

    def get(self, service: str, path: str, **params: Any) -> JSON:
        endpoint = {"service_type": service, "interface": "public"}
        if self.region:
            endpoint["region_name"] = self.region
        response = self.session.get(path, endpoint_filter=endpoint, params=params or None, raise_exc=True)
        body: JSON = response.json()
        return body

    def project_id(self) -> str:
        return str(self.session.get_project_id())

    def images(self) -> Iterator[JSON]:
        path = "/v2/images"
        params: JSON = {"limit": 200}
        while path:
            page = self.get("image", path, **params)
            yield from page.get("images", [])
            following = page.get("next")
            path, params = (following.split("?", 1)[0], dict(_query(following))) if following else ("", {})

    def flavors(self) -> list[JSON]:
        return list(self.get("compute", "/flavors/detail")["flavors"])

    def networks(self, **filters: Any) -> list[JSON]:
        return list(self.get("network", "/v2.0/networks", **filters)["networks"])

    def subnets(self, **filters: Any) -> list[JSON]:
        return list(self.get("network", "/v2.0/subnets", **filters)["subnets"])

    def floating_ips(self, **filters: Any) -> list[JSON]:
        return list(self.get("network", "/v2.0/floatingips", **filters)["floatingips"])

    def compute_quota(self, project: str) -> JSON:
        return dict(self.get("compute", f"/os-quota-sets/{project}/detail")["quota_set"])

    def network_quota(self, project: str) -> JSON:
        return dict(self.get("network", f"/v2.0/quotas/{project}/details")["quota"])

    def volume_quota(self, project: str) -> JSON:
        return dict(self.get("block-storage", f"/os-quota-sets/{project}", usage="true")["quota_set"])


def _query(url: str) -> Iterator[tuple[str, str]]:
    from urllib.parse import parse_qsl, urlsplit

    yield from parse_qsl(urlsplit(url).query)


def connect(os_cloud: str | None) -> Cloud:
    """An authenticated session from clouds.yaml (``os_cloud``, or OS_CLOUD) or the OS_* variables."""
    try:
        import openstack
    except ImportError as exc:
        raise PreflightError("openstacksdk is missing: pip install 'castelet[preflight]'") from exc
    try:
        conn = openstack.connect(cloud=os_cloud) if os_cloud else openstack.connect()
        conn.session.get_project_id()  # authenticates
    except Exception as exc:
        raise PreflightError(f"the credentials do not work ({type(exc).__name__}: {exc}); see docs/arbutus.md: "
                             "a clouds.yaml with an application credential and os_cloud in terraform.tfvars, "
                             "or OS_* variables from an openrc file") from exc
    return Cloud(conn.session, conn.config.get_region_name())


def public_address(given: str | None = None, fetch: Callable[[], str] | None = None) -> str:
    """The operator's public address: ``given``, else $CASTELET_PUBLIC_ADDRESS, else an echo service."""
    if given:
        return given
    if os.environ.get(PUBLIC_ADDRESS_ENV):
        return os.environ[PUBLIC_ADDRESS_ENV]
    try:
        if fetch is not None:
            return fetch().strip()
        with urllib.request.urlopen(PUBLIC_ADDRESS_URL, timeout=10) as response:
            return str(response.read().decode("ascii").strip())
    except OSError as exc:
        raise PreflightError(f"could not learn this machine's public address from {PUBLIC_ADDRESS_URL} ({exc}): "
                             f"set {PUBLIC_ADDRESS_ENV}") from exc


# --- the checks -------------------------------------------------------------------------------


def _limit(entry: Any) -> tuple[int, int]:
    """(used, limit) of one quota entry: Nova/Cinder {in_use, limit, reserved}, Neutron {used, limit, reserved}."""
    used = int(entry.get("in_use", entry.get("used", 0))) + int(entry.get("reserved", 0) or 0)
    return used, int(entry.get("limit", -1))


def _image(cloud: Cloud, pattern: str) -> JSON:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise PreflightError(f"image {pattern!r} is not a regular expression: {exc}") from exc
    found = [i for i in cloud.images() if regex.search(str(i.get("name") or "")) and i.get("status") == "active"]
    if not found:
        raise PreflightError(f"no active image matches {pattern!r} (`openstack image list`): set `image` in "
                             "terraform.tfvars to a regex of a Debian image of this cloud")
    return max(found, key=lambda i: str(i.get("created_at", "")))


def _flavor(flavors: dict[str, JSON], role: RoleNeed) -> JSON:
    flavor = flavors.get(role.flavor)
    if flavor is None:
        raise PreflightError(f"flavor {role.flavor!r} of role {role.name} does not exist in this project "
                             f"(`openstack flavor list`; e.g. {', '.join(sorted(flavors)[:6])})")
    if int(flavor["vcpus"]) < role.min_vcpus or int(flavor["ram"]) < role.min_ram_mb:
        raise PreflightError(f"flavor {role.flavor} ({flavor['vcpus']} vCPU, {flavor['ram']} MB) is smaller than "
                             f"role {role.name} needs ({role.min_vcpus} vCPU, {role.min_ram_mb} MB)")
    if 0 < int(flavor["disk"]) < role.min_disk_gb:
        raise PreflightError(f"flavor {role.flavor} has a {flavor['disk']} GB root disk; role {role.name} needs "
                             f"{role.min_disk_gb} GB (a flavor without root disk boots from a volume of that size)")
    return flavor


def _networks(cloud: Cloud, needs: Needs) -> tuple[str, str]:
    externals = cloud.networks(**{"router:external": "true"})
    if needs.external_network:
        externals = [n for n in externals if n["name"] == needs.external_network]
        if not externals:
            raise PreflightError(f"external network {needs.external_network!r} not found "
                                 "(`openstack network list --external`)")
    elif len(externals) != 1:
        names = ", ".join(n["name"] for n in externals) or "none"
        raise PreflightError(f"expected one external network, found {names}: set external_network")
    external = str(externals[0]["name"])
    if needs.create_network:
        return f"{needs.name}-network (created)", external
    filters: JSON = {"ip_version": 4, "enable_dhcp": "true"}
    if needs.existing_network:
        named = [n for n in cloud.networks(name=needs.existing_network) if not n.get("router:external")]
        if not named:
            raise PreflightError(f"network {needs.existing_network!r} not found (`openstack network list`)")
        filters["network_id"] = named[0]["id"]
    external_ids = {n["id"] for n in externals}
    subnets = [s for s in cloud.subnets(**filters) if s["network_id"] not in external_ids]
    if len(subnets) != 1:
        raise PreflightError(f"expected one IPv4 DHCP subnet on the project's network, found {len(subnets)}: "
                             "set existing_network (or create_network = true with dns_nameservers)")
    return f"{subnets[0]['name'] or subnets[0]['id']} ({subnets[0]['cidr']})", external


def _floating_ips(cloud: Cloud, needs: Needs, existing: Existing = Existing()) -> int:
    """How many floating IPs to allocate; the pre-allocated ones must exist and be free, or be
    associated with this deployment's own port (a second plan)."""
    public = needs.public_hosts
    for host, address in needs.floating_ips.items():
        if host not in public:
            raise PreflightError(f"floating_ips names {host}, which is not a public instance ({', '.join(public)})")
        found = cloud.floating_ips(floating_ip_address=address)
        if not found:
            raise PreflightError(f"floating IP {address} (for {host}) is not allocated to this project")
        port = found[0].get("port_id")
        if port and str(port) not in existing.ports:
            raise PreflightError(f"floating IP {address} (for {host}) is already associated with a port "
                                 "of another server")
    to_allocate = len([h for h in public if h not in needs.floating_ips])
    return max(0, to_allocate - len(existing.floating_ips - set(needs.floating_ips.values())))


def quota_lines(cloud: Cloud, needs: Needs, flavors: dict[str, JSON], allocate_ips: int,
                existing: Existing = Existing()) -> list[QuotaLine]:
    """What the plan creates against what the project has left: the instances, ports, volumes,
    groups and rules the state already holds are in the project's usage, not needed again."""
    project = cloud.project_id()
    nova, neutron, cinder = cloud.compute_quota(project), cloud.network_quota(project), cloud.volume_quota(project)
    new_hosts = [(r, f"{needs.name}-{r.name}{i}") for r in needs.roles for i in range(1, r.count + 1)]
    new_hosts = [(r, host) for r, host in new_hosts if host not in existing.instances]
    boot = [max(r.min_disk_gb, MIN_BOOT_VOLUME_GB) for r, _ in new_hosts if int(flavors[r.flavor]["disk"]) == 0]
    groups = len(needs.roles) + 1
    rules = sum(r.firewall_rules for r in needs.roles) + 2 + DEFAULT_EGRESS_RULES * groups
    data_volumes = max(0, len(needs.volume_gb) - len(existing.volume_gb))
    data_gb = max(0, sum(needs.volume_gb) - sum(existing.volume_gb))
    wanted: list[tuple[str, JSON, str, int]] = [
        ("instances", nova, "instances", len(new_hosts)),
        ("cores (vCPU)", nova, "cores", sum(int(flavors[r.flavor]["vcpus"]) for r, _ in new_hosts)),
        ("RAM (MB)", nova, "ram", sum(int(flavors[r.flavor]["ram"]) for r, _ in new_hosts)),
        ("volumes", cinder, "volumes", data_volumes + len(boot)),
        ("volume storage (GB)", cinder, "gigabytes", data_gb + sum(boot)),
        ("floating IPs", neutron, "floatingip", allocate_ips),
        ("ports", neutron, "port", len(new_hosts)),  # one per instance (the module's openstack_networking_port_v2)
        ("security groups", neutron, "security_group", max(0, groups - existing.security_groups)),
        ("security group rules", neutron, "security_group_rule", max(0, rules - existing.security_group_rules)),
    ]
    if needs.create_network:
        wanted += [("networks", neutron, "network", 1), ("subnets", neutron, "subnet", 1),
                   ("routers", neutron, "router", 1)]
    lines = []
    for label, quota, key, needed in wanted:
        used, limit = _limit(quota.get(key, {}))
        lines.append(QuotaLine(label, needed, used, limit))
    return lines


def run(needs: Needs, cloud: Cloud, address: str, existing: Existing = Existing()) -> Report:
    report = Report()
    try:
        report.checks.append(("credentials", f"project {cloud.project_id()}" + (f" ({cloud.region})"
                                                                               if cloud.region else "")))
        image = _image(cloud, needs.image)
        report.checks.append(("image", f"{needs.image} -> {image['name']} ({image['id']})"))
        flavors = {str(f["name"]): f for f in cloud.flavors()}
        for role in needs.roles:
            flavor = _flavor(flavors, role)
            boot = (f", boots from a {max(role.min_disk_gb, MIN_BOOT_VOLUME_GB)} GB volume"
                    if int(flavor["disk"]) == 0 else f", {flavor['disk']} GB disk")
            report.checks.append((f"flavor {role.name}", f"{role.flavor}: {flavor['vcpus']} vCPU, "
                                  f"{flavor['ram']} MB{boot}"))
        subnet, external = _networks(cloud, needs)
        report.checks.append(("network", f"{subnet}; floating IPs from {external}"))
        allocate = _floating_ips(cloud, needs, existing)
        if existing.instances:
            report.checks.append(("state", f"{len(existing.instances)} instance(s), {len(existing.volume_gb)} "
                                  "volume(s) already deployed: only the rest is counted"))
        report.quotas = quota_lines(cloud, needs, flavors, allocate, existing)
        short = next((q for q in report.quotas if not q.fits), None)
        if short is not None:
            limit = "unlimited" if short.limit < 0 else short.limit
            raise PreflightError(f"{short.resource}: this deployment needs {short.needed}, the project uses "
                                 f"{short.used} of {limit}; free some or ask for a larger allocation")
        _admin_cidr(needs, address)
        report.checks.append(("admin_cidr", f"{address} is inside {needs.admin_cidr}"))
    except PreflightError as exc:
        report.failure = str(exc)
    return report


def _admin_cidr(needs: Needs, address: str) -> None:
    try:
        inside = ipaddress.ip_address(address) in ipaddress.ip_network(needs.admin_cidr, strict=False)
    except ValueError as exc:
        raise PreflightError(f"public address {address!r} or admin_cidr {needs.admin_cidr!r} is invalid") from exc
    if not inside:
        raise PreflightError(f"this machine's public address {address} is outside admin_cidr {needs.admin_cidr}: "
                             "the day-2 step (SSH from here) would time out; widen admin_cidr in terraform.tfvars "
                             f"or run from inside it ({PUBLIC_ADDRESS_ENV} overrides the address)")


def preflight(deployment: Path, *, address: str | None = None, cloud: Cloud | None = None) -> Report:
    """The whole preflight of a rendered OpenStack deployment (never raises for a failed check)."""
    report = Report()
    try:
        needs = needs_of(Path(deployment))
        existing = existing_of(Path(deployment))
        connected = cloud or connect(needs.os_cloud)
        where = public_address(address)
    except PreflightError as exc:
        report.failure = str(exc)
        return report
    return run(needs, connected, where, existing)
