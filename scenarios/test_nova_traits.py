"""Nova's own traits for the recorded hosts, asked of Nova 34.0.0 itself (installed here on first use): the same
as the recordings the offline tests read (tests/fixtures/nova/traits-HOST.json), so that those stay true."""

import pytest

from archmatrix.nova.environment import nova_environment
from archmatrix.nova.traits import nova_traits
from tests.helpers import NOVA_HOSTS, nova_host
from tests.test_nova_traits import traits_of


@pytest.mark.parametrize("name", NOVA_HOSTS)
def test_nova_reports_what_was_recorded(name):
    host = nova_host(name)
    asked = nova_traits(nova_environment().ensure(print), host.bridge_host(), sorted(host.capabilities.guests))
    assert asked == traits_of(name)
