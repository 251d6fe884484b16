"""One case: an instance of given image properties, as Nova's compute manager would hand it to the driver, and
what the driver makes of it (the domain XML, or its refusal), with the scheduler's prefilter and a config drive.
"""

import os
import time
import uuid as uuidlib
from unittest import mock

from loader import classify


def _ms(t):
    return round((time.perf_counter() - t) * 1000, 2)


def make_instance(N, case, image):
    inst = case.get("instance", {})
    flavor = N.objects.Flavor(
        id=1, flavorid="bridge", name=inst.get("flavor_name", "bridge"),
        memory_mb=inst.get("memory_mb", 512), vcpus=inst.get("vcpus", 1),
        root_gb=inst.get("root_gb", 1), ephemeral_gb=inst.get(
            "ephemeral_gb", 0), swap=inst.get("swap", 0), vcpu_weight=None,
        rxtx_factor=1.0, is_public=True, disabled=False,
        extra_specs=inst.get("extra_specs", {}))
    # The instance fields Nova's compute manager would have filled before
    # spawn(); system_metadata carries the image properties as Nova stashes
    # them (nova.utils.get_system_metadata_from_image).
    instance = N.objects.Instance(
        id=inst.get("id", 1), uuid=inst.get("uuid") or str(uuidlib.uuid4()),
        display_name=inst.get("name", "bridge"),
        hostname=inst.get("hostname", "bridge"),
        project_id="bridge-project", user_id="bridge-user",
        flavor=flavor, old_flavor=None, new_flavor=None,
        instance_type_id=flavor.id,
        memory_mb=flavor.memory_mb, vcpus=flavor.vcpus,
        root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
        image_ref=image["id"], kernel_id="", ramdisk_id="",
        system_metadata=N.utils.get_system_metadata_from_image(image, flavor),
        metadata=inst.get("metadata", {}), user_data=None,
        config_drive="True" if case.get("config_drive") else None,
        launched_at=None, vm_state="building", task_state="spawning",
        power_state=0, os_type=None, vm_mode=None, numa_topology=None,
        pci_devices=N.objects.PciDeviceList(objects=[]), pci_requests=None,
        ephemeral_key_uuid=None, vcpu_model=None, trusted_certs=None,
        resources=None, migration_context=None, device_metadata=None,
        keypairs=N.objects.KeyPairList(objects=[]),
        info_cache=N.objects.InstanceInfoCache(
            network_info=N.network_model.NetworkInfo([])),
        host="bridge-host", node="bridge-node", availability_zone=None,
        launch_index=0, reservation_id="r-bridge", key_data=None,
        key_name=None,
        cleaned=False, deleted=False, root_device_name=None,
        default_ephemeral_device=None, default_swap_device=None,
        access_ip_v4=None, access_ip_v6=None, auto_disk_config=False,
        locked=False, locked_by=None, shutdown_terminate=False,
        disable_terminate=False, progress=0, tags=N.objects.TagList(
            objects=[]), security_groups=N.objects.SecurityGroupList(
            objects=[]))
    instance.ec2_ids = N.objects.EC2Ids(
        instance_id="i-%08x" % instance.id, ami_id="ami-00000001",
        kernel_id=None, ramdisk_id=None)
    return instance


def prefilter_traits(N, ctxt, image_meta):
    """Traits the scheduler's image metadata prefilter would require."""
    spec = N.objects.RequestSpec(image=image_meta)
    ran = N.request_filter.transform_image_metadata(ctxt, spec)
    return {"ran": bool(ran), "required_traits": sorted(spec.root_required)}


def build_config_drive(N, instance, path, case):
    """Nova's own config drive builder, as LibvirtDriver._create_configdrive
    uses it.  Two service answers are supplied here because no Neutron or
    database exists: the instance's security groups and its (empty) list of
    block device mappings."""
    groups = [{"name": g} for g in case.get("security_groups", ["default"])]
    with mock.patch.object(N.security_group_api,
                           "get_instance_security_groups",
                           return_value=groups), \
            mock.patch.object(N.objects.Instance, "get_bdms",
                              return_value=N.objects.BlockDeviceMappingList(
                                  objects=[])):
        md = N.instance_metadata.InstanceMetadata(
            instance, content=[], extra_md={},
            network_info=N.network_model.NetworkInfo([]))
        with N.configdrive.ConfigDriveBuilder(instance_md=md) as cdb:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            cdb.make_drive(path)
    return {"path": path, "bytes": os.path.getsize(path),
            "mkisofs_cmd": N.CONF.mkisofs_cmd,
            "format": N.CONF.config_drive_format}


def files_under(path):
    return {os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs}


def run_case(N, drvr, ctxt, case, subst):
    out = {"id": case.get("id")}
    t = time.perf_counter()
    props = case.get("image_properties", {})
    image = {"id": case.get("image_id", "00000000-0000-4000-8000-00000000b1d9"),
             "name": "bridge-image", "status": "active",
             "container_format": "bare",
             "disk_format": case.get("disk_format", "qcow2"),
             "min_ram": 0, "min_disk": 0, "size": 0, "properties": props}
    stage, inst_dir = "image_meta", None
    try:
        image_meta = N.objects.ImageMeta.from_dict(image)
        stage = "prefilter"
        out["prefilter"] = prefilter_traits(N, ctxt, image_meta)
        stage = "instance"
        instance = make_instance(N, case, image)
        out["instance_name"] = instance.name
        inst_dir = os.path.join(N.CONF.instances_path, instance.uuid)
        before = files_under(inst_dir)
        stage = "disk_info"
        disk_info = N.blockinfo.get_disk_info(
            N.CONF.libvirt.virt_type, instance, image_meta)
        stage = "guest_xml"
        # PRIVATE NOVA API (1 of 3): LibvirtDriver._get_guest_xml is what
        # spawn() calls to build the domain XML it hands to libvirt; it is
        # _get_guest_config(...).to_xml() plus logging.  No public driver
        # method returns the XML without also creating disks and
        # defining/starting the domain (spawn, rescue, resize ...).
        out["xml"] = drvr._get_guest_xml(
            ctxt, instance, N.network_model.NetworkInfo([]), disk_info,
            image_meta).replace(*subst)
        out["xml_ms"] = _ms(t)
        if case.get("config_drive_path"):
            stage = "config_drive"
            instance.root_device_name = drvr.default_root_device_name(
                instance, image_meta, None)
            out["config_drive"] = build_config_drive(
                N, instance, case["config_drive_path"], case)
    except Exception as exc:  # noqa: BLE001 - every outcome is reported
        kind, detail = classify(N, exc, stage)
        out[kind] = detail
    if inst_dir:
        # e.g. the qcow2 image backend records <instance dir>/disk.info
        out["files_nova_would_write"] = sorted(
            f.replace(*subst) for f in files_under(inst_dir) - before)
    out["ms"] = _ms(t)
    return out
