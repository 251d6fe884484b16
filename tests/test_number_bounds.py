"""Finding A of the robustness review: every number given to archmatrix is finite and within a stated range.

`value <= 0` let NaN and infinity through (NaN compares false with everything): `--timeout-factor nan` made
every deadline NaN, and the console and SSH waits spun at 100% CPU for the guest's whole life.
"""

import contextlib
import io
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
from _pytest.config.argparsing import Parser

from archmatrix import plugin
from archmatrix.cli.main import _parser as cli_parser
from archmatrix.hosts.spec import HostSpecError, default_label, specs_from_file, specs_from_uris
from archmatrix.options import OptionError
from archmatrix.options.values import host_specs

NOT_FINITE = ["nan", "inf", "-inf", "1e999"]


def checked(tmp_path, *args):
    """The plugin's options parsed and checked in process, as a run's controller checks them."""
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    options = parser.parse([*args, "--report-dir", str(tmp_path / "reports"),
                                 "--image-cache", str(tmp_path / "cache")])
    return plugin.checked_settings(options)


@pytest.mark.parametrize("value", [*NOT_FINITE, "1e12"])
@pytest.mark.parametrize("option", ["--timeout-factor", "--kvm-probe-timeout", "--kvm-probe-first-output",
                                    "--console-cap", "--tb-cache"])
def test_a_number_option_must_be_finite_and_in_its_range(tmp_path, option, value):
    with pytest.raises(pytest.UsageError) as refused:
        checked(tmp_path, f"{option}={value}")  # one word: argparse takes "-inf" alone for an option
    assert option in str(refused.value) and "valid: a " in str(refused.value)


@pytest.mark.parametrize("value", ["aarch64=nan", "aarch64=inf", "aarch64-tcg=-inf", "s390x=1e999", "s390x=1e9"])
def test_a_boot_timeout_must_be_finite_and_in_range(tmp_path, value):
    with pytest.raises(pytest.UsageError, match=r"--boot-timeout .*valid: a number of seconds greater than 0"):
        checked(tmp_path, "--boot-timeout", value)


def test_the_ranges_let_the_values_people_use_through(tmp_path):
    settings = checked(tmp_path, "--timeout-factor", "0.004", "--console-cap", "0.5", "--tb-cache", "0",
                       "--kvm-probe-timeout", "20", "--boot-timeout", "aarch64=180")
    assert (settings.timeout_factor, settings.console_cap_mib, settings.tb_cache_mib) == (0.004, 0.5, 0)
    assert settings.boot_timeouts == {"aarch64": 180.0}


@pytest.mark.parametrize("argv, option", [
    (["report", "diff", "OLD", "NEW", "--slower-ratio=nan"], "--slower-ratio"),
    (["report", "diff", "OLD", "NEW", "--slower-ratio=inf"], "--slower-ratio"),
    (["report", "diff", "OLD", "NEW", "--slower-ratio=-1"], "--slower-ratio"),
    (["report", "diff", "OLD", "NEW", "--slower-min-s=nan"], "--slower-min-s"),
    (["report", "diff", "OLD", "NEW", "--slower-min-s=-inf"], "--slower-min-s"),
    (["images", "build", "--apt-timeout=nan"], "--apt-timeout"),
    (["images", "build", "--apt-timeout=inf"], "--apt-timeout"),
    (["images", "build", "--apt-timeout=0"], "--apt-timeout"),
])
def test_a_number_argument_of_the_command_line_must_be_finite_and_in_range(tmp_path, argv, option):
    matrix = tmp_path / "matrix.json"
    matrix.write_text(json.dumps({"schema_version": 1, "cells": []}))
    argv = [str(matrix) if arg in ("OLD", "NEW") else arg for arg in argv]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as refused:
        cli_parser().parse_args(argv)
    assert refused.value.code == 2
    assert option in stderr.getvalue() and "valid: a " in stderr.getvalue()


@pytest.mark.parametrize("port", ["70000", "65536", "-1", "0", "nan", "99999999999"])
def test_an_ssh_port_is_a_whole_number_from_1_to_65535_wherever_it_is_given(tmp_path, port):
    label = default_label("qemu:///system")
    with pytest.raises(OptionError, match=r"--host-ssh .*port.*valid: a whole number from 1 to 65535"):
        host_specs(_options(host_ssh=[f"{label}=root@h:{port}"]))
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f'[[host]]\nuri = "qemu+tcp://h/system"\nssh = "root@h:{port}"\n')
    with pytest.raises(HostSpecError, match=r"--hosts-file .*ssh port.*valid: a whole number from 1 to 65535"):
        specs_from_file(hosts)
    with pytest.raises(HostSpecError, match=r"--libvirt-uri: the port of .*valid: a whole number from 1 to 65535"):
        specs_from_uris([f"qemu+ssh://root@h:{port}/system"])


def test_the_run_stops_at_option_checking_with_a_usage_error(tmp_path):
    # The wiring, as a person runs it: the first line of stderr names the option and the range.
    (tmp_path / "test_never.py").write_text("def test_never(cell):\n    raise AssertionError('ran')\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
                             "--timeout-factor", "nan"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert "--timeout-factor: 'nan' is not finite; valid: a number greater than 0" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "reports").exists()


def _options(**given):
    return SimpleNamespace(**({"libvirt_uri": [], "hosts_file": None, "host_ssh": []} | given))
