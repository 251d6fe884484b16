"""Boot files on a remote libvirt host: uploaded into a storage pool of the run.

Nothing is assumed of the host's filesystem: a `dir` pool is created through
the connection (libvirt makes its directory), each image file is uploaded
once per run with virStorageVolUpload, named by its hash, and shared by the
cells. The pool's name carries the run id and the owner process, like a
domain's tag, so a crashed run's pool is found and deleted; `delete_run_pool`
removes volumes, directory and pool at the end.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from archmatrix.files import sha256_of
from archmatrix.guest.site import PlacedFiles
from archmatrix.guest.staging import local_disk_copy
from archmatrix.images.image import Image

if TYPE_CHECKING:
    import libvirt

POOL_PARENT = "/var/lib/libvirt/images"  # where libvirt keeps images on a Debian host; the pool is a subdirectory
UPLOAD_CHUNK = 1024 * 1024


def pool_xml(name: str) -> str:
    pool = ET.Element("pool", type="dir")
    ET.SubElement(pool, "name").text = name
    target = ET.SubElement(pool, "target")
    ET.SubElement(target, "path").text = f"{POOL_PARENT}/{name}"
    # Traversable, not listable: QEMU runs as its own user and reaches the volumes libvirt hands it.
    ET.SubElement(ET.SubElement(target, "permissions"), "mode").text = "0711"
    return ET.tostring(pool, encoding="unicode")


def volume_xml(name: str, size: int) -> str:
    volume = ET.Element("volume")
    ET.SubElement(volume, "name").text = name
    ET.SubElement(volume, "capacity", unit="bytes").text = str(size)
    # Nothing to preallocate: the upload writes every byte (libvirt 9 otherwise writes zeros first).
    ET.SubElement(volume, "allocation", unit="bytes").text = "0"
    target = ET.SubElement(volume, "target")
    ET.SubElement(target, "format", type="raw")
    ET.SubElement(ET.SubElement(target, "permissions"), "mode").text = "0600"
    return ET.tostring(volume, encoding="unicode")


def run_pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    """The run's pool on this host, created (with its directory) by the first process that needs it."""
    import libvirt

    try:
        return _active(conn.storagePoolLookupByName(name))
    except libvirt.libvirtError:
        pass
    try:
        pool = conn.storagePoolDefineXML(pool_xml(name), 0)
        pool.build(0)
        pool.create(0)
        return pool
    except libvirt.libvirtError:
        try:  # another worker of the run won the race
            return _active(conn.storagePoolLookupByName(name))
        except libvirt.libvirtError:
            raise


POOL_START_S = 30.0  # another worker defined the pool and is building and starting it


def _active(pool: libvirt.virStoragePool) -> libvirt.virStoragePool:
    """The pool once it is started: found defined but not yet active, it was another worker's to start.

    Two workers that met a lab host at the same moment once raced here: one uploaded into the pool the other had
    defined and not yet started ("storage pool ... is not active").
    """
    import libvirt

    deadline = time.monotonic() + POOL_START_S
    while not pool.isActive():
        if time.monotonic() >= deadline:
            try:
                pool.create(0)  # its creator went away before starting it
            except libvirt.libvirtError:
                pass
            break
        time.sleep(0.1)
    return pool


def upload(conn: libvirt.virConnect, pool: libvirt.virStoragePool, source: Path, name: str) -> str:
    """Upload `source` as volume `name`; return its path on the host.

    Called once per name and run under the run store's lock: a volume already
    there is what a process that died mid-upload left, and is replaced.
    """
    import libvirt

    try:
        pool.storageVolLookupByName(name).delete(0)
    except libvirt.libvirtError:
        pass  # the usual case: no such volume yet
    size = os.path.getsize(source)
    volume = pool.createXML(volume_xml(name, size), 0)
    stream = conn.newStream(0)
    try:
        volume.upload(stream, 0, size, 0)
        with open(source, "rb") as data:
            while chunk := data.read(UPLOAD_CHUNK):
                stream.send(chunk)
        stream.finish()
    except BaseException:
        try:
            stream.abort()
            volume.delete(0)
        except libvirt.libvirtError:
            pass  # the connection itself is gone; the pool goes at the end of the run
        raise
    return volume.path()


class PoolFiles:
    """Boot files uploaded into the run's pool on the libvirt host, once per file per run; a cell's own files
    (its disk, which its guest may write to, and its config drive) as volumes of the cell, deleted with it."""

    def __init__(self, connection: Callable[[], libvirt.virConnect], name: str,
                 once: Callable[[str, Callable[[], dict]], dict], host_label: str, scratch: Path):
        self.connection = connection
        self.name = name
        self.once = once  # the run store: one upload per file and host across xdist workers
        self.host_label = host_label  # every remote host of a run has a pool of the run's name
        self.scratch = scratch  # this machine's directory for a cell's disk before its upload

    def _volume(self, path: Path, sha256: str, role: str) -> str:
        def do_upload() -> dict:
            conn = self.connection()
            return {"path": upload(conn, run_pool(conn, self.name), path, f"{sha256[:24]}-{role}")}

        return self.once(f"volume-{self.host_label}-{sha256[:24]}-{role}", do_upload)["path"]

    def _cell_volume(self, path: Path, name: str) -> str:
        conn = self.connection()
        return upload(conn, run_pool(conn, self.name), path, name)

    def _clone(self, base_path: str, name: str) -> str:
        """A copy of a volume of the run, made on the host (nothing crosses the connection)."""
        conn = self.connection()
        pool = run_pool(conn, self.name)
        base = conn.storageVolLookupByPath(base_path)
        return pool.createXMLFrom(volume_xml(name, base.info()[1]), base, 0).path()

    def place(self, image: Image, cell_id: str, cmdline: str, attach: dict[str, Path] | None = None) -> PlacedFiles:
        attached = {name: self._cell_volume(path, f"{cell_id}-{name}") for name, path in (attach or {}).items()}
        if image.disk:
            # The cell's command line is written into a copy here; the copy is uploaded once per content (the cells
            # of one arch share it) and cloned on the host for each cell.
            scratch = self.scratch / cell_id
            scratch.mkdir(parents=True, exist_ok=True)
            copy = local_disk_copy(image, scratch, cmdline)
            try:
                base = self._volume(copy, sha256_of(copy), "disk")
            finally:
                copy.unlink()
            return PlacedFiles(None, None, owned=True, disk=self._clone(base, f"{cell_id}-disk"),
                               disk_format=image.disk_format or "raw", attached=attached)
        assert image.kernel is not None and image.kernel_sha256 is not None
        kernel = self._volume(image.kernel, image.kernel_sha256, "kernel")
        initrd = self._volume(image.initrd, image.initrd_sha256, "initrd") if image.initrd else None
        dtb = self._volume(image.dtb, image.dtb_sha256, "dtb") if image.dtb and image.dtb_sha256 else None
        return PlacedFiles(kernel, initrd, owned=False, dtb=dtb, attached=attached)

    def release(self, files: PlacedFiles) -> None:
        """The cell's own volumes go now; volumes shared by the run's cells go with the pool at the end."""
        import libvirt

        conn = self.connection()
        for path in [files.disk if files.owned else None, *files.attached.values()]:
            if path:
                try:
                    conn.storageVolLookupByPath(path).delete(0)
                except libvirt.libvirtError:
                    pass  # gone already, or the host is: the pool's end takes it
