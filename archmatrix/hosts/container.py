"""Container hosts at run time: start one from its image, reach it, stop it.

A started container is reached only through files in a private (0700) host
directory: libvirtd's UNIX socket (the directory is bind-mounted on the
container's /run/libvirt) and the per-run SSH keys, used with
`docker exec -i CONTAINER sshd -i` as the SSH transport. No network port is
opened anywhere; the container has no network at all.

Every container carries its run id and its owner as labels (archmatrix/cleanup/names.py), so the
containers of a crashed run are found and removed by the sweeps of archmatrix/cleanup/.
The images are archmatrix/hosts/container_image.py's, made from archmatrix/hosts/container_recipe.py's recipes.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archmatrix.cleanup.names import HOST_DIR_PREFIX, container_labels, write_owner_file
from archmatrix.cleanup.owner import Owner
from archmatrix.hosts.container_image import RELEASE_LABEL, HostImage, build_host_image
from archmatrix.hosts.container_recipe import ContainerHostError, check_release
from archmatrix.ssh.keys import fingerprint_of_line, new_key_pair, write_private
from archmatrix.ssh.shell import SshAccess

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

SOCKET_NAME = "libvirt-sock"
SSH_DIR_IN_CONTAINER = "etc/archmatrix/ssh"
SSHD_COMMAND = ("/usr/sbin/sshd", "-i", "-f", "/etc/archmatrix/sshd_config")
DOCKERD_LOG = Path("/var/log/dockerd.log")

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,39}")
# dockerd processes this module started: kept referenced for as long as we run.
_STARTED_DAEMONS: list[subprocess.Popen] = []

# --- a running container host ------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerHost:
    label: str  # the Debian release
    uri: str
    socket_dir: Path
    private_dir: Path  # holds socket_dir and the SSH client key; removed by stop()
    container_id: str
    container_name: str
    image_tag: str
    ssh: SshAccess
    libvirt_version: str  # Debian package versions in the container
    qemu_version: str
    _container: DockerContainer = field(repr=False, compare=False)

    def stop(self) -> None:
        """Remove the container and the private directory; safe to call again."""
        import docker

        try:
            if os.geteuid() != 0:
                # libvirtd's files in the socket directory belong to root: remove them from inside.
                self._container.exec(["find", "/run/libvirt", "-mindepth", "1", "-delete"])
        except docker.errors.DockerException:
            pass  # already gone
        try:
            self._container.stop()
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as error:
            raise ContainerHostError(f"cannot remove container {self.container_name}: {error}") from error
        finally:
            shutil.rmtree(self.private_dir, ignore_errors=True)


def libvirt_uri(socket_dir: Path) -> str:
    return f"qemu+unix:///system?socket={Path(socket_dir) / SOCKET_NAME}"


def _ssh_material(host_private: bytes, client_public: str) -> bytes:
    """The tarball put into the container at start: the host key and the authorized client key."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        # sshd's privilege separation directory: an image's /run is left empty, and no init creates it.
        privsep = tarfile.TarInfo("run/sshd")
        privsep.type, privsep.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(privsep)
        for name, data in (("host_ed25519", host_private), ("authorized_keys", client_public.encode() + b"\n")):
            info = tarfile.TarInfo(f"{SSH_DIR_IN_CONTAINER}/{name}")
            info.mode, info.size = 0o600, len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _make_private_dir(run_id: str, owner: Owner) -> Path:
    private_dir = Path(tempfile.mkdtemp(prefix=f"{HOST_DIR_PREFIX}{run_id}-"))  # mode 0700
    write_owner_file(private_dir, owner)
    for sub in ("libvirt", "ssh"):
        (private_dir / sub).mkdir(mode=0o700)
    return private_dir


def start_container_host(release: str, run_id: str, owner: Owner, cache_root: Path,
                         log: Callable[[str], None], ready_timeout_s: float = 120.0) -> ContainerHost:
    """Start `release`'s container host for run `run_id` and wait until its libvirtd answers.

    `owner` is the process that owns the run; with it, a later run's sweep
    (archmatrix/cleanup/) tells a crashed run's container from a live one's.
    The image is built first if it is not cached under `cache_root`.
    """
    check_release(release)
    if not _RUN_ID.fullmatch(run_id):
        raise ContainerHostError(f"run id {run_id!r} cannot name a container: use 1-40 letters, digits, '_', '.' "
                                 "or '-', starting with a letter or digit")
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise ContainerHostError("the docker client is not installed (it carries the SSH transport); "
                                 "as root: apt-get install docker.io")
    image = build_host_image(release, cache_root, log)
    private_dir = _make_private_dir(run_id, owner)
    try:
        return _start(image, run_id, owner, private_dir, docker_cli, log, ready_timeout_s)
    except BaseException:
        shutil.rmtree(private_dir, ignore_errors=True)
        raise


def _start(image: HostImage, run_id: str, owner: Owner, private_dir: Path, docker_cli: str,
           log: Callable[[str], None], ready_timeout_s: float) -> ContainerHost:
    import docker
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    # Ryuk, testcontainers' reaper, is an image from a registry; our own labels and sweep do its job.
    testcontainers_config.ryuk_disabled = True
    name = f"archmatrix-host-{image.release}-{run_id}-{secrets.token_hex(3)}"
    socket_dir = private_dir / "libvirt"
    client_private, client_public = new_key_pair()
    host_private, host_public = new_key_pair()
    key_path = private_dir / "ssh" / "client_ed25519"
    write_private(key_path, client_private)

    labels = container_labels(run_id, owner, private_dir) | {RELEASE_LABEL: image.release}
    started = time.monotonic()
    try:
        container = (DockerContainer(image.tag)
                     .with_name(name)
                     .with_volume_mapping(str(socket_dir), "/run/libvirt", "rw")
                     # No network at all; the hostname resolves locally, as libvirt looks it up often.
                     .with_kwargs(init=True, labels=labels, network="none", hostname=name[:63],
                                  extra_hosts={name[:63]: "127.0.0.1"},
                                  # Reading /proc/PID/exe of QEMU (user libvirt-qemu) needs ptrace access:
                                  # without it root in the container gets EACCES, and the binary check
                                  # could compare the domain XML only.
                                  cap_add=["SYS_PTRACE"]))
        container.start()
    except docker.errors.DockerException as error:
        _remove_by_name(name)
        raise ContainerHostError(f"cannot start container {name} from {image.tag}: {error}") from error
    try:
        wrapped = container.get_wrapped_container()
        if not wrapped.put_archive("/", _ssh_material(host_private, client_public)):
            raise ContainerHostError(f"could not copy the SSH keys into container {name}")
        uri = libvirt_uri(socket_dir)
        answered = _wait_for_libvirtd(wrapped, uri, socket_dir / SOCKET_NAME, ready_timeout_s)
        log(f"container host {name} ({image.tag}): libvirtd answered {answered - started:.1f} s after start, "
            f"its QEMU driver {time.monotonic() - started:.1f} s")
        versions = _package_versions(wrapped, ("libvirt-daemon", "qemu-system-x86"))
    except BaseException:
        container.stop()
        raise
    ssh = SshAccess(user="root", host=name, key=str(key_path), fingerprint=fingerprint_of_line(host_public),
                    proxy_command=(docker_cli, "exec", "-i", name, *SSHD_COMMAND))
    return ContainerHost(label=image.release, uri=uri, socket_dir=socket_dir, private_dir=private_dir,
                         container_id=wrapped.id, container_name=name, image_tag=image.tag, ssh=ssh,
                         libvirt_version=versions.get("libvirt-daemon", "?"),
                         qemu_version=versions.get("qemu-system-x86", "?"), _container=container)


def _remove_by_name(name: str) -> None:
    import docker

    try:
        client = docker.from_env()
    except docker.errors.DockerException:
        return  # the daemon is gone, and the container with it
    try:
        client.containers.get(name).remove(force=True)
    except docker.errors.DockerException:
        pass  # never created
    finally:
        client.close()


def _wait_for_libvirtd(container: Any, uri: str, socket: Path, timeout_s: float) -> float:
    """Wait until libvirtd answers and its QEMU driver is ready; return when it first answered (monotonic)."""
    import libvirt

    deadline = time.monotonic() + timeout_s
    last_error = "the socket never appeared"
    while time.monotonic() < deadline:
        container.reload()
        if container.status not in ("created", "running"):
            raise ContainerHostError(f"container {container.name} stopped ({container.status}) before libvirtd "
                                     f"answered; its last log lines: {_container_log(container)}")
        if socket.exists():  # libvirt would print a connection error for each early try
            try:
                conn = libvirt.open(uri)
                try:
                    conn.getLibVersion()
                    answered = time.monotonic()
                    # The QEMU driver answers once it has probed every emulator (~7 s for bookworm's 30).
                    conn.getVersion()
                    return answered
                finally:
                    conn.close()
            except libvirt.libvirtError as error:
                last_error = str(error)
        time.sleep(0.2)
    raise ContainerHostError(f"libvirtd in container {container.name} did not answer on {uri} within "
                             f"{timeout_s:.0f} s ({last_error}); its last log lines: {_container_log(container)}")


def _container_log(container: Any, lines: int = 15) -> str:
    text = container.logs(tail=lines).decode(errors="replace").strip()
    return " / ".join(text.splitlines()) or "(none)"


def _package_versions(container: Any, packages: tuple[str, ...]) -> dict[str, str]:
    result = container.exec_run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *packages])
    return dict(line.split(" ", 1) for line in result.output.decode().splitlines() if " " in line)
