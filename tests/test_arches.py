import os_traits
import pytest

from archmatrix.core.arches import (
    ACCELERATORS,
    ARCHES,
    UnknownNameError,
    arch_named,
    check_accelerator,
    default_arches,
    split_names,
)
from archmatrix.images.kernel_build import FRAGMENT_DIR
from archmatrix.requirements import required_packages

# What libvirt 9.0 lists in `virsh capabilities` on a Debian 12 host with every qemu-system-* package.
LIBVIRT_ARCHES_ON_DEBIAN_12 = {
    "aarch64", "alpha", "armv6l", "armv7l", "cris", "i686", "m68k", "microblaze", "microblazeel", "mips",
    "mips64", "mips64el", "mipsel", "ppc", "ppc64", "ppc64le", "riscv32", "riscv64", "s390x", "sh4", "sh4eb",
    "x86_64", "xtensa", "xtensaeb",
}


def test_catalog_holds_every_arch_libvirt_lists_on_debian_12():
    assert set(ARCHES) == LIBVIRT_ARCHES_ON_DEBIAN_12


def test_default_matrix_is_the_promised_arches():
    assert default_arches() == ["aarch64", "ppc64le", "ppc64", "s390x", "mips64el", "mipsel", "mips", "riscv64",
                                "x86_64"]
    assert all(ARCHES[name].has_builtin_image for name in default_arches())


@pytest.mark.parametrize("arch", [a for a in ARCHES.values() if a.builds_from_source], ids=lambda a: a.name)
def test_source_built_arches_have_their_fragment_and_toolchain(arch):
    kernel = arch.image.kernel
    assert (FRAGMENT_DIR / kernel.fragment).is_file()
    assert kernel.compiler_package in arch.image.debian_packages
    assert arch.image.init.libc_package in required_packages()


@pytest.mark.parametrize("arch", ARCHES.values(), ids=list(ARCHES))
def test_every_arch_is_complete(arch):
    assert arch.emulator.startswith("qemu-system-")
    assert arch.qemu_package.startswith("qemu-system-")
    assert arch.byte_order in ("little", "big")
    assert arch.libvirt_console.element in ("serial", "console")
    assert arch.has_builtin_image == (arch.no_image_reason is None)
    for accel in ACCELERATORS:
        assert arch.timeout_for(accel) > 0


@pytest.mark.parametrize("arch", [a for a in ARCHES.values() if a.os_trait], ids=lambda a: a.name)
def test_trait_names_are_real_os_traits(arch):
    assert getattr(os_traits, arch.os_trait) == arch.os_trait


def test_arches_without_an_image_say_exactly_why():
    without = {a.name: a.no_image_reason for a in ARCHES.values() if not a.has_builtin_image}
    assert set(without) == {"riscv32", "sh4", "sh4eb", "microblaze", "microblazeel", "xtensa", "xtensaeb", "cris"}
    assert "4.17" in without["cris"] and "no rv32 firmware" in without["riscv32"]


def test_riscv64_comes_from_trixie_with_a_newer_release_as_fallback():
    kernel = ARCHES["riscv64"].image.kernel
    assert kernel.releases[0] == "trixie" and kernel.debian_arch == "riscv64"


def test_s390x_needs_an_sclp_console_and_nothing_else_does():
    special = {a.name: a.libvirt_console for a in ARCHES.values() if a.libvirt_console.element != "serial"}
    assert list(special) == ["s390x"] and special["s390x"].target_type == "sclp"


def test_only_sh4_has_its_console_on_a_second_port():
    assert {a.name: a.libvirt_console.device_name for a in ARCHES.values() if a.libvirt_console.port} == {
        "sh4": "serial1", "sh4eb": "serial1"}


def test_mips_uname_cannot_tell_byte_order():
    assert ARCHES["mipsel"].uname_machine == ARCHES["mips"].uname_machine == "mips"
    assert ARCHES["mipsel"].byte_order != ARCHES["mips"].byte_order


def test_unknown_arch_error_lists_the_valid_names():
    with pytest.raises(UnknownNameError) as error:
        arch_named("arm64")
    assert "'arm64'" in str(error.value)
    for name in ARCHES:
        assert name in str(error.value)


def test_unknown_accelerator_error_lists_the_valid_names():
    with pytest.raises(UnknownNameError, match="valid accelerators: tcg, kvm"):
        check_accelerator("hvf")


def test_split_names_takes_repeats_and_commas():
    assert split_names(["aarch64,s390x", " x86_64 ", "aarch64"]) == ["aarch64", "s390x", "x86_64"]


def test_required_packages_cover_every_emulator_once():
    packages = required_packages()
    assert len(packages) == len(set(packages))
    assert {a.qemu_package for a in ARCHES.values()} <= set(packages)
