"""The options a run takes, declared once: their names, defaults and help, for pytest and argparse alike.

`add_options` takes pytest's parser (`parser.getgroup(...).addoption(...)`); archmatrix/options/on_argparse.py
gives an argparse parser that shape.
"""

from __future__ import annotations

from archmatrix.core.arches import ACCELERATORS, ARCHES, default_arches
from archmatrix.core.plan import DEFAULT_SUCCESS_PATTERN
from archmatrix.hosts.container_recipe import CONTAINER_RELEASES
from archmatrix.hosts.lab_catalog import LAB_KINDS
from archmatrix.hosts.spec import DEFAULT_URI
from archmatrix.inputs.numbers import CONSOLE_CAP_MIB, SECONDS, TB_CACHE_MIB, TIMEOUT_FACTOR
from archmatrix.nova.environment import DEFAULT_VERSION as NOVA_VERSION
from archmatrix.nova.environment import pinned_nova_versions
from archmatrix.options.settings import DEFAULT_TB_CACHE_MIB
from archmatrix.paths import default_cache_dir

BOOT_FROM = ("kernel", "disk")


def working_lab_arches() -> list[str]:
    return sorted(arch for arch, kind in LAB_KINDS.items() if kind.unsupported is None)


def add_options(parser) -> None:
    group = parser.getgroup("archmatrix", "archmatrix")
    group.addoption("--arch", action="append", default=[], metavar="ARCH[,ARCH...]",
                    help=f"guest arch(es) to run, repeatable; valid: {', '.join(ARCHES)}, or 'all' for every one "
                         f"(default: {', '.join(default_arches())})")
    group.addoption("--accel", action="append", default=[], metavar="ACCEL[,ACCEL...]",
                    help=f"accelerator(s), repeatable; valid: {', '.join(ACCELERATORS)} (default: all; "
                         "KVM cells are skipped with the KVM probe's reason unless KVM really works)")
    group.addoption("--libvirt-uri", action="append", default=[], metavar="[LABEL=]URI",
                    help=f"a libvirt host to verify, repeatable; LABEL names it in test ids and the matrix "
                         f"(default label: the host name). Default: {DEFAULT_URI}, or $ARCHMATRIX_LIBVIRT_URI")
    group.addoption("--hosts-file", default=None, metavar="FILE",
                    help="TOML file of hosts: [[host]] tables with uri and optional label, ssh (USER@HOST[:PORT]), "
                         "ssh_key, ssh_fingerprint (SHA256:...), ssh_known_hosts")
    group.addoption("--host-ssh", action="append", default=[], metavar="LABEL=USER@HOST[:PORT][,key=PATH]...",
                    help="an SSH way into a host, for its facts and its QEMU processes; settings key=, "
                         "fingerprint=SHA256:... (pinned host key), known_hosts= (default ~/.ssh/known_hosts)")
    group.addoption("--container-host", action="append", default=[], metavar="RELEASE[,RELEASE...]",
                    help=f"also verify a Docker container running libvirtd and QEMU of this Debian release, "
                         f"built and started by the run; valid: {', '.join(CONTAINER_RELEASES)}")
    group.addoption("--lab-host", action="append", default=[], metavar="ARCH[,ARCH...]",
                    help="also verify a lab host: a virtual host of that arch booted by the run under this "
                         "machine's TCG with the virtualization extensions on, so its KVM works; built from Debian "
                         f"packages; valid: {', '.join(working_lab_arches())}")
    group.addoption("--nova", action="store_true", default=False,
                    help="also boot every cell with the domain OpenStack Nova's own libvirt driver writes for it: "
                         "the arch's image properties as Nova's nova-emulation job sets them, and --image-property's, "
                         "booted from the arch's built-in firmware disk (or its --image disk) with a config drive; "
                         "their ids end in -nova (-k nova)")
    group.addoption("--nova-version", default=NOVA_VERSION, metavar="VERSION",
                    help=f"the Nova whose driver writes the Nova cells' domains, installed into an environment of its "
                         f"own on first use (default: {NOVA_VERSION}; pinned: {', '.join(pinned_nova_versions())})")
    group.addoption("--nova-conf", action="append", default=[], metavar="SECTION.OPTION=VALUE",
                    help="a nova.conf option for the Nova cells, repeatable: e.g. libvirt.cpu_mode=host-model, "
                         "libvirt.cpu_models=cortex-a72, libvirt.hw_machine_type=aarch64=virt, "
                         "libvirt.tb_cache_size=128; [libvirt] virt_type is the cell's accelerator (kvm, or qemu "
                         "for tcg)")
    group.addoption("--nova-without-config-drive", action="store_true", default=False,
                    help="the Nova cells' instances ask for no config drive (default: they do, as "
                         "`openstack server create --config-drive true`)")
    group.addoption("--lab-host-without-kvm", action="store_true", default=False,
                    help="boot the lab hosts without the virtualization extensions (no /dev/kvm in them): a planted "
                         "fault, under which their KVM cells must be unsupported")
    group.addoption("--image-cache", default=None, metavar="DIR",
                    help=f"content-addressed image cache (default: {default_cache_dir()})")
    group.addoption("--image", action="append", default=[], metavar="ARCH=KERNEL[,INITRD]|ARCH=DISK",
                    help="boot a user-supplied kernel (and initrd), or a disk image (qcow2 or raw) through the "
                         "arch's firmware, for ARCH instead of the built-in image (the only way for the arches "
                         "without one); it is up when its console shows --success-pattern")
    group.addoption("--boot-from", choices=BOOT_FROM, default="kernel",
                    help="how the built-in images boot: 'kernel', libvirt's direct kernel boot, or 'disk', a disk "
                         "through the arch's firmware as a Glance image boots (UEFI on aarch64 and x86_64, SLOF on "
                         "ppc64le, the s390-ccw BIOS on s390x; other arches are unsupported) (default: kernel)")
    group.addoption("--success-pattern", action="append", default=[], metavar="ARCH=REGEX",
                    help="what the console of ARCH's --image shows once it is up (a Python regular expression; "
                         f"default: a login prompt, {DEFAULT_SUCCESS_PATTERN!r})")
    group.addoption("--image-property", action="append", default=[], metavar="ARCH=KEY=VALUE",
                    help="a Nova image property for ARCH's cells, repeatable: they boot the machine, CPU and "
                         "firmware Nova's libvirt driver would pick (see `archmatrix nova-plan`)")
    group.addoption("--image-properties", action="append", default=[], metavar="ARCH=FILE",
                    help="ARCH's image properties from a file: `openstack image show -f json` output or KEY=VALUE "
                         "lines")
    group.addoption("--machine", action="append", default=[], metavar="ARCH=MACHINE",
                    help="machine type for ARCH instead of its default family; checked against that "
                         "arch's emulator before any boot")
    # The numbers are taken as text and checked by settings_from: finite, and in the range their help states.
    group.addoption("--kvm-probe-timeout", default=20.0, metavar="SECONDS",
                    help=f"how long the KVM probe guest may take to print its banner: {SECONDS} (default: 20)")
    group.addoption("--kvm-probe-first-output", default=5.0, metavar="SECONDS",
                    help="the KVM probe guest's first console byte must come within this, or KVM is found broken "
                         f"at once: {SECONDS} (default: 5; a kernel under working KVM prints within a second)")
    group.addoption("--timeout-factor", default=1.0, metavar="FACTOR",
                    help=f"multiply every per-arch boot timeout, for slow hosts: {TIMEOUT_FACTOR} (default: 1.0)")
    group.addoption("--boot-timeout", action="append", default=[], metavar="ARCH[-ACCEL]=SECONDS",
                    help="boot timeout for an arch (or one cell), instead of the catalog's: "
                         f"{SECONDS}; --timeout-factor still applies")
    group.addoption("--kernel-args", action="append", default=[], metavar="ARCH=ARGS",
                    help="extra kernel command line arguments for ARCH's guests (printable ASCII, no <>&)")
    group.addoption("--console-cap", default=64.0, metavar="MIB",
                    help="a guest whose console passes this size fails at once as a console flood; the harness's "
                         f"log of it keeps head and tail with a note of what was dropped: {CONSOLE_CAP_MIB} "
                         "(default: 64)")
    group.addoption("--tb-cache", default=DEFAULT_TB_CACHE_MIB, metavar="MIB",
                    help=f"TCG translation cache per guest: {TB_CACHE_MIB} (default: {DEFAULT_TB_CACHE_MIB}; "
                         "QEMU's own is 1 GiB)")
    group.addoption("--report-dir", default="reports", metavar="DIR",
                    help="where matrix.json, junit.xml, matrix.md, matrix.html and console logs go "
                         "(default: reports)")
