"""An image without our banner is judged by its kernel's own lines: recorded real boot logs of this machine."""

import pytest

from archmatrix.core.kernel_evidence import judge_arch, kernel_evidence
from tests.helpers import FIXTURES


def console(cell: str) -> str:
    return (FIXTURES / "consoles" / f"{cell}.log").read_text(errors="replace")


@pytest.mark.parametrize("arch", ["aarch64", "mipsel", "mips64el", "x86_64", "s390x", "ppc64le"])
def test_each_recorded_boot_shows_its_own_arch(arch):
    shown, said = judge_arch(arch, kernel_evidence(console(f"{arch}-tcg")))
    assert shown, said
    assert said.startswith("Linux 6.1.0-")


@pytest.mark.parametrize(("booted", "judged_as"), [("mipsel", "aarch64"), ("aarch64", "x86_64"),
                                                   ("mipsel", "mips64el"), ("x86_64", "s390x")])
def test_another_arch_kernel_is_not_taken_for_the_cells(booted, judged_as):
    shown, said = judge_arch(judged_as, kernel_evidence(console(f"{booted}-tcg")))
    assert not shown and "do not show" in said


def test_a_32_bit_mips_kernel_is_told_from_a_64_bit_one_and_byte_order_is_said_unseen():
    shown, said = judge_arch("mips64el", kernel_evidence(console("mipsel-tcg")))
    assert not shown and "a 64-bit kernel" in said and "(they fit mipsel: a MIPS CPU" in said
    shown, said = judge_arch("mipsel", kernel_evidence(console("mipsel-tcg")))
    assert shown and "its byte order is not in these lines" in said


def test_no_linux_version_line_is_no_evidence():
    assert judge_arch("aarch64", kernel_evidence("CPU features: detected: foo\n")) == (
        False, "no 'Linux version' line on the console")
