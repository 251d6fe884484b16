"""A run's Nova cells (--nova): Nova's own driver asked once per host for all of them, each booted as Nova
would boot it (archmatrix/nova/cells.py), and where it ended.

A Nova cell is planned from Nova's XML: its machine, CPU, firmware and buses are what the checks judge.
Nova's refusal is the cell's finding (every check says it), as is libvirt's refusal of Nova's domain.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

from archmatrix.core.arch import Arch
from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import kvm_offered_for
from archmatrix.core.firmware import FIRMWARE_DISKS
from archmatrix.core.observation import NovaFacts, Observation
from archmatrix.core.plan import CellKey, CellUnsupported, NovaChoice, Plan, PlanError, make_plan
from archmatrix.errors import HarnessError
from archmatrix.guest.domain import nic_address_beside_libvirts
from archmatrix.guest.observe import boot_and_observe
from archmatrix.hosts.host import Host
from archmatrix.images.disk_image import is_iso9660
from archmatrix.images.image import Image
from archmatrix.nova import driver
from archmatrix.nova.cells import CONFIG_DRIVE, booted_xml, properties_for
from archmatrix.nova.choices import choices_of
from archmatrix.nova.environment import NovaError, nova_environment
from archmatrix.nova.remedies import remedy_for

VIRT_TYPES = {"tcg": "qemu", "kvm": "kvm"}  # a cell's accelerator as nova.conf's [libvirt] virt_type
# nova.conf as the cells' deployment has it, below the user's --nova-conf: the root disk is a flat copy of the
# image (Nova's "flat" image backend), so Nova's XML names the disk's real format and nothing is rewritten for it.
NOVA_CONF_DEFAULTS = {"libvirt.images_type": "flat"}
NAMED_CPU = ("host-model", "host-passthrough", "none", "topology only")


class NovaCells:
    def __init__(self, run):
        self.run = run  # archmatrix.run.pipeline.Run

    # --- Nova's answers, once per host ----------------------------------------------------------------

    def arches_with_a_disk(self) -> list[Arch]:
        """Nova boots an image from a disk: the arches with a built-in firmware disk, and the user's disks."""
        return [arch for name, arch in ARCHES.items() if name in FIRMWARE_DISKS or name in self.run.settings.user_disks]

    def answers(self, host: Host) -> dict:
        """Nova's XML (or refusal) for every Nova cell of the host, and the host's traits: one bridge process."""
        settings = self.run.settings

        def ask() -> dict:
            environment = nova_environment(settings.nova_version).ensure(self.run.progress)
            drives = self.run.run_dir.path / host.label / "nova-drives"
            cases = {}
            for accel in VIRT_TYPES:
                cases[accel] = []
                for arch in self.arches_with_a_disk():
                    cell = CellKey(arch.name, accel, host.label, nova=True)
                    drive = drives / cell.id / CONFIG_DRIVE
                    drive.parent.mkdir(parents=True, exist_ok=True)
                    cases[accel].append(driver.NovaCase(
                        case_id=cell.id, image_properties=properties_for(arch.name, host.capabilities.host_arch,
                                                                         settings.image_properties.get(arch.name, {})),
                        disk_format=self._disk_format(arch), name=host.site.domain_name(cell.id),
                        memory_mb=arch.memory_mib, config_drive=settings.nova_config_drive,
                        config_drive_path=str(drive)))
            try:
                runs = driver.ask(environment, driver.live_host(host.spec.uri),
                                  [(self.conf(accel), cases[accel]) for accel in VIRT_TYPES])
            except NovaError as error:
                return {"error": str(error)}
            return {"version": runs[0].nova_version, "traits": {run.virt_type: list(run.traits) for run in runs},
                    "cells": {case_id: asdict(answer) for run in runs for case_id, answer in run.answers.items()},
                    "properties": {case.case_id: case.image_properties for accel in cases for case in cases[accel]}}

        answers = self.run.store.get_or_compute(f"nova-{host.label}", ask)
        if "error" in answers:
            raise HarnessError(f"Nova's own driver could not be asked about host {host.label}: {answers['error']}")
        return answers

    def conf(self, accel: str) -> dict[str, str]:
        """nova.conf's options for the cells of an accelerator: the defaults, the user's, the virt_type."""
        return {**NOVA_CONF_DEFAULTS, **self.run.settings.nova_conf, "libvirt.virt_type": VIRT_TYPES[accel]}

    def _disk_format(self, arch: Arch) -> str:
        """Glance's disk_format of the arch's image: Nova boots an "iso" from a CD-ROM, the others as a disk."""
        image = self.run.images.of(arch) if arch.name in self.run.settings.user_disks else None
        if image is None:
            return "raw"
        if image.disk_format == "raw" and image.disk and is_iso9660(Path(image.disk)):
            return "iso"
        return image.disk_format or "raw"

    def answer(self, cell: CellKey, host: Host) -> driver.NovaAnswer:
        found = self.answers(host)["cells"].get(cell.id)
        if found is None:
            raise CellUnsupported(f"{cell.id}: Nova boots an image from a disk, and there is no built-in disk that "
                                  f"{cell.arch}'s firmware boots (they are: {', '.join(FIRMWARE_DISKS)}); give one: "
                                  f"--image {cell.arch}=DISK")
        return driver.NovaAnswer(**{**found, "required_traits": tuple(found["required_traits"])})

    # --- a Nova cell ------------------------------------------------------------------------------------

    def plan(self, cell: CellKey, host: Host, timeouts_of) -> Plan:
        """`timeouts_of(host, accel)`: the run's bounds for the cell's accelerator on the host."""
        arch = ARCHES[cell.arch]
        if cell.accel == "kvm":
            refusal = kvm_offered_for(host.capabilities, cell.arch)
            if refusal:
                raise CellUnsupported(f"{refusal}; with [libvirt] virt_type=kvm Nova emulates a {cell.arch} guest "
                                      f"with TCG, as the {cell.arch}-tcg-nova cell does")
        answer = self.answer(cell, host)
        if answer.error:
            raise HarnessError(f"{cell.id} on {cell.host}: the bridge to Nova's driver could not complete the case: "
                               f"{answer.error}")
        nova = accel = None
        if answer.xml:
            choices = choices_of(answer.xml)
            accel = "kvm" if choices.domain_type == "kvm" else "tcg"
            nova = NovaChoice(machine=choices.machine, cpu_model=None if choices.cpu in NAMED_CPU else choices.cpu,
                              uefi=choices.firmware.startswith("efi"), firmware=choices.firmware,
                              disk_bus=choices.disk_bus or "virtio",
                              said=f"Nova {self.answers(host)['version']}: {choices.said()}")
        kvm = self.run.kvm_verdict(host) if (accel or cell.accel) == "kvm" else None
        settings = self.run.settings
        try:
            plan = make_plan(arch, accel or cell.accel, host.capabilities, kvm,
                             timeouts=timeouts_of(host, accel or cell.accel),
                             console_cap_mib=settings.console_cap_mib, tb_cache_mib=None,
                             user_image=cell.arch in settings.user_images, nova=nova, boot="disk",
                             check_machine=False)
        except CellUnsupported as reason:
            raise CellUnsupported(f"{cell.id} unsupported on {cell.host}: {reason}") from None
        except PlanError as error:
            raise HarnessError(f"{cell.host}: {error}") from None
        return dataclasses.replace(plan, cell_id=cell.id)

    def observe(self, cell: CellKey, plan: Plan, image: Image, with_ssh: bool) -> dict:
        """The cell's boot of Nova's domain, as the run store keeps it; where it ended is in its `nova` facts."""
        host = self.run.host(cell.host)
        answers = self.answers(host)
        answer = self.answer(cell, host)
        facts = NovaFacts(version=answers["version"], properties=answers["properties"][cell.id],
                          conf=self.conf(cell.accel), required_traits=answer.required_traits)
        if answer.refused:
            refused = Observation(cell_id=plan.cell_id, plan=plan.to_dict(), image=image.identity(), console_log="",
                                  nova=dataclasses.replace(facts, ended="nova-refused", detail=answer.refused))
            return refused.to_dict()
        choices = choices_of(answer.xml)
        facts = dataclasses.replace(facts, xml=answer.xml)
        booted: dict = {}

        def domain_for(files, name: str, port: int | None) -> str:
            made = booted_xml(answer.xml, files, self.run.run_dir.run_id, plan.cell_id, self.run.run_dir.owner,
                              port, plan.nic_device, nic_address_beside_libvirts(choices.machine or "",
                                                                                 plan.nic_device),
                              file_port=host.site.network.guest_file_port() if port and host.site.network else None)
            booted["made"] = made
            return made.xml

        attach = {CONFIG_DRIVE: Path(answer.config_drive)} if answer.config_drive else {}
        seen = boot_and_observe(host.connection(), plan, image, host.site, with_ssh=with_ssh, domain_for=domain_for,
                                attach=attach)
        made = booted.get("made")
        remedy = ""
        if seen.start_error:
            ended, detail, remedy = "libvirt-refused", seen.start_error, remedy_for(seen.start_error)
        elif seen.booted:
            ended, detail = "booted", f"login prompt {seen.login_s:.1f} s after the domain started"
        else:
            ended, detail = "not-booted", seen.boot_failure or "no login prompt"
        return dataclasses.replace(seen, nova=dataclasses.replace(
            facts, ended=ended, detail=detail, remedy=remedy, choices=choices.said(),
            replaced=made.replaced if made else (), diff=made.diff if made else "")).to_dict()
