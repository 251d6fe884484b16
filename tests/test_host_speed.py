"""A host's measured TCG speed, and what it makes of its bounds (pure: core/host_speed.py, core/timeouts.py)."""

import pytest

from archmatrix.core.arches import ARCHES
from archmatrix.core.host_speed import MAX_FACTOR, NOISE_BAND, measured, too_slow, unmeasured
from archmatrix.core.timeouts import PROGRESS_SHARE, Timeouts, progress_window


def test_a_host_within_the_noise_of_the_reference_keeps_the_catalogs_bounds():
    for seconds in (0.2, 0.295, 0.5):  # faster, the same, busy (1.7x)
        assert measured("x86_64", seconds, 0.295).factor == 1.0
    assert "within 2x of it: the catalog's TCG bounds as they are" in measured("x86_64", 0.5, 0.295).detail


def test_a_slower_host_gets_its_tcg_bounds_multiplied_by_what_it_measured():
    speed = measured("x86_64", 16.2, 0.3)  # the aarch64 lab's TCG-in-TCG would be about 54x
    assert speed.factor == 54.0 and speed.seconds == 16.2 and speed.payload == "x86_64"
    assert speed.detail == ("the x86_64 payload's loop ran 16.20 s under TCG, 54.00x the reference machine's 0.30 s: "
                            "its TCG bounds x54")
    assert measured("x86_64", 1000.0, 0.3).factor == MAX_FACTOR
    assert measured("x86_64", 0.3 * NOISE_BAND, 0.3).factor == NOISE_BAND


def test_a_payload_that_does_not_end_within_the_probes_bound_is_at_least_that_slow():
    speed = too_slow("aarch64", 60.0, 0.3)
    assert speed.factor == MAX_FACTOR and speed.seconds is None  # 200x: capped
    assert too_slow("aarch64", 6.0, 0.3).factor == 20.0


def test_tcg_bounds_follow_the_measured_speed_kvm_bounds_the_hosts_own_factor():
    aarch64 = ARCHES["aarch64"]
    plain = Timeouts()
    lab = Timeouts(factor=2.0, boot_overrides={"aarch64": 10.0}).for_host(4.0, tcg_speed=54.0)
    assert lab.boot(aarch64, "tcg") == 10.0 * 2.0 * 54.0  # the user's seconds, their factor, the measured speed
    assert lab.boot(ARCHES["s390x"], "tcg") == ARCHES["s390x"].timeout_for("tcg") * 2.0 * 54.0
    assert lab.ssh("tcg") == plain.ssh("tcg") * 2.0 * 54.0
    assert lab.boot(aarch64, "kvm") == 10.0 * 2.0 * 4.0 and lab.ssh("kvm") == plain.ssh("kvm") * 2.0 * 4.0
    assert lab.kvm_probe() == plain.kvm_probe() * 2.0 * 4.0
    unmeasured_lab = Timeouts().for_host(4.0, tcg_speed=None)  # a host the probe could not time
    assert unmeasured_lab.boot(aarch64, "tcg") == aarch64.timeout_for("tcg") * 4.0
    assert plain.for_host(1.0, 1.0).boot(aarch64, "tcg") == plain.boot(aarch64, "tcg")


def test_an_unmeasured_host_says_why():
    speed = unmeasured("the host offers TCG for none of x86_64, aarch64")
    assert speed.factor is None and speed.detail.startswith("not measured: the host offers TCG for none")


@pytest.mark.parametrize("bound", [1.0, 8.0, 120.0, 480.0])
def test_the_progress_window_is_the_bounds_last_eighth(bound):
    assert progress_window(bound) == bound * PROGRESS_SHARE == bound / 8
