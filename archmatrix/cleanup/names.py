"""The names and tags of everything a run creates: its prefix, its run id and its owner, readable again.

A domain carries a metadata element; a storage pool and a container, their names and labels; a directory,
an owner file. Anything without them is not ours and is never touched.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

from archmatrix.cleanup.owner import Owner

PREFIX = "archmatrix"
METADATA_NAMESPACE = "urn:archmatrix:run:1"
METADATA_TAG = f"{{{METADATA_NAMESPACE}}}run"
RUN_DIR_PREFIX = f"{PREFIX}-run-"  # a run's private directory, under the temporary directory
HOST_DIR_PREFIX = f"{PREFIX}-host-"  # a container host's private directory (its socket, its SSH keys)
OWNER_FILE = "owner"
POOL_PREFIX = f"{PREFIX}-pool-"
POOL_NAME = re.compile(rf"^{POOL_PREFIX}(?P<run>[0-9a-f]+)-(?P<machine>[0-9a-z]+)-(?P<boot>[0-9a-f]+)-"
                       rf"(?P<pid>\d+)-(?P<pidstart>\d+)$")
CONTAINER_LABEL = f"{PREFIX}.run"  # marks a container as ours; its owner is in the labels below
CONTAINER_OWNER_LABELS = {key: f"{PREFIX}.{key}" for key in ("pid", "pidstart", "boot", "machine")}
CONTAINER_DIR_LABEL = f"{PREFIX}.dir"
QEMU_PROCESS_MARK = f"guest={PREFIX}-"  # in a QEMU command line libvirt started for one of our domains


def run_prefix(run_id: str) -> str:
    """What every domain name of run `run_id` starts with."""
    return f"{PREFIX}-{run_id}-"


def domain_name(run_id: str, cell_id: str) -> str:
    return run_prefix(run_id) + cell_id


def tag_domain(metadata: ET.Element, run_id: str, cell_id: str, owner: Owner) -> None:
    """Put the run, the cell and the owner into a domain's <metadata>."""
    ET.SubElement(metadata, METADATA_TAG, {"run": run_id, "cell": cell_id, **owner.tag()})


def domain_tag(xml_text: str) -> dict[str, str] | None:
    """The run, cell and owner a domain's XML says it belongs to, or None if it is not ours."""
    tag = ET.fromstring(xml_text).find(f"metadata/{METADATA_TAG}")
    return dict(tag.attrib) if tag is not None else None


def pool_name(run_id: str, owner: Owner) -> str:
    return f"{POOL_PREFIX}{run_id}-{owner.machine}-{owner.boot}-{owner.pid}-{owner.pidstart}"


def pool_tag(name: str) -> dict[str, str] | None:
    """The run and owner a pool's name records, or None if it is not ours."""
    found = POOL_NAME.match(name)
    return found.groupdict() if found else None


def container_labels(run_id: str, owner: Owner, private_dir: Path) -> dict[str, str]:
    return {CONTAINER_LABEL: run_id, CONTAINER_DIR_LABEL: str(private_dir),
            **{label: value for key, label in CONTAINER_OWNER_LABELS.items() for value in (owner.tag()[key],)}}


def container_owner(labels: dict[str, str]) -> Owner:
    return Owner.from_tag({key: labels.get(label, "") for key, label in CONTAINER_OWNER_LABELS.items()})


def write_owner_file(directory: Path, owner: Owner) -> None:
    (directory / OWNER_FILE).write_text(owner.line())


def read_owner_file(directory: Path) -> Owner | None:
    """The owner a directory's owner file names; None when it has none (not fully made, or not ours)."""
    try:
        return Owner.from_line((directory / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return None
