"""Asking Nova itself: one bridge process for runs against several hosts, and one image on a live host.

driver.ask puts every run on one host; the comparison with the own reading and the traits of several hosts need a
host per run, still in one process (Nova's imports take a second or two, each case milliseconds).
"""

from __future__ import annotations

from archmatrix.nova.driver import NovaAnswer, NovaCase, NovaRun, ask, live_host
from archmatrix.nova.environment import NovaEnvironment, NovaError

DEFAULT_INSTANCES_PATH = "/var/lib/nova/instances"  # only shown in Nova's XML; the bridge writes nothing there


def ask_each(environment: NovaEnvironment, runs: list[tuple[dict, dict, list[NovaCase]]],
             instances_path: str = DEFAULT_INSTANCES_PATH) -> list[NovaRun]:
    """Each run is (host, nova.conf options, cases), the host live_host(uri) or recorded_host(...)."""
    request = {"runs": [{**(host if "host" in host else {"host": host}),
                         "conf": {"DEFAULT.instances_path": instances_path, **conf},
                         "cases": [case.request() for case in cases]} for host, conf, cases in runs]}
    response = environment.ask(request)
    found = []
    for run in response["runs"]:
        if "error" in run:
            raise NovaError(f"nova {environment.version} could not use the host of run {len(found) + 1}: "
                            f"{run['error'].get('message')}")
        found.append(NovaRun(
            nova_version=response["nova_version"], virt_type=run["host"]["virt_type"],
            host_arch=run["host"]["host_arch"], traits=tuple(run.get("traits", {}).get("compute_arch", ())),
            answers={case["id"]: NovaAnswer.from_response(case) for case in run["cases"]},
            imports_ms=response.get("timings", {}).get("imports_ms")))
    return found


def ask_image(environment: NovaEnvironment, uri: str, properties: dict[str, str], virt_type: str) -> NovaAnswer:
    """Nova's answer for one image on the host at `uri` (the bridge's own guarded read-write connection), with a
    config drive, so that the XML shows the CD-ROM bus too."""
    case = NovaCase("nova-plan", dict(properties), config_drive=True)
    (run,) = ask(environment, live_host(uri), [({"libvirt.virt_type": virt_type}, [case])])
    answer = run.answers["nova-plan"]
    if answer.error:
        raise NovaError(f"nova {environment.version} could not complete the case on {uri}: {answer.error}")
    return answer
