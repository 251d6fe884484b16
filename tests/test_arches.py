import os_traits
import pytest

from harness.arches import ACCELERATORS, ARCHES, UnknownNameError, arch_named, check_accelerator, split_names
from harness.requirements import required_packages


def test_catalog_holds_every_arch_the_product_promises():
    assert set(ARCHES) == {"aarch64", "ppc64le", "ppc64", "s390x", "mips64el", "mipsel", "mips", "x86_64"}


@pytest.mark.parametrize("arch", ARCHES.values(), ids=list(ARCHES))
def test_every_arch_is_complete(arch):
    assert arch.emulator.startswith("qemu-system-")
    assert arch.qemu_package.startswith("qemu-system-")
    assert arch.byte_order in ("little", "big")
    assert arch.libvirt_console.element in ("serial", "console")
    assert arch.has_builtin_image == (arch.debian_arch is not None) == (arch.kernel_glob is not None)
    for accel in ACCELERATORS:
        assert arch.timeout_for(accel) > 0


@pytest.mark.parametrize("arch", [a for a in ARCHES.values() if a.os_trait], ids=lambda a: a.name)
def test_trait_names_are_real_os_traits(arch):
    assert getattr(os_traits, arch.os_trait) == arch.os_trait


def test_arches_without_a_debian_kernel_need_a_user_image():
    assert [a.name for a in ARCHES.values() if not a.has_builtin_image] == ["ppc64", "mips"]


def test_s390x_needs_an_sclp_console_and_nothing_else_does():
    special = {a.name: a.libvirt_console for a in ARCHES.values() if a.libvirt_console.element != "serial"}
    assert list(special) == ["s390x"] and special["s390x"].target_type == "sclp"


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
