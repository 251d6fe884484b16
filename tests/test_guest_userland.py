"""What a built-in image takes from Debian packages: module load order, ELF loader and libraries."""

from pathlib import Path

import pytest

from archmatrix.images.deb_files import Symlink
from archmatrix.images.elf_deps import elf_needs
from archmatrix.images.guest_userland import ModuleIndex, UserlandError, modules_in_load_order, with_libraries

REL = "lib/modules/6.1.0-56-arm64/kernel"
# Each fake module carries what matters here: the .modinfo `depends=` string, NUL-separated as in a real .ko.
MODULES = {
    f"{REL}/drivers/net/virtio_net.ko": b"\0license=GPL\0depends=net_failover\0vermagic=6.1\0",
    f"{REL}/drivers/net/net_failover.ko": b"\0depends=failover\0",
    f"{REL}/net/core/failover.ko": b"\0depends=\0",
    f"{REL}/drivers/virtio/virtio_pci.ko": b"\0depends=virtio_pci_modern_dev\0",
    f"{REL}/drivers/virtio/virtio_pci_modern_dev.ko": b"\0depends=\0",
}


def read(paths):
    return {path: MODULES[path] for path in paths}


def test_modules_load_dependencies_first_and_skip_built_in_ones():
    index = ModuleIndex(list(MODULES), "kernel/drivers/virtio/virtio_ring.ko\n")
    files = modules_in_load_order(("virtio_net", "virtio_pci", "virtio_ring"), index, read)
    order = files["lib/modules/archmatrix/order"].decode().split()
    assert order.index("failover.ko") < order.index("net_failover.ko") < order.index("virtio_net.ko")
    assert order.index("virtio_pci_modern_dev.ko") < order.index("virtio_pci.ko")
    assert "virtio_ring.ko" not in order  # built in: nothing to load


def test_an_index_knows_built_in_and_packaged_modules_by_either_spelling():
    # What picks the virtio RNG's driver: taken where the kernel has it, left out (not a failed build) where not.
    index = ModuleIndex(list(MODULES), "kernel/drivers/char/hw_random/virtio-rng.ko\n")
    assert index.has("virtio_rng") and index.has("virtio-rng") and index.has("net_failover")
    assert not ModuleIndex(list(MODULES), "").has("virtio_rng")


def test_a_module_neither_built_in_nor_packaged_fails_by_name():
    index = ModuleIndex([path for path in MODULES if "failover.ko" not in path or "net_" in path], "")
    with pytest.raises(UserlandError, match="module failover \\(needed by net_failover\\)"):
        modules_in_load_order(("virtio_net",), index, read)


def test_elf_needs_of_a_real_program():
    needs = elf_needs(Path("/bin/true").read_bytes())  # this machine's own, a real dynamically linked ELF
    assert needs.interpreter == "/lib64/ld-linux-x86-64.so.2" and "libc.so.6" in needs.needed


def test_libraries_follow_symlinks_and_a_missing_one_fails_by_name():
    program = Path("/bin/true").read_bytes()
    libc = Path("/lib/x86_64-linux-gnu/libc.so.6").read_bytes()
    loader = Path("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").read_bytes()
    libraries = {"lib/x86_64-linux-gnu/libc.so.6": libc,
                 "lib/x86_64-linux-gnu/ld-linux-x86-64.so.2": loader,
                 "lib64/ld-linux-x86-64.so.2": Symlink("../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")}
    files = with_libraries({"bin/true": program}, libraries, ["libc6"])
    assert files["lib64/ld-linux-x86-64.so.2"] == loader and files["lib/x86_64-linux-gnu/libc.so.6"] == libc
    del libraries["lib/x86_64-linux-gnu/libc.so.6"]
    with pytest.raises(UserlandError, match="bin/true needs libc.so.6, which is in none of libc6"):
        with_libraries({"bin/true": program}, libraries, ["libc6"])
