"""Guest-arch-driven decisions: domain type, emulator, machine, CPU, console.

Everything is decided from the *guest* arch against the host's libvirt
capabilities, never from the host's own arch alone (the Nova blueprint
"pick guest arch based on host arch").
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from archmatrix.core.arch import Arch, LibvirtConsole
from archmatrix.core.capabilities import HostCapabilities, KvmVerdict, kvm_offered_for
from archmatrix.core.firmware import FIRMWARE_DISKS, NOVA_UEFI_FORCED, no_firmware_disk_reason
from archmatrix.core.timeouts import DEFAULT_TIMEOUTS, Timeouts


class CellUnsupported(Exception):
    """This host cannot run the cell; the message says why and what would fix it."""


class PlanError(ValueError):
    """The user asked for something this host's emulator does not have."""


@dataclass(frozen=True)
class Plan:
    cell_id: str
    arch: str
    accel: str
    domain_type: str  # "qemu" for TCG, "kvm"
    emulator: str  # path the domain is started with
    expected_emulator: str  # path libvirt lists for the guest arch and domain type
    expected_emulator_name: str  # the qemu-system-* the catalog says the guest arch needs
    machine: str  # what the domain asks for (an alias such as "virt")
    machine_canonical: str  # what the alias resolves to (e.g. "virt-7.2")
    machine_family: str  # what a correct machine's name starts with
    cpu_model: str | None
    cpu_via_qemu_args: bool
    kernel_console: str
    kernel_cmdline: str
    libvirt_console: LibvirtConsole
    uname_machine: str
    byte_order: str
    memory_mib: int
    timeout_s: float
    console_cap_bytes: int
    tb_cache_mib: int | None = None  # TCG's translation cache; None: QEMU's default (1 GiB since QEMU 5.0)
    first_output_s: float | None = None  # a guest silent this long after its start has failed (the KVM probe)
    nic_device: str | None = None  # QEMU's NIC device for the SSH checks; None: see no_ssh_reason
    no_ssh_reason: str | None = None  # why this cell's guest cannot be reached over SSH
    ssh_timeout_s: float = 90.0  # login prompt -> SSH answers, network check done
    # A user's image: what its console shows once it is up (a regex); None: the built-in image's banner.
    success_pattern: str | None = None
    firmware: str | None = None  # "efi": <os firmware='efi'> (Nova's UEFI); None: the machine's own
    boot: str = "kernel"  # "kernel": libvirt loads kernel and initrd; "disk": the firmware boots a disk
    disk_bus: str = "virtio"  # a disk boot's disk (Nova's hw_disk_bus, virtio by default)
    nova: str | None = None  # the image properties the plan follows, as Nova's driver would ("" when none)

    def summary(self) -> str:
        cpu = self.cpu_model or "machine default"
        return (
            f"plan {self.cell_id}: domain type {self.domain_type}, emulator {self.emulator}, "
            f"machine {self.machine} ({self.machine_canonical}), cpu {cpu}, kernel args {self.kernel_cmdline!r}"
            + (f", firmware {self.firmware}" if self.firmware else "")
            + (f", from a {self.disk_bus} disk" if self.boot == "disk" else "")
            + (f"; {self.nova}" if self.nova else "")
        )

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class NovaChoice:
    """What Nova's libvirt driver picks for a cell's image properties on its host: the plan follows it.

    Made by archmatrix/nova/ (from Nova's own driver, or the harness's reading of it).
    """

    machine: str | None  # None: QEMU's default machine
    cpu_model: str | None  # the <cpu> model Nova writes, None: none
    uefi: bool  # <os firmware='efi'>
    firmware: str  # as reports name it, e.g. "uefi: /usr/share/AAVMF/AAVMF_CODE.fd"
    disk_bus: str
    said: str  # how the plan's summary names Nova's choices


@dataclass(frozen=True)
class CellKey:
    """One (host, guest arch, accelerator) cell of the matrix."""

    arch: str
    accel: str
    host: str = ""  # the host's label
    nova: bool = False  # its domain is the one Nova's own libvirt driver writes (archmatrix/nova/cells.py)

    @property
    def id(self) -> str:
        """The cell's id within its host: what the matrix and the domain name use."""
        return f"{self.arch}-{self.accel}" + ("-nova" if self.nova else "")

    def test_id(self, with_host: bool) -> str:
        return f"{self.host}-{self.id}" if with_host else self.id


def make_plan(
    arch: Arch,
    accel: str,
    host: HostCapabilities,
    kvm: KvmVerdict | None,
    machine: str | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    extra_kernel_args: str = "",
    console_cap_mib: float = 64.0,
    tb_cache_mib: int | None = 64,
    user_image: bool = False,
    success_pattern: str | None = None,
    nova: NovaChoice | None = None,
    boot: str = "kernel",
    check_machine: bool = True,
) -> Plan:
    offer = host.offer_for(arch.name)
    if offer is None:
        raise CellUnsupported(
            f"libvirt lists no emulator for {arch.name} guests: install the Debian package "
            f"{arch.qemu_package} (it ships {arch.emulator}) and restart libvirtd"
        )
    if accel == "kvm":
        refusal = kvm_offered_for(host, arch.name)
        if refusal:
            raise CellUnsupported(refusal)
        if kvm is None or not kvm.works:
            status = kvm.status if kvm else "not probed"
            reason = kvm.reason if kvm else "no KVM probe ran"
            raise CellUnsupported(f"KVM {status}: {reason}")
    domain_type = "kvm" if accel == "kvm" else "qemu"
    emulator = offer.domain_emulators.get(domain_type) or offer.emulator

    if nova is not None:  # Nova's machine (it checked it exists) and CPU replace the catalog's
        machine = nova.machine
    requested = machine or arch.machine_family
    if requested not in offer.machines and check_machine:
        raise PlanError(
            f"machine type {requested!r} does not exist for {arch.name} guests in {emulator}; "
            f"valid: {', '.join(offer.machine_family_names())}"
        )
    return Plan(
        cell_id=CellKey(arch.name, accel).id,
        arch=arch.name,
        accel=accel,
        domain_type=domain_type,
        emulator=emulator,
        expected_emulator=emulator,
        expected_emulator_name=arch.emulator,
        machine=requested,
        # Not checked (a Nova cell boots Nova's machine as it is, for libvirt to judge): not one of the arch's.
        machine_canonical=offer.machines.get(requested, f"{requested} (not a machine of {arch.name})"),
        machine_family=requested if machine else arch.machine_family,
        # Under KVM the model that TCG needs is irrelevant: the host's CPU is used.
        cpu_model=(nova.cpu_model if nova else arch.tcg_cpu) if accel == "tcg" else None,
        cpu_via_qemu_args=arch.cpu_via_qemu_args,
        kernel_console=arch.kernel_console,
        kernel_cmdline=arch.kernel_cmdline(extra_kernel_args),
        libvirt_console=arch.libvirt_console,
        uname_machine=arch.uname_machine,
        byte_order=arch.byte_order,
        memory_mib=arch.memory_mib,
        timeout_s=timeouts.boot(arch, accel),
        console_cap_bytes=int(console_cap_mib * 1024 * 1024),
        tb_cache_mib=(tb_cache_mib or None) if accel == "tcg" else None,
        nic_device=arch.nic.device if arch.nic else None,
        no_ssh_reason=_no_ssh_reason(arch, user_image),
        boot=boot,
        disk_bus=nova.disk_bus if nova else "virtio",
        ssh_timeout_s=timeouts.ssh(accel),
        success_pattern=(success_pattern or DEFAULT_SUCCESS_PATTERN) if user_image else None,
        firmware=_firmware(arch, nova, boot, user_image),
        nova=nova.said if nova else None,
    )


DEFAULT_SUCCESS_PATTERN = r"login: "  # a user's image is up when it shows a login prompt, unless told otherwise


def _firmware(arch: Arch, nova: NovaChoice | None, boot: str, user_image: bool) -> str | None:
    """UEFI when Nova would boot it (asked, or forced for aarch64), or when our disk boots only through it."""
    ours = boot == "disk" and not user_image
    disk = FIRMWARE_DISKS.get(arch.name)
    if ours and disk is None:
        raise CellUnsupported(no_firmware_disk_reason(arch.name))
    if nova is not None:
        firmware = "efi" if nova.uefi else None
        if ours and disk.uefi and firmware is None:
            raise PlanError(f"the built-in {arch.name} disk boots through UEFI only, and these image properties "
                            f"make Nova boot it with {nova.firmware}: set hw_firmware_type=uefi")
        return firmware
    if boot != "disk":
        return None
    if user_image:  # a disk of the user's, no properties: what Nova does by default
        return "efi" if arch.name in NOVA_UEFI_FORCED else None
    return "efi" if disk.uefi else None


def _no_ssh_reason(arch: Arch, user_image: bool) -> str | None:
    if user_image:
        return ("a user-supplied image: the harness cannot know that it runs an SSH server that takes the run's "
                "key from archmatrix.ssh_key= on its kernel command line (the built-in images do)")
    return arch.no_ssh_reason
