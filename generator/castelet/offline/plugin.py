"""Castelet's plan-only stand-in for terraform-provider-openstack, as a Terraform plugin.

Run by Terraform (never by hand) through the launcher that :mod:`castelet.offline.install`
writes. It speaks go-plugin (protocol 1, Terraform plugin protocol 6, automatic mutual TLS over a
Unix socket) on the ``tf`` package's generated gRPC code, and serves the OpenStack provider 3.0.0
schema converted from the cdktf bindings. It validates and plans; it refuses to apply or import.

Imports are kept lean: Terraform starts this process several times per command.
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from tf.gen import grpc_controller_pb2 as controller_pb
from tf.gen import grpc_controller_pb2_grpc as controller_rpc
from tf.gen import grpc_stdio_pb2_grpc as stdio_rpc
from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc

from castelet.offline import standin
from castelet.offline.standin import APPLY_REFUSED, SCHEMA_JSON_ENV, SCHEMA_PROTO_ENV, STANDIN_NAME, Problem

JSON = dict[str, Any]

_MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
_MAGIC_COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def _diagnostics(problems: list[Problem]) -> list[pb.Diagnostic]:
    result = []
    for problem in problems:
        steps = []
        for kind, value in problem.path:
            if kind == "attribute":
                steps.append(pb.AttributePath.Step(attribute_name=str(value)))
            elif isinstance(value, int):
                steps.append(pb.AttributePath.Step(element_key_int=value))
            else:
                steps.append(pb.AttributePath.Step(element_key_string=value))
        result.append(pb.Diagnostic(
            severity=pb.Diagnostic.WARNING if problem.warning else pb.Diagnostic.ERROR,
            summary=problem.summary,
            detail=problem.detail,
            attribute=pb.AttributePath(steps=steps) if steps else None,
        ))
    return result


def _error(summary: str, detail: str) -> list[pb.Diagnostic]:
    return _diagnostics([Problem(summary, detail)])


def _value(dynamic: pb.DynamicValue) -> Any:
    if dynamic.msgpack:
        return standin.decode(dynamic.msgpack)
    if dynamic.json:
        return json.loads(dynamic.json)
    return None


def _dynamic(value: Any) -> pb.DynamicValue:
    return pb.DynamicValue(msgpack=standin.encode(value))


class StandinProvider(rpc.ProviderServicer):  # type: ignore[misc]
    """The tfplugin6 Provider service of the stand-in."""

    def __init__(self, schema_response: bytes, schema_json: Path) -> None:
        self._response_bytes = schema_response
        self._schema_json = schema_json
        self._document: JSON | None = None
        self._lock = threading.Lock()

    def _schemas(self, kind: str) -> JSON:
        """``resource_schemas`` or ``data_source_schemas`` of the JSON document, loaded once."""
        with self._lock:
            if self._document is None:
                document = json.loads(self._schema_json.read_text())
                self._document = next(iter(document["provider_schemas"].values()))
            schemas: JSON = self._document[kind]
            return schemas

    def _block(self, kind: str, type_name: str) -> JSON | None:
        schema = self._schemas(kind).get(type_name)
        return None if schema is None else dict(schema["block"])

    def GetMetadata(self, request: Any, context: Any) -> Any:
        response = pb.GetProviderSchema.Response.FromString(self._response_bytes)
        return pb.GetMetadata.Response(
            server_capabilities=response.server_capabilities,
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in response.resource_schemas],
            data_sources=[pb.GetMetadata.DataSourceMetadata(type_name=n) for n in response.data_source_schemas],
        )

    def GetProviderSchema(self, request: Any, context: Any) -> Any:
        return pb.GetProviderSchema.Response.FromString(self._response_bytes)

    def ValidateProviderConfig(self, request: Any, context: Any) -> Any:
        return pb.ValidateProviderConfig.Response()

    def ConfigureProvider(self, request: Any, context: Any) -> Any:
        return pb.ConfigureProvider.Response()  # any configuration: no cloud is ever contacted

    def _validate(self, kind: str, type_name: str, config: pb.DynamicValue) -> list[pb.Diagnostic]:
        block = self._block(kind, type_name)
        if block is None:
            return _error("Unknown type", f"{STANDIN_NAME}: no schema for {type_name}")
        return _diagnostics(standin.computed_only_problems(type_name, block, _value(config)))

    def ValidateResourceConfig(self, request: Any, context: Any) -> Any:
        diagnostics = self._validate("resource_schemas", request.type_name, request.config)
        return pb.ValidateResourceConfig.Response(diagnostics=diagnostics)

    def ValidateDataResourceConfig(self, request: Any, context: Any) -> Any:
        diagnostics = self._validate("data_source_schemas", request.type_name, request.config)
        return pb.ValidateDataResourceConfig.Response(diagnostics=diagnostics)

    def UpgradeResourceState(self, request: Any, context: Any) -> Any:
        block = self._block("resource_schemas", request.type_name)
        if block is None or not request.raw_state.json:
            return pb.UpgradeResourceState.Response(
                diagnostics=_error("Cannot read state", f"{STANDIN_NAME}: no JSON state for {request.type_name}")
            )
        state = standin.conform(block, json.loads(request.raw_state.json))
        return pb.UpgradeResourceState.Response(upgraded_state=_dynamic(state))

    def ReadResource(self, request: Any, context: Any) -> Any:
        return pb.ReadResource.Response(new_state=request.current_state, private=request.private)

    def PlanResourceChange(self, request: Any, context: Any) -> Any:
        block = self._block("resource_schemas", request.type_name)
        proposed = _value(request.proposed_new_state)
        if block is None:
            return pb.PlanResourceChange.Response(
                diagnostics=_error("Unknown type", f"{STANDIN_NAME}: no schema for {request.type_name}")
            )
        if _value(request.prior_state) is None:
            proposed = standin.plan_create(block, proposed)
        # An update keeps Terraform's proposal (prior computed values); the stand-in cannot know
        # which changes force a replacement.
        return pb.PlanResourceChange.Response(planned_state=_dynamic(proposed), planned_private=request.prior_private)

    def ApplyResourceChange(self, request: Any, context: Any) -> Any:
        detail = (
            "This provider only validates and plans offline, from the schema of "
            "terraform-provider-openstack; it never calls an OpenStack API. Install the real provider "
            "(terraform init with registry access) and apply with it."
        )
        return pb.ApplyResourceChange.Response(diagnostics=_error(APPLY_REFUSED, detail))

    def ImportResourceState(self, request: Any, context: Any) -> Any:
        return pb.ImportResourceState.Response(
            diagnostics=_error(f"{STANDIN_NAME}: import is not possible offline", APPLY_REFUSED)
        )

    def MoveResourceState(self, request: Any, context: Any) -> Any:
        return pb.MoveResourceState.Response(
            diagnostics=_error(f"{STANDIN_NAME}: moving state is not supported", APPLY_REFUSED)
        )

    def ReadDataSource(self, request: Any, context: Any) -> Any:
        block = self._block("data_source_schemas", request.type_name)
        if block is None:
            return pb.ReadDataSource.Response(
                diagnostics=_error("Unknown type", f"{STANDIN_NAME}: no schema for {request.type_name}")
            )
        state, problems = standin.read_data_source(request.type_name, block, _value(request.config))
        return pb.ReadDataSource.Response(state=_dynamic(state), diagnostics=_diagnostics(problems))

    def GetFunctions(self, request: Any, context: Any) -> Any:
        return pb.GetFunctions.Response()

    def StopProvider(self, request: Any, context: Any) -> Any:
        return pb.StopProvider.Response()


class _Controller(controller_rpc.GRPCControllerServicer):  # type: ignore[misc]
    def __init__(self, stopped: threading.Event) -> None:
        self._stopped = stopped

    def Shutdown(self, request: Any, context: Any) -> Any:
        self._stopped.set()
        return controller_pb.Empty()


class _Stdio(stdio_rpc.GRPCStdioServicer):  # type: ignore[misc]
    def StreamStdio(self, request: Any, context: Any) -> Any:
        return iter(())


def _certificate() -> tuple[bytes, bytes, bytes]:
    """(key PEM, certificate PEM, certificate DER): a fresh self-signed P-256 cert for localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=True, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


def _schema_paths() -> tuple[Path, Path]:
    json_path, proto_path = os.environ.get(SCHEMA_JSON_ENV), os.environ.get(SCHEMA_PROTO_ENV)
    if json_path and proto_path:
        return Path(json_path), Path(proto_path)
    from castelet.offline.schema import ensure_schema

    files = ensure_schema()
    return files.json_path, files.proto_path


def serve() -> int:
    """Run the plugin until Terraform shuts it down (or goes away)."""
    if os.environ.get(_MAGIC_COOKIE_KEY) != _MAGIC_COOKIE:
        print(f"{STANDIN_NAME}: this is a Terraform plugin; `castelet check` runs it for you.", file=sys.stderr)
        return 1
    json_path, proto_path = _schema_paths()
    stopped = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rpc.add_ProviderServicer_to_server(StandinProvider(proto_path.read_bytes(), json_path), server)
    controller_rpc.add_GRPCControllerServicer_to_server(_Controller(stopped), server)
    stdio_rpc.add_GRPCStdioServicer_to_server(_Stdio(), server)

    # Terraform checks this server certificate (sent in the handshake line). Its own client
    # certificate (PLUGIN_CLIENT_CERT) is a P-521 key that gRPC's BoringSSL does not ask for, so
    # client authentication cannot be required; the socket lives in a 0700 temporary directory.
    key_pem, cert_pem, cert_der = _certificate()
    credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)
    parent = os.getppid()
    with tempfile.TemporaryDirectory(prefix="castelet-plugin-") as tmp:
        socket_path = f"{tmp}/plugin.sock"
        server.add_secure_port(f"unix://{socket_path}", credentials)
        server.start()
        certificate = base64.b64encode(cert_der).decode().rstrip("=")
        print(f"1|6|unix|{socket_path}|grpc|{certificate}", flush=True)
        while not stopped.wait(0.5):
            if os.getppid() != parent:  # Terraform died without shutting us down
                break
        server.stop(grace=0.1)
    return 0


def main() -> None:
    sys.exit(serve())


if __name__ == "__main__":
    main()
