"""Finding B of the robustness review: bad input ends in a usage error naming it, not a traceback or a hang."""

import contextlib
import io
import subprocess
import sys

import pytest
from _pytest.config.argparsing import Parser

from archmatrix import plugin
from archmatrix.cli.main import _parser as cli_parser
from archmatrix.cli.main import main as cli_main
from archmatrix.hosts.spec import HostSpecError, default_label, specs_from_file, specs_from_uris
from tests.hostile import Places, deadline


@pytest.fixture
def places(tmp_path):
    places = Places.make(tmp_path / "places")
    yield places
    places.unblock()


def checked(tmp_path, *args):
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    defaults = [] if "--report-dir" in args else ["--report-dir", str(tmp_path / "reports")]
    options = parser.parse([*args, *defaults])
    return plugin.checked_settings(options)


@pytest.mark.parametrize("host, field", [
    ('uri = 5', "uri"),
    ('uri = "qemu:///system"\nlabel = ["a"]', "label"),
    ('uri = "qemu+tcp://h/system"\nssh = true', "ssh"),
    ('uri = "qemu+tcp://h/system"\nssh = "root@h"\nssh_key = 5', "ssh_key"),
    ('uri = "qemu+tcp://h/system"\nssh = "root@h"\nssh_fingerprint = ""', "ssh_fingerprint"),
    ('uri = "qemu+tcp://h/system"\nssh = "root@h"\nssh_known_hosts = {a = 1}', "ssh_known_hosts"),
    ('uri = nan', "uri"),
    ('uri = 1979-05-27T07:32:00Z', "uri"),
])
def test_a_hosts_file_value_of_the_wrong_type_is_named(tmp_path, host, field):
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(f"[[host]]\n{host}\n")
    with pytest.raises(HostSpecError) as refused:
        specs_from_file(hosts)
    assert f"--hosts-file {hosts}, host 1: {field}" in str(refused.value) and "valid: " in str(refused.value)


@pytest.mark.parametrize("text", ['host = ["qemu:///system"]', "host = [1]", 'host = "qemu:///system"',
                                  '[host]\nuri = "qemu:///system"', "host = []", "hosts = 1"])
def test_a_hosts_file_whose_hosts_are_not_tables_says_what_is_valid(tmp_path, text):
    hosts = tmp_path / "hosts.toml"
    hosts.write_text(text + "\n")
    with pytest.raises(HostSpecError, match=r"--hosts-file .*valid: \[\[host\]\] tables"):
        specs_from_file(hosts)


def test_a_label_with_a_trailing_newline_is_refused(tmp_path):
    # LABEL.match with '$' took "lab\n": '$' also matches before a string's final newline.
    with pytest.raises(HostSpecError, match=r"host label 'lab\\n' is not valid"):
        specs_from_uris(["lab\n=qemu:///system"])
    hosts = tmp_path / "hosts.toml"
    hosts.write_text('[[host]]\nuri = "qemu:///system"\nlabel = "lab\\n"\n')
    with pytest.raises(HostSpecError, match=r"host 1: label 'lab\\n' is not valid"):
        specs_from_file(hosts)


@pytest.mark.parametrize("option, value", [
    ("--image", "aarch64={fifo}"),
    ("--image", "aarch64={kernel},{fifo}"),
    ("--image", "aarch64={fifo}.qcow2"),
    ("--image-properties", "aarch64={fifo}"),
    ("--hosts-file", "{fifo}"),
    ("--host-ssh", "LABEL=root@h,key={fifo}"),
])
def test_a_fifo_is_refused_by_name_not_read(tmp_path, places, option, value):
    (places.root / "fifo.qcow2").symlink_to(places.fifo)
    value = value.format(fifo=places.fifo, kernel=places.kernel).replace("LABEL", default_label("qemu:///system"))
    with deadline(5), pytest.raises(pytest.UsageError) as refused:
        checked(tmp_path, option, value)
    assert option in str(refused.value) and "is a FIFO; valid: " in str(refused.value)


@pytest.mark.parametrize("argv", [
    ["report", "diff", "{fifo}", "{matrix}"],
    ["report", "validate", "{fifo}"],
    ["report", "merge", "{fifo}", "--output-dir", "{root}/merged"],
    ["report", "merge-junit", "{root}/out.xml", "{fifo}"],
    ["nova-plan", "--image-properties", "{fifo}"],
    ["nova-plan", "--matrix", "{fifo}"],
])
def test_a_fifo_given_to_the_command_line_is_refused_by_name(places, argv):
    argv = [arg.format(fifo=places.fifo, matrix=places.matrix, root=places.root) for arg in argv]
    stderr = io.StringIO()
    with deadline(5), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as refused:
        cli_parser().parse_args(argv)
    assert refused.value.code == 2 and "is a FIFO; valid: a readable regular file" in stderr.getvalue()


def test_the_command_line_reads_no_fifo_as_a_person_runs_it(places):
    result = subprocess.run([sys.executable, "-m", "archmatrix.cli.main", "report", "diff", str(places.fifo),
                             str(places.matrix)], capture_output=True, text=True, timeout=20)
    assert result.returncode == 2 and f"{places.fifo} is a FIFO" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unwritable_image_cache_is_a_usage_error_not_a_crash_in_collection(tmp_path, places):
    (tmp_path / "test_never.py").write_text("def test_never(cell):\n    raise AssertionError('ran')\n")
    cache = places.under_file / "cache"
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only",
                             "--image-cache", str(cache)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert f"--image-cache: {cache} cannot be written: Not a directory; valid: " in result.stderr
    assert "Traceback" not in result.stdout + result.stderr and not (tmp_path / "reports").exists()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as refused:
        cli_main(["images", "list", "--image-cache", str(cache)])
    assert refused.value.code == 2 and f"--image-cache: {cache} cannot be written" in stderr.getvalue()


@pytest.mark.parametrize("option, value", [
    ("--libvirt-uri", "qemu:///system\n"),
    ("--libvirt-uri", "lab=qemu+tcp://h/sys\x1btem"),
    ("--report-dir", "reports\n"),
    ("--image-cache", "cache\x1b[2J"),
    ("--machine", "aarch64=virt\n"),
    ("--image-property", "aarch64=hw_machine_type=virt\nhw_video_model=vga"),
    ("--success-pattern", "aarch64=login:\x00"),
    ("--arch", "aarch64\n"),
    ("--accel", "tcg\t"),
    ("--container-host", "\n"),
    ("--lab-host", ""),
])
def test_a_control_character_or_an_empty_value_is_refused_naming_the_option(tmp_path, places, option, value):
    context = ["--image", f"aarch64={places.kernel}"] if option == "--success-pattern" else []
    with pytest.raises(pytest.UsageError) as refused:
        checked(tmp_path, *context, option, value)
    assert option in str(refused.value) and "valid" in str(refused.value)
    assert not (tmp_path / "reports").exists() and not list(tmp_path.glob("reports*")) and not list(
        tmp_path.glob("cache*"))


@pytest.mark.parametrize("option, name", [("--hosts-file", "{not_utf8}"), ("--image-properties", "aarch64={not_utf8}"),
                                          ("--image", "aarch64=/proc/self/mem")])
def test_a_file_that_cannot_be_read_as_text_or_at_all_is_a_usage_error(tmp_path, places, option, name):
    with pytest.raises(pytest.UsageError) as refused:
        checked(tmp_path, option, name.format(not_utf8=places.not_utf8))
    assert option in str(refused.value) and "valid" in str(refused.value)


@pytest.mark.parametrize("argv", [["report", "validate", "{not_utf8}"], ["report", "diff", "{matrix}", "{not_utf8}"],
                                  ["report", "merge-junit", "{root}/out.xml", "{matrix}"]])
def test_a_report_the_command_line_cannot_read_is_exit_2_not_a_traceback(places, argv):
    argv = [arg.format(not_utf8=places.not_utf8, matrix=places.matrix, root=places.root) for arg in argv]
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli_main(argv)
        except SystemExit as exit_:
            code = exit_.code
    assert code == 2 and "valid" in stderr.getvalue()
    assert not (places.root / "out.xml").exists()
