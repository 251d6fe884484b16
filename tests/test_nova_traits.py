"""Nova's own traits for a host (archmatrix/nova/traits.py), read from the bridge's recorded answers.

tests/fixtures/nova/traits-HOST.json is the bridge's response (Nova 34.0.0) to nova_traits on the recorded host of
the same name; scenarios/test_nova_agrees.py asks Nova again.
"""

import json
from dataclasses import dataclass

from archmatrix.core.traits import trait_rows
from archmatrix.nova.driver import recorded_host
from archmatrix.nova.traits import nova_traits
from tests.helpers import FIXTURES, nova_host


@dataclass
class RecordedNova:
    """Nova's environment as far as nova_traits uses it: its version, and the bridge's recorded response."""

    host: str
    version: str = "34.0.0"

    def ask(self, request: dict) -> dict:
        assert [run["conf"]["libvirt.virt_type"] for run in request["runs"]] == ["kvm", "qemu"]
        assert request["runs"][1]["cases"] == []  # the prefilter's trait is asked once
        return json.loads((FIXTURES / "nova" / f"traits-{self.host}.json").read_text())


def traits_of(name: str):
    host = nova_host(name)
    return nova_traits(RecordedNova(name), host.bridge_host(), sorted(host.capabilities.guests))


def test_what_nova_reports_for_this_host_with_kvm_and_with_qemu():
    traits = traits_of("x86_64-debian12")
    assert traits.nova_version == "34.0.0" and traits.host_arch == "x86_64"
    assert traits.reported == {"kvm": ("COMPUTE_ARCH_X86_64",), "qemu": (
        "COMPUTE_ARCH_AARCH64", "COMPUTE_ARCH_MIPSEL", "COMPUTE_ARCH_PPC64LE", "COMPUTE_ARCH_RISCV64",
        "COMPUTE_ARCH_S390X", "COMPUTE_ARCH_X86_64")}
    # riscv64: reported with qemu, yet an image naming it is refused (not in Nova's Architecture enum).
    assert traits.columns("riscv64") == {"nova_reports_kvm": False, "nova_reports_qemu": True,
                                         "nova_prefilter_requires": None, "nova_version": "34.0.0",
                                         "nova_refuses_arch": "ValueError: Architecture name 'riscv64' is not valid"}
    assert traits.columns("aarch64")["nova_prefilter_requires"] == "COMPUTE_ARCH_AARCH64"
    # mips64el: accepted, but os-traits has no COMPUTE_ARCH_MIPS64EL, so the prefilter requires nothing.
    assert traits.columns("mips64el") == {"nova_reports_kvm": False, "nova_reports_qemu": False,
                                          "nova_prefilter_requires": None, "nova_refuses_arch": None,
                                          "nova_version": "34.0.0"}


def test_recorded_kvm_hosts_report_their_own_arch_only():
    for name, arch in (("aarch64-kvm", "aarch64"), ("s390x-kvm", "s390x")):
        traits = traits_of(name)
        assert traits.reported == {"kvm": (f"COMPUTE_ARCH_{arch.upper()}",), "qemu": ()}  # no TCG recordings
        assert traits.required == {arch: f"COMPUTE_ARCH_{arch.upper()}"} and traits.refused == {}


def test_columns_beside_a_traits_table_row():
    traits = traits_of("x86_64-debian12")
    rows = trait_rows(["aarch64", "mips64el"], [{"arch": "aarch64", "accel": "tcg", "status": "pass", "reason": ""}])
    shown = [{**row, **traits.columns(row["arch"])} for row in rows]
    assert [(row["arch"], row["proved"], row["nova_reports_qemu"]) for row in shown] == [
        ("aarch64", True, True), ("mips64el", False, False)]


def test_the_request_names_a_live_or_recorded_host():
    host = recorded_host("<capabilities/>", {}, "x86_64")
    assert host == {"host": {"capabilities_xml": "<capabilities/>", "domain_capabilities": {}}, "host_arch": "x86_64"}
