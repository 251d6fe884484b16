"""Which libvirt hosts a run verifies: a label, a URI, and an optional SSH way in.

From repeated `--libvirt-uri [LABEL=]URI`, a hosts file, and the container
hosts the run starts itself. With none given, the run verifies this
machine's `qemu:///system`. Labels name a host in test ids (`-k LABEL`) and
in the matrix.
"""

from __future__ import annotations

import os
import platform
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from archmatrix.inputs import InputError, at, reraised_as, shown
from archmatrix.inputs.files import check_input_file, read_input_text
from archmatrix.inputs.numbers import PORT, check_number
from archmatrix.inputs.text import check_text, control_characters
from archmatrix.ssh.shell import SshAccess

DEFAULT_URI = "qemu:///system"
# Matched whole (fullmatch): a '$' would also match before a final newline, and took "lab\n".
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,252}")
LABEL_VALID = "letters, digits, '_' and '.', starting with a letter or digit, at most 253 characters"
HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")  # a name, an IPv4 or IPv6 address
URI_VALID = "a libvirt URI such as qemu:///system, qemu+ssh://root@host/system or qemu+tcp://host/system"
SSH_FORM = "USER@HOST[:PORT][,key=PATH][,fingerprint=SHA256:...][,known_hosts=PATH]"
HOSTS_FILE_VALID = ("[[host]] tables, each with uri = \"...\" and optional label, ssh (USER@HOST[:PORT]), "
                    "ssh_key, ssh_fingerprint (SHA256:...), ssh_known_hosts")
HOSTS_FILE_KEYS = {"label", "uri", "ssh", "ssh_key", "ssh_fingerprint", "ssh_known_hosts"}
UNAVAILABLE = "unavailable"  # key in HostSpec.details: why a host the run starts could not be started
HOSTS_FILE_LARGEST = 1024 * 1024  # bytes: a fleet of thousands of hosts is far smaller
FIELD_VALID = {"uri": URI_VALID, "label": LABEL_VALID, "ssh": "USER@HOST[:PORT]",
               "ssh_key": "the path of a private key file",
               "ssh_fingerprint": "SHA256:... as `ssh-keygen -lf` prints it",
               "ssh_known_hosts": "the path of a known_hosts file"}


class HostSpecError(InputError):
    """A host given on the command line or in a hosts file that cannot be used; says what is valid."""


@dataclass(frozen=True, repr=False)
class HostSpec:
    label: str
    uri: str
    kind: str = "remote"  # "local" (this machine's libvirt), "remote", "container", "lab"
    ssh: SshAccess | None = None
    details: dict = field(default_factory=dict)  # e.g. a container's release and versions

    @property
    def reconnect_s(self) -> float:
        """How long a lost connection may take to come back: a libvirtd restarts; a removed container does not."""
        return 5.0 if self.kind == "container" else 60.0

    @property
    def timeout_factor(self) -> float:
        """How much slower than this machine its guests boot: a lab host's run under nested emulation."""
        return float(self.details.get("timeout_factor", 1.0))

    @property
    def tcg_slowdown(self) -> float:
        """How many times longer its TCG guests boot than this machine's: for ordering cells, not for bounds."""
        return float(self.details.get("tcg_slowdown", 1.0))

    @property
    def is_local(self) -> bool:
        """This machine's libvirt: boot files can be staged and /proc read here."""
        return self.kind == "local"

    def __repr__(self) -> str:
        # Tracebacks print their frames' arguments: the URI's user and password must not show there either.
        return f"HostSpec(label={self.label!r}, uri={redact_uri(self.uri)!r}, kind={self.kind!r})"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HostSpec:
        ssh = data.get("ssh")
        if ssh:
            ssh = SshAccess(**{**ssh, "proxy_command": tuple(ssh.get("proxy_command") or ())})
        return cls(data["label"], data["uri"], data["kind"], ssh, data.get("details") or {})


def uri_is_local(uri: str) -> bool:
    """qemu:///system and qemu:///session of this machine; a host, a transport or a socket elsewhere is not."""
    parts = urlsplit(uri)
    transport = parts.scheme.partition("+")[2]
    return not parts.netloc and transport in ("", "unix") and "socket=" not in parts.query


def redact_uri(uri: str) -> str:
    """The URI as given, less any user name and password: fit for logs and reports."""
    return re.sub(r"//[^/@]*@", "//", uri, count=1)


def check_label(label: object, where: str, what: str = "host label") -> str:
    if not isinstance(label, str) or LABEL.fullmatch(label) is None:
        raise HostSpecError(f"{at(where)}{what} {shown(label)} is not valid; valid: {LABEL_VALID}")
    return label


def check_uri(uri: object, where: str) -> str:
    """Text with a scheme, and a port (if any) from 1 to 65535; messages quote it without user and password."""
    if not isinstance(uri, str):
        raise HostSpecError(f"{at(where)}{shown(uri)} is {type(uri).__name__}, not text; valid: {URI_VALID}")
    with reraised_as(HostSpecError):
        check_text(redact_uri(uri), where, URI_VALID)
        if control_characters(uri):  # in the user or password, which the message must not show
            raise HostSpecError(f"{at(where)}the user or password of {shown(redact_uri(uri))} holds control "
                                f"characters; valid: {URI_VALID}, without control characters")
        not_uri = HostSpecError(f"{at(where)}{redact_uri(uri)!r} is not a libvirt URI; valid: {URI_VALID}")
        try:
            parts = urlsplit(uri)
        except ValueError:  # e.g. an unclosed [ of an IPv6 address
            raise not_uri from None
        if not parts.scheme:
            raise not_uri
        _, port = _host_port(parts.netloc.rpartition("@")[2])
        if port is not None:
            check_number(port, f"{at(where)}the port of {shown(redact_uri(uri))}", PORT)
        try:
            parts.port  # noqa: B018 -- what urllib (and so ssh_from_uri) cannot take either
        except ValueError:
            raise not_uri from None
    return uri


def _host_port(hostport: str) -> tuple[str, str | None]:
    """HOST[:PORT] or [IPV6][:PORT] -> (host, port text or None)."""
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        return host, rest[1:] if rest.startswith(":") else None
    host, colon, port = hostport.partition(":")
    return host, port if colon else None


def default_label(uri: str) -> str:
    if uri_is_local(uri):
        return re.sub(r"[^A-Za-z0-9_.]", "_", platform.node().split(".")[0]) or "local"
    host = urlsplit(uri).hostname
    return re.sub(r"[^A-Za-z0-9_.]", "_", host) if host else "remote"


def ssh_from_uri(uri: str) -> SshAccess | None:
    """A qemu+ssh:// URI is itself a way into the host (its keyfile and known_hosts parameters too)."""
    parts = urlsplit(uri)
    if parts.scheme.partition("+")[2] not in ("ssh", "libssh") or not parts.hostname:
        return None
    query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
    return SshAccess(user=parts.username or "root", host=parts.hostname, port=parts.port or 22,
                     key=query.get("keyfile"), known_hosts=query.get("known_hosts"))


def parse_ssh(value: str, where: str) -> SshAccess:
    """USER@HOST[:PORT][,key=PATH][,fingerprint=SHA256:...][,known_hosts=PATH]"""
    with reraised_as(HostSpecError):
        check_text(value, where, SSH_FORM)
    target, *extras = value.split(",")
    settings = {}
    for extra in extras:
        key, sep, setting = extra.partition("=")
        if not sep or key not in ("key", "fingerprint", "known_hosts"):
            raise HostSpecError(f"{where}: unknown SSH setting {extra!r}; valid: key=, fingerprint=, known_hosts=")
        settings[key] = setting
    return ssh_access(target, where, {key: (f"{where}, {key}", setting) for key, setting in settings.items()},
                      SSH_FORM)


def ssh_access(target: str, where: str, settings: dict[str, tuple[str, str]], form: str) -> SshAccess:
    """USER@HOST[:PORT], with its settings: "key", "fingerprint", "known_hosts" -> (where given, value).

    A key or known_hosts file must be a readable regular file now: SSH reads them once the run is under way.
    """
    user, at, hostport = target.rpartition("@")
    host, port = _host_port(hostport)
    if not at or not user or not host or HOST.fullmatch(host) is None:
        raise HostSpecError(f"{where}: {shown(target)} is not of the form {form}; valid: a user name, '@', and a "
                            f"host name or address, optionally ':' and a port")
    with reraised_as(HostSpecError):
        port_number = 22 if port is None else check_number(port, f"{where} port", PORT)
        for name, (named, value) in settings.items():
            if name == "fingerprint":
                if not value.startswith("SHA256:") or value == "SHA256:" or control_characters(value):
                    raise HostSpecError(f"{named}: {shown(value)} is not valid; valid: SHA256:... as "
                                        f"`ssh-keygen -lf` prints it")
            else:  # SSH expands ~ in a known_hosts path (archmatrix/hosts/ssh.py), not in a key's
                check_input_file(os.path.expanduser(value) if name == "known_hosts" else value, named)
    key, fingerprint, known_hosts = (settings.get(name, (None, None))[1] for name in ("key", "fingerprint",
                                                                                      "known_hosts"))
    return SshAccess(user, host, port_number, key, fingerprint, known_hosts)


def spec_for(uri: str, label: str | None = None, ssh: SshAccess | None = None,
             where: str = "--libvirt-uri") -> HostSpec:
    check_uri(uri, where)
    label = check_label(default_label(uri) if label is None else label, where)
    kind = "local" if uri_is_local(uri) else "remote"
    return HostSpec(label, uri, kind, ssh or ssh_from_uri(uri))


def specs_from_uris(values: list[str]) -> list[HostSpec]:
    """`--libvirt-uri [LABEL=]URI` values; a label is what stands before the first '=' if it has no ':'."""
    specs = []
    for value in values:
        head, sep, rest = value.partition("=")
        if sep and ":" not in head:
            specs.append(spec_for(rest, head))
        else:
            specs.append(spec_for(value))
    return specs


def specs_from_file(path: Path) -> list[HostSpec]:
    """A TOML hosts file: [[host]] tables with uri, and optional label, ssh, ssh_key, ssh_fingerprint."""
    with reraised_as(HostSpecError):
        text = read_input_text(path, "--hosts-file", HOSTS_FILE_LARGEST)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise HostSpecError(f"--hosts-file {path}: cannot read it: {error}; valid: TOML of {HOSTS_FILE_VALID}") \
            from None
    hosts = data.get("host")
    if set(data) != {"host"} or not isinstance(hosts, list) or not hosts or not all(
            isinstance(entry, dict) for entry in hosts):
        raise HostSpecError(f"--hosts-file {path}: no [[host]] tables (or something else beside them); "
                            f"valid: {HOSTS_FILE_VALID}")
    return [_spec_from_table(entry, f"--hosts-file {path}, host {number}")
            for number, entry in enumerate(hosts, start=1)]


def _spec_from_table(entry: dict, where: str) -> HostSpec:
    unknown = set(entry) - HOSTS_FILE_KEYS
    if unknown or "uri" not in entry:
        raise HostSpecError(f"{where}: needs uri; unknown keys: {', '.join(sorted(unknown)) or 'none'}; "
                            f"valid keys: {', '.join(sorted(HOSTS_FILE_KEYS))}")
    with reraised_as(HostSpecError):
        for key, value in entry.items():
            if key != "label":  # a label's own check says what a label may hold
                check_text(value, f"{where}: {key}", FIELD_VALID[key])
    settings = {name: (f"{where}: ssh_{name}", entry[f"ssh_{name}"]) for name in ("key", "fingerprint", "known_hosts")
                if f"ssh_{name}" in entry}
    if settings and "ssh" not in entry:
        raise HostSpecError(f"{where}: {', '.join(f'ssh_{name}' for name in settings)} without ssh; "
                            f"valid: ssh = \"USER@HOST[:PORT]\" beside them")
    ssh = ssh_access(entry["ssh"], f"{where}: ssh", settings, "USER@HOST[:PORT]") if "ssh" in entry else None
    label = entry.get("label")
    if label is not None:
        check_label(label, where, "label")
    return spec_for(entry["uri"], label, ssh, where)


def check_unique(specs: list[HostSpec]) -> list[HostSpec]:
    seen: dict[str, HostSpec] = {}
    for spec in specs:
        if spec.label in seen:
            raise HostSpecError(f"two hosts are labelled {spec.label!r} ({redact_uri(seen[spec.label].uri)} and "
                                f"{redact_uri(spec.uri)}); valid: a label of its own for each, LABEL=URI or "
                                f"label = \"...\" in a hosts file")
        seen[spec.label] = spec
    return specs
