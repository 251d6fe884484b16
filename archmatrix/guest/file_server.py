"""The file the `network` check has a guest fetch: random bytes, served over HTTP on the loopback only.

The guest reaches it at archmatrix/guest/user_network.py's FILE_ADDRESS, which QEMU forwards (a `guestfwd`) to
this server's port on the libvirt host's loopback: the one thing of the host a guest's network reaches. Only
one unguessable path answers, read-only, and only while the run needs it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from archmatrix.guest.user_network import file_url

FILE_BYTES = 256 * 1024


class LoopbackFile:
    def __init__(self, size: int = FILE_BYTES):
        self.data = os.urandom(size)
        self.sha256 = hashlib.sha256(self.data).hexdigest()
        self.path = "/" + secrets.token_urlsafe(16)
        self.url = file_url(self.path)  # what a guest fetches, wherever its host serves the file
        self.requests = 0
        served = self

        class OneFile(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # a Content-Length on every answer: the connection outlives it

            def handle(self) -> None:
                # One connection per guest, opened by QEMU's guestfwd when the guest starts, carries each of the
                # guest's connections to the file in turn: it stays open after an answer (wget asks to close
                # its own), until QEMU closes it with the guest.
                while True:
                    self.raw_requestline = b""
                    self.handle_one_request()
                    if not self.raw_requestline:
                        return

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

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
