"""Questions asked of a running guest's QEMU through libvirt's monitor passthrough.

QEMU's own answers are the ground truth the domain XML is compared against:
which target it emulates, which machine it built, whether KVM is on, which media its drives hold.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from archmatrix.core.observation import QemuFacts

if TYPE_CHECKING:
    import libvirt


class QmpError(RuntimeError):
    """QEMU's monitor did not answer, or answered with an error."""


def ask(domain: libvirt.virDomain, command: str, arguments: dict | None = None) -> object:
    import libvirt
    import libvirt_qemu

    request = {"execute": command}
    if arguments:
        request["arguments"] = arguments
    try:
        reply = json.loads(libvirt_qemu.qemuMonitorCommand(domain, json.dumps(request), 0))
    except libvirt.libvirtError as error:
        raise QmpError(f"QMP {command} failed: {error}") from error
    if "error" in reply:
        raise QmpError(f"QMP {command} answered an error: {reply['error']}")
    return reply["return"]


def question_qemu(domain: libvirt.virDomain) -> QemuFacts:
    target = ask(domain, "query-target")
    kvm = ask(domain, "query-kvm")
    machine = ask(domain, "qom-get", {"path": "/machine", "property": "type"})
    version = ask(domain, "query-version")
    assert isinstance(target, dict) and isinstance(kvm, dict) and isinstance(machine, str)
    assert isinstance(version, dict)
    cpus = ask(domain, "query-cpus-fast")
    cpu_type = None
    if isinstance(cpus, list) and cpus:
        cpu_type = ask(domain, "qom-get", {"path": cpus[0]["qom-path"], "property": "type"})
    blocks = ask(domain, "query-block")
    media = tuple(block["inserted"]["file"] for block in (blocks if isinstance(blocks, list) else [])
                  if block.get("removable") and block.get("inserted", {}).get("file"))
    numbers = version["qemu"]
    release = f"{numbers['major']}.{numbers['minor']}.{numbers['micro']}"
    return QemuFacts(
        target_arch=target["arch"],
        machine_type=machine,
        kvm_enabled=bool(kvm["enabled"]),
        kvm_present=bool(kvm["present"]),
        qemu_version=f"{release} ({version['package'].strip()})" if version.get("package") else release,
        cpu_type=cpu_type if isinstance(cpu_type, str) else None,
        removable_media=media,
    )
