"""Disk images in every format hypervisors keep, through real playbook runs: repaired in place, read
read-only in check mode, refused while in use, and always detached.

Each image holds a real Debian root broken by the drill role's glibc planter (or its cron planter),
made into a raw disk without mounting anything and converted by qemu-img. The proof never goes through
the code under test: qemu-img converts the image back to a scratch raw file, the kernel mounts its
partition read-only, the root's own programs run in a chroot and its library directory is compared
with the pristine tree's; qemu-img says the format, the snapshots and the backing file are as they
were, and sha256 says which files did not change at all. After every test the kernel's loop devices
and mounts, /proc's processes and the attachment records must show nothing left.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from support import images
from support.faults import plant_glibc
from support.images import STATE_DIR, check, convert, disk_image, info, qemu_img, read_back, sha256
from support.paths import PLANTERS, REPO
from support.playbooks import Run, RunPlaybook, report_of
from support.roots import chroot, fails_for_glibc, library_listing
from support.trees import debian_tree

RESTORE = "playbooks/restore-glibc.yml"
REPAIR_CRONTAB = "playbooks/repair-crontab.yml"
INSPECT = "playbooks/inspect-target.yml"
ATTACH = "Attach the broken system and find its root"
DETACH = "Detach the broken system, newest step first"
LIBDIR = "usr/lib/x86_64-linux-gnu"
# The root's own programs that must run after a repair.
PROGRAMS = (
    ["/bin/true"],
    ["/bin/ls", "/"],
    ["/bin/sh", "-c", "echo ok"],
    ["/usr/bin/python3", "-B", "-c", "import math"],
)
# A process holding a file open for writing, the way a running guest's qemu holds its disk.
HOLD_OPEN = "import sys, time\nf = open(sys.argv[1], 'r+b')\nprint('holding', flush=True)\ntime.sleep(900)\n"
# How long a playbook run may take to attach an image before the kill test gives up.
ATTACH_WAIT = 180


@pytest.fixture(autouse=True)
def nothing_left_attached(tmp_path):
    """After every test: no loop device backed by the test's images or an export file, no
    qemu-storage-daemon, no FUSE mount, no mount below the test's directory, no attachment record or
    export file that was not there before. Whatever a failing test left is undone by force first, so
    one failure does not spill into the next test."""
    before = images.host_state()
    yield
    leftovers = images.left_behind(before, images.host_state(), tmp_path)
    if leftovers:
        trouble = images.clean_up(leftovers)
        pytest.fail(
            f"left attached after the test: {leftovers}"
            + (f"; forcing it away failed too: {trouble}" if trouble else "")
        )


BrokenRaw = Callable[..., Path]


@pytest.fixture(scope="module")
def broken_raw(tmp_path_factory) -> BrokenRaw:
    """``broken_raw(suite, *faults)``: a raw disk image of the suite's tree with the faults planted
    (glibc.sh's, or cron.sh's for crontab_* faults), made once per module. Tests convert or copy it;
    it is never attached itself."""
    made: dict[tuple[str, ...], Path] = {}

    def make(suite: str, *faults: str) -> Path:
        key = (suite, *faults)
        if key not in made:
            work = tmp_path_factory.mktemp("-".join(key))
            root = work / "root"
            subprocess.run(["cp", "-a", str(debian_tree(suite)), str(root)], check=True, timeout=300)
            cron_faults = [f for f in faults if f.startswith("crontab_")]
            for fault in faults:
                if fault not in cron_faults:
                    plant_glibc(root, fault)
            if cron_faults:
                done = subprocess.run(
                    ["sh", str(PLANTERS / "cron.sh"), str(root), *cron_faults],
                    capture_output=True,
                    text=True,
                    timeout=60,
                    env={**os.environ, "CRON_FAULT_RECORD": str(work / "cron.record")},
                )
                assert done.returncode == 0, done.stderr
            if len(cron_faults) < len(faults):
                broken = chroot(root, "/bin/ls", "/")
                assert fails_for_glibc(broken), broken
            disk_image(root, work / "disk.raw")
            shutil.rmtree(root)
            made[key] = work / "disk.raw"
        return made[key]

    return make


def copy_of(raw: Path, target: Path) -> Path:
    subprocess.run(["cp", "--sparse=always", str(raw), str(target)], check=True, timeout=300)
    return target


def run_on(
    run_playbook: RunPlaybook,
    tmp_path: Path,
    image: Path,
    reports: str,
    playbook: str = RESTORE,
    cmdline: str = "",
    **extra,
) -> Run:
    """``playbook`` on ``image``, mounted below the test's own directory, its report in ``reports``."""
    return run_playbook(
        playbook,
        cmdline,
        target_image=str(image),
        rescue_mount_point=str(tmp_path / "mnt"),
        lifeline_report_dir=str(tmp_path / reports),
        **extra,
    )


def attached_image(run: Run) -> dict:
    """What rescue_attach said about the image (its result, also when it failed)."""
    [attached] = run.results(ATTACH)
    assert "image" in attached, attached
    return attached["image"]


def assert_repaired(root: Path, suite: str) -> None:
    """The root's own programs run, and its library directory holds the pristine tree's files."""
    for argv in PROGRAMS:
        done = chroot(root, *argv)
        assert done.returncode == 0, (argv, done.stderr)
    pristine, after = library_listing(debian_tree(suite), LIBDIR), library_listing(root, LIBDIR)
    assert {name: after.get(name) for name in pristine} == pristine


def assert_still_broken(root: Path) -> None:
    broken = chroot(root, "/bin/ls", "/")
    assert fails_for_glibc(broken), broken


# suite, fault, format: every format qemu-img writes besides qcow2 (below, with a snapshot and with a
# backing file) once, every suite at least once.
FORMATS = [
    ("bullseye", "libc_renamed", "vmdk"),
    ("bullseye", "libc_renamed", "vpc"),  # a fixed VHD (Azure's): raw data, its only header last
    ("bookworm", "libc_renamed", "vhdx"),
    ("trixie", "loader_link_removed", "vdi"),
]


@pytest.mark.parametrize(("suite", "fault", "fmt"), FORMATS, ids=[f"{c[2]}-{c[0]}-{c[1]}" for c in FORMATS])
def test_an_image_is_repaired_in_place_and_keeps_its_format(
    run_playbook, tmp_path, broken_raw, suite, fault, fmt
):
    fixed = ("subformat=fixed",) if fmt == "vpc" else ()
    image = convert(broken_raw(suite, fault), tmp_path / f"vm-disk-0.{fmt}", fmt, "raw", *fixed)
    # Told the format: qemu's own probe takes a fixed VHD for raw.
    size = info(image, fmt)["virtual-size"]

    run = run_on(run_playbook, tmp_path, image, "reports")
    assert run.status == "successful", run.failures()

    described = attached_image(run)
    assert (described["path"], described["format"], described["detected_by"]) == (str(image), fmt, "header")
    assert described["exported"] is True
    assert report_of(tmp_path / "reports", "restore-glibc")["result"] == "repaired"
    # Independent proof: qemu-img still reads the same format and size, finds the metadata consistent,
    # and the root it reads back runs its own programs.
    after = info(image, fmt)
    assert (after["format"], after["virtual-size"]) == (fmt, size)
    if fixed:  # still a fixed VHD: the data, then its 512-byte footer
        assert image.stat().st_size == size + 512
    if fmt in images.CHECKABLE:
        checked = check(image)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    with read_back(image, tmp_path / "scratch", "-f", fmt) as root:
        assert_repaired(root, suite)


def test_a_qcow2_image_with_an_internal_snapshot_is_repaired_and_the_snapshot_kept(
    run_playbook, tmp_path, broken_raw
):
    image = convert(broken_raw("bookworm", "libc_renamed"), tmp_path / "vm-108-disk-0.qcow2", "qcow2")
    qemu_img("snapshot", "-c", "before-upgrade", image)
    snapshots = info(image)["snapshots"]

    run = run_on(run_playbook, tmp_path, image, "reports")
    assert run.status == "successful", run.failures()

    described = attached_image(run)
    assert (described["format"], described["detected_by"], described["exported"]) == ("qcow2", "header", True)
    assert "before-upgrade" in json.dumps(described["snapshots"])
    after = info(image)
    assert after["format"] == "qcow2"
    assert after["snapshots"] == snapshots
    checked = check(image)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    with read_back(image, tmp_path / "scratch", "-f", "qcow2") as root:
        assert_repaired(root, "bookworm")
    # The repair went into the image's active state only: the snapshot still holds the broken root.
    snapshot = ("-f", "qcow2", "-l", "snapshot.name=before-upgrade")
    with read_back(image, tmp_path / "scratch-snapshot", *snapshot) as root:
        assert_still_broken(root)


def test_a_qcow2_overlay_is_repaired_and_its_backing_file_never_written(run_playbook, tmp_path, broken_raw):
    base = convert(broken_raw("trixie", "loader_link_removed"), tmp_path / "base.qcow2", "qcow2")
    overlay = tmp_path / "vm-disk-0.qcow2"
    qemu_img("create", "-f", "qcow2", "-b", base, "-F", "qcow2", overlay)
    base_digest = sha256(base)

    # The backing file is shared with the overlay beside it: writing into it is refused, naming it.
    refused = run_on(run_playbook, tmp_path, base, "reports-base")
    assert refused.status == "failed"
    assert any(str(overlay) in m for m in refused.failures()), refused.failures()
    assert sha256(base) == base_digest

    run = run_on(run_playbook, tmp_path, overlay, "reports")
    assert run.status == "successful", run.failures()

    described = attached_image(run)
    assert (described["format"], described["detected_by"], described["exported"]) == ("qcow2", "header", True)
    assert str(base) in json.dumps(described["backing_chain"])
    assert sha256(base) == base_digest
    after = info(overlay)
    assert (after["format"], after["backing-filename"]) == ("qcow2", str(base))
    for image in (overlay, base):
        checked = check(image)
        assert checked.returncode == 0, (image, checked.stdout + checked.stderr)
    with read_back(overlay, tmp_path / "scratch", "-f", "qcow2") as root:
        assert_repaired(root, "trixie")
    with read_back(base, tmp_path / "scratch-base", "-f", "qcow2") as root:
        assert_still_broken(root)


def qcow2_header(scratch: Path) -> bytes:
    """The header qemu-img writes for a new qcow2 image, up to its header_length (no extensions)."""
    made = scratch / "header.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", made, f"{images.DISK_MIB}M")
    data = made.read_bytes()
    return data[: int.from_bytes(data[100:104], "big")]


def test_a_raw_image_starting_with_a_qcow2_header_is_read_by_its_header_unless_told_raw(
    run_playbook, tmp_path, broken_raw
):
    # A guest can write anything into its raw disk, a qcow2 header too: the first bytes of this raw
    # disk are one, its partition table (from byte 446) and filesystem are intact.
    image = copy_of(broken_raw("bookworm", "libc_renamed"), tmp_path / "vm-disk-0.raw")
    header = qcow2_header(tmp_path)
    with open(image, "r+b") as handle:
        handle.write(header)
    assert info(image)["format"] == "qcow2"  # what qemu takes it for
    with read_back(image, tmp_path / "scratch", "-f", "raw") as root:
        assert (root / "etc/os-release").is_file()  # what it holds as a raw disk
    digest = sha256(image)

    by_header = run_on(run_playbook, tmp_path, image, "r1", INSPECT, target_readonly=True)
    [attached] = by_header.results(ATTACH)
    # The image as rescue_attach saw it, also when attaching failed.
    assert (attached["image"]["format"], attached["image"]["detected_by"]) == ("qcow2", "header")
    assert f"{image} is qcow2 (by its header)" in attached["plan"], attached
    # Any error names the user's image, never the file its export is mounted on.
    assert "/run/lifeline/exports/" not in attached.get("msg", ""), attached["msg"]
    # Read as the (empty) qcow2 disk its header describes, not silently as the raw root behind it.
    assert attached.get("os_release", {}).get("VERSION_CODENAME") != "bookworm", attached

    forced = run_on(
        run_playbook, tmp_path, image, "r2", INSPECT, target_readonly=True, target_image_format="raw"
    )
    assert forced.status == "successful", forced.failures()
    described = attached_image(forced)
    assert (described["format"], described["detected_by"]) == ("raw", "target_image_format"), described
    assert described["exported"] is False
    [attached] = forced.results(ATTACH)
    assert attached["os_release"]["VERSION_CODENAME"] == "bookworm"
    assert sha256(image) == digest


def test_check_mode_on_a_qcow2_image_plans_the_whole_repair_and_changes_no_byte(
    run_playbook, tmp_path, broken_raw
):
    image = convert(broken_raw("bookworm", "libc_renamed"), tmp_path / "vm-disk-0.qcow2", "qcow2")
    digest = sha256(image)

    run = run_on(run_playbook, tmp_path, image, "reports", cmdline="--check --diff")
    assert run.status == "successful", run.failures()

    report = report_of(tmp_path / "reports", "restore-glibc")
    assert report["result"] == "planned (check mode)"
    assert [a["origin"] for a in report["actions"]] == [f"/{LIBDIR}/libc.so.6.bak"]
    assert report["found"]["audit"]["broken_files"] > 0
    [planned] = run.results("Diagnose and restore the glibc family")
    assert "libc.so.6: missing" in planned["diff"]["before"]
    assert sha256(image) == digest
    with read_back(image, tmp_path / "scratch", "-f", "qcow2") as root:
        assert_still_broken(root)


def test_check_mode_on_a_raw_image_plans_the_crontab_repair_and_changes_no_byte(
    run_playbook, tmp_path, broken_raw
):
    image = copy_of(broken_raw("trixie", "crontab_nul_blocks", "crontab_bad_minute"), tmp_path / "vm.raw")
    digest = sha256(image)

    run = run_on(run_playbook, tmp_path, image, "reports", REPAIR_CRONTAB, cmdline="--check --diff")
    assert run.status == "successful", run.failures()

    described = attached_image(run)
    assert (described["format"], described["exported"]) == ("raw", False)
    report = report_of(tmp_path / "reports", "repair-crontab")
    assert report["result"] == "planned (check mode)"
    assert "/etc/crontab" in {f["path"] for f in report["actions"]["crontabs"]}
    [planned] = run.results("Repair the crontabs, keeping every valid line")
    assert planned["changed"] is True and planned["diff"]
    assert sha256(image) == digest
    with read_back(image, tmp_path / "scratch", "-f", "raw") as root:
        assert b"\0" in (root / "etc/crontab").read_bytes()


def test_check_mode_on_a_device_plans_the_whole_repair_and_changes_no_byte(
    run_playbook, tmp_path, broken_raw
):
    """A disk attached to a rescue instance, looked at through a read-only loop device of its own."""
    image = copy_of(broken_raw("bullseye", "libc_renamed"), tmp_path / "attached-disk.raw")
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    try:
        digest = sha256(Path(device))
        run = run_playbook(
            RESTORE,
            "--check --diff",
            target_device=device,
            rescue_mount_point=str(tmp_path / "mnt"),
            lifeline_report_dir=str(tmp_path / "reports"),
        )
        assert run.status == "successful", run.failures()
        [attached] = run.results(ATTACH)
        assert f"attached {device} to " in " ".join(attached["plan"]), attached["plan"]
        report = report_of(tmp_path / "reports", "restore-glibc")
        assert report["result"] == "planned (check mode)"
        assert [(a["action"], a["path"]) for a in report["actions"]] == [
            ("relink", "/lib/x86_64-linux-gnu/libc.so.6")  # bullseye: the link to libc-2.31.so
        ], report["actions"]
        assert sha256(Path(device)) == digest
    finally:
        subprocess.run(["losetup", "--detach", device], check=True, timeout=60)
    assert sha256(image) == digest


def test_target_readonly_without_check_mode_is_refused_by_the_repairs(run_playbook, tmp_path, broken_raw):
    image = copy_of(broken_raw("bookworm", "libc_renamed"), tmp_path / "vm.raw")
    digest = sha256(image)
    for number, playbook in enumerate((RESTORE, REPAIR_CRONTAB)):
        run = run_on(run_playbook, tmp_path, image, f"r{number}", playbook, target_readonly=True)
        assert run.status == "failed", playbook
        assert any("target_readonly" in m and "check" in m for m in run.failures()), run.failures()
    assert sha256(image) == digest


def test_an_image_open_for_writing_is_refused_and_only_inspected_read_only(
    run_playbook, tmp_path, broken_raw
):
    image = convert(broken_raw("bookworm", "libc_renamed"), tmp_path / "vm-disk-0.qcow2", "qcow2")
    digest = sha256(image)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, str(image)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        program = Path(f"/proc/{holder.pid}/comm").read_text().strip()

        refused = run_on(run_playbook, tmp_path, image, "r1")
        assert refused.status == "failed"
        assert any(
            f"pid {holder.pid} ({program})" in m and "open for writing" in m for m in refused.failures()
        ), refused.failures()

        inspected = run_on(
            run_playbook, tmp_path, image, "r2", cmdline="--check --diff", target_readonly=True
        )
        assert inspected.status == "successful", inspected.failures()
        report = report_of(tmp_path / "r2", "restore-glibc")
        assert report["result"] == "planned (check mode)"
        assert [a["origin"] for a in report["actions"]] == [f"/{LIBDIR}/libc.so.6.bak"]
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert sha256(image) == digest


def test_a_failure_after_the_attach_leaves_nothing_attached(run_playbook, tmp_path, broken_raw):
    image = convert(broken_raw("bookworm", "glibc_deleted"), tmp_path / "vm-disk-0.qcow2", "qcow2")

    run = run_on(run_playbook, tmp_path, image, "reports", glibc_restore_source=str(tmp_path / "no-such.deb"))
    assert run.status == "failed"

    # The attach itself succeeded (through an export); the repair after it failed; the detach ran.
    [attached] = run.results(ATTACH)
    assert not attached.get("failed"), attached
    assert attached["image"]["exported"] is True
    [detached] = run.results(DETACH)
    assert detached["undone"] and not detached["left"], detached
    assert report_of(tmp_path / "reports", "restore-glibc")["result"].startswith("failed")
    # Nothing left attached: the autouse fixture checks the kernel and /proc.


def wait_for_attachment(point: Path, playbook: subprocess.Popen, log: Path) -> Path:
    """The attachment record of ``point`` once it holds the root's mount; fails when the run ends or
    ATTACH_WAIT seconds pass first."""
    deadline = time.monotonic() + ATTACH_WAIT
    while time.monotonic() < deadline:
        for path in STATE_DIR.glob("*.json"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue  # another run's record, or this one being replaced
            if record.get("mount_point") == str(point) and any(
                step.get("action") == "mount" and step.get("target") == str(point)
                for step in record.get("steps", [])
            ):
                return path
        if playbook.poll() is not None:
            pytest.fail(
                f"the run ended (exit {playbook.returncode}) before it attached:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.05)
    pytest.fail(f"no attachment at {point} recorded within {ATTACH_WAIT} s:\n{log.read_text()[-3000:]}")


def test_a_run_killed_after_the_attach_is_named_by_the_next_one_and_undone_on_request(
    run_playbook, tmp_path, broken_raw
):
    image = convert(broken_raw("bookworm", "libc_renamed"), tmp_path / "vm-disk-0.qcow2", "qcow2")
    point = (tmp_path / "mnt").resolve()
    log = tmp_path / "killed.log"
    extravars = {
        "target_image": str(image),
        "rescue_mount_point": str(point),
        "lifeline_report_dir": str(tmp_path / "r0"),
    }
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    with open(log, "w") as output:
        playbook = subprocess.Popen(
            [str(Path(sys.executable).parent / "ansible-playbook"), RESTORE, "-e", json.dumps(extravars)],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        record = wait_for_attachment(point, playbook, log)
    finally:
        os.killpg(playbook.pid, signal.SIGKILL)
        playbook.wait(timeout=60)
    assert record.is_file()  # the killed run's record is left for the next one

    again = run_on(run_playbook, tmp_path, image, "r1")
    assert again.status == "failed"
    assert any("rescue_mount_undo_earlier" in m and str(point) in m for m in again.failures()), (
        again.failures()
    )

    undone = run_on(run_playbook, tmp_path, image, "r2", rescue_mount_undo_earlier=True)
    assert undone.status == "successful", undone.failures()
    assert not record.exists()
    assert report_of(tmp_path / "r2", "restore-glibc")["result"] == "repaired"
    with read_back(image, tmp_path / "scratch", "-f", "qcow2") as root:
        assert_repaired(root, "bookworm")
