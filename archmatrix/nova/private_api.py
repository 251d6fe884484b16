"""The private functions of Nova's libvirt driver that the bridge calls, with the parameters it calls them with.

No public method of the driver returns a domain's XML without creating disks and starting the domain, nor the
arch traits alone (archmatrix/nova/bridge/cases.py, runs.py). Every Nova answer says what its driver has
(the bridge's "private_api"); a Nova whose functions differ from these is named here before its answers are
trusted (scenarios/test_nova_versions.py asks every pinned Nova).
"""

from __future__ import annotations

EXPECTED = {
    "_get_guest_xml": ["self", "context", "instance", "network_info", "disk_info", "image_meta"],
    "_get_cpu_arch_traits": ["self"],
    "_get_cpu_emulation_arch_traits": ["self"],
}


def changed(private_api: dict[str, list[str] | None]) -> list[str]:
    """What a Nova's driver has that differs from what the bridge calls: empty when the bridge fits it."""
    problems = []
    for name, expected in EXPECTED.items():
        found = private_api.get(name)
        if found is None:
            problems.append(f"LibvirtDriver.{name} is gone")
        elif found[:len(expected)] != expected:
            problems.append(f"LibvirtDriver.{name} takes ({', '.join(found)}), the bridge passes "
                            f"({', '.join(expected)})")
    return problems
