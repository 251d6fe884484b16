"""Images nobody here wrote, booted with their own success pattern (issue: bring your own image).

Debian's arm64 netboot installer (`debian-installer-12-netboot-arm64`, its text-mode `linux` and
`initrd.gz`) prints no EMUV banner and has no login prompt: it is up when it asks for a language.
Its `boot` check is judged from what its own kernel prints.
"""

import json
from pathlib import Path

import pytest

from harness.images.cache import default_cache_dir
from harness.images.debian import PrivateApt, extract_member
from scenarios.runs import assert_nothing_left, cells_of, finish, real_run

INSTALLER = "debian-installer-12-netboot-arm64"
INSTALLER_FILES = "usr/lib/debian-installer/images/12/arm64/text/debian-installer/arm64/"
UP = "aarch64=Select a language"


@pytest.fixture(scope="module")
def debian_installer(tmp_path_factory) -> tuple[Path, Path]:
    """Its kernel and initrd, from Debian's package through the machine's apt sources; kept by version.

    The 120 MB package is downloaded into pytest's temporary directory, so a killed run leaves it nowhere else.
    """
    cache = default_cache_dir()
    apt = PrivateApt(cache / "apt" / "arm64", "arm64")
    apt.update()
    version = apt.candidate(INSTALLER)["Version"]
    where = cache / "user-examples" / f"{INSTALLER}_{version}"
    kernel, initrd = where / "linux", where / "initrd.gz"
    if not (kernel.is_file() and initrd.is_file()):
        where.mkdir(parents=True, exist_ok=True)
        deb, = apt.download([INSTALLER], tmp_path_factory.mktemp("debian-installer"))
        extract_member(deb.path, INSTALLER_FILES + "initrd.gz", initrd)
        extract_member(deb.path, INSTALLER_FILES + "linux", kernel)  # the last written: the marker of a whole copy
        deb.path.unlink()
    return kernel, initrd


def test_debian_installer_boots_to_its_menu_judged_by_its_kernels_lines(tmp_path, debian_installer):
    kernel, initrd = debian_installer
    process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg", "--image", f"aarch64={kernel},{initrd}",
                       "--success-pattern", UP)
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.OK, output
    cell = cells_of(tmp_path)["aarch64-tcg"]
    outcomes = {check: result["outcome"] for check, result in cell["checks"].items()}
    assert outcomes == dict.fromkeys(("binary", "machine", "accelerator", "console", "boot"), "pass") | \
        dict.fromkeys(("ssh", "guest-arch", "network"), "unsupported")
    assert cell["status"] == "pass" and "a user-supplied image" in cell["reason"]
    boot = cell["checks"]["boot"]["detail"]
    assert "from the kernel's own lines: an arm64 kernel" in boot and "Linux 6.1." in boot
    assert json.loads(json.dumps(cell["facts"]["image"]))["origin"] == "user-supplied"
    assert_nothing_left(run_id)


def test_a_success_pattern_that_never_shows_fails_boot_and_names_it(tmp_path, debian_installer):
    kernel, initrd = debian_installer
    process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg", "--image", f"aarch64={kernel},{initrd}",
                       "--success-pattern", "aarch64=Bienvenue", "--boot-timeout", "aarch64=30", "-k", "boot")
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    boot = cells_of(tmp_path)["aarch64-tcg"]["checks"]["boot"]
    assert boot["outcome"] == "fail" and boot["detail"] == "success pattern 'Bienvenue' not seen: timeout after 30 s"
    assert_nothing_left(run_id)
