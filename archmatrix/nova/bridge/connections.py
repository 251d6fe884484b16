"""The libvirt connections handed to Nova's Host class: a live one restricted to queries, or recorded answers.

Nova opens its connection with libvirt.openAuth(uri, auth, flags) (nova.virt.libvirt.host.Host._connect); the
bridge replaces that public libvirt-python function for the duration of a run, so every line of Nova's own Host
code still runs.
"""

import xml.etree.ElementTree as ET

# The only connection methods Nova may call through the bridge: all are
# queries.  Anything else (define, create, event registration, ...) fails.
QUERY_METHODS = ("getCapabilities", "getDomainCapabilities", "baselineCPU",
                 "getCPUModelNames", "getCPUMap", "getLibVersion", "getVersion",
                 "getType", "getHostname")


def _libvirt_error(libvirt, code, message):
    err = libvirt.libvirtError(message)
    err.err = (code, libvirt.VIR_FROM_NONE, message, libvirt.VIR_ERR_ERROR,
               message, None, None, -1, -1)
    return err


def domcaps_key(virt_type, arch, machine):
    """How recorded getDomainCapabilities answers are keyed."""
    return "%s/%s/%s" % (virt_type, arch, machine or "")


class CallLog:
    """What Nova asked the connection, and whether it got an answer."""

    def __init__(self):
        self.calls = []
        self.recorded = {"domain_capabilities": {}, "cpu_model_names": {},
                         "versions": {}}

    def add(self, method, args, outcome):
        self.calls.append({"method": method, "args": args, "outcome": outcome})


class GuardedConnection:
    """A real libvirt connection restricted to QUERY_METHODS, logging calls."""

    def __init__(self, libvirt, conn, log):
        self._libvirt, self._conn, self._log = libvirt, conn, log

    def __getattr__(self, name):
        libvirt, log = self._libvirt, self._log
        if name not in QUERY_METHODS:
            def blocked(*args, **kwargs):
                log.add(name, [], "blocked by bridge")
                raise _libvirt_error(libvirt, libvirt.VIR_ERR_OPERATION_DENIED,
                                     "nova_bridge: %s is not a query; "
                                     "blocked" % name)
            return blocked
        real = getattr(self._conn, name)

        def call(*args):
            shown = ([domcaps_key(args[3], args[1], args[2])]
                     if name == "getDomainCapabilities" else
                     [a if isinstance(a, (str, int, type(None))) else "..."
                      for a in args])
            try:
                result = real(*args)
            except libvirt.libvirtError as e:
                log.add(name, shown, "libvirt error %s: %s"
                        % (e.get_error_code(), e))
                raise
            log.add(name, shown, "answered")
            rec = log.recorded
            if name == "getCapabilities":
                rec["capabilities_xml"] = result
            elif name == "getDomainCapabilities":
                rec["domain_capabilities"][domcaps_key(
                    args[3], args[1], args[2])] = result
            elif name == "getCPUModelNames":
                rec["cpu_model_names"][args[0]] = result
            elif name == "getCPUMap":
                rec["cpu_map"] = result
            elif name == "getLibVersion":
                rec["versions"]["libvirt"] = result
            elif name == "getVersion":
                rec["versions"]["hypervisor"] = result
            elif name == "getType":
                rec["versions"]["type"] = result
            return result
        return call


class RecordedConnection:
    """Answers Nova's queries from recorded XML; fails like libvirt otherwise.

    A getDomainCapabilities query with no recorded answer raises
    libvirtError(VIR_ERR_INVALID_ARG), which is what libvirt raises for an
    accelerator or machine type the emulator does not support ("the accel
    'kvm' is not supported by ...", "the machine 'x' is not supported by
    emulator ..."); Nova then drops that arch from its domain capabilities.
    baselineCPU raises VIR_ERR_NO_SUPPORT (Nova tolerates that).
    """

    def __init__(self, libvirt, host, default_versions, log):
        self._libvirt, self._host, self._log = libvirt, host, log
        self._versions = dict(default_versions, **host.get("versions", {}))

    def _fail(self, method, args, code, message):
        self._log.add(method, args, "no recorded answer -> libvirt error %d"
                      % code)
        raise _libvirt_error(self._libvirt, code, message)

    def getCapabilities(self):
        self._log.add("getCapabilities", [], "answered")
        return self._host["capabilities_xml"]

    def getDomainCapabilities(self, emulatorbin, arch, machine, virttype,
                              flags=0):
        key = domcaps_key(virttype, arch, machine)
        answer = self._host.get("domain_capabilities", {}).get(key)
        if answer is None:
            self._fail("getDomainCapabilities", [key],
                       self._libvirt.VIR_ERR_INVALID_ARG,
                       "nova_bridge: no recorded domain capabilities for %r "
                       "(emulator %s)" % (key, emulatorbin))
        self._log.add("getDomainCapabilities", [key], "answered")
        return answer

    def getCPUModelNames(self, arch, flags=0):
        names = self._host.get("cpu_model_names", {}).get(arch)
        if names is None:
            self._fail("getCPUModelNames", [arch],
                       self._libvirt.VIR_ERR_NO_SUPPORT,
                       "nova_bridge: no recorded CPU model names for %s"
                       % arch)
        self._log.add("getCPUModelNames", [arch], "answered")
        return names

    def getCPUMap(self, flags=0):
        # Recorded, or: every CPU listed in the capabilities' NUMA topology
        # is online (libvirt lists present CPUs there).
        if "cpu_map" in self._host:
            self._log.add("getCPUMap", [], "answered")
            return tuple(self._host["cpu_map"])
        ids = [int(c.get("id")) for c in ET.fromstring(
            self._host["capabilities_xml"]).iterfind(
                "./host/topology/cells/cell/cpus/cpu")]
        self._log.add("getCPUMap", [], "derived from capabilities topology")
        n = max(ids) + 1 if ids else 0
        return n, [i in ids for i in range(n)], len(ids)

    def baselineCPU(self, xmls, flags=0):
        self._fail("baselineCPU", ["..."], self._libvirt.VIR_ERR_NO_SUPPORT,
                   "nova_bridge: baselineCPU is not recorded")

    def getLibVersion(self):
        return self._versions["libvirt"]

    def getVersion(self):
        return self._versions["hypervisor"]

    def getType(self):
        return self._versions["type"]

    def getHostname(self):
        return self._host.get("hostname", "nova-bridge-recorded-host")

    def domainEventRegisterAny(self, *args):
        return 0

    def registerCloseCallback(self, *args):
        return 0

    def __getattr__(self, name):
        def missing(*args, **kwargs):
            self._fail(name, [], self._libvirt.VIR_ERR_NO_SUPPORT,
                       "nova_bridge: recorded host cannot answer %s" % name)
        return missing
