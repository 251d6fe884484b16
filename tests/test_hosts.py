"""Host specs from options and hosts files: labels, SSH ways in, and clear errors."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from archmatrix.core.plan import CellKey
from archmatrix.hosts.spec import (
    HostSpec,
    HostSpecError,
    SshAccess,
    parse_ssh,
    specs_from_file,
    specs_from_uris,
    ssh_from_uri,
    uri_is_local,
)
from archmatrix.options import OptionError
from archmatrix.options.values import container_releases, host_specs


def options(**given):
    defaults = {"libvirt_uri": [], "hosts_file": None, "host_ssh": []}
    return SimpleNamespace(**(defaults | given))


def test_labels_come_before_the_first_equals_sign_unless_it_is_part_of_the_uri():
    here, lab = specs_from_uris(["here=qemu:///system", "qemu+ssh://root@lab1:2222/system?keyfile=/k"])
    assert (here.label, here.kind, here.uri) == ("here", "local", "qemu:///system")
    assert (lab.label, lab.kind) == ("lab1", "remote")
    assert lab.ssh == SshAccess("root", "lab1", 2222, key="/k")


def test_a_socket_of_another_daemon_is_not_this_machines_libvirt():
    assert uri_is_local("qemu:///system")
    assert not uri_is_local("qemu+unix:///system?socket=/tmp/archmatrix-x/libvirt-sock")
    assert ssh_from_uri("qemu+tcp://h/system") is None


def test_two_hosts_with_one_label_are_refused_naming_both():
    with pytest.raises(OptionError, match="two hosts are labelled 'a'"):
        host_specs(options(libvirt_uri=["a=qemu:///system", "a=qemu+tcp://h/system"]))


def test_a_bad_label_or_a_non_uri_says_what_is_valid():
    with pytest.raises(HostSpecError, match="letters, digits"):
        specs_from_uris(["bad-label!=qemu:///system"])
    with pytest.raises(HostSpecError, match="is not a libvirt URI"):
        specs_from_uris(["just-a-hostname"])


def test_host_ssh_applies_to_a_named_host_and_pins_a_fingerprint(tmp_path):
    key = tmp_path / "lab-key"
    key.write_text("a private key\n")
    specs = host_specs(options(libvirt_uri=["lab=qemu+tcp://lab/system"],
                               host_ssh=[f"lab=root@lab:22,key={key},fingerprint=SHA256:abc"]))
    assert specs[0].ssh == SshAccess("root", "lab", 22, str(key), "SHA256:abc")
    with pytest.raises(OptionError, match="--host-ssh lab, key: /keys/lab does not exist; valid: a readable"):
        host_specs(options(libvirt_uri=["lab=qemu+tcp://lab/system"], host_ssh=["lab=root@lab,key=/keys/lab"]))
    with pytest.raises(OptionError, match="valid: lab"):
        host_specs(options(libvirt_uri=["lab=qemu+tcp://lab/system"], host_ssh=["other=root@x"]))
    with pytest.raises(HostSpecError, match="SHA256"):
        parse_ssh("root@lab,fingerprint=md5:aa", "--host-ssh lab")
    with pytest.raises(HostSpecError, match="USER@HOST"):
        parse_ssh("lab", "--host-ssh lab")


def test_hosts_file_gives_labels_uris_and_ssh(tmp_path):
    path = tmp_path / "hosts.toml"
    path.write_text('[[host]]\nlabel = "rack1"\nuri = "qemu+tcp://rack1/system"\nssh = "root@rack1"\n'
                    'ssh_fingerprint = "SHA256:xyz"\n\n[[host]]\nuri = "qemu:///system"\nlabel = "here"\n')
    rack, here = specs_from_file(path)
    assert rack.label == "rack1" and rack.ssh.fingerprint == "SHA256:xyz" and here.kind == "local"


def test_hosts_file_errors_name_the_file_and_the_valid_keys(tmp_path):
    path = tmp_path / "hosts.toml"
    path.write_text('[[host]]\nurl = "qemu:///system"\n')
    with pytest.raises(HostSpecError, match="host 1: needs uri; unknown keys: url; valid keys:"):
        specs_from_file(path)
    path.write_text("not toml [")
    with pytest.raises(HostSpecError, match="cannot read it"):
        specs_from_file(path)


def test_without_hosts_the_run_verifies_this_machine(monkeypatch):
    monkeypatch.delenv("ARCHMATRIX_LIBVIRT_URI", raising=False)
    (spec,) = host_specs(options())
    assert spec.uri == "qemu:///system" and spec.is_local


def test_container_releases_are_checked():
    assert container_releases(["trixie,bookworm"]) == ("trixie", "bookworm")
    with pytest.raises(OptionError, match="valid: bookworm, trixie"):
        container_releases(["jessie"])


def test_host_spec_survives_the_trip_to_a_worker():
    spec = HostSpec("trixie", "qemu+unix:///system?socket=/s", "container",
                    SshAccess("root", "c", proxy_command=("docker", "exec", "-i", "c", "/usr/sbin/sshd", "-i")),
                    {"container_release": "trixie"})
    assert HostSpec.from_dict(spec.to_dict()) == spec


def test_cell_ids_carry_the_host_only_when_a_run_has_several():
    key = CellKey("aarch64", "tcg", "trixie")
    assert key.id == "aarch64-tcg" and key.test_id(False) == "aarch64-tcg"
    assert key.test_id(True) == "trixie-aarch64-tcg"


def test_uploads_are_recorded_per_host_though_every_remote_host_has_a_pool_of_the_runs_name(tmp_path):
    # Two remote hosts of one run once shared the record of an upload, so the second host was
    # handed a volume path that existed only on the first.
    from archmatrix.guest.volumes import PoolFiles
    from archmatrix.images.cache import Image

    kernel = tmp_path / "kernel"
    kernel.write_bytes(b"k")
    image = Image("aarch64", kernel, None, "ab" * 32, None, "built-in")
    recorded = {}

    def once(key, compute):
        recorded.setdefault(key, {"path": f"/pool/{len(recorded)}"})
        return recorded[key]

    paths = [PoolFiles(lambda: None, "archmatrix-pool-run", once, label, Path("/nonexistent")).place(
        image, "aarch64-tcg", "").kernel
             for label in ("viapool", "trixie", "trixie")]
    assert paths[0] != paths[1] and paths[1] == paths[2]


def test_debians_i386_wrapper_script_names_the_binary_it_runs():
    from archmatrix.hosts.inspectors import wrapped_binary

    # Debian 12's /usr/bin/qemu-system-i386 (qemu-system-x86), recorded: it execs /usr/libexec/qemu-system-i386
    # unless asked for Xen, which it sends to xen-qemu-system-i386.
    script = (Path(__file__).parent / "fixtures" / "emulators" / "debian12-qemu-system-i386.sh").read_bytes()
    assert wrapped_binary("/usr/bin/qemu-system-i386", script) == "/usr/libexec/qemu-system-i386"
    assert wrapped_binary("/usr/bin/qemu-system-x86_64", b"\x7fELF\x02\x01\x01") is None
    assert wrapped_binary("/usr/bin/qemu-system-i386", b"#!/bin/sh\nexec /usr/libexec/xen-qemu-system-i386\n") is None
