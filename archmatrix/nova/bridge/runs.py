"""One run: a host (live or recorded), Nova's configuration for it, its traits, and its cases."""

import os
import shutil
import tempfile
import time
import xml.etree.ElementTree as ET
from unittest import mock

from cases import _ms, run_case
from connections import CallLog, GuardedConnection, RecordedConnection
from loader import BadRequest, ConfOverrides, classify


def host_traits(N, drvr):
    """The traits Nova's libvirt driver reports for the host."""
    t = time.perf_counter()
    out = {}
    try:
        # Public property: what update_provider_tree() sends to placement.
        # It includes _get_cpu_arch_traits() (HW_ARCH_*) and
        # _get_cpu_emulation_arch_traits() (COMPUTE_ARCH_*, one per arch
        # whose getDomainCapabilities answered for [libvirt] virt_type).
        traits = drvr.static_traits
        out["source"] = "static_traits"
    except Exception as exc:  # noqa: BLE001
        kind, out[kind] = classify(N, exc, "traits")
        # PRIVATE NOVA API (2 and 3 of 3; only when static_traits fails, e.g.
        # on recorded capabilities without <host><topology>, which
        # Host.has_hyperthreading needs): the two private methods that
        # produce the arch traits.  No public method returns them alone.
        try:
            traits = dict(drvr._get_cpu_arch_traits(),
                          **drvr._get_cpu_emulation_arch_traits())
            out["source"] = ("_get_cpu_arch_traits + "
                             "_get_cpu_emulation_arch_traits (fallback)")
        except Exception as exc2:  # noqa: BLE001
            kind, out["fallback_" + kind] = classify(N, exc2, "traits")
            traits, out["source"] = {}, None
    true = sorted(k for k, v in traits.items() if v)
    out.update(compute_arch=[x for x in true if x.startswith("COMPUTE_ARCH_")],
               hw_arch=[x for x in true if x.startswith("HW_ARCH_")],
               all=true, ms=_ms(t))
    return out


def host_arch_of(caps_xml):
    node = ET.fromstring(caps_xml).find("./host/cpu/arch")
    return node.text.strip() if node is not None else None


def run_one(N, run, stats):
    host = run.get("host") or {}
    log = CallLog()
    result = {"label": run.get("label"), "host": {}, "cases": []}
    tmp = tempfile.mkdtemp(prefix="nova-bridge-")
    conf = {"oslo_concurrency.lock_path": os.path.join(tmp, "locks"),
            # the prefilter is off by default in Nova; the question asked is
            # what it would require when an operator turns it on.
            "scheduler.image_metadata_prefilter": True}
    conf.update(run.get("conf") or {})
    # Nova writes below instances_path even when only building XML (the
    # qcow2 image backend records <instance dir>/disk.info), so it always
    # runs with a private temporary one; the requested path is put back
    # into the XML by replacing that unique prefix (text only).
    private = os.path.join(tmp, "instances")
    shown = conf.pop("DEFAULT.instances_path", None) or private
    conf["DEFAULT.instances_path"] = private
    subst = (private, shown)
    libvirt = N.libvirt

    if "uri" in host:
        read_only = host.get("read_only", True)
        conf["libvirt.connection_uri"] = host["uri"]
        real_open = libvirt.openAuth

        def open_auth(uri, auth, flags):
            if read_only and not flags & libvirt.VIR_CONNECT_RO:
                raise BadRequest("Nova asked for a read-write connection")
            try:
                conn = real_open(uri, auth, flags)
            except libvirt.libvirtError as e:
                log.add("openAuth", [uri, flags], "libvirt error %s: %s"
                        % (e.get_error_code(), e))
                raise
            log.add("openAuth", [uri, flags], "connected")
            return GuardedConnection(libvirt, conn, log)
        result["host"].update(kind="uri", uri=host["uri"],
                              read_only=read_only)
    elif "capabilities_xml" in host:
        read_only = True

        def open_auth(uri, auth, flags):
            return RecordedConnection(libvirt, host, N.min_versions, log)
        result["host"].update(kind="recorded")
    else:
        raise BadRequest("host needs 'uri' or 'capabilities_xml'")

    try:
        with ConfOverrides(N, conf), \
                mock.patch.object(libvirt, "openAuth", open_auth):
            drvr = N.libvirt_driver.LibvirtDriver(N.fake.FakeVirtAPI(),
                                                  read_only)
            result["traits"] = host_traits(N, drvr)
            if "fallback_error" in result["traits"]:
                # not even the capabilities could be read: no cases
                result["error"] = {"kind": "connection", "message": (
                    log.calls[-1] if log.calls else result["traits"])}
                return result
            # The arch Nova would read from os.uname() on that host: given,
            # or <host><cpu><arch> of its capabilities, or this machine's.
            caps = host.get("capabilities_xml") or log.recorded.get(
                "capabilities_xml")
            host_arch, source = run.get("host_arch"), "request"
            if not host_arch and caps:
                host_arch, source = host_arch_of(caps), "capabilities"
            if not host_arch:
                host_arch, source = os.uname().machine, "os.uname"
            arch_cls = N.fields.Architecture
            with mock.patch.object(
                    arch_cls, "from_host",
                    classmethod(lambda cls: cls.canonicalize(host_arch))):
                result["host"].update(
                    host_arch=arch_cls.from_host(), host_arch_source=source,
                    virt_type=N.CONF.libvirt.virt_type,
                    instances_path=shown)
                ctxt = N.context.get_admin_context()
                for case in run.get("cases", []):
                    try:
                        with ConfOverrides(N, case_conf(case)):
                            res = run_case(N, drvr, ctxt, case, subst)
                    except BadRequest as e:
                        res = {"id": case.get("id"),
                               "error": {"kind": "bad_request",
                                         "message": str(e)}}
                    if "xml_ms" in res:
                        stats.append(res["xml_ms"])
                    result["cases"].append(res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["libvirt_calls"] = log.calls
    if host.get("record"):
        result["recorded_host"] = log.recorded
    return result


def case_conf(case):
    conf = dict(case.get("conf") or {})
    name = (case.get("instance") or {}).get("name")
    if name:
        # Instance.name is CONF.instance_name_template applied to the
        # instance; a template without a conversion gives the name as is.
        conf["DEFAULT.instance_name_template"] = name.replace("%", "%%")
    return conf
