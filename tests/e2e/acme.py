"""A real ACME CA for the end-to-end tests: Debian's `pebble`, on the host's LXD bridge address.

Pebble validates HTTP-01 challenges by connecting to port 80 of the address its DNS server
gives for the domain. That DNS server is a private `dnsmasq` on 127.0.0.1 whose records the
test sets with `point()`: until then the domain does not resolve, as for a deployment whose
DNS record was not created yet. Pebble's API certificate comes from a throwaway CA made here;
that CA is what deployments are told to trust (`acme_ca_certificate`). The certificates pebble
issues chain to a root it makes at start-up, served on its management port (`roots_pem()`).
"""

from __future__ import annotations

import http.client
import json
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

API_PORT = 14000
MANAGEMENT_PORT = 15000
DNS_PORT = 5353
# Parallel test workers (pytest-xdist) each run their own pebble: worker N adds N * PORT_STEP.
PORT_STEP = 100


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_api_certificate(directory: Path, address: str) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for ``address`` (pebble's API listens on an IP)."""
    ca_key, ca_cert = directory / "ca.key", directory / "ca.pem"
    key, csr, cert = directory / "api.key", directory / "api.csr", directory / "api.pem"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
             "-subj", "/CN=castelet e2e ACME API CA", "-keyout", str(ca_key), "-out", str(ca_cert))
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-subj", f"/CN={address}", "-keyout", str(key), "-out", str(csr))
    ext = directory / "api.ext"
    ext.write_text(f"subjectAltName=IP:{address}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return ca_cert, cert, key


@dataclass
class Pebble:
    """pebble + its DNS server, started by `start()`, stopped by `stop()`."""

    workdir: Path
    address: str
    port_offset: int = 0  # added to API_PORT, MANAGEMENT_PORT and DNS_PORT
    records: dict[str, str] = field(default_factory=dict)
    _pebble: subprocess.Popen[bytes] | None = None
    _dns: subprocess.Popen[bytes] | None = None

    @property
    def directory_url(self) -> str:
        return f"https://{self.address}:{API_PORT + self.port_offset}/dir"

    @property
    def api_ca_pem(self) -> str:
        return (self.workdir / "ca.pem").read_text().strip()  # answers refuse surrounding whitespace

    def start(self) -> None:
        for tool in ("pebble", "dnsmasq", "openssl"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is missing: run `sudo bash .ci/setup --system`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _, cert, key = make_api_certificate(self.workdir, self.address)
        config = {"pebble": {
            "listenAddress": f"{self.address}:{API_PORT + self.port_offset}",
            "managementListenAddress": f"{self.address}:{MANAGEMENT_PORT + self.port_offset}",
            "certificate": str(cert), "privateKey": str(key),
            "httpPort": 80, "tlsPort": 443, "ocspResponderURL": "", "externalAccountBindingRequired": False,
        }}
        (self.workdir / "pebble.json").write_text(json.dumps(config))
        self._restart_dns()
        log = (self.workdir / "pebble.log").open("ab")
        self._pebble = subprocess.Popen(
            ["pebble", "-config", str(self.workdir / "pebble.json"), "-dnsserver",
             f"127.0.0.1:{DNS_PORT + self.port_offset}"],
            stdout=log, stderr=subprocess.STDOUT,
            env={"PATH": "/usr/bin:/bin", "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"},
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                self._get(self.directory_url)
                return
            except OSError:
                if self._pebble.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pebble did not start:\n{(self.workdir / 'pebble.log').read_text()}") from None
                time.sleep(0.3)

    def _get(self, url: str) -> str:
        context = ssl.create_default_context(cafile=str(self.workdir / "ca.pem"))
        with urllib.request.urlopen(url, context=context, timeout=10) as response:
            return str(response.read().decode())

    def roots_pem(self) -> str:
        """Root certificate of the chains pebble issues (new at every pebble start)."""
        return self._get(f"https://{self.address}:{MANAGEMENT_PORT + self.port_offset}/roots/0")

    def point(self, domain: str, ip: str | None) -> None:
        """Create (or, with None, remove) the A record pebble's validation sees for ``domain``."""
        if ip is None:
            self.records.pop(domain, None)
        else:
            self.records[domain] = ip
        self._restart_dns()

    def _restart_dns(self) -> None:
        if self._dns is not None:
            self._dns.send_signal(signal.SIGTERM)
            self._dns.wait(10)
        argv = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts",
                f"--port={DNS_PORT + self.port_offset}", "--listen-address=127.0.0.1", "--bind-interfaces",
                f"--pid-file={self.workdir / 'dnsmasq.pid'}", "--log-facility=-"]
        # Instances' own names (`<container>.lxd`) resolve through LXD's dnsmasq on the bridge.
        argv.append(f"--server=/lxd/{self.address}")
        argv += [f"--host-record={domain},{ip}" for domain, ip in sorted(self.records.items())]
        log = (self.workdir / "dnsmasq.log").open("ab")
        self._dns = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        time.sleep(0.3)
        if self._dns.poll() is not None:
            raise RuntimeError(f"dnsmasq did not start:\n{(self.workdir / 'dnsmasq.log').read_text()}")

    def stop(self) -> None:
        for process in (self._pebble, self._dns):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)


# --- what a browser sees, from the host ---------------------------------------------------


def verified_context(roots_pem: str) -> ssl.SSLContext:
    """Trusts only pebble's root: a self-signed or otherwise wrong chain fails the handshake."""
    context = ssl.create_default_context(cadata=roots_pem)
    return context


def chain_context(roots_pem: str) -> ssl.SSLContext:
    """Verifies the chain against pebble's root, not the name: for connections made to an
    address (served_certificate checks the name)."""
    context = verified_context(roots_pem)
    context.check_hostname = False
    return context


def unverified_context() -> ssl.SSLContext:
    """For a certificate that is self-signed by design (the local cloud's default)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def served_certificate(ip: str, domain: str, roots_pem: str) -> dict[str, Any]:
    """The certificate ``ip`` serves for ``domain``, after full verification (chain to pebble's
    root, name = domain). Raises ssl.SSLCertVerificationError otherwise."""
    with (socket.create_connection((ip, 443), timeout=10) as raw,
          verified_context(roots_pem).wrap_socket(raw, server_hostname=domain) as tls):
        cert: dict[str, Any] = tls.getpeercert()
        return cert


def self_signed_served(ip: str, domain: str) -> bool:
    """Whether ``ip`` serves Castelet's self-signed certificate for ``domain``."""
    with (socket.create_connection((ip, 443), timeout=10) as raw,
          unverified_context().wrap_socket(raw, server_hostname=domain) as tls):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return b"Castelet self-signed" in der


def http_get(ip: str, domain: str, path: str, roots_pem: str | None = None) -> http.client.HTTPResponse:
    """GET over http (no roots) or verified https, with the Host header of the site."""
    if roots_pem is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(ip, 80, timeout=15)
    else:
        conn = http.client.HTTPSConnection(ip, 443, timeout=15, context=chain_context(roots_pem))
    conn.request("GET", path, headers={"Host": domain})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


@dataclass
class RenewalResult:
    serial_before: str
    serial_after: str
    requests: int
    failures: list[str]


def renew_under_load(container: str, ip: str, domain: str, roots_pem: str, path: str = "/") -> RenewalResult:
    """Force a renewal with certbot on the instance while requests keep coming from the host:
    the deploy hook reloads the web server gracefully, so no request may fail."""
    before = served_certificate(ip, domain, roots_pem)["serialNumber"]
    failures: list[str] = []
    count = 0
    stop = threading.Event()

    def load() -> None:
        nonlocal count
        while not stop.is_set():
            try:
                status = http_get(ip, domain, path, roots_pem).status
                if status >= 500:
                    failures.append(f"HTTP {status}")
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
            count += 1

    worker = threading.Thread(target=load)
    worker.start()
    try:
        # In the environment Debian's certbot.service renews with (its drop-in hands certbot the
        # private ACME CA, which the system trust store does not hold).
        unit_env = subprocess.run(["lxc", "exec", container, "--", "systemctl", "show", "certbot.service",
                                   "--property=Environment", "--value"], check=True, capture_output=True,
                                  text=True).stdout.split()
        subprocess.run(["lxc", "exec", container, *(f"--env={pair}" for pair in unit_env), "--", "certbot", "renew",
                        "--force-renewal", "--no-random-sleep-on-renew", "--non-interactive"],
                       check=True, capture_output=True, text=True)
        time.sleep(2)  # requests after the reload
    finally:
        stop.set()
        worker.join(30)
    after = served_certificate(ip, domain, roots_pem)["serialNumber"]
    return RenewalResult(before, after, count, failures)


def check_https_site(container: str, ip: str, domain: str, pebble: Pebble, health_path: str) -> None:
    """Everything issue 9 promises a visitor: a pebble-issued certificate for the domain, port 80
    redirecting to https, HSTS, and a renewal with no failed request. Raises AssertionError."""
    roots = pebble.roots_pem()
    cert = served_certificate(ip, domain, roots)
    assert ("DNS", domain) in cert["subjectAltName"], cert
    redirect = http_get(ip, domain, "/some/page?x=1")
    assert redirect.status == 301, redirect.status
    assert redirect.getheader("Location") == f"https://{domain}/some/page?x=1", redirect.getheader("Location")
    page = http_get(ip, domain, health_path, roots)
    assert page.status == 200, page.status
    assert (page.getheader("Strict-Transport-Security") or "").startswith("max-age="), page.getheaders()
    # The private ACME CA is trusted by certbot alone: the system trust store (apt, pip, npm, git,
    # restic) refuses its API, which answers when given that CA.
    def curl(*args: str) -> int:
        return subprocess.run(["lxc", "exec", container, "--", "curl", "-sS", "-o", "/dev/null", "--max-time", "20",
                               *args, pebble.directory_url], capture_output=True, check=False).returncode
    assert curl() == 60, "the system trust store of the instance trusts the private ACME CA"
    assert curl("--cacert", "/etc/castelet/acme-ca.pem") == 0, "certbot's CA bundle does not open the ACME API"
    renewal = renew_under_load(container, ip, domain, roots, health_path)
    assert renewal.serial_after != renewal.serial_before, "the renewed certificate is not served"
    assert renewal.requests > 0 and renewal.failures == [], renewal
