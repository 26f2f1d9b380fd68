"""Serves bytes to the instances over HTTP on the host's bridge address: release archives and
stand-ins (the real ones cannot be downloaded in CI). Used by conftest.py and tests/bench.py."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serving(address: str) -> Iterator[tuple[str, dict[str, bytes]]]:
    """(base URL, {path: bytes}): what the dict holds at request time is served, 404 otherwise."""
    served: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = served.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((address, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://{address}:{server.server_address[1]}", served
    finally:
        server.shutdown()
