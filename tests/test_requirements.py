"""The Debian packages ./run installs: a matrix run of the default arches gets only what it needs (a new
machine's first run waits for every package), any option that may need more gets everything."""

import subprocess
import sys

import pytest

from archmatrix.core.arches import ARCHES, default_arches
from archmatrix.requirements import (
    MORE_HOST_PACKAGES,
    OPTIONS_NEEDING_MORE,
    OPTIONS_NEEDING_NOTHING_MORE,
    needs_more_than_the_default,
    required_packages,
)
from tests.test_docs import ROOT, plugin_options

NO_ENV: dict[str, str] = {}


def test_every_option_of_the_plugin_is_classified_once():
    options = set(plugin_options())
    assert options == set(OPTIONS_NEEDING_MORE) | set(OPTIONS_NEEDING_NOTHING_MORE)
    assert not set(OPTIONS_NEEDING_MORE) & set(OPTIONS_NEEDING_NOTHING_MORE)


def test_the_default_matrix_gets_its_emulators_and_its_source_arches_compilers_only():
    packages = required_packages("matrix", [])
    assert {arch.qemu_package for arch in ARCHES.values()} <= set(packages)
    for name in default_arches():
        image = ARCHES[name].image
        assert set(image.debian_packages if image else ()) <= set(packages), name
    assert not set(MORE_HOST_PACKAGES) & set(packages)
    assert "gcc-alpha-linux-gnu" not in packages and "gcc-alpha-linux-gnu" in required_packages("matrix")
    assert len(packages) == len(set(packages))


@pytest.mark.parametrize("options", [
    ["--arch", "all"], ["--arch=alpha"], ["--arch", "aarch64,m68k"], ["--nova"], ["--container-host=trixie"],
    ["--lab-host", "x86_64"], ["--image-property", "aarch64=hw_firmware_type=uefi"], ["-v", "--image=aarch64=d.qcow2"],
    ["--libvirt-uri", "qemu+ssh://h/system"],
])
def test_options_that_may_need_more_get_everything(options):
    assert needs_more_than_the_default(options, NO_ENV)
    assert set(required_packages("matrix", options)) == set(required_packages("matrix"))


@pytest.mark.parametrize("options", [
    [], ["-p", "no:cacheprovider", "-k", "aarch64"], ["--arch", "aarch64,mips"], ["--arch=ppc64"],
    ["--accel", "tcg", "--boot-timeout", "mips=300", "--report-dir", "out"],
])
def test_options_of_the_default_matrix_need_nothing_more(options):
    assert not needs_more_than_the_default(options, NO_ENV)


def test_a_remote_host_from_the_environment_needs_everything():
    assert needs_more_than_the_default([], {"ARCHMATRIX_LIBVIRT_URI": "qemu+ssh://h/system"})


def test_the_command_line_reads_the_run_options_after_a_double_dash():
    def listed(*argv: str) -> list[str]:
        return subprocess.run([sys.executable, "-m", "archmatrix.requirements", *argv], cwd=ROOT, check=True,
                              capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}).stdout.split()

    assert listed("--for", "matrix", "--", "-k", "mips") == required_packages("matrix", [])
    assert listed("--for", "matrix", "--", "--arch", "all") == required_packages("matrix")
    assert listed("--for", "matrix") == required_packages("matrix")  # not told the options: everything
    assert listed("--for", "test", "--") == required_packages("test")
