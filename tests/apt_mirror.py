"""A Debian mirror on the loopback for apt's own tests: real apt, no network, faults planted in its files."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

STANZA = ("Package: filler{n}\nVersion: 1.0\nArchitecture: amd64\nFilename: pool/filler{n}.deb\nSize: 1\n"
          "SHA256: {zeros}\nDescription: filler {pad}\n\n")


def write_suite(root: Path, suite: str, packages: int, wrong_size: bool = False) -> None:
    """dists/SUITE with a main/binary-amd64 index of `packages` stanzas; `wrong_size`: its Release file lies."""
    index = root / "dists" / suite / "main" / "binary-amd64" / "Packages"
    index.parent.mkdir(parents=True)
    data = "".join(STANZA.format(n=n, zeros="0" * 64, pad="x" * 200) for n in range(packages)).encode()
    index.write_bytes(data)
    size = len(data) + (17 if wrong_size else 0)
    (root / "dists" / suite / "Release").write_text(
        f"Suite: {suite}\nCodename: {suite}\nArchitectures: amd64\nComponents: main\n"
        f"Date: Sun, 06 Dec 2026 00:00:00 UTC\nSHA256:\n {hashlib.sha256(data).hexdigest()} {size} "
        f"main/binary-amd64/Packages\n")


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def loopback_mirror(root: Path) -> Iterator[str]:
    """Serve `root` on 127.0.0.1; yields its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
