"""What a run's controller checks on this machine before anything boots: --machine, the image cache, the reports.

--machine is asked of each local host's libvirt; the image cache and the report directory are tried for
writing. Workers were started by a controller that did.
"""

from __future__ import annotations

from pathlib import Path

from archmatrix.inputs.files import check_writable_dir
from archmatrix.options.settings import Settings
from archmatrix.options.values import settings_from
from archmatrix.options.words import OptionError, option_named


def check_report_dir(path: Path) -> Path:
    """The report directory must exist or be creatable, and be writable, before anything boots.

    Tried for real and made only when the reports are written: a session that runs no cell leaves none behind.
    """
    with option_named("--report-dir"):
        return check_writable_dir(path, "--report-dir", keep=False)


def check_image_cache(path: Path) -> Path:
    """The image cache must be a directory that can be written (the cache makes it when it is first used)."""
    with option_named("--image-cache"):
        return check_writable_dir(path, "--image-cache", keep=False)


def check_machines(settings: Settings) -> None:
    """--machine names a machine of that arch's emulator: asked of each local host's libvirt, before any worker starts.

    Remote and container hosts are asked when their cells plan: a machine type
    they lack makes those cells errors, naming the valid ones.
    """
    if not settings.machines:
        return
    import libvirt

    from archmatrix.core.capabilities import parse_capabilities
    from archmatrix.hosts.spec import redact_uri

    for spec in settings.hosts:
        if not spec.is_local:
            continue
        try:
            conn = libvirt.open(spec.uri)
        except libvirt.libvirtError as error:
            raise OptionError(f"--machine needs libvirt to check it, and {redact_uri(spec.uri)} "
                              f"cannot be reached: {error}") from None
        try:
            capabilities = parse_capabilities(conn.getCapabilities())
        finally:
            conn.close()
        for arch, machine in settings.machines.items():
            offer = capabilities.offer_for(arch)
            if offer is not None and machine not in offer.machines:
                raise OptionError(f"--machine {arch}={machine}: {offer.emulator} has no such machine type; "
                                  f"valid: {', '.join(offer.machine_family_names())}")


def checked_settings(options, controller: bool = True) -> Settings:
    """Every option checked as a run checks it, before anything of the run exists; OptionError if one is bad.

    The controller also asks this machine's libvirt about --machine and tries the image cache and the report
    directory; workers were started by a controller that did. Nothing is left made by the tries.
    """
    settings = settings_from(options)
    if controller:
        check_machines(settings)
        check_image_cache(settings.image_cache)
        check_report_dir(settings.report_dir)
    return settings
