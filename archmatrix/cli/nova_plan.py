"""`archmatrix nova-plan`: read image properties and a host's libvirt, print what Nova would do and the pitfalls.

Nova itself answers when its environment is installed (`archmatrix nova install`): its own libvirt driver, run
through the bridge against the host. Otherwise, or with --own-reading, archmatrix's own reading of Nova answers,
and says so.
"""

from __future__ import annotations

import json
import sys

from archmatrix.cli import argtypes
from archmatrix.core.capabilities import parse_capabilities
from archmatrix.inputs import reraised_as
from archmatrix.inputs.files import read_input_text
from archmatrix.nova.asking import ask_image
from archmatrix.nova.environment import DEFAULT_VERSION, NovaError, nova_environment
from archmatrix.nova.plan import (
    NovaPlan,
    PropertyError,
    check_properties,
    firmware_capabilities,
    guest_arch_of,
    last_matrix_cells,
    plan_for_image,
    plan_from_nova,
    read_properties,
)
from archmatrix.nova.render import plan_dict, render


def add_parser(commands) -> None:
    plan = commands.add_parser("nova-plan", help="what Nova's libvirt driver would do with an image's properties "
                                                 "on a host, and the pitfalls it would hit")
    plan.add_argument("--image-properties", type=argtypes.input_file(), metavar="FILE",
                      help="`openstack image show -f json` output, or KEY=VALUE lines")
    plan.add_argument("--image-property", action="append", default=[], metavar="KEY=VALUE",
                      type=argtypes.key_value(), help="one property, repeatable; overrides the file's")
    plan.add_argument("--libvirt-uri", default="qemu:///system", metavar="URI", type=argtypes.uri(),
                      help="the host (default: %(default)s)")
    plan.add_argument("--virt-type", choices=("kvm", "qemu"), default="kvm",
                      help="nova.conf's [libvirt]virt_type on that host (default: %(default)s)")
    plan.add_argument("--nova-version", default=DEFAULT_VERSION, metavar="VERSION", type=argtypes.nova_version(),
                      help="the Nova that answers, when its environment is installed (`archmatrix nova install`; "
                           "default: %(default)s)")
    plan.add_argument("--own-reading", action="store_true",
                      help="answer from archmatrix's own reading of Nova, even where Nova is installed")
    plan.add_argument("--matrix", type=argtypes.input_file(), metavar="MATRIX.json",
                      help="the host's last matrix: did a guest of that arch boot there, with KVM too?")
    plan.add_argument("--host-label", metavar="LABEL", type=argtypes.label(),
                      help="the host's label in that matrix (default: any)")
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")


def install_hint(version: str) -> str:
    flag = "" if version == DEFAULT_VERSION else f" --nova-version {version}"
    return f"`archmatrix nova install{flag}` makes Nova's environment (about a minute, 400 MB)"


def nova_plan_command(args) -> int:
    try:
        properties = {}
        if args.image_properties:
            with reraised_as(PropertyError):
                text = read_input_text(args.image_properties, "--image-properties")
            properties.update(read_properties(text, str(args.image_properties)))
        properties.update(read_properties("\n".join(args.image_property), "--image-property"))
        check_properties(properties)
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
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:  # JSON, but no matrix
            raise PropertyError(f"--matrix {args.matrix}: not a readable matrix.json ({error})") from None
        plan = _plan(args, properties, host, domcaps, cells)
    except PropertyError as error:
        print(f"archmatrix: {error}", file=sys.stderr)
        return 2
    except NovaError as error:
        print(f"archmatrix: {error} (--own-reading answers from archmatrix's reading of Nova)", file=sys.stderr)
        return 2
    print(json.dumps(plan_dict(plan), indent=2) if args.json else render(plan), end="\n" if args.json else "")
    return 1 if plan.pitfalls else 0


def _plan(args, properties: dict[str, str], host, domcaps: dict[str, str], cells: dict[str, dict]) -> NovaPlan:
    environment = nova_environment(args.nova_version)
    if args.own_reading:
        return plan_for_image(properties, host, args.virt_type, domcaps, cells, why="asked for with --own-reading")
    if not environment.installed:
        # Never installed silently here: 400 MB is the operator's call.
        why = (f"Nova {environment.version} is not installed here; {install_hint(environment.version)}, then "
               f"nova-plan answers from Nova itself")
        return plan_for_image(properties, host, args.virt_type, domcaps, cells, why=why)
    answer = ask_image(environment, args.libvirt_uri, properties, args.virt_type)
    how = (f"its own libvirt driver through archmatrix's bridge, on {args.libvirt_uri} with [libvirt]virt_type "
           f"{args.virt_type}")
    return plan_from_nova(answer, environment.version, how, properties, host, args.virt_type, domcaps, cells)
