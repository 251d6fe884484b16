"""The guests' network on the host: forwarded ports that another process takes first."""

import dataclasses
import socket

from harness.arches import ARCHES
from harness.checks import judge
from harness.guest.observe import boot_and_observe
from harness.plan import make_plan


def test_a_port_taken_before_qemu_binds_it_is_drawn_again(emuv_host, monkeypatch):
    network = emuv_host.site.network
    with socket.socket() as squatter:  # another process on the port the harness drew, before QEMU binds it
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        drawn = [taken]
        real_free_port = network.free_port
        monkeypatch.setattr(network, "free_port", lambda: drawn.pop() if drawn else real_free_port())
        plan = dataclasses.replace(make_plan(ARCHES["aarch64"], "tcg", emuv_host.capabilities, None),
                                   cell_id="port-taken-aarch64")
        image = emuv_host.cache.get_or_build(ARCHES["aarch64"])
        observation = boot_and_observe(emuv_host.connection(), plan, image, emuv_host.site)
    assert not observation.start_error and drawn == []
    assert observation.ssh["port"] != taken
    assert judge("ssh", plan, observation).passed and judge("network", plan, observation).passed
