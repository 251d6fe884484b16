"""Booted the way Nova would boot them: cells whose image properties decide machine, CPU and firmware.

The properties are those of Nova's `nova-emulation` CI job (nova/virt/libvirt/driver.py
`_check_emulation_arch` lists them); aarch64 goes through UEFI (AAVMF) as Nova forces it to.
"""

import pytest

from scenarios.runs import assert_nothing_left, cells_of, finish, real_run

NOVA_EMULATION_JOB = (
    "aarch64=hw_emulation_architecture=aarch64", "aarch64=hw_firmware_type=uefi", "aarch64=hw_machine_type=virt",
    "ppc64le=hw_emulation_architecture=ppc64le", "ppc64le=hw_machine_type=pseries",
    "s390x=hw_emulation_architecture=s390x", "s390x=hw_machine_type=s390-ccw-virtio", "s390x=hw_video_model=virtio",
)


def properties(*pairs: str) -> list[str]:
    return [argument for pair in pairs for argument in ("--image-property", pair)]


def test_the_nova_emulation_jobs_images_boot_as_nova_would_boot_them(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64,ppc64le,s390x", "--accel", "tcg",
                       *properties(*NOVA_EMULATION_JOB))
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.OK, output
    cells = cells_of(tmp_path)
    for cell in cells.values():
        assert {check["outcome"] for check in cell["checks"].values()} == {"pass"}, cell["checks"]
    aarch64 = cells["aarch64-tcg"]["facts"]["plan"]
    assert "firmware efi; Nova's plan: machine virt, cpu cortex-a57, firmware uefi" in aarch64
    console = (tmp_path / "consoles" / "aarch64-tcg.log").read_text(errors="replace")
    assert "UEFI firmware" in console and "EFI stub: Booting Linux Kernel" in console  # through the firmware
    assert "cpu POWER8" in cells["ppc64le-tcg"]["facts"]["plan"]  # Nova's CPU for emulated ppc64le
    assert "power8_v2.0-powerpc64-cpu" in cells["ppc64le-tcg"]["checks"]["guest-arch"]["detail"]
    assert_nothing_left(run_id)  # the UEFI variable store was a file of the run


def test_properties_nova_would_not_boot_stop_their_cell_before_boot_naming_the_fix(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64,ppc64le,s390x", "--accel", "tcg", "-k", "boot",
                       *properties("aarch64=hw_emulation_architecture=aarch64",  # no machine type
                                   "ppc64le=hw_emulation_architecture=ppc64le", "ppc64le=hw_machine_type=pseries",
                                   "ppc64le=hw_firmware_type=uefi",  # no UEFI for Power
                                   "s390x=hw_emulation_architecture=aarch64", "s390x=hw_machine_type=virt"))
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    cells = cells_of(tmp_path)
    aarch64, ppc64le, s390x = (cells[f"{arch}-tcg"]["checks"]["boot"] for arch in ("aarch64", "ppc64le", "s390x"))
    assert aarch64["outcome"] == "error" and "[machine-from-host-arch]" in aarch64["detail"]
    assert "fix: set hw_machine_type=virt" in aarch64["detail"]
    assert ppc64le["outcome"] == "error" and "[no-uefi-firmware]" in ppc64le["detail"]
    assert s390x["outcome"] == "error" and "make Nova boot a aarch64 guest" in s390x["detail"]
    assert not list(tmp_path.glob("consoles/*.log"))  # none of them booted
    assert_nothing_left(run_id)
