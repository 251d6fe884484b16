"""The Nova cells' options checked: image properties (as Nova would check them), the Nova version, nova.conf."""

from __future__ import annotations

import re

from archmatrix.core.arches import arch_named
from archmatrix.inputs.files import read_input_text
from archmatrix.inputs.text import check_text
from archmatrix.nova.environment import pinned_nova_versions
from archmatrix.options.words import OptionError, arch_pairs, option_named

NOVA_VERSION_FORM = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4}){1,3}")
NOVA_CONF_FORM = re.compile(r"(?P<section>[a-z][a-z0-9_]*|DEFAULT)\.(?P<option>[a-z][a-z0-9_]*)=(?P<value>.+)",
                            re.DOTALL)
# Set by archmatrix for every Nova cell: the cell's accelerator, and where the run keeps the instance's files.
NOVA_CONF_OWN = ("libvirt.virt_type", "DEFAULT.instances_path")


def nova_properties(options) -> dict[str, dict[str, str]]:
    """--image-properties ARCH=FILE, then --image-property ARCH=KEY=VALUE on top; each checked as Nova would."""
    from archmatrix.nova.plan import check_properties, read_properties

    properties: dict[str, dict[str, str]] = {}
    with option_named("--image-properties"):
        for value in options.image_properties:
            (arch, path), = arch_pairs([value], "--image-properties", "ARCH=FILE").items()
            text = read_input_text(path, f"--image-properties {arch}=...: the file")
            properties.setdefault(arch, {}).update(read_properties(text, path))
        for values in properties.values():
            check_properties(values)
    with option_named("--image-property"):
        for value in options.image_property:
            check_text(value, "--image-property", "ARCH=KEY=VALUE")
            arch, sep, pair = value.partition("=")
            if not sep or "=" not in pair:
                raise OptionError(f"--image-property {value!r} is not of the form ARCH=KEY=VALUE")
            properties.setdefault(arch_named(arch).name, {}).update(read_properties(pair, "--image-property"))
        for values in properties.values():
            check_properties(values)
    return properties


def check_nova_version(version: str) -> str:
    check_text(version, "--nova-version", "a Nova release such as 34.0.0")
    if not NOVA_VERSION_FORM.fullmatch(version):
        raise OptionError(f"--nova-version {version!r} is not a release number; valid: a Nova release on PyPI such as "
                          f"{', '.join(pinned_nova_versions())}")
    return version


def nova_conf_pairs(values: list[str]) -> dict[str, str]:
    """--nova-conf SECTION.OPTION=VALUE values; Nova's own configuration checks each value's type."""
    conf = {}
    for value in values:
        check_text(value, "--nova-conf", "SECTION.OPTION=VALUE")
        found = NOVA_CONF_FORM.fullmatch(value)
        if not found:
            raise OptionError(f"--nova-conf {value!r} is not of the form SECTION.OPTION=VALUE, e.g. "
                              f"libvirt.cpu_mode=host-model")
        section = "DEFAULT" if found["section"] == "default" else found["section"]
        key = f"{section}.{found['option']}"
        if key in NOVA_CONF_OWN:
            raise OptionError(f"--nova-conf {value!r}: {key} is archmatrix's to set for every Nova cell (virt_type is "
                              f"the cell's accelerator); valid: any other nova.conf option")
        conf[key] = found["value"]
    return conf
