"""Nova's own traits for a host: the COMPUTE_ARCH_* traits its libvirt driver reports to placement with
[libvirt]virt_type kvm and qemu, and the trait the scheduler's image prefilter requires for each guest arch
(hw_emulation_architecture=ARCH) - asked of Nova through the bridge, in one process.

A matrix's traits table (archmatrix/core/traits.py) shows what the run proved; `NovaTraits.columns(arch)` is
what Nova itself says for that arch, to show beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from archmatrix.nova.driver import NovaCase, ask_each
from archmatrix.nova.environment import NovaEnvironment

VIRT_TYPES = ("kvm", "qemu")


@dataclass(frozen=True)
class NovaTraits:
    nova_version: str
    host_arch: str
    reported: dict[str, tuple[str, ...]]  # virt_type -> the COMPUTE_ARCH_* traits Nova's driver reports
    required: dict[str, str | None]  # guest arch -> the COMPUTE_ARCH_* trait the prefilter requires; None: none
    refused: dict[str, str]  # guest arch -> Nova's refusal of the arch name itself (riscv64: ValueError)

    def columns(self, arch: str) -> dict:
        """Nova's own word on one arch, as columns for a traits table row."""
        trait = f"COMPUTE_ARCH_{arch.upper()}"
        return {
            **{f"nova_reports_{virt_type}": trait in self.reported.get(virt_type, ()) for virt_type in VIRT_TYPES},
            "nova_prefilter_requires": self.required.get(arch),
            "nova_refuses_arch": self.refused.get(arch),
            "nova_version": self.nova_version,
        }


def nova_traits(environment: NovaEnvironment, host: dict, guest_arches: list[str]) -> NovaTraits:
    """Ask Nova's driver for `host` (driver.live_host(uri) or driver.recorded_host(...)).

    The prefilter's trait does not depend on the host: it is asked in the kvm run only. An arch whose name os-traits
    lacks (mips64el, armv7l) makes the prefilter require nothing at all; Nova logs that and the image lands anywhere.
    """
    cases = [NovaCase(f"arch-{arch}", {"hw_emulation_architecture": arch}, config_drive=False)
             for arch in guest_arches]
    runs = ask_each(environment, [(host, {"libvirt.virt_type": virt_type}, cases if virt_type == "kvm" else [])
                                  for virt_type in VIRT_TYPES])
    required: dict[str, str | None] = {}
    refused: dict[str, str] = {}
    for arch in guest_arches:
        answer = runs[0].answers[f"arch-{arch}"]
        # A refusal at the image's metadata comes before the prefilter: nothing required then either.
        if answer.refused and answer.refused.startswith("ValueError"):
            refused[arch] = answer.refused
        required[arch] = next((trait for trait in answer.required_traits if trait.startswith("COMPUTE_ARCH_")), None)
    return NovaTraits(nova_version=runs[0].nova_version, host_arch=runs[0].host_arch,
                      reported={run.virt_type: run.traits for run in runs}, required=required, refused=refused)
