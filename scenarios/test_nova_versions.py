"""Every pinned Nova, installed in its own environment and asked: its driver still has the private functions the
bridge calls, and a Nova cell names the version that wrote its domain.

A new Nova is one pin away (archmatrix/nova/constraints/nova-VERSION.txt): this test then says whether the bridge
fits it, naming any private function that changed (archmatrix/nova/private_api.py).
"""

import pytest

from archmatrix.nova import driver
from archmatrix.nova.cells import properties_for
from archmatrix.nova.environment import DEFAULT_VERSION, nova_environment, pinned_nova_versions
from archmatrix.nova.private_api import changed
from scenarios.runs import assert_nothing_left, cells_of, finish, real_run


@pytest.mark.parametrize("version", pinned_nova_versions())
def test_each_pinned_nova_answers_through_the_bridge_with_the_private_functions_it_calls(version):
    environment = nova_environment(version).ensure(print)  # made on first use: about a minute, once
    response = environment.ask({"runs": []})
    assert response["nova_version"] == version
    assert changed(response["private_api"]) == [], response["private_api"]
    case = driver.NovaCase(case_id="s390x", image_properties=properties_for("s390x", "x86_64", {}), config_drive=False)
    (run,) = driver.ask(environment, driver.live_host("qemu:///system"), [({"libvirt.virt_type": "qemu"}, [case])])
    answer = run.answers["s390x"]
    assert answer.xml and "s390-ccw-virtio" in answer.xml, answer
    assert "COMPUTE_ARCH_S390X" in run.traits


def test_the_bridge_names_a_private_function_a_nova_changed():
    assert changed({"_get_guest_xml": ["self", "context", "instance"], "_get_cpu_arch_traits": ["self"]}) == [
        "LibvirtDriver._get_guest_xml takes (self, context, instance), the bridge passes "
        "(self, context, instance, network_info, disk_info, image_meta)",
        "LibvirtDriver._get_cpu_emulation_arch_traits is gone"]


@pytest.mark.parametrize("version", [v for v in pinned_nova_versions() if v != DEFAULT_VERSION])
def test_another_nova_is_one_option_away_and_the_report_names_it(tmp_path, version):
    process = real_run(tmp_path, "--nova", "--nova-version", version, "--arch", "s390x", "--accel", "tcg",
                       "-k", "nova", "--image-property", "s390x=hw_cdrom_bus=scsi",
                       "--image-property", "s390x=hw_input_bus=virtio")
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.OK, output
    cell = cells_of(tmp_path)["s390x-tcg-nova"]
    assert cell["facts"]["nova"]["version"] == version and cell["facts"]["nova"]["ended"] == "booted"
    assert f"nova:package version=\"{version}\"" in cell["facts"]["nova"]["xml"]
    assert_nothing_left(run_id)
