"""Faults provoked for real: hung and flooding guests, signals, killed workers and daemons,
leftovers of crashed runs, concurrent runs, a damaged cache, failed downloads and a full disk.

Each test runs the harness as a user would (scenarios/runs.py) and checks what the
user sees, and that nothing of the run is left behind.
"""

import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from archmatrix.cleanup.owner import Owner, this_boot, this_machine
from archmatrix.core.arches import ARCHES
from archmatrix.core.capabilities import parse_capabilities
from archmatrix.core.plan import make_plan
from archmatrix.guest.domain import domain_xml
from archmatrix.guest.observe import domain_spec
from archmatrix.guest.staging import StagedFiles
from archmatrix.images.cache import ImageCache, Recipe
from archmatrix.images.debian import PackageFetchError, PrivateApt
from archmatrix.report.json_report import load_matrix, schema_problems
from scenarios.runs import (
    ROOT,
    assert_nothing_left,
    cells_of,
    domains_of,
    finish,
    interrupt_mid_run,
    qemu_processes_of,
    read_until,
    real_run,
)
from tests.apt_mirror import loopback_mirror, write_suite

HANG = "aarch64=rdinit=/bin/busybox -- sleep 100000"  # the kernel boots, then nothing prints again
FLOOD = 'aarch64=rdinit=/bin/busybox -- sh -c "while :; do /bin/busybox cat /bin/busybox; done"'  # binary, no newlines


def test_hung_guest_fails_at_its_timeout_with_the_console_tail_and_the_run_goes_on(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64,s390x", "--accel", "tcg",
                       "--kernel-args", HANG, "--boot-timeout", "aarch64=8")
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    cells = cells_of(tmp_path)
    assert cells["aarch64-tcg"]["status"] == "fail" and cells["s390x-tcg"]["status"] == "pass"
    # Stopped, not slow: its kernel's last line came seconds before the bound, and the verdict says so.
    detail = cells["aarch64-tcg"]["checks"]["boot"]["detail"]
    assert re.fullmatch(r"no banner: timeout after \d+ s; the guest had stopped printing [\d.]+ s before its \d+ s "
                        r"bound ran out \(nothing in its last [\d.]+ s; its last output [\d.]+ s after the domain "
                        r"started, kernel time [\d.]+ s\)", detail), detail
    progress = cells["aarch64-tcg"]["facts"]["boot_progress"]
    assert progress["bytes_in_window"] == 0 and progress["quiet_s"] > progress["window_s"]
    assert "last console lines:" in output and "Run /bin/busybox as init process" in output
    assert_nothing_left(run_id)


# A guest still making progress when its bound runs out, as on the aarch64 lab host's TCG cell: its kernel's
# timestamps advance on the console every 50 ms (a line written to /dev/kmsg), for ever. A bound planted inside the
# kernel's own boot (initcall_debug, 1 s) fell into one of its quiet spells (up to 0.27 s here) as often as not.
STILL_BOOTING = ("--kernel-args", 'aarch64=rdinit=/bin/busybox -- sh -c "/bin/busybox mount -t devtmpfs dev /dev; '
                 'while :; do echo still booting | /bin/busybox dd of=/dev/kmsg status=none; '
                 '/bin/busybox usleep 50000; done"', "--boot-timeout", "aarch64=4")


def test_a_guest_still_booting_when_its_bound_runs_out_is_inconclusive_with_how_far_it_got(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64,s390x", "--accel", "tcg", *STILL_BOOTING)
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output  # nothing was proven of aarch64
    cells = cells_of(tmp_path)
    aarch64 = cells["aarch64-tcg"]
    assert aarch64["status"] == "inconclusive", aarch64
    outcomes = {check: verdict["outcome"] for check, verdict in aarch64["checks"].items()}
    assert outcomes["boot"] == "inconclusive" and outcomes["ssh"] == "inconclusive"
    assert outcomes["binary"] == outcomes["machine"] == outcomes["accelerator"] == "pass"
    assert "fail" not in outcomes.values()
    progress = aarch64["facts"]["boot_progress"]
    assert progress["bytes_in_window"] > 0 and progress["quiet_s"] <= progress["window_s"]
    assert progress["kernel_time_s"] is not None and progress["kernel_time_s"] > 2  # past the kernel's own boot
    assert aarch64["reason"].startswith("inconclusive: no banner: timeout after ") and \
        "the guest was still printing when its " in aarch64["reason"]
    assert cells["s390x-tcg"]["status"] == "pass"
    # The host's speed, measured at the start, is in the report with what it made of the TCG bounds.
    speed = load_matrix(tmp_path / "matrix.json")["hosts"][0]["tcg_speed"]
    assert speed["payload"] == "x86_64" and speed["factor"] >= 1 and speed["seconds"] > 0, speed
    assert "| aarch64 | ⏳ inconclusive" in (tmp_path / "matrix.md").read_text()
    assert "aarch64-tcg" in output and "inconclusive" in output
    assert_nothing_left(run_id)


def test_flooding_guest_is_capped_and_does_not_grow_the_harness(tmp_path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg", "--kernel-args", FLOOD,
                       "--boot-timeout", "aarch64=60", "--console-cap", "0.5")
    output, run_id = finish(process)
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    log = tmp_path / "consoles" / "aarch64-tcg.log"
    text = log.read_bytes()
    # The serial console carries ~57 KB/s under TCG here: 0.5 MiB is passed well within the 60 s.
    cell = cells_of(tmp_path)["aarch64-tcg"]
    assert cell["checks"]["boot"]["detail"] == "no banner: console flood: the console passed 524288 bytes"
    assert b"bytes of console output dropped here; the console sent" in text
    assert len(text) < 512 * 1024 + 4096
    # A bound against unbounded growth, not a benchmark: the flood is far larger than this.
    assert max(before, peak_kib) < 400 * 1024, f"harness peak RSS {peak_kib} KiB"
    assert_nothing_left(run_id)


# /dev/urandom on the console, as a broken serial driver or a guest catting a binary prints it.
NOISE = 'aarch64=rdinit=/bin/busybox -- sh -c "/bin/busybox mount -t devtmpfs dev /dev; /bin/busybox cat /dev/urandom"'


def _peak_rss_kib(process: subprocess.Popen) -> tuple[str, int, int]:
    """A run's output, exit status and its own peak resident memory (KiB), from its rusage when it is reaped."""
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    return output, process.returncode, usage.ru_maxrss


def test_a_console_flood_of_noise_costs_the_harness_little_memory(tmp_path):
    """12 MiB of noise on the console: the harness's peak stays near the same cell's without it.

    Its log's first 8 MiB read whole as text grew the harness by about 40 MiB per flooded cell (four bytes a
    character once the noise decodes to one astral character); read in pieces, by about 2 MiB.
    """
    cell = ("--arch", "aarch64", "--accel", "tcg", "-k", "boot or console")  # no SSH phase in either run
    quiet_output, quiet_status, quiet_kib = _peak_rss_kib(real_run(tmp_path / "quiet", *cell))
    flood_output, flood_status, flood_kib = _peak_rss_kib(real_run(
        tmp_path / "flood", *cell, "--kernel-args", NOISE, "--console-cap", "12", "--boot-timeout", "aarch64=120"))
    print(f"harness peak RSS: {quiet_kib} KiB without a flood, {flood_kib} KiB with 12 MiB of /dev/urandom")
    assert quiet_status == pytest.ExitCode.OK, quiet_output
    assert flood_status == pytest.ExitCode.TESTS_FAILED, flood_output
    boot = cells_of(tmp_path / "flood")["aarch64-tcg"]["checks"]["boot"]
    assert boot["detail"] == "no banner: console flood: the console passed 12582912 bytes", boot
    assert flood_kib - quiet_kib < 16 * 1024, f"the flood grew the harness by {flood_kib - quiet_kib} KiB"


# ~3.4 MB of text before the usual /init: past virtlogd's 2 MiB rotation of a <log file>.
# 2.3 MB of numbers: past the 2 MiB at which virtlogd rotates a log.
LARGE_CONSOLE = 'x86_64=rdinit=/bin/busybox -- sh -c "/bin/busybox seq 1 300000; exec /init"'


def test_a_guest_that_prints_megabytes_keeps_its_console_verdict_and_its_whole_log(tmp_path):
    # Through libvirt's <log file>, virtlogd rotated the log at 2 MiB: the harness's reader then saw nothing
    # more, the flood cap never counted the rest, and the console check judged only the last piece
    # ("consoles the kernel enabled: none seen"). Read through the console stream, nothing is lost.
    process = real_run(tmp_path, "--arch", "x86_64", "--accel", "tcg", "--kernel-args", LARGE_CONSOLE)
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.OK, output
    cell = cells_of(tmp_path)["x86_64-tcg"]
    assert cell["status"] == "pass", cell
    assert cell["checks"]["console"]["detail"] == "consoles the kernel enabled: ttyS0"
    text = (tmp_path / "consoles" / "x86_64-tcg.log").read_bytes()
    assert len(text) == cell["facts"]["console_bytes"] > 2.2 * 1024 * 1024  # all of it, under the default cap
    assert b"console [ttyS0] enabled" in text and b"\n300000\r\n" in text and b"ARCHMATRIX-BANNER arch=x86_64" in text
    assert b"dropped here" not in text
    assert_nothing_left(run_id)


def test_a_success_pattern_that_backtracks_without_end_fails_its_cell_naming_it_and_the_run_goes_on(tmp_path):
    """A nested repeat against the kernel's echo of its command line, forty a's and a b: Python's re takes hours and
    holds the GIL; in the run's own process it stalled every wait, console and deadline of the run.

    `(a+)+\\x00` rather than `(a+)+$`: a console window can end inside the run of a's, where `$` matches at once;
    NUL never follows them, so every window that holds them backtracks.
    """
    built = ImageCache().get_or_build(ARCHES["aarch64"])
    process = real_run(tmp_path, "--arch", "aarch64,s390x", "--accel", "tcg",
                       "--image", f"aarch64={built.kernel},{built.initrd}", "--success-pattern", "aarch64=(a+)+\\x00",
                       "--kernel-args", "aarch64=x" + "a" * 40 + "b",
                       "-k", "not ssh and not guest_arch and not network")
    began = time.monotonic()
    output, run_id = finish(process, timeout=300)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    cells = cells_of(tmp_path)
    boot = cells["aarch64-tcg"]["checks"]["boot"]
    assert boot["outcome"] == "fail" and boot["detail"].startswith(
        "success pattern '(a+)+\\\\x00' not seen: --success-pattern aarch64=(a+)+\\x00 took longer than 2 s to "
        "search "), boot
    assert cells["s390x-tcg"]["status"] == "pass", cells["s390x-tcg"]
    assert time.monotonic() - began < 120
    assert_nothing_left(run_id)


def test_sigterm_mid_run_destroys_domains_and_leaves_an_incomplete_matrix(tmp_path):
    process, run_id = interrupt_mid_run(tmp_path, signal.SIGTERM)  # as a CI job timeout does
    finish(process)
    assert process.returncode == pytest.ExitCode.INTERRUPTED
    document = load_matrix(tmp_path / "matrix.json")
    assert document["complete"] is False and schema_problems(document) == []
    assert_nothing_left(run_id)


def test_killed_xdist_worker_leaves_no_domain(tmp_path):
    process = real_run(tmp_path, "--arch", "s390x,ppc64le,mipsel,x86_64", "--accel", "tcg", "-n", "2")
    run_id = read_until(process)
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline:
        for name in domains_of(run_id):
            if "-speed-probe-" in name:
                continue  # the run's speed probe, gone in half a second: a cell's guest is what its worker must leave
            xml = subprocess.run(["virsh", "-c", "qemu:///system", "dumpxml", name],
                                 capture_output=True, text=True).stdout
            owner = xml.split('pid="', 1)[1].split('"', 1)[0] if 'pid="' in xml else None
            if owner:
                os.kill(int(owner), signal.SIGKILL)  # the worker dies with its guest running
                killed = name
                break
        time.sleep(0.2)
    output, _ = finish(process)
    assert killed, output
    assert f"destroyed leftover domain {killed} of run {run_id}" in output
    assert schema_problems(load_matrix(tmp_path / "matrix.json")) == []
    assert_nothing_left(run_id)


def start_domain(name: str, tagged_owner: Owner | None, tmp_path: Path):
    """Start a real aarch64 guest, tagged as a harness domain owned by `tagged_owner`, or untagged."""
    import libvirt

    conn = libvirt.open("qemu:///system")
    arch = ARCHES["aarch64"]
    plan = make_plan(arch, "tcg", parse_capabilities(conn.getCapabilities()), None)
    staging = Path(tempfile.mkdtemp(prefix="archmatrix-test-", dir="/var/tmp"))
    staging.chmod(0o755)
    files = StagedFiles(staging).place(ImageCache().get_or_build(arch), "cell", plan.kernel_cmdline)
    spec = domain_spec(plan, files, "deadbeef")
    xml = domain_xml(spec.__class__(**{**spec.__dict__, "name": name, "owner": tagged_owner or Owner("", "", "", "")}))
    if tagged_owner is None:
        xml = xml.split("<metadata>")[0] + xml.split("</metadata>")[1]
    return conn, conn.createXML(xml, 0), staging


def running(conn, name: str) -> bool:
    return name in [domain.name() for domain in conn.listAllDomains()]


def test_leftovers_of_a_crashed_run_are_destroyed_and_other_domains_untouched(tmp_path):
    """Another machine's domain on a shared libvirt host is its own, whatever our pid table says of its owner."""
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid whose process is gone
    suffix = os.urandom(3).hex()
    conn, orphan, staging_a = start_domain(f"archmatrix-deadbeef-orphan-{suffix}",
                                           Owner(str(dead.pid), "1", this_boot(), this_machine()), tmp_path)
    _, foreign, staging_b = start_domain(f"archmatrix-not-ours-{suffix}", None, tmp_path)
    _, elsewhere, staging_c = start_domain(f"archmatrix-deadbeef-machine-b-{suffix}",
                                           Owner(str(dead.pid), "1", "0123456789ab", "0therm4chine"), tmp_path)
    try:
        process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg")
        output, run_id = finish(process)
        assert process.returncode == 0, output
        assert f"destroyed leftover domain archmatrix-deadbeef-orphan-{suffix} of run deadbeef" in output
        assert not running(conn, orphan.name())
        assert running(conn, foreign.name()), "a domain without the harness's tag was touched"
        assert running(conn, elsewhere.name()), "another machine's domain was destroyed"
    finally:
        for domain in (orphan, foreign, elsewhere):
            if running(conn, domain.name()):
                domain.destroy()
        conn.close()
        for staging in (staging_a, staging_b, staging_c):
            subprocess.run(["rm", "-rf", str(staging)], check=True)


@pytest.mark.exclusive_host
def test_libvirtd_dying_mid_boot_errors_that_cell_and_the_run_reconnects(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("restarting libvirtd needs root; run the suite as root (./run test does)")
    process = real_run(tmp_path, "--arch", "ppc64le,aarch64", "--accel", "tcg", "-v")
    run_id = read_until(process)
    deadline = time.monotonic() + 120
    # The ppc64le cell's QEMU (the run's first domain is its half-second speed probe).
    while not any("ppc64le-tcg" in line for line in qemu_processes_of(run_id)) and time.monotonic() < deadline:
        time.sleep(0.1)
    subprocess.run(["pkill", "-x", "libvirtd"], check=True)
    while subprocess.run(["pgrep", "-x", "libvirtd"], capture_output=True).returncode == 0:
        time.sleep(0.1)
    time.sleep(1)
    subprocess.run([ROOT / "tools" / "start-libvirtd"], check=True)  # as ./run starts it
    output, _ = finish(process)
    cells = cells_of(tmp_path)
    assert cells["ppc64le-tcg"]["status"] == "error", output
    assert "was lost while ppc64le-tcg booted (libvirtd died or restarted" in cells["ppc64le-tcg"]["reason"]
    assert cells["aarch64-tcg"]["status"] == "pass", output
    assert_nothing_left(run_id)


def test_two_runs_at_once_share_one_fresh_cache_without_collisions(tmp_path):
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    first = real_run(tmp_path / "a", "--arch", "aarch64", "--accel", "tcg", env=env)
    second = real_run(tmp_path / "b", "--arch", "aarch64", "--accel", "tcg", env=env)
    (out_a, run_a), (out_b, run_b) = finish(first), finish(second)
    assert first.returncode == 0 and second.returncode == 0, out_a + out_b
    assert run_a != run_b
    images = cache / "archmatrix" / "images"
    assert len(list((images / "manifests" / "aarch64").glob("*.json"))) == 1
    assert len(list((images / "objects").iterdir())) == 2  # one kernel, one initrd
    assert list((images / "tmp").iterdir()) == []
    # Each run's guest got its own forwarded SSH port and was reached on it.
    ssh_a, ssh_b = (cells_of(tmp_path / side)["aarch64-tcg"]["facts"]["ssh"] for side in ("a", "b"))
    assert ssh_a["port"] != ssh_b["port"] and not ssh_a["error"] and not ssh_b["error"]
    # Nothing of either run listens any more: not the guests' forwarded ports, not the test file's server.
    for side in ("a", "b"):
        facts = cells_of(tmp_path / side)["aarch64-tcg"]["facts"]
        for port in (facts["ssh"]["port"], facts["network"]["host_port"]):
            with socket.socket() as probe:
                assert probe.connect_ex(("127.0.0.1", port)) != 0, f"127.0.0.1:{port} still listens"
    assert_nothing_left(run_a)
    assert_nothing_left(run_b)


def harness_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archmatrix", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})})


def test_damaged_cache_entry_is_rebuilt_not_booted(tmp_path):
    images = tmp_path / "images"
    built = harness_cli("images", "build", "--arch", "mipsel", "--image-cache", str(images))
    assert built.returncode == 0, built.stderr
    manifest = json.loads(next((images / "manifests" / "mipsel").glob("*.json")).read_text())
    kernel = images / "objects" / manifest["kernel_sha256"]
    kernel.chmod(0o644)
    with open(kernel, "r+b") as stream:
        stream.truncate(kernel.stat().st_size // 2)  # a truncated download, a bad disk
    assert ImageCache(images).lookup(ARCHES["mipsel"], Recipe.load()) is None
    rebuilt = harness_cli("images", "build", "--arch", "mipsel", "--image-cache", str(images))
    assert rebuilt.returncode == 0, rebuilt.stderr
    image = ImageCache(images).lookup(ARCHES["mipsel"], Recipe.load())
    assert image is not None and image.kernel_sha256 == manifest["kernel_sha256"]
    # Not silently: the run says so, and the new manifest keeps why.
    assert f"rebuilt the mipsel image: the cached one was damaged: kernel {manifest['kernel_sha256'][:12]}" \
        in rebuilt.stderr
    assert "missing or not matching its hash" in json.loads(next((images / "manifests" / "mipsel").glob(
        "*.json")).read_text())["rebuilt_because"]


def test_failed_download_gives_one_clear_error_and_no_partial_entry(tmp_path):
    config = tmp_path / "apt.conf"
    config.write_text('Acquire::http::Proxy "http://127.0.0.1:9";\nAcquire::Retries "0";\n')  # nothing listens
    images = tmp_path / "images"
    result = harness_cli("images", "build", "--arch", "s390x", "--image-cache", str(images),
                         env={"APT_CONFIG": str(config)})
    assert result.returncode == 1
    assert result.stderr.startswith("s390x      FAILED  building the s390x image failed: apt-get update failed")
    assert "Traceback" not in result.stderr
    assert list((images / "manifests").rglob("*.json")) == [] and list((images / "objects").iterdir()) == []
    assert list((images / "tmp").iterdir()) == []


def test_full_disk_gives_one_clear_error_and_no_partial_entry(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root; run the suite as root (./run test does)")
    images = tmp_path / "small"
    images.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(images)], check=True)
    try:
        result = harness_cli("images", "build", "--arch", "x86_64", "--image-cache", str(images),
                             "--apt-timeout", "12")
        assert result.returncode == 1, result.stdout
        assert "Traceback" not in result.stderr
        # Seen here: apt either fails on ENOSPC, or stalls and is stopped by the bound.
        assert any(words in result.stderr for words in ("No space left on device", "did not finish within 12 s")), \
            result.stderr
        assert list((images / "manifests").rglob("*.json")) == []
        assert list((images / "tmp").iterdir()) == []
    finally:
        subprocess.run(["umount", str(images)], check=True)


def test_an_index_lost_to_a_full_disk_is_an_error_naming_it_not_a_mirror_mid_sync(tmp_path):
    """Deterministic: real apt, a loopback mirror whose main index cannot fit, a small updates index that does.

    The harness once took the lost main index for a mirror mid-sync and went on to fail for want of a package.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root; run the suite as root (./run test does)")
    write_suite(tmp_path / "mirror", "bookworm", 60000)  # 22 MB
    write_suite(tmp_path / "mirror", "bookworm-updates", 1)
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", str(small)], check=True)
    try:
        with loopback_mirror(tmp_path / "mirror") as url:
            apt = PrivateApt(small / "apt", "amd64", 60, sources=(f"deb [trusted=yes] {url} bookworm main",
                                                                  f"deb [trusted=yes] {url} bookworm-updates main"))
            with pytest.raises(PackageFetchError) as raised:
                apt.update()
        said = str(raised.value)
        assert "bookworm/main amd64 Packages: " in said and "No space left on device" in said, said
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_a_domain_that_outlives_its_test_fails_the_run_and_is_destroyed(tmp_path):
    leaky = tmp_path / "test_leaky.py"
    leaky.write_text(
        "from archmatrix.core.arches import ARCHES\n"
        "from archmatrix.guest.domain import domain_xml\n"
        "from archmatrix.guest.observe import domain_spec\n"
        "from archmatrix.core.plan import make_plan\n\n"
        "def test_forgets_its_domain(archmatrix_run, archmatrix_host):\n"
        "    arch = ARCHES['mipsel']\n"
        "    plan = make_plan(arch, 'tcg', archmatrix_host.capabilities, None)\n"
        "    files = archmatrix_host.site.boot_files.place(archmatrix_run.images.of(arch), 'leak', '')\n"
        "    spec = domain_spec(plan, files, archmatrix_run.run_dir.run_id)\n"
        "    archmatrix_host.connection().createXML(domain_xml(spec), 0)\n"
    )
    process = real_run(tmp_path / "reports", test_path=leaky)
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    assert "1 passed" in output and f"destroyed leftover domain archmatrix-{run_id}-mipsel-tcg" in output
    assert_nothing_left(run_id)


def test_malformed_uri_errors_every_cell_with_libvirts_reason(tmp_path):
    process = real_run(tmp_path, "--arch", "mipsel", "--accel", "tcg", "--libvirt-uri", "qemu:/not/a//uri")
    output, _ = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED
    assert "cannot connect to libvirt at qemu:/not/a//uri (host " in output
    assert "internal error: unexpected qemu URI path" in output
    assert cells_of(tmp_path)["mipsel-tcg"]["status"] == "error"


def test_unreachable_uri_errors_every_cell_and_never_shows_credentials(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg",
                       "--libvirt-uri", "qemu+tcp://alice:s3cret@127.0.0.1:1/system")  # nothing listens on port 1
    output, _ = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED
    assert "cannot connect to libvirt at qemu+tcp://127.0.0.1:1/system (host 127.0.0.1)" in output
    cells = cells_of(tmp_path)
    assert cells["aarch64-tcg"]["status"] == "error"
    for path in [*tmp_path.rglob("*")]:
        if path.is_file():
            assert b"s3cret" not in path.read_bytes() and b"alice" not in path.read_bytes(), path
    assert "s3cret" not in output


def test_machine_of_another_arch_is_refused_before_any_boot(tmp_path):
    process = real_run(tmp_path, "--arch", "aarch64", "--accel", "tcg", "--machine", "aarch64=pseries", "-n", "2")
    output, _ = finish(process)
    assert process.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "--machine aarch64=pseries: /usr/bin/qemu-system-aarch64 has no such machine type; valid:" in output
    assert "virt-7.2" in output and "INTERNALERROR" not in output


def test_a_guest_that_powers_off_before_its_banner_ends_its_wait_at_once(tmp_path):
    # libvirt's lifecycle event (and the console stream's end) says the guest is gone: no timeout, no polling.
    process = real_run(tmp_path, "--arch", "s390x", "--accel", "tcg",
                       "--kernel-args", "s390x=rdinit=/bin/busybox -- poweroff -f")
    output, run_id = finish(process)
    assert process.returncode == pytest.ExitCode.TESTS_FAILED, output
    boot = cells_of(tmp_path)["s390x-tcg"]["checks"]["boot"]
    assert boot["outcome"] == "fail"
    assert boot["detail"].startswith("no banner: guest stopped before the pattern appeared (the ")
    assert cells_of(tmp_path)["s390x-tcg"]["facts"]["login_s"] is None
    assert_nothing_left(run_id)
