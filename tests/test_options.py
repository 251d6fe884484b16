"""Option checking, through real pytest runs of the plugin where it matters."""

import pytest

from archmatrix.hosts.spec import redact_uri, uri_is_local

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "aarch64,arm64"], "unknown guest arch 'arm64'; valid arches: aarch64, ppc64le, ppc64, s390x"),
        (["--accel", "hvf"], "unknown accelerator 'hvf'; valid accelerators: tcg, kvm"),
        (["--image", "aarch64"], "--image 'aarch64' is not of the form ARCH=KERNEL[,INITRD]"),
        (["--machine", "sparc=virt"], "unknown guest arch 'sparc'"),
        (["--timeout-factor", "0"], "--timeout-factor: '0' is out of range; valid: a number greater than 0"),
        (["--lab-host", "riscv64"], "--lab-host 'riscv64': no such lab host; valid: aarch64, ppc64le, x86_64"),
        (["--lab-host", "s390x"], "--lab-host 's390x': QEMU's TCG does not emulate SIE"),
        (["--boot-from", "cdrom"], "argument --boot-from: invalid choice: 'cdrom' (choose from 'kernel', 'disk')"),
        (["--image", "aarch64=cirros.qcow2", "--kernel-args", "aarch64=quiet"],
         "--kernel-args aarch64=...: aarch64's --image is a disk, whose own bootloader gives its kernel the arguments"),
    ],
)
def test_bad_option_stops_before_any_test_with_the_valid_names(pytester, args, message):
    pytester.makepyfile("def test_never(cell):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_cells_are_parametrized_with_readable_ids(pytester):
    pytester.makepyfile("def test_cell(cell):\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "--arch", "s390x", "--arch", "aarch64", "--accel", "tcg")
    result.stdout.fnmatch_lines(["*test_cell[[]s390x-tcg[]]", "*test_cell[[]aarch64-tcg[]]"])


def test_marker_picks_arches_when_no_option_does(pytester):
    pytester.makepyfile(
        "import pytest\n@pytest.mark.arches('mipsel')\ndef test_cell(cell):\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q")
    # The KVM cell first: it may carry its host's KVM probe, the longest wait of a run.
    result.stdout.fnmatch_lines(["*test_cell[[]mipsel-kvm[]]", "*test_cell[[]mipsel-tcg[]]"])
    assert "aarch64" not in result.stdout.str()


def test_longest_cells_come_first_and_other_tests_keep_their_places(pytester):
    pytester.makepyfile("def test_first():\n    pass\n\n"
                        "def test_boot(cell):\n    pass\n\n"
                        "def test_last():\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "--arch", "aarch64,ppc64le,s390x", "--accel", "tcg")
    result.stdout.fnmatch_lines(["*test_first", "*test_boot[[]ppc64le-tcg[]]", "*test_boot[[]s390x-tcg[]]",
                                 "*test_boot[[]aarch64-tcg[]]", "*test_last"])


def test_k_selects_by_arch(pytester):
    pytester.makepyfile("def test_boot(cell):\n    pass\n")
    result = pytester.runpytest("--collect-only", "-q", "-k", "s390x and tcg")
    result.stdout.fnmatch_lines(["*test_boot[[]s390x-tcg[]]", "*1/18 tests collected*"])


def test_uri_locality_and_redaction():
    assert uri_is_local("qemu:///system") and uri_is_local("qemu+unix:///session")
    assert not uri_is_local("qemu+tcp://127.0.0.1:16509/system") and not uri_is_local("qemu+ssh://h/system")
    assert redact_uri("qemu+tcp://alice:s3cret@127.0.0.1:16509/system?x=1") == "qemu+tcp://127.0.0.1:16509/system?x=1"
    assert redact_uri("qemu+ssh://bob@host/system") == "qemu+ssh://host/system"
    assert redact_uri("qemu:///system") == "qemu:///system" and redact_uri("qemu:/odd//uri") == "qemu:/odd//uri"


def test_wrong_arch_user_kernel_is_refused_before_anything_runs(pytester, tmp_path):
    elf = bytearray(64)
    elf[:6] = b"\x7fELF\x01\x01"  # 32-bit, little endian
    elf[18:20] = (8).to_bytes(2, "little")  # EM_MIPS: a mipsel kernel
    kernel = tmp_path / "vmlinux"
    kernel.write_bytes(bytes(elf))
    pytester.makepyfile("def test_never(cell):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest("--image", f"mips={kernel}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"the kernel {kernel} is built for mipsel, not mips (read from its header)" in result.stderr.str()
    result = pytester.runpytest("--image", f"mipsel={kernel},{tmp_path / 'no-initrd'}")
    assert f"the initrd: {tmp_path / 'no-initrd'} does not exist; valid: a readable regular file" in result.stderr.str()


def test_unwritable_report_dir_is_refused(pytester, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    pytester.makepyfile("def test_never(cell):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest("--report-dir", str(blocker / "reports"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert f"--report-dir: {blocker / 'reports'} cannot be written: Not a directory; valid: " in result.stderr.str()


@pytest.mark.parametrize("args, message", [
    (["--kernel-args", "aarch64=quiet </cmdline><devices>"], "characters not allowed in kernel arguments: '<', '>'"),
    (["--kernel-args", "aarch64=init=/bin/sh\ninjected"], "'\\n'"),
    (["--boot-timeout", "aarch64-hvf=10"], "unknown accelerator 'hvf'"),
    (["--boot-timeout", "s390x=soon"], "--boot-timeout s390x: 'soon' is not a number; valid: a number of seconds"),
])
def test_bad_kernel_args_and_timeouts_are_refused(pytester, args, message):
    pytester.makepyfile("def test_never(cell):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_success_pattern_is_only_for_a_users_image_and_must_compile(pytester, tmp_path):
    kernel = tmp_path / "Image"
    kernel.write_bytes(b"\0" * 56 + b"ARM\x64" + b"\0" * 8)  # an arm64 Image header's magic at 0x38
    pytester.makepyfile("def test_never(cell):\n    raise AssertionError('ran')\n")
    result = pytester.runpytest("--success-pattern", "aarch64=Select a language")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "only for an image of your own (--image aarch64=...)" in result.stderr.str()
    result = pytester.runpytest("--image", f"aarch64={kernel}", "--success-pattern", "aarch64=([unclosed")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--success-pattern aarch64='([unclosed' is not a valid regular expression" in result.stderr.str()
