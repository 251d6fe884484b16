"""Files read out of .deb packages: streamed once, or decompressed once and read at random (DataTar)."""

import subprocess

import pytest

from archmatrix.images.deb_files import DataTar, Symlink, extract_member, read_members
from archmatrix.images.debian import PackageFetchError


@pytest.fixture(scope="module")
def kernel_like_deb(tmp_path_factory):
    """A real .deb, built by dpkg-deb, laid out as a kernel package: the kernel, the module index, modules."""
    root = tmp_path_factory.mktemp("deb")
    tree = root / "tree"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN/control").write_text("Package: linux-image-test\nVersion: 1\nArchitecture: all\n"
                                         "Maintainer: nobody <nobody@invalid>\nDescription: test\n")
    modules = tree / "lib/modules/6.1.0-test"
    (modules / "kernel/drivers/net").mkdir(parents=True)
    (tree / "boot").mkdir()
    (tree / "boot/vmlinuz-6.1.0-test").write_bytes(b"kernel")
    (modules / "modules.builtin").write_text("kernel/drivers/virtio/virtio.ko\n")
    (modules / "kernel/drivers/net/virtio_net.ko").write_bytes(b"virtio_net")
    (modules / "kernel/drivers/net/net_failover.ko").write_bytes(b"net_failover")
    (modules / "build").symlink_to("/usr/src/linux-headers-6.1.0-test")
    deb = root / "linux-image-test.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(tree), str(deb)], check=True,
                   capture_output=True)
    return deb


def test_a_data_tar_reads_what_the_streaming_readers_read_and_goes_when_done(kernel_like_deb, tmp_path):
    wanted = lambda path: path.startswith("lib/modules/")  # noqa: E731
    streamed = read_members(kernel_like_deb, wanted)
    streamed_kernel = extract_member(kernel_like_deb, "boot/vmlinuz-*", tmp_path / "streamed")
    with DataTar(kernel_like_deb, tmp_path / "data.tar") as tar:
        assert (tmp_path / "data.tar").is_file()
        # Read more than once, in any order: each pass is a read of the one decompressed file.
        assert tar.extract_member("boot/vmlinuz-*", tmp_path / "kernel") == streamed_kernel
        assert tar.read_members(wanted) == streamed
        assert tar.read_members(lambda path: path.endswith("/net_failover.ko")) == {
            "lib/modules/6.1.0-test/kernel/drivers/net/net_failover.ko": b"net_failover"}
        assert tar.extract_member("boot/vmlinuz-*", tmp_path / "again") == streamed_kernel
    assert (tmp_path / "kernel").read_bytes() == (tmp_path / "streamed").read_bytes() == b"kernel"
    assert streamed["lib/modules/6.1.0-test/build"] == Symlink("/usr/src/linux-headers-6.1.0-test")
    assert not (tmp_path / "data.tar").exists(), "the decompressed data goes with the with block"


def test_a_data_tar_names_the_file_it_has_no_match_in(kernel_like_deb, tmp_path):
    with DataTar(kernel_like_deb, tmp_path / "data.tar") as tar, \
            pytest.raises(PackageFetchError, match=r"linux-image-test\.deb holds no file matching 'boot/nonesuch'"):
        tar.extract_member("boot/nonesuch", tmp_path / "out")
    assert not (tmp_path / "data.tar").exists()


def test_a_package_dpkg_deb_cannot_read_is_named_and_leaves_nothing(tmp_path):
    broken = tmp_path / "broken.deb"
    broken.write_bytes(b"!<arch>\nnot really a package")
    with pytest.raises(PackageFetchError, match=r"dpkg-deb could not read .*broken\.deb"):
        with DataTar(broken, tmp_path / "data.tar"):
            pass
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.deb"]
