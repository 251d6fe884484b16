"""Asking Nova's own libvirt driver, through the bridge in Nova's environment: the request archmatrix makes and
the answers it reads.

A request names a host and runs of cases. The host is a libvirt URI (the bridge opens it itself, read-write
because libvirt 9.0 answers domain capabilities on no read-only connection, and lets only query calls through)
or recorded answers (capabilities and domain capabilities XML, for the offline comparison with nova-plan). A
case is an instance of given image properties; its answer is Nova's domain XML, or the exception Nova raised.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from archmatrix.nova.environment import NovaEnvironment, NovaError

DEFAULT_INSTANCES_PATH = "/var/lib/nova/instances"  # only shown in Nova's XML; the bridge writes nothing there
REFUSAL_SHOWN_CHARS = 600  # Nova's InvalidMachineType lists every machine of every arch: kept readable


@dataclass(frozen=True)
class NovaCase:
    case_id: str
    image_properties: dict[str, str]
    disk_format: str = "raw"
    name: str = "archmatrix-nova"
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_mb: int = 512
    vcpus: int = 1
    root_gb: int = 1
    config_drive: bool = True
    config_drive_path: str | None = None  # where Nova's own builder writes the drive, when it is wanted
    conf: dict = field(default_factory=dict)  # nova.conf options of this case only

    def request(self) -> dict:
        case = {"id": self.case_id, "image_properties": self.image_properties, "disk_format": self.disk_format,
                "instance": {"name": self.name, "uuid": self.uuid, "memory_mb": self.memory_mb,
                             "vcpus": self.vcpus, "root_gb": self.root_gb},
                "config_drive": self.config_drive, "conf": self.conf}
        if self.config_drive and self.config_drive_path:
            case["config_drive_path"] = self.config_drive_path
        return case


@dataclass(frozen=True)
class NovaAnswer:
    """Nova's answer to one case: its domain XML, or its refusal (exception and message)."""

    case_id: str
    xml: str | None = None
    refused: str | None = None  # "InvalidMachineType: 'x' is not valid ..."
    error: str | None = None  # not Nova's decision: the bridge or its inputs could not complete the case
    required_traits: tuple[str, ...] = ()  # what the scheduler's image prefilter would require
    config_drive: str | None = None  # the drive Nova's builder wrote
    xml_ms: float | None = None

    @classmethod
    def from_response(cls, case: dict) -> NovaAnswer:
        refused = case.get("refused")
        error = case.get("error")
        return cls(
            case_id=case["id"], xml=case.get("xml"),
            refused=f"{refused['exception']}: {_shown(refused['message'])}" if refused else None,
            error=f"{error.get('kind', 'error')}: {error.get('exception', '')}: {_shown(error.get('message', ''))}"
            if error else None,
            required_traits=tuple(case.get("prefilter", {}).get("required_traits", ())),
            config_drive=(case.get("config_drive") or {}).get("path"), xml_ms=case.get("xml_ms"))


@dataclass(frozen=True)
class NovaRun:
    """One run's answers: the host's traits Nova would report, and each case's answer."""

    nova_version: str
    virt_type: str
    host_arch: str
    traits: tuple[str, ...]  # COMPUTE_ARCH_* Nova's driver reports for the host with this virt_type
    answers: dict[str, NovaAnswer]
    imports_ms: float | None = None


def _shown(message: str) -> str:
    return message if len(message) <= REFUSAL_SHOWN_CHARS else message[:REFUSAL_SHOWN_CHARS] + " ..."


def live_host(uri: str) -> dict:
    return {"uri": uri, "read_only": False}


def recorded_host(capabilities_xml: str, domain_capabilities: dict[str, str], host_arch: str | None = None) -> dict:
    """Recorded answers: domain capabilities keyed "virt_type/arch/machine" (machine empty when Nova asks none)."""
    host = {"capabilities_xml": capabilities_xml, "domain_capabilities": domain_capabilities}
    return {"host": host, **({"host_arch": host_arch} if host_arch else {})}


def ask(environment: NovaEnvironment, host: dict, runs: list[tuple[dict, list[NovaCase]]],
        instances_path: str = DEFAULT_INSTANCES_PATH) -> list[NovaRun]:
    """One bridge process for several runs: each (nova.conf options, cases) against `host`.

    `host` is live_host(uri) or recorded_host(...). NovaError when the bridge could not run at all.
    """
    return ask_each(environment, [(host, conf, cases) for conf, cases in runs], instances_path)


def ask_each(environment: NovaEnvironment, runs: list[tuple[dict, dict, list[NovaCase]]],
             instances_path: str = DEFAULT_INSTANCES_PATH) -> list[NovaRun]:
    """One bridge process for several runs, each (host, nova.conf options, cases): a host per run, each
    live_host(uri) or recorded_host(...). NovaError when the bridge could not run, or use a run's host."""
    request = {"runs": [{**(host if "host" in host else {"host": host}),
                         "conf": {"DEFAULT.instances_path": instances_path, **conf},
                         "cases": [case.request() for case in cases]} for host, conf, cases in runs]}
    response = environment.ask(request)
    found = []
    for run in response["runs"]:
        if "error" in run:
            which = f"the host of run {len(found) + 1}" if len(runs) > 1 else "the host"
            raise NovaError(f"nova {environment.version} could not use {which}: {run['error'].get('message')}")
        found.append(NovaRun(
            nova_version=response["nova_version"], virt_type=run["host"]["virt_type"],
            host_arch=run["host"]["host_arch"], traits=tuple(run.get("traits", {}).get("compute_arch", ())),
            answers={case["id"]: NovaAnswer.from_response(case) for case in run["cases"]},
            imports_ms=response.get("timings", {}).get("imports_ms")))
    return found
