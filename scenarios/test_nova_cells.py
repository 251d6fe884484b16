"""Nova cells for real: the domain Nova 34's own libvirt driver writes, booted and judged by every check.

On this host (Debian 12: libvirt 9.0, QEMU 7.2) Nova's domains for its "tested and validated" emulated arches
and x86_64, with the config drive Nova attaches, are refused by libvirt; each cell says so in libvirt's words,
with the decision of Nova's that caused it and the remedy (archmatrix/nova/remedies.py). With the remedies the
same domains boot and pass every check, the config drive in their CD-ROM; on a trixie container host (libvirt
11) Nova's UEFI domains boot as well. What Nova's XML held, and what the boot replaced, is in every cell's facts.
"""

import pytest

from archmatrix.core.observation import NOVA_ENDINGS
from archmatrix.nova.environment import DEFAULT_VERSION
from scenarios.runs import assert_nothing_left, cells_of, finish, real_run

ARCHES = ("aarch64", "ppc64le", "s390x", "x86_64")
CHECKS = {"binary", "machine", "accelerator", "console", "boot", "ssh", "guest-arch", "network"}
# What makes each of Nova's domains boot where libvirt refused it (measured; see archmatrix/nova/remedies.py).
REMEDIES = {"ppc64le": ["hw_cdrom_bus=scsi"], "s390x": ["hw_cdrom_bus=scsi", "hw_input_bus=virtio"],
            "aarch64": ["hw_cdrom_bus=scsi"]}


def nova_run(tmp_path, *options: str, keyword: str = "nova"):
    process = real_run(tmp_path, "--nova", "--accel", "tcg", "-k", keyword, *options)
    output, run_id = finish(process, timeout=900)
    return process, output, run_id


def remedies(*arches: str) -> list[str]:
    return [word for arch in arches for value in REMEDIES[arch] for word in ("--image-property", f"{arch}={value}")]


def assert_booted_with_its_config_drive(cell: dict) -> None:
    nova = cell["facts"]["nova"]
    assert nova["ended"] == "booted", nova
    assert {name: check["outcome"] for name, check in cell["checks"].items()} == dict.fromkeys(CHECKS, "pass")
    drive = next(line for line in nova["replaced"] if line.startswith("cdrom source")).split(" -> ")[1]
    assert drive in cell["facts"]["removable_media"], "QEMU's CD-ROM holds the config drive Nova's builder made"


def test_novas_own_domains_on_this_host_end_where_libvirt_or_the_guest_says(tmp_path):
    process, output, run_id = nova_run(tmp_path, "--arch", ",".join(ARCHES))
    cells = cells_of(tmp_path)
    assert set(cells) == {f"{arch}-tcg-nova" for arch in ARCHES}, output
    for cell_id, cell in cells.items():
        nova = cell["facts"]["nova"]
        assert nova["version"] == DEFAULT_VERSION and nova["ended"] in NOVA_ENDINGS
        assert nova["choices"] and nova["diff"].startswith("--- nova.xml"), cell_id
        assert "libvirt.images_type" in nova["conf"] and nova["conf"]["libvirt.virt_type"] == "qemu"
        assert any(line.startswith("cdrom source") for line in nova["replaced"]), "the config drive is attached"
        outcomes = {check["outcome"] for check in cell["checks"].values()}
        if nova["ended"] == "booted":
            assert outcomes == {"pass"}, cell["checks"]
            continue
        # Refused: every check fails with libvirt's own words, and the refusal is one whose cause is known.
        assert nova["ended"] == "libvirt-refused", nova
        assert outcomes == {"fail"}
        assert all(check["detail"].startswith("libvirt refused Nova's domain: ")
                   for check in cell["checks"].values())
        assert nova["remedy"].startswith("Nova"), f"{cell_id}: a refusal nobody has explained: {nova['detail']}"
    assert process.returncode in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED), output
    matrix = (tmp_path / "matrix.md").read_text()
    assert "tcg, Nova's domain" in matrix and "Nova's own domains (Nova 34.0.0" in matrix
    assert_nothing_left(run_id)


def test_with_the_remedies_novas_domains_boot_and_pass_every_check_with_the_config_drive_in_the_cd_rom(tmp_path):
    process, output, run_id = nova_run(tmp_path, "--arch", "ppc64le,s390x", *remedies("ppc64le", "s390x"))
    assert process.returncode == pytest.ExitCode.OK, output
    cells = cells_of(tmp_path)
    for cell in cells.values():
        assert_booted_with_its_config_drive(cell)
    assert "cdrom scsi" in cells["ppc64le-tcg-nova"]["facts"]["nova"]["choices"]
    assert "POWER8" in cells["ppc64le-tcg-nova"]["facts"]["nova"]["choices"]  # Nova's CPU for emulated ppc64le
    assert_nothing_left(run_id)


def test_on_a_trixie_container_host_novas_uefi_domains_boot(tmp_path):
    # libvirt 11 accepts Nova's <loader secure='no'/> with firmware autoselection; libvirt 9.0 refuses it.
    process, output, run_id = nova_run(tmp_path, "--arch", "aarch64,x86_64", "--container-host", "trixie",
                                       *remedies("aarch64"), keyword="trixie and nova")
    assert process.returncode == pytest.ExitCode.OK, output
    cells = cells_of(tmp_path, host="trixie")
    assert set(cells) == {"aarch64-tcg-nova", "x86_64-tcg-nova"}
    for cell in cells.values():
        assert_booted_with_its_config_drive(cell)
        assert cell["facts"]["nova"]["choices"].count("firmware efi") == 1
    assert_nothing_left(run_id)


def test_nova_conf_options_and_the_config_drive_switch_reach_novas_xml(tmp_path):
    # tb_cache_size is nova.conf's, applied by Nova's own driver: archmatrix only passes it on.
    process, output, run_id = nova_run(tmp_path, "--arch", "ppc64le", "--nova-conf", "libvirt.tb_cache_size=64",
                                       "--nova-without-config-drive")
    assert process.returncode == pytest.ExitCode.OK, output
    cell = cells_of(tmp_path)["ppc64le-tcg-nova"]
    nova = cell["facts"]["nova"]
    assert '<tb-cache unit="MiB">64</tb-cache>' in nova["xml"].replace("'", '"')
    assert 'device="cdrom"' not in nova["xml"] and cell["facts"]["removable_media"] == []
    assert nova["conf"]["libvirt.tb_cache_size"] == "64" and nova["ended"] == "booted"
    assert_nothing_left(run_id)


def test_a_cell_nova_refuses_fails_every_check_with_novas_exception(tmp_path):
    # [libvirt] cpu_models is checked against the host's CPU models, so an emulated guest cannot be given one.
    process, output, run_id = nova_run(tmp_path, "--arch", "ppc64le", "--nova-conf", "libvirt.cpu_mode=custom",
                                       "--nova-conf", "libvirt.cpu_models=POWER9")
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    cell = cells_of(tmp_path)["ppc64le-tcg-nova"]
    assert cell["facts"]["nova"]["ended"] == "nova-refused"
    for check in cell["checks"].values():
        assert check["outcome"] == "fail"
        assert check["detail"].startswith("Nova's libvirt driver refused the image: InvalidCPUInfo: ")
    assert_nothing_left(run_id)


def test_an_iso_image_boots_from_the_cd_rom_nova_gives_it(tmp_path):
    # Glance's disk_format=iso: Nova's root device is a CD-ROM. The s390x built-in disk is an ISO 9660 image
    # with an El Torito entry, which the s390-ccw BIOS IPLs from a SCSI CD-ROM too.
    from archmatrix.core.arches import ARCHES
    from archmatrix.images.cache import ImageCache
    from archmatrix.images.disk_build import firmware_disk_image

    cache = ImageCache()
    iso = tmp_path / "s390x.iso"
    built = firmware_disk_image(cache, ARCHES["s390x"], cache.get_or_build(ARCHES["s390x"]))
    iso.write_bytes(built.disk.read_bytes())
    reports = tmp_path / "reports"
    process, output, run_id = nova_run(reports, "--arch", "s390x", "--image", f"s390x={iso}", *remedies("s390x"),
                                       keyword="nova and boot")
    assert process.returncode == pytest.ExitCode.OK, output
    cell = cells_of(reports)["s390x-tcg-nova"]
    assert cell["checks"]["boot"]["outcome"] == "pass", cell["checks"]
    nova = cell["facts"]["nova"]
    assert "disk none, cdrom scsi" in nova["choices"], "the image's root is a CD-ROM, not a disk"
    assert any(line.startswith("root cdrom source") for line in nova["replaced"])
    assert len(cell["facts"]["removable_media"]) == 2, "the ISO and the config drive, each in a CD-ROM"
    assert_nothing_left(run_id)
