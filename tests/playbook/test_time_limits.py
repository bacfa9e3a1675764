"""A program lifeline runs on a target that never ends: the run stops at the time limit, names the
program and the limit, leaves no process of it behind and detaches the target as always."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from support.faults import plant_glibc
from support.images import disk_image, host_state, left_behind
from support.playbooks import report_of
from support.trees import TREES

LIMIT = 5
# What a run takes beyond the limit here: attaching the image, two audits, the repair, detaching.
MARGIN = 120
# The stand-in's own end, far beyond LIMIT + MARGIN: a run without a time limit waits for it.
HANG = 3 * MARGIN


def processes_rooted_under(top: Path) -> dict[int, str]:
    """{pid: command line} of every process whose root directory (a chroot) lies under ``top``, read
    from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            root = os.readlink(f"/proc/{entry}/root")
            argv = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # ended while we looked, or not ours to read
        if root.startswith(f"{top}/"):
            found[int(entry)] = argv.replace(b"\0", b" ").decode("utf-8", "replace")
    return found


def test_a_hanging_ldconfig_is_killed_at_the_limit_and_the_image_detached(run_playbook, tmp_path):
    # Incident: an ld.so.conf that includes itself, and the target's ldconfig never ends. The
    # stand-in ldconfig is a script of the target's own shell that starts a child in the background
    # too; both must be gone when the run ends.
    root = tmp_path / "bookworm"
    subprocess.run(["cp", "-a", str(TREES / "bookworm"), str(root)], check=True, timeout=600)
    plant_glibc(root, "libc_renamed")  # a repair to do, so ldconfig runs after it
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf\ninclude /etc/ld.so.conf.d/*.conf\n")
    ldconfig = root / "usr/sbin/ldconfig"
    ldconfig.unlink()
    ldconfig.write_text(f"#!/bin/sh\nsleep {HANG} &\nexec sleep {HANG}\n")
    ldconfig.chmod(0o755)
    image = tmp_path / "vm-108-disk-1.raw"
    disk_image(root, image)
    mount_point = tmp_path / "mnt"
    before = host_state()

    started = time.monotonic()
    run = run_playbook(
        "playbooks/restore-glibc.yml",
        target_image=str(image),
        rescue_mount_point=str(mount_point),
        lifeline_command_timeout=LIMIT,
        lifeline_report_dir=str(tmp_path / "reports"),
    )
    took = time.monotonic() - started

    assert run.status == "failed", run.failures()
    assert took < LIMIT + MARGIN, f"the run took {took:.0f} s with a time limit of {LIMIT} s"
    [message] = set(run.failures())  # the failing task and the re-raise after the report
    assert f"/sbin/ldconfig was still running after {LIMIT} seconds (the time limit" in message, message
    assert "raise lifeline_command_timeout" in message, message
    assert processes_rooted_under(tmp_path) == {}, "a process of the hung ldconfig survived"
    assert left_behind(before, host_state(), tmp_path) == {}
    report = report_of(tmp_path / "reports", "restore-glibc")
    assert report["result"].startswith("failed: The target's /sbin/ldconfig was still running"), report
    assert report["verification"]["loader_cache"] == (
        "not rebuilt: the target's ldconfig was killed at the time limit"
    )
