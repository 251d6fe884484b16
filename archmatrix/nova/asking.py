"""Asking Nova itself about one image on a live host, as `archmatrix nova-plan` does.

Runs against several hosts in one bridge process (the comparison with the own reading, the traits of several
hosts; Nova's imports take a second or two, each case milliseconds) are driver.ask_each's.
"""

from __future__ import annotations

from archmatrix.nova.driver import NovaAnswer, NovaCase, ask, live_host
from archmatrix.nova.environment import NovaEnvironment, NovaError


def ask_image(environment: NovaEnvironment, uri: str, properties: dict[str, str], virt_type: str) -> NovaAnswer:
    """Nova's answer for one image on the host at `uri` (the bridge's own guarded read-write connection), with a
    config drive, so that the XML shows the CD-ROM bus too."""
    case = NovaCase("nova-plan", dict(properties), config_drive=True)
    (run,) = ask(environment, live_host(uri), [({"libvirt.virt_type": virt_type}, [case])])
    answer = run.answers["nova-plan"]
    if answer.error:
        raise NovaError(f"nova {environment.version} could not complete the case on {uri}: {answer.error}")
    return answer
