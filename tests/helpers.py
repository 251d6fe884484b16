"""Recorded real data the offline tests judge: capabilities XML and guest observations."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from archmatrix.core.capabilities import HostCapabilities, parse_capabilities
from archmatrix.core.observation import Observation
from archmatrix.nova.driver import recorded_host

FIXTURES = Path(__file__).parent / "fixtures"

# This machine (Debian 12, libvirt 9.0, QEMU 7.2, x86_64), recorded with `virsh capabilities`.
THIS_HOST = "x86_64-debian12-this-ci-host.xml"
# Written from libvirt's own test data; the files cite their sources.
AARCH64_KVM_HOST = "aarch64-kvm-host.xml"
S390X_KVM_HOST = "s390x-kvm-host.xml"


def capabilities(name: str) -> HostCapabilities:
    return parse_capabilities((FIXTURES / "capabilities" / name).read_text())


def recorded_observation(name: str) -> Observation:
    """A real boot's observation, recorded on this machine by archmatrix.guest.observe."""
    return Observation.from_dict(json.loads((FIXTURES / "observations" / f"{name}.json").read_text()))


# `apt-get indextargets --format apt_sources.INDEX_FORMAT` on a Debian 12 machine with a
# deb822 debian.sources, plus what other machines have: backports, deb-src, a third-party
# repository whose suite is also "bookworm", and a "stable" suite name.
INDEX_TARGETS = "\n".join("\t".join(row) for row in [
    ("deb", "Packages", "Debian", "http://debian.mirror.example/debian/", "bookworm", "bookworm"),
    ("deb", "Translations", "Debian", "http://debian.mirror.example/debian/", "bookworm", "bookworm"),
    ("deb", "Packages", "Debian", "http://debian.mirror.example/debian/", "bookworm-updates", "bookworm-updates"),
    ("deb", "Packages", "Debian", "http://debian.mirror.example/debian-security/", "bookworm-security",
     "bookworm-security"),
    ("deb", "Packages", "Debian Backports", "http://debian.mirror.example/debian/", "bookworm-backports",
     "bookworm-backports"),
    ("deb-src", "Sources", "Debian", "http://debian.mirror.example/debian/", "bookworm", "bookworm"),
    ("deb", "Packages", "Docker", "https://vendor.example/linux/debian/", "bookworm", "bookworm"),
    ("deb", "Packages", "Debian", "http://mirror.example/debian/", "stable", "bookworm"),
]) + "\n"


@dataclass(frozen=True)
class NovaHost:
    """A host as Nova's driver would query it, recorded: capabilities and the domain capabilities Nova asks for.

    tests/fixtures/nova-hosts/NAME.json names the files and says where they came from.
    """

    name: str
    capabilities_xml: str
    domain_capabilities: dict[str, str]  # "virt_type/arch/machine" -> XML, as the bridge keys them
    host_arch: str
    extra: dict  # what else was recorded for Nova's queries: CPU model names, versions

    @property
    def capabilities(self) -> HostCapabilities:
        return parse_capabilities(self.capabilities_xml)

    def bridge_host(self) -> dict:
        """The bridge's recorded host (archmatrix/nova/driver.py recorded_host), with what else was recorded."""
        host = recorded_host(self.capabilities_xml, self.domain_capabilities, self.host_arch)
        host["host"].update(self.extra)
        return host


NOVA_HOSTS = ("x86_64-debian12", "aarch64-kvm", "s390x-kvm")


def nova_host(name: str) -> NovaHost:
    index = json.loads((FIXTURES / "nova-hosts" / f"{name}.json").read_text())
    return NovaHost(
        name=name, capabilities_xml=(FIXTURES / "capabilities" / index["capabilities"]).read_text(),
        domain_capabilities={key: (FIXTURES / "domcaps" / path).read_text()
                             for key, path in index["domain_capabilities"].items()},
        host_arch=index["host_arch"],
        extra={key: index[key] for key in ("cpu_model_names", "versions") if key in index})
