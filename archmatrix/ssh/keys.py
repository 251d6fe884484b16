"""SSH keys, for hosts and guests alike: new key pairs, fingerprints, and the one pinned host-key policy.

Nothing is learned on first use: a host key is accepted only when it is the one a guest printed on its console,
the fingerprint pinned for a host (a container's, a lab's, one given by the user), or in a known_hosts file.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

KEY_FILE = "guest-ssh-key"  # a run's key pair, in its run directory (mode 0600)


def new_key_pair() -> tuple[bytes, str]:
    """A new ed25519 key: its OpenSSH private key file's content, and its public key line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode()


def write_private(path: Path, private: bytes) -> None:
    """A private key file only its owner can read, never one that already exists."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(private)


def fingerprint(blob: bytes) -> str:
    """OpenSSH's SHA256 fingerprint of a public key blob, as `ssh-keygen -lf` prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def fingerprint_of_line(public_line: str) -> str:
    """The fingerprint of an `ssh-ed25519 <base64>` line."""
    return fingerprint(base64.b64decode(public_line.split()[1]))


def fingerprint_of(key) -> str:
    """The fingerprint of a paramiko key."""
    return fingerprint(key.asbytes())


def key_from_line(line: str):
    """The paramiko key of an `ssh-ed25519 <base64>` line (a guest prints it on its console), or None."""
    import paramiko

    parts = line.split()
    if len(parts) < 2 or parts[0] != "ssh-ed25519":
        return None
    try:
        return paramiko.Ed25519Key(data=base64.b64decode(parts[1]))
    except (ValueError, paramiko.SSHException):
        return None


class HostKeyRefused(RuntimeError):
    """The server's host key is not the one pinned for it."""


def pinned_policy(where: str, *, key=None, fingerprint_pin: str | None = None, error=HostKeyRefused):
    """paramiko's policy for a server whose host key is known in advance: `key` itself, or its fingerprint.

    `error` is the exception raised on a mismatch (the caller's own kind, naming the host or guest).
    """
    import paramiko

    class Pinned(paramiko.MissingHostKeyPolicy):
        def missing_host_key(self, client, hostname, seen) -> None:
            if key is not None:
                if seen.get_name() != key.get_name() or seen.asbytes() != key.asbytes():
                    raise error(f"SSH to {where}: the host key is {fingerprint_of(seen)}, not the "
                                f"{fingerprint_of(key)} the guest printed on its console; refusing")
                return
            if fingerprint_pin is None:
                raise error(f"SSH to {where}: no host key is known for it; refusing {fingerprint_of(seen)}")
            if fingerprint_of(seen) != fingerprint_pin:
                raise error(f"SSH to {where}: the host key is {fingerprint_of(seen)}, not the pinned "
                            f"{fingerprint_pin}; refusing to connect")

    return Pinned()


@dataclass(frozen=True)
class RunKey:
    """A run's key pair: its private half in the run directory, its public half on guests' command lines."""

    private_path: Path
    public_blob: str  # base64 of the ed25519 public key

    @classmethod
    def create(cls, run_dir: Path) -> RunKey:
        private, _ = new_key_pair()
        write_private(run_dir / KEY_FILE, private)
        return cls.load(run_dir)

    @classmethod
    def load(cls, run_dir: Path) -> RunKey:
        import paramiko

        path = run_dir / KEY_FILE
        return cls(path, paramiko.Ed25519Key.from_private_key_file(str(path)).get_base64())

    def paramiko_key(self):
        import paramiko

        return paramiko.Ed25519Key.from_private_key_file(str(self.private_path))
