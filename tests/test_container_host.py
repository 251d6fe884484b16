"""Container hosts without Docker: the recipe and its key, the sources, the handle's URI, the sweep's judgement."""

import io
import tarfile
from urllib.parse import parse_qs, urlsplit

import pytest

from archmatrix.hosts import container, container_recipe
from archmatrix.hosts.container import libvirt_uri
from archmatrix.hosts.container_image import installed_packages
from archmatrix.hosts.container_recipe import CONTAINER_RELEASES, UnknownReleaseError, check_release, load_recipe
from archmatrix.images.apt_sources import sources_for_release
from archmatrix.ssh.keys import fingerprint_of_line, new_key_pair
from tests.helpers import INDEX_TARGETS

RECIPE_TEXT = container_recipe.RECIPE_FILE.read_text()

def test_every_release_has_a_recipe_with_an_emulator_for_each_builtin_arch():
    from archmatrix.core.arches import ARCHES, default_arches

    trixie_split = {"s390x": "qemu-system-s390x", "riscv64": "qemu-system-riscv"}  # QEMU 10 split them out
    for release in CONTAINER_RELEASES:
        packages = load_recipe(release).packages
        for arch in map(ARCHES.get, default_arches()):
            wanted = trixie_split.get(arch.name, arch.qemu_package) if release == "trixie" else arch.qemu_package
            assert wanted in packages, (release, arch.name)


def test_unknown_release_names_the_valid_ones():
    with pytest.raises(UnknownReleaseError) as raised:
        check_release("sid")
    assert isinstance(raised.value, ValueError)
    assert "'sid'" in str(raised.value) and "bookworm, trixie" in str(raised.value)
    with pytest.raises(UnknownReleaseError):
        load_recipe("buster")


def test_the_key_is_stable_and_changes_with_the_recipe():
    key = load_recipe("trixie", RECIPE_TEXT).key()
    assert key == load_recipe("trixie").key() == load_recipe("trixie", RECIPE_TEXT).key()
    assert key != load_recipe("bookworm", RECIPE_TEXT).key()
    changed = [
        RECIPE_TEXT.replace('"openssh-server",', '"openssh-server", "strace",'),
        RECIPE_TEXT.replace('remember_owner = 0', 'remember_owner = 1'),
        RECIPE_TEXT.replace('variant = "apt"', 'variant = "minbase"'),
        RECIPE_TEXT.replace('"path-exclude=/usr/share/info/*",', ''),
    ]
    for text in changed:
        assert text != RECIPE_TEXT
        assert load_recipe("trixie", text).key() != key


def test_the_key_changes_with_the_builder(monkeypatch):
    key = load_recipe("trixie").key()
    monkeypatch.setattr(container_recipe, "BUILDER_VERSION", container_recipe.BUILDER_VERSION + 1)
    assert load_recipe("trixie").key() != key


def test_the_tag_names_release_and_key():
    recipe = load_recipe("bookworm")
    assert recipe.tag == f"archmatrix-host:bookworm-{recipe.key()}"


def test_a_broken_recipe_is_an_error_naming_the_release():
    with pytest.raises(container_recipe.ContainerHostError, match="trixie"):
        load_recipe("trixie", 'variant = "apt"\n')


def test_recipe_files_go_in_as_root_with_their_modes_directories_first():
    with tarfile.open(fileobj=io.BytesIO(load_recipe("trixie").files_tar())) as tar:
        members = tar.getmembers()
        kinds = [member.isdir() for member in members]
        assert kinds == sorted(kinds, reverse=True)
        by_name = {member.name: member for member in members}
        assert all(member.uid == 0 and member.gid == 0 for member in members)
        assert by_name["etc/archmatrix/ssh"].isdir() and by_name["etc/archmatrix/ssh"].mode == 0o700
        qemu_conf = tar.extractfile(by_name["etc/libvirt/qemu.conf"]).read().decode()
    assert 'stdio_handler = "file"' in qemu_conf and "cgroup_controllers = [ ]" in qemu_conf


def test_only_bookworm_creates_libvirts_qemu_user_itself():
    assert load_recipe("trixie").account_commands() == []
    commands = load_recipe("bookworm").account_commands()
    assert ["groupadd", "--system", "--force", "kvm"] in commands
    assert commands[-1][0] == "useradd" and commands[-1][-1] == "libvirt-qemu"


def test_sources_are_the_configured_debian_suites_with_the_release_swapped():
    assert sources_for_release(INDEX_TARGETS, "trixie") == (
        "deb http://debian.mirror.example/debian trixie main",
        "deb http://debian.mirror.example/debian trixie-updates main",
        "deb http://debian.mirror.example/debian-security trixie-security main",
        "deb http://mirror.example/debian trixie main",
    )


def test_no_debian_suite_gives_no_sources():
    assert sources_for_release("", "trixie") == ()
    third_party = "deb\tPackages\tDocker\thttps://vendor.example/linux/debian/\tbookworm\tbookworm\n"
    assert sources_for_release(third_party, "trixie") == ()


def test_installed_packages_come_from_the_dpkg_status_file():
    status = ("Package: libvirt-daemon\nStatus: install ok installed\nVersion: 11.3.0-3+deb13u3\n"
              "Description: virtualization daemon\n more text: with a colon\n\n"
              "Package: removed-one\nStatus: deinstall ok config-files\nVersion: 1.0\n\n"
              "Package: qemu-system-x86\nStatus: install ok installed\nVersion: 1:10.0.13+ds-0+deb13u1\n")
    assert installed_packages(status) == (("libvirt-daemon", "11.3.0-3+deb13u3"),
                                          ("qemu-system-x86", "1:10.0.13+ds-0+deb13u1"))


def test_the_uri_is_a_unix_socket_in_the_private_directory(tmp_path):
    uri = libvirt_uri(tmp_path / "libvirt")
    parts = urlsplit(uri)
    assert parts.scheme == "qemu+unix" and parts.path == "/system"
    assert parts.hostname is None and parts.port is None  # no TCP anywhere
    assert parse_qs(parts.query) == {"socket": [str(tmp_path / "libvirt" / "libvirt-sock")]}


def test_the_fingerprint_is_what_ssh_keygen_prints():
    # ssh-keygen -l -f on this public key printed SHA256:lO+kEUCYppkCXQMtlYhs/Flli4jNgeeFjXfNb+xgIlE
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID2A9o86pxj6KqSNQluEhhFWbk8hZbgeKIPbsnLnyIgU"
    assert fingerprint_of_line(public) == "SHA256:lO+kEUCYppkCXQMtlYhs/Flli4jNgeeFjXfNb+xgIlE"


def test_new_keys_are_ed25519_and_the_ssh_material_is_private():
    private, public = new_key_pair()
    assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----") and public.startswith("ssh-ed25519 ")
    with tarfile.open(fileobj=io.BytesIO(container._ssh_material(private, public))) as tar:
        modes = {member.name: (member.isdir(), member.mode, member.uid) for member in tar.getmembers()}
    assert modes == {"run/sshd": (True, 0o755, 0), "etc/archmatrix/ssh/host_ed25519": (False, 0o600, 0),
                     "etc/archmatrix/ssh/authorized_keys": (False, 0o600, 0)}
