"""Nova's modules, imported once, its configuration overridden per run and case, and what an exception means."""

import logging
import traceback


class Nova:
    """The Nova modules the bridge uses, imported once."""

    def __init__(self):
        import libvirt
        import nova.conf
        from nova import context, exception, objects, utils, version
        from nova.api.metadata import base as instance_metadata
        from nova.network import model as network_model
        from nova.network import security_group_api
        from nova.objects import fields
        from nova.scheduler import request_filter
        from nova.virt import configdrive, fake
        from nova.virt.libvirt import blockinfo
        from nova.virt.libvirt import driver as libvirt_driver
        from nova.virt.libvirt import host as libvirt_host

        self.libvirt, self.context, self.exception, self.objects = libvirt, context, exception, objects
        self.utils, self.version, self.instance_metadata = utils, version, instance_metadata
        self.network_model, self.security_group_api, self.fields = network_model, security_group_api, fields
        self.request_filter, self.configdrive, self.fake = request_filter, configdrive, fake
        self.blockinfo, self.libvirt_driver, self.libvirt_host = blockinfo, libvirt_driver, libvirt_host
        self.CONF = nova.conf.CONF
        # No nova.conf file is read: Nova's defaults plus the request's values.
        self.CONF([], project="nova", default_config_files=[],
                  default_config_dirs=[])
        objects.register_all()
        # Options nova-compute registers at start (ComputeManager.__init__).
        nova.conf.neutron.register_dynamic_opts(self.CONF)
        nova.conf.devices.register_dynamic_opts(self.CONF)
        # Nova's own minimum versions, used when a recorded host has none.
        from oslo_utils import versionutils

        self.min_versions = {
            "libvirt": versionutils.convert_version_to_int(
                libvirt_driver.MIN_LIBVIRT_VERSION),
            "hypervisor": versionutils.convert_version_to_int(
                libvirt_driver.MIN_QEMU_VERSION),
            "type": "QEMU"}


class BadRequest(Exception):
    pass


class ConfOverrides:
    """Apply {"section.option": value} to Nova's CONF; undo on exit."""

    def __init__(self, N, values):
        self.N, self.values, self.applied = N, values or {}, []

    def __enter__(self):
        for key, value in self.values.items():
            group, _, name = key.rpartition(".")
            group = None if group in ("", "DEFAULT") else group
            try:
                self.N.CONF.set_override(name, value, group)
            except Exception as e:
                self.__exit__()
                raise BadRequest("conf %s=%r: %s: %s"
                                 % (key, value, type(e).__name__, e)) from None
            self.applied.append((name, group))
        return self

    def __exit__(self, *exc):
        for name, group in reversed(self.applied):
            self.N.CONF.clear_override(name, group)
        self.applied = []


CASE_STAGES = ("image_meta", "prefilter", "instance", "disk_info", "guest_xml",
               "config_drive")


def classify(N, exc, stage):
    """A Nova refusal of a case, or an error (of the bridge, its inputs, the
    connection): marked so."""
    E = N.exception
    lazy_load = isinstance(exc, (E.OrphanedObjectError, E.ObjectActionError))
    refusal = stage in CASE_STAGES and (
        isinstance(exc, E.NovaException) and not lazy_load) or (
        # Nova's objects reject the image metadata itself (unknown enum
        # value, wrong type), as the API / image handling would.
        stage == "image_meta" and isinstance(exc, (ValueError, KeyError)))
    if not refusal or logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exception(type(exc), exc, exc.__traceback__)
    detail = {"exception": type(exc).__name__, "message": str(exc),
              "stage": stage}
    if refusal:
        return "refused", detail
    detail["kind"] = ("incomplete_instance" if lazy_load else
                      "libvirt" if isinstance(exc, N.libvirt.libvirtError)
                      else "nova" if isinstance(exc, E.NovaException)
                      else "unexpected")
    detail["note"] = ("not a Nova refusal of the case: the bridge, its "
                      "inputs or the connection could not complete this stage")
    return "error", detail
