"""`archmatrix nova-plan`: read image properties and a host's libvirt, print what Nova would do and the pitfalls."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from archmatrix.core.capabilities import parse_capabilities
from archmatrix.nova.plan import (
    PropertyError,
    firmware_capabilities,
    guest_arch_of,
    last_matrix_cells,
    plan_for_image,
    read_properties,
)
from archmatrix.nova.render import plan_dict, render


def add_parser(commands) -> None:
    plan = commands.add_parser("nova-plan", help="what Nova's libvirt driver would do with an image's properties "
                                                 "on a host, and the pitfalls it would hit")
    plan.add_argument("--image-properties", type=Path, metavar="FILE",
                      help="`openstack image show -f json` output, or KEY=VALUE lines")
    plan.add_argument("--image-property", action="append", default=[], metavar="KEY=VALUE",
                      help="one property, repeatable; overrides the file's")
    plan.add_argument("--libvirt-uri", default="qemu:///system", metavar="URI", help="the host (default: %(default)s)")
    plan.add_argument("--virt-type", choices=("kvm", "qemu"), default="kvm",
                      help="nova.conf's [libvirt]virt_type on that host (default: %(default)s)")
    plan.add_argument("--matrix", type=Path, metavar="MATRIX.json",
                      help="the host's last matrix: did a guest of that arch boot there, with KVM too?")
    plan.add_argument("--host-label", metavar="LABEL", help="the host's label in that matrix (default: any)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")


def nova_plan_command(args) -> int:
    try:
        properties = {}
        if args.image_properties:
            try:
                text = args.image_properties.read_text()
            except OSError as error:
                raise PropertyError(f"--image-properties {args.image_properties}: {error.strerror}") from None
            properties.update(read_properties(text, str(args.image_properties)))
        properties.update(read_properties("\n".join(args.image_property), "--image-property"))
        import libvirt

        # A query libvirt refuses (a machine the emulator lacks) is an exception handled here: not printed too.
        libvirt.registerErrorHandler(lambda _context, _error: None, None)
        try:
            conn = libvirt.open(args.libvirt_uri)
        except libvirt.libvirtError as error:
            print(f"archmatrix: cannot connect to libvirt at {args.libvirt_uri}: {error}", file=sys.stderr)
            return 2
        try:
            host = parse_capabilities(conn.getCapabilities())
            domcaps = firmware_capabilities(conn, host, properties, args.virt_type)
        finally:
            conn.close()
        guest, _ = guest_arch_of(properties, host.host_arch)
        try:
            cells = last_matrix_cells(args.matrix, args.host_label, guest)
        except (OSError, ValueError, KeyError) as error:
            raise PropertyError(f"--matrix {args.matrix}: not a readable matrix.json ({error})") from None
        plan = plan_for_image(properties, host, args.virt_type, domcaps, cells)
    except PropertyError as error:
        print(f"archmatrix: {error}", file=sys.stderr)
        return 2
    print(json.dumps(plan_dict(plan), indent=2) if args.json else render(plan), end="\n" if args.json else "")
    return 1 if plan.pitfalls else 0
