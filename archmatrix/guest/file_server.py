"""The file the `network` check has a guest fetch: random bytes, served over HTTP on the loopback only.

The guest reaches it through its user-mode network's gateway (10.0.2.2 is the
libvirt host's 127.0.0.1). Only one unguessable path answers, read-only, and
only while the run needs it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

GATEWAY = "10.0.2.2"  # QEMU's user-mode network: the host's loopback, seen from the guest
FILE_BYTES = 256 * 1024


class LoopbackFile:
    def __init__(self, size: int = FILE_BYTES):
        self.data = os.urandom(size)
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.path = "/" + secrets.token_urlsafe(16)
        self.requests = 0
        served = self

        class OneFile(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path != served.path:
                    self.send_error(404)
                    return
                served.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(len(served.data)))
                self.end_headers()
                self.wfile.write(served.data)

            def log_message(self, *args) -> None:
                pass  # no stderr chatter in the test output

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), OneFile)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="archmatrix-file-server", daemon=True)
        self._thread.start()

    def url(self, port: int | None = None) -> str:
        """The URL a guest fetches; `port` is where the host forwards to us (a remote host's loopback)."""
        return f"http://{GATEWAY}:{port or self.port}{self.path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
