"""Which libvirt hosts a run verifies: a label, a URI, and an optional SSH way in.

From repeated `--libvirt-uri [LABEL=]URI`, a hosts file, and the container
hosts the run starts itself. With none given, the run verifies this
machine's `qemu:///system`. Labels name a host in test ids (`-k LABEL`) and
in the matrix.
"""

from __future__ import annotations

import platform
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from archmatrix.ssh.shell import SshAccess

DEFAULT_URI = "qemu:///system"
LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")
HOSTS_FILE_KEYS = {"label", "uri", "ssh", "ssh_key", "ssh_fingerprint", "ssh_known_hosts"}
UNAVAILABLE = "unavailable"  # key in HostSpec.details: why a host the run starts could not be started


class HostSpecError(ValueError):
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


def check_label(label: str, where: str) -> str:
    if not LABEL.match(label):
        raise HostSpecError(f"{where}: host label {label!r} is not valid; use letters, digits, '_' and '.', "
                            f"starting with a letter or digit")
    return label


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
    target, *extras = value.split(",")
    user, at, hostport = target.rpartition("@")
    host, _, port = hostport.partition(":")
    if not at or not user or not host:
        raise HostSpecError(f"{where}: {value!r} is not of the form USER@HOST[:PORT][,key=PATH]"
                            f"[,fingerprint=SHA256:...][,known_hosts=PATH]")
    options = {}
    for extra in extras:
        key, sep, setting = extra.partition("=")
        if not sep or key not in ("key", "fingerprint", "known_hosts"):
            raise HostSpecError(f"{where}: unknown SSH setting {extra!r}; valid: key=, fingerprint=, known_hosts=")
        options[key] = setting
    if "fingerprint" in options and not options["fingerprint"].startswith("SHA256:"):
        raise HostSpecError(f"{where}: fingerprint must be SHA256:... as `ssh-keygen -lf` prints it")
    try:
        port_number = int(port) if port else 22
    except ValueError:
        raise HostSpecError(f"{where}: port {port!r} is not a number") from None
    return SshAccess(user, host, port_number, options.get("key"), options.get("fingerprint"),
                     options.get("known_hosts"))


def spec_for(uri: str, label: str | None = None, ssh: SshAccess | None = None,
             where: str = "--libvirt-uri") -> HostSpec:
    if not urlsplit(uri).scheme:
        raise HostSpecError(f"{where}: {redact_uri(uri)!r} is not a libvirt URI (for example qemu:///system, "
                            f"qemu+ssh://root@host/system, qemu+tcp://host/system)")
    label = check_label(label or default_label(uri), where)
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
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise HostSpecError(f"--hosts-file {path}: cannot read it: {error}") from None
    hosts = data.get("host")
    if not isinstance(hosts, list) or not hosts:
        raise HostSpecError(f"--hosts-file {path}: no [[host]] tables; each needs uri = \"...\"")
    specs = []
    for number, entry in enumerate(hosts, start=1):
        where = f"--hosts-file {path}, host {number}"
        unknown = set(entry) - HOSTS_FILE_KEYS
        if unknown or "uri" not in entry:
            raise HostSpecError(f"{where}: needs uri; unknown keys: {', '.join(sorted(unknown)) or 'none'}; "
                                f"valid keys: {', '.join(sorted(HOSTS_FILE_KEYS))}")
        ssh = None
        if entry.get("ssh"):
            extras = [f"{key}={entry[f'ssh_{key}']}" for key in ("key", "fingerprint", "known_hosts")
                      if entry.get(f"ssh_{key}")]
            ssh = parse_ssh(",".join([entry["ssh"], *extras]), where)
        specs.append(spec_for(entry["uri"], entry.get("label"), ssh, where))
    return specs


def check_unique(specs: list[HostSpec]) -> list[HostSpec]:
    seen: dict[str, HostSpec] = {}
    for spec in specs:
        if spec.label in seen:
            raise HostSpecError(f"two hosts are labelled {spec.label!r} ({redact_uri(seen[spec.label].uri)} and "
                                f"{redact_uri(spec.uri)}); give each its own label, LABEL=URI")
        seen[spec.label] = spec
    return specs
