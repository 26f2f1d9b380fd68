"""`castelet preflight` against a local HTTP server that answers the Keystone, Nova, Neutron,
Cinder and Glance calls with responses shaped as in the OpenStack API reference
(tests/fixtures/openstack-api/). The client side is the real one: openstacksdk reads a
clouds.yaml with an application credential, keystoneauth authenticates and finds the endpoints
in the token's catalog; the deployment is a real render of lamp whose variables Terraform core
evaluates."""

from __future__ import annotations

import dataclasses
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytest.importorskip("openstack", reason="pip install 'castelet[preflight]'")

from castelet import preflight
from castelet.cli import main as castelet_main
from castelet.library import library_root
from castelet.render import new

FIXTURES = Path(__file__).parent / "fixtures" / "openstack-api"
PROJECT = "a6944d763bf64ee6a275f1263fae0352"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKvXNzvV7sVd3m1pQm5t9oZQy2k3Vv5d1Q1vJ6zK0b9a ada@lab"
INSIDE = "203.0.113.40"  # inside the rendered admin_cidr 203.0.113.0/24


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


class FakeOpenStack:
    """The responses the server gives (a test may edit them) and the requests it received."""

    def __init__(self) -> None:
        self.bodies = {name: fixture(f"{name}.json") for name in (
            "images", "flavors", "compute-quota", "networks", "subnets", "floatingips", "network-quota",
            "volume-quota")}
        self.requests: list[str] = []
        self.base = ""

    def answer(self, method: str, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        one = {k: v[0] for k, v in query.items()}
        routes = {
            "/image/v2/images": "images",
            "/compute/v2.1/flavors/detail": "flavors",
            f"/compute/v2.1/os-quota-sets/{PROJECT}/detail": "compute-quota",
            f"/network/v2.0/quotas/{PROJECT}/details": "network-quota",
            f"/volume/v3/{PROJECT}/os-quota-sets/{PROJECT}": "volume-quota",
        }
        if method == "POST" and path == "/identity/v3/auth/tokens":
            token = json.loads((FIXTURES / "token.json").read_text().replace("{base}", self.base))
            return 201, token
        if method != "GET":
            return 405, {"error": "read-only fake"}
        if path in ("/identity/v3", "/identity/v3/"):  # version discovery (password plugin)
            return 200, json.loads((FIXTURES / "identity-version.json").read_text().replace("{base}", self.base))
        if path in routes:
            return 200, self.bodies[routes[path]]
        collections = {"/network/v2.0/networks": "networks", "/network/v2.0/subnets": "subnets",
                       "/network/v2.0/floatingips": "floatingips"}
        if path in collections:
            key = collections[path]
            items = [i for i in self.bodies[key][key] if all(_matches(i, k, v) for k, v in one.items())]
            return 200, {key: items}
        return 404, {"itemNotFound": {"code": 404, "message": f"no route {path}"}}


def _matches(item: dict[str, Any], key: str, value: str) -> bool:
    if key not in item:
        return True  # a filter this fake does not know: Neutron ignores unknown filters too
    found = item[key]
    return str(found).lower() == value.lower() if isinstance(found, bool) else str(found) == value


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenStack]:
    fake = FakeOpenStack()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self) -> None:
            url = urlsplit(self.path)
            fake.requests.append(f"{self.command} {url.path}")
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, body = fake.answer(self.command, url.path, parse_qs(url.query))
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == 201:
                self.send_header("X-Subject-Token", "gAAAAABfake-token")
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _reply

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  arbutus:\n    auth_type: v3applicationcredential\n    auth:\n"
        f"      auth_url: {fake.base}/identity/v3\n"
        "      application_credential_id: 423f19a4ac1e4f48bbb4180756e6eb6c\n"
        "      application_credential_secret: fake-secret\n"
        "    interface: public\n    identity_api_version: 3\n")
    for name in [n for n in __import__("os").environ if n.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    monkeypatch.setenv(preflight.PUBLIC_ADDRESS_ENV, INSIDE)
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def lamp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lamp rendered for OpenStack with "Before you apply" done and os_cloud = "arbutus"."""
    out = tmp_path_factory.mktemp("render")
    answers = {"admin_ssh_keys": KEY, "domain": "portal.mylab.ca", "admin_email": "ada@mylab.ca",
               "admin_cidr": "203.0.113.0/24"}
    target = new(library_root() / "blueprints" / "lamp", answers, out)
    with (target / "terraform.tfvars").open("a", encoding="utf-8") as tfvars:
        tfvars.write('\nos_cloud = "arbutus"\n')
    return target


def test_needs_come_from_the_rendered_deployment(lamp: Path) -> None:
    needs = preflight.needs_of(lamp)
    assert needs.os_cloud == "arbutus"
    assert needs.image == "^Debian-13"
    assert [(r.name, r.count, r.flavor, r.min_ram_mb) for r in needs.roles] == [("web", 1, "p2-3gb", 2048)]
    assert needs.volume_gb == (20,)
    assert needs.public_hosts == ["lamp-web1"]


def test_quota_fits(lamp: Path, cloud: FakeOpenStack) -> None:
    report = preflight.preflight(lamp)
    assert report.ok, str(report)
    text = str(report)
    # the newest active Debian 13 image: the queued 2026-06 one is not usable yet
    assert "Debian-13-x64-2026-03" in text
    assert "boots from a 20 GB volume" in text
    quotas = {q.resource: (q.needed, q.used, q.limit) for q in report.quotas}
    assert quotas["instances"] == (1, 3, 10)
    assert quotas["cores (vCPU)"] == (2, 6, 25)
    assert quotas["RAM (MB)"] == (3072, 9216, 51200)
    assert quotas["volumes"] == (2, 3, 10)  # data volume + boot volume (p flavors have no root disk)
    assert quotas["volume storage (GB)"] == (40, 120, 500)
    assert quotas["floating IPs"] == (1, 1, 2)
    assert quotas["security groups"] == (2, 4, 10)
    # web: SSH + each service + an IPv6 twin of each public one; internal: 2; Neutron's 2 egress
    # rules per group
    services = json.loads((lamp / ".castelet" / "blueprint.json").read_text())["services"]
    web = 1 + len(services) + sum(1 for s in services if s["exposure"] == "public")
    assert quotas["security group rules"] == (web + 2 + 2 * 2, 20, 100)
    assert "networks" not in quotas  # the project's network is used, none is created
    assert "POST /identity/v3/auth/tokens" in cloud.requests
    assert f"GET /volume/v3/{PROJECT}/os-quota-sets/{PROJECT}" in cloud.requests
    assert "preflight passed" in text


def test_quota_exceeded_fails_at_the_first_line_that_does_not_fit(lamp: Path, cloud: FakeOpenStack) -> None:
    cloud.bodies["compute-quota"]["quota_set"]["cores"] = {"in_use": 24, "limit": 25, "reserved": 0}
    cloud.bodies["network-quota"]["quota"]["floatingip"] = {"used": 2, "limit": 2, "reserved": 0}
    report = preflight.preflight(lamp)
    assert not report.ok
    assert report.failure is not None and report.failure.startswith("cores (vCPU): this deployment needs 2")
    lines = str(report).splitlines()
    assert any(line.startswith("cores (vCPU)") and line.endswith("does not fit") for line in lines)
    assert any(line.startswith("floating IPs") and line.endswith("does not fit") for line in lines)


def test_created_network_counts_against_the_network_quotas(lamp: Path, cloud: FakeOpenStack) -> None:
    needs = dataclasses.replace(preflight.needs_of(lamp), create_network=True)
    report = preflight.run(needs, preflight.connect("arbutus"), INSIDE)
    assert not report.ok
    assert report.failure is not None and report.failure.startswith("networks: this deployment needs 1")


def test_missing_image(lamp: Path, cloud: FakeOpenStack) -> None:
    cloud.bodies["images"]["images"] = [i for i in cloud.bodies["images"]["images"] if "Debian-13" not in i["name"]]
    report = preflight.preflight(lamp)
    assert not report.ok
    assert report.failure is not None and "no active image matches '^Debian-13'" in report.failure
    assert not report.quotas


def test_missing_flavor(lamp: Path, cloud: FakeOpenStack) -> None:
    cloud.bodies["flavors"]["flavors"] = [f for f in cloud.bodies["flavors"]["flavors"] if f["name"] != "p2-3gb"]
    report = preflight.preflight(lamp)
    assert report.failure is not None and "flavor 'p2-3gb' of role web does not exist" in report.failure


def test_flavor_below_the_role_minimum(lamp: Path, cloud: FakeOpenStack) -> None:
    needs = preflight.needs_of(lamp)
    small = dataclasses.replace(needs, roles=(dataclasses.replace(needs.roles[0], flavor="p1-1.5gb"),))
    report = preflight.run(small, preflight.connect("arbutus"), INSIDE)
    assert report.failure is not None and "is smaller than role web needs (1 vCPU, 2048 MB)" in report.failure


def test_address_outside_admin_cidr(lamp: Path, cloud: FakeOpenStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(preflight.PUBLIC_ADDRESS_ENV, "198.51.100.7")
    report = preflight.preflight(lamp)
    assert not report.ok
    assert report.failure is not None
    assert "public address 198.51.100.7 is outside admin_cidr 203.0.113.0/24" in report.failure
    assert report.quotas and all(q.fits for q in report.quotas)


def test_preallocated_floating_ip_is_used_not_allocated(lamp: Path, cloud: FakeOpenStack) -> None:
    cloud.bodies["network-quota"]["quota"]["floatingip"] = {"used": 2, "limit": 2, "reserved": 0}
    needs = dataclasses.replace(preflight.needs_of(lamp), floating_ips={"lamp-web1": "206.12.90.17"})
    report = preflight.run(needs, preflight.connect("arbutus"), INSIDE)
    assert report.ok, str(report)
    assert {q.resource: q.needed for q in report.quotas}["floating IPs"] == 0
    unknown = dataclasses.replace(needs, floating_ips={"lamp-web1": "206.12.90.99"})
    failed = preflight.run(unknown, preflight.connect("arbutus"), INSIDE)
    assert failed.failure == "floating IP 206.12.90.99 (for lamp-web1) is not allocated to this project"


def _applied_state(needs: Any, port: str, volumes: tuple[int, ...]) -> dict[str, Any]:
    """The state an apply of ``needs`` leaves (format 4, the resources the preflight reads)."""
    hosts = [f"{needs.name}-{r.name}{i}" for r in needs.roles for i in range(1, r.count + 1)]

    def resource(kind: str, name: str, attributes: list[dict[str, Any]]) -> dict[str, Any]:
        return {"mode": "managed", "type": kind, "name": name, "module": "module.cloud",
                "instances": [{"attributes": a} for a in attributes]}

    groups = len(needs.roles) + 1
    rules = sum(r.firewall_rules for r in needs.roles) + 2 + preflight.DEFAULT_EGRESS_RULES * groups
    return {"version": 4, "resources": [
        resource("openstack_compute_instance_v2", "instance", [{"name": h, "id": f"i-{h}"} for h in hosts]),
        resource("openstack_networking_port_v2", "instance", [{"id": port, "name": hosts[0]}]),
        resource("openstack_blockstorage_volume_v3", "volume", [{"size": gb} for gb in volumes]),
        resource("openstack_networking_secgroup_v2", "role", [{"id": f"sg{i}"} for i in range(groups)]),
        resource("openstack_networking_secgroup_rule_v2", "role", [{"id": f"r{i}"} for i in range(rules)]),
        {"mode": "data", "type": "openstack_images_image_v2", "name": "image", "instances": [{"attributes": {}}]},
    ]}


def test_a_second_plan_counts_only_what_it_creates_and_accepts_its_own_floating_ip(
        lamp: Path, cloud: FakeOpenStack, tmp_path: Path) -> None:
    """Issue 22 point 4: after an apply that filled the project (every quota at its limit, the
    pre-allocated floating IP associated with the deployment's own port), the preflight of the next
    `nox -s plan` passes: nothing new is needed. The old preflight refused the address as "already
    associated" and counted the deployment's own instances, volumes and groups again."""
    deployment = tmp_path / "applied"
    shutil.copytree(lamp, deployment, symlinks=True)
    with (deployment / "terraform.tfvars").open("a", encoding="utf-8") as tfvars:
        tfvars.write('\nfloating_ips = { "lamp-web1" = "206.12.90.17" }\n')
    needs = preflight.needs_of(deployment)
    assert needs.floating_ips == {"lamp-web1": "206.12.90.17"}, needs
    state = _applied_state(needs, "port-of-web1", needs.volume_gb)
    (deployment / "terraform.tfstate").write_text(json.dumps(state))
    cloud.bodies["floatingips"]["floatingips"][0]["port_id"] = "port-of-web1"
    full = {"used": 10, "limit": 10, "reserved": 0}
    for key in ("floatingip", "port", "security_group", "security_group_rule"):
        cloud.bodies["network-quota"]["quota"][key] = dict(full)
    for key in ("instances", "cores", "ram"):
        cloud.bodies["compute-quota"]["quota_set"][key] = {"in_use": 10, "limit": 10, "reserved": 0}
    for key in ("volumes", "gigabytes"):
        cloud.bodies["volume-quota"]["quota_set"][key] = {"in_use": 10, "limit": 10, "reserved": 0}

    again = preflight.preflight(deployment)
    assert again.ok, str(again)
    assert {q.resource: q.needed for q in again.quotas} == {
        "instances": 0, "cores (vCPU)": 0, "RAM (MB)": 0, "volumes": 0, "volume storage (GB)": 0,
        "floating IPs": 0, "ports": 0, "security groups": 0, "security group rules": 0}

    # The same address on another server's port is still refused, and a first plan (no state)
    # into the full project does not fit.
    cloud.bodies["floatingips"]["floatingips"][0]["port_id"] = "port-of-someone-else"
    taken = preflight.preflight(deployment)
    assert taken.failure == ("floating IP 206.12.90.17 (for lamp-web1) is already associated with a port of "
                             "another server")
    cloud.bodies["floatingips"]["floatingips"][0]["port_id"] = None
    (deployment / "terraform.tfstate").unlink()
    first = preflight.preflight(deployment)
    assert first.failure is not None and first.failure.startswith("instances: this deployment needs 1"), str(first)
    assert {q.resource: q.needed for q in first.quotas}["ports"] == 1


def test_bad_credentials(lamp: Path, cloud: FakeOpenStack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clouds = tmp_path / "other-clouds.yaml"
    clouds.write_text("clouds:\n  arbutus:\n    auth_type: v3applicationcredential\n    auth:\n"
                      "      auth_url: http://127.0.0.1:9/v3\n      application_credential_id: x\n"
                      "      application_credential_secret: y\n")
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(clouds))
    report = preflight.preflight(lamp)
    assert report.failure is not None and report.failure.startswith("the credentials do not work")


def test_cli_exit_code(lamp: Path, cloud: FakeOpenStack, capsys: pytest.CaptureFixture[str]) -> None:
    assert castelet_main(["preflight", str(lamp)]) == 0
    assert "preflight passed" in capsys.readouterr().out
    cloud.bodies["volume-quota"]["quota_set"]["volumes"] = {"in_use": 10, "limit": 10, "reserved": 0}
    assert castelet_main(["preflight", str(lamp)]) == 1
    assert "volumes: this deployment needs 2, the project uses 10 of 10" in capsys.readouterr().out


@pytest.mark.parametrize("credentials", [
    # a token (e.g. from `openstack token issue` elsewhere, or the dashboard's session)
    {"OS_AUTH_TYPE": "v3token", "OS_TOKEN": "gAAAAABexisting", "OS_PROJECT_ID": PROJECT},
    # a password openrc file, as the older clouds' dashboards offer (no OS_AUTH_TYPE: generic plugin)
    {"OS_USERNAME": "ada", "OS_PASSWORD": "fake", "OS_PROJECT_NAME": "def-ada", "OS_USER_DOMAIN_NAME": "Default",
     "OS_PROJECT_DOMAIN_ID": "default", "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public"},
], ids=["token", "password-openrc"])
def test_os_variables_work_without_clouds_yaml(lamp: Path, cloud: FakeOpenStack, monkeypatch: pytest.MonkeyPatch,
                                               credentials: dict[str, str]) -> None:
    monkeypatch.delenv("OS_CLIENT_CONFIG_FILE")
    monkeypatch.setenv("OS_AUTH_URL", f"{cloud.base}/identity/v3")
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    needs = dataclasses.replace(preflight.needs_of(lamp), os_cloud=None)
    report = preflight.run(needs, preflight.connect(None), INSIDE)
    assert report.ok, str(report)
    assert "POST /identity/v3/auth/tokens" in cloud.requests


def test_client_networks_count_as_security_group_rules(tmp_path: Path) -> None:
    """A clients service needs one rule per client network (none without networks)."""
    from fixtures.clients_probe import clients_blueprint

    probe = clients_blueprint(tmp_path)
    answers = {"admin_ssh_keys": KEY, "domain": "portal.mylab.ca", "admin_email": "ada@mylab.ca",
               "admin_cidr": "203.0.113.0/24", "client_cidrs": "10.20.0.0/16 2001:db8:42::/48 192.168.7.0/24"}
    deployment = new(probe, answers, tmp_path / "out")
    needs = preflight.needs_of(deployment)
    assert [(r.name, r.firewall_rules) for r in needs.roles] == [("main", 1 + 3)]  # SSH + 3 client networks
    values = preflight.deployment_values(deployment)
    assert values["client_cidrs"] == ["10.20.0.0/16", "2001:db8:42::/48", "192.168.7.0/24"]
    none = preflight.needs_of(deployment, {**values, "client_cidrs": []})
    assert [r.firewall_rules for r in none.roles] == [1]
    same = preflight.needs_of(deployment, {**values, "client_cidrs": ["10.20.0.0/16", "10.20.0.0/16"]})
    assert [r.firewall_rules for r in same.roles] == [2], "a network given twice is one rule (the design's)"
