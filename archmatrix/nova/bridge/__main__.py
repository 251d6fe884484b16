"""Ask OpenStack Nova's own libvirt driver what it would do on a given host (run with Nova's venv's python).

`NOVA_PYTHON path/to/archmatrix/nova/bridge`: ONE JSON request on stdin, ONE JSON response on stdout, every log
line on stderr. Nothing here decides anything about guests: each answer comes from Nova's code; the bridge only
supplies inputs (configuration, image, flavor, instance) and a libvirt connection. The request and response are
described in archmatrix/nova/driver.py, the harness's side. This directory runs in Nova's environment, never in
archmatrix's: it imports Nova and the standard library only.
"""

import importlib.metadata
import json
import logging
import os
import sys
import time
import traceback
import warnings

from cases import _ms
from loader import BadRequest, Nova, classify
from runs import run_one

PROTOCOL = 1
T0 = time.perf_counter()


# Nova's private functions the bridge calls (cases.py, runs.py): their parameters as this Nova has them, so that
# the harness can say which one a new Nova changed (archmatrix/nova/private_api.py).
PRIVATE_API = ("_get_guest_xml", "_get_cpu_arch_traits", "_get_cpu_emulation_arch_traits")


def private_api(N):
    import inspect

    found = {}
    for name in PRIVATE_API:
        function = getattr(N.libvirt_driver.LibvirtDriver, name, None)
        found[name] = (list(inspect.signature(function).parameters) if callable(function) else None)
    return found


def main():
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)              # anything else written to stdout -> stderr
    sys.stdout = sys.stderr
    response = {"protocol": PROTOCOL}
    try:
        request = json.load(sys.stdin)
        logging.basicConfig(stream=sys.stderr,
                            level=request.get("log_level", "WARNING"),
                            format="%(levelname)s %(name)s: %(message)s")
        if request.get("log_level", "WARNING") != "DEBUG":
            warnings.simplefilter("ignore")
        t = time.perf_counter()
        N = Nova()
        response["nova_version"] = N.version.version_string_with_package()
        response["libvirt_python"] = importlib.metadata.version(
            "libvirt-python")
        response["libvirt_library"] = N.libvirt.getVersion()
        response["python_hash_seed"] = os.environ.get("PYTHONHASHSEED")
        # Inputs that Nova reads from THIS machine, not from the connection:
        # older Novas (e.g. 29) choose UEFI loader files from the local QEMU
        # firmware descriptors.
        dirs = getattr(N.libvirt_host, "QEMU_FIRMWARE_DESCRIPTOR_PATHS", [])
        response["local_inputs"] = {
            "firmware_descriptor_dirs": [d for d in dirs if os.path.isdir(d)]}
        response["python"] = sys.version.split()[0]
        response["private_api"] = private_api(N)
        imports_ms = _ms(t)
        runs = request["runs"] if "runs" in request else [request]
        stats = []
        response["runs"] = []
        for run in runs:
            try:
                response["runs"].append(run_one(N, run, stats))
            except BadRequest as e:
                response["runs"].append({"label": run.get("label"), "error": {
                    "kind": "bad_request", "message": str(e)}})
            except Exception as exc:  # noqa: BLE001 e.g. no connection
                response["runs"].append({"label": run.get("label"),
                                         "error": classify(N, exc, "run")[1]})
        response["timings"] = {
            "imports_ms": imports_ms,
            "first_xml_ms": stats[0] if stats else None,
            "further_xml_ms": {
                "n": len(stats[1:]),
                "median": sorted(stats[1:])[len(stats[1:]) // 2]
                if stats[1:] else None,
                "max": max(stats[1:]) if stats[1:] else None},
            "process_ms": _ms(T0)}
        status = 0
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc()
        response["bridge_error"] = {"exception": type(exc).__name__,
                                    "message": str(exc),
                                    "note": "a failure of nova_bridge.py "
                                            "itself, not a Nova decision"}
        status = 2
    json.dump(response, out, indent=1)
    out.write("\n")
    out.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
