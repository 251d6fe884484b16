"""CPU signatures against /proc/cpuinfo recorded in real guests."""

from pathlib import Path

from archmatrix.core.cpuinfo import shows, signature_for

RECORDED = Path(__file__).parent / "fixtures/cpuinfo"


def test_nova_s_host_model_under_tcg_is_recognised_by_its_model_name():
    # Nova's x86_64 domain on a trixie container host: libvirt turned host-model into EPYC (QEMU 10.0, TCG).
    cpuinfo = (RECORDED / "EPYC-x86_64-cpu.txt").read_text()
    assert shows(cpuinfo, signature_for("EPYC-x86_64-cpu")) == "model name\t: AMD EPYC Processor"
    assert shows(cpuinfo, signature_for("qemu64-x86_64-cpu")) is None, "another CPU's signature does not match"
