"""`archmatrix nova install`: make Nova's own environment (a pinned Nova and libvirt-python, once per version),
so that nova-plan answers from Nova itself."""

from __future__ import annotations

import sys

from archmatrix.cli import argtypes
from archmatrix.nova.environment import DEFAULT_VERSION, NovaError, nova_environment


def add_parser(commands) -> None:
    nova = commands.add_parser("nova", help="OpenStack Nova's own environment, which nova-plan asks")
    actions = nova.add_subparsers(dest="action", required=True)
    install = actions.add_parser("install", help="make Nova's environment (about a minute and 400 MB, once)")
    install.add_argument("--nova-version", default=DEFAULT_VERSION, metavar="VERSION", type=argtypes.nova_version(),
                         help="the Nova to install (default: %(default)s; 34.0.0 and 29.4.0 are pinned)")


def nova_command(args) -> int:
    environment = nova_environment(args.nova_version)
    if environment.installed:
        print(f"nova {environment.version}: already installed in {environment.path}")
        return 0
    try:
        environment.ensure(lambda line: print(line, flush=True))
    except NovaError as error:
        print(f"archmatrix: {error}", file=sys.stderr)
        return 1
    print(f"nova {environment.version}: installed in {environment.path}; nova-plan now answers from it")
    return 0
