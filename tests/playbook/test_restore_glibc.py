"""restore-glibc through real playbook runs on copies of real Debian roots broken like the incidents.

The proof of each repair is independent of the code under test: the target's own programs run in a
chroot, and the restored files equal the pristine tree's byte for byte.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from support.faults import GLIBC_PLANTER
from support.playbooks import assert_glibc_repaired, report_of, restore_glibc
from support.roots import chroot, fails_for_glibc, library_listing, mounts_under
from support.trees import TREES, deb_of

OTHER = {"bullseye": "bookworm", "bookworm": "bullseye", "trixie": "bullseye"}


def broken_copy(tmp_path: Path, suite: str, fault: str) -> Path:
    """A copy of the suite's tree with ``fault`` planted by the fixture script."""
    root = tmp_path / f"{suite}-{fault}"
    subprocess.run(["cp", "-a", str(TREES / suite), str(root)], check=True)
    extra = {
        "libc_foreign": [str((TREES / OTHER[suite] / "lib/x86_64-linux-gnu/libc.so.6").resolve())],
        "libm_deleted": [str(deb_of(suite, "libc6"))],
    }.get(fault, [])
    subprocess.run(["sh", str(GLIBC_PLANTER), str(root), fault, *extra], check=True, capture_output=True)
    return root


def lib_listing(root: Path) -> dict[str, str]:
    return library_listing(root, "usr/lib/x86_64-linux-gnu")


# suite, fault, needs the package file, the source the repair must take
CASES = [
    ("bullseye", "libc_renamed", False, "the root's own file"),
    ("bookworm", "libc_renamed", False, "renamed-away copy"),
    ("trixie", "loader_link_removed", False, "the root's own file"),
    ("trixie", "lib64_link_removed", False, "the merged /usr layout"),
    ("bookworm", "libm_deleted", False, "package cache"),
    ("bullseye", "libc_foreign", False, "the root's own file"),
    ("trixie", "libc_foreign", True, "package file"),
    ("bookworm", "glibc_deleted", True, "package file"),
]


@pytest.mark.parametrize(
    ("suite", "fault", "with_package", "source"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES]
)
def test_a_broken_root_is_restored_and_its_programs_run(
    run_playbook, tmp_path, suite, fault, with_package, source
):
    root = broken_copy(tmp_path, suite, fault)
    before = chroot(root, "/usr/bin/python3", "-c", "pass")
    assert fails_for_glibc(before), before.stderr

    restore_glibc(run_playbook, root, tmp_path / "reports", deb_of(suite, "libc6") if with_package else None)

    # Independent proof: the target's own programs, and the files equal the pristine tree's.
    for argv in (
        ["/bin/true"],
        ["/bin/ls", "/"],
        ["/bin/sh", "-c", "echo ok"],
        ["/usr/bin/python3", "-c", "import math"],
    ):
        done = chroot(root, *argv)
        assert done.returncode == 0, (argv, done.stderr)
    pristine, after = lib_listing(TREES / suite), lib_listing(root)
    assert {name: after.get(name) for name in pristine} == pristine
    assert_glibc_repaired(tmp_path / "reports", source)
    assert mounts_under(root) == []


@pytest.mark.smoke
def test_check_mode_changes_nothing_and_a_second_run_changes_nothing(run_playbook, tmp_path):
    root = broken_copy(tmp_path, "bookworm", "libc_renamed")
    listing = lib_listing(root)
    run = run_playbook(
        "playbooks/restore-glibc.yml",
        "--check --diff",
        target_root=str(root),
        lifeline_report_dir=str(tmp_path / "r1"),
    )
    assert run.status == "successful", run.failures()
    assert lib_listing(root) == listing
    [planned] = run.results("Diagnose and restore the glibc family")
    assert [a["origin"] for a in planned["actions"]] == ["/usr/lib/x86_64-linux-gnu/libc.so.6.bak"]
    assert "libc.so.6: missing" in planned["diff"]["before"]

    first = run_playbook(
        "playbooks/restore-glibc.yml", target_root=str(root), lifeline_report_dir=str(tmp_path / "r2")
    )
    assert first.status == "successful", first.failures()
    second = run_playbook(
        "playbooks/restore-glibc.yml", target_root=str(root), lifeline_report_dir=str(tmp_path / "r3")
    )
    assert second.status == "successful", second.failures()
    assert second.changed() == []
    report = report_of(tmp_path / "r3", "restore-glibc")
    assert report["result"] == "healthy, nothing to do"
    # Numbers stay numbers on every ansible-core of the range (before 2.19 a bare number rendered as text).
    timed = [step for step in report["steps"] if "seconds" in step]
    assert len(timed) == 3 and all(isinstance(step["seconds"], (int, float)) for step in timed), timed


def test_a_healthy_root_is_left_alone(run_playbook, tmp_path, debian_tree):
    run = run_playbook(
        "playbooks/restore-glibc.yml", target_root=str(debian_tree), lifeline_report_dir=str(tmp_path)
    )
    assert run.status == "successful", run.failures()
    assert run.changed() == []
    report = report_of(tmp_path, "restore-glibc")
    assert report["result"] == "healthy, nothing to do"
    assert report["found"]["audit"]["broken_files"] == 0
    assert report["glibc"]["package"].startswith("libc6 ")


def test_without_a_good_copy_it_says_what_to_give(run_playbook, tmp_path):
    root = broken_copy(tmp_path, "bookworm", "glibc_deleted")
    listing = lib_listing(root)
    run = run_playbook(
        "playbooks/restore-glibc.yml", target_root=str(root), lifeline_report_dir=str(tmp_path / "r")
    )
    assert run.status == "failed"
    [message] = set(run.failures())  # the failing task and the re-raise after the report
    assert "no good copy found for" in message and "glibc_restore_source" in message
    assert "libc6 2.36" in message
    assert lib_listing(root) == listing
    assert report_of(tmp_path / "r", "restore-glibc")["result"].startswith("failed: no good copy found")


def test_a_package_of_another_glibc_is_refused(run_playbook, tmp_path):
    root = broken_copy(tmp_path, "bookworm", "glibc_deleted")
    listing = lib_listing(root)
    run = run_playbook(
        "playbooks/restore-glibc.yml",
        target_root=str(root),
        glibc_restore_source=str(deb_of("trixie", "libc6")),
        lifeline_report_dir=str(tmp_path / "r"),
    )
    assert run.status == "failed"
    assert any("is libc6 2.41" in m and "the target has libc6 2.36" in m for m in run.failures()), (
        run.failures()
    )
    assert lib_listing(root) == listing


def test_a_read_only_target_is_refused_and_left_as_it_was(run_playbook, tmp_path):
    root = broken_copy(tmp_path, "bookworm", "libc_renamed")
    listing = lib_listing(root)
    view = tmp_path / "ro"
    view.mkdir()
    subprocess.run(["mount", "--bind", str(root), str(view)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(view)], check=True)
        run = run_playbook(
            "playbooks/restore-glibc.yml", target_root=str(view), lifeline_report_dir=str(tmp_path / "r")
        )
    finally:
        subprocess.run(["umount", str(view)], check=True)
    assert run.status == "failed"
    assert any("read-only" in m and "remount" in m for m in run.failures()), run.failures()
    assert lib_listing(root) == listing


@pytest.mark.smoke
def test_conflicting_targets_are_refused(run_playbook, tmp_path):
    run = run_playbook("playbooks/restore-glibc.yml", target_root=str(tmp_path), target_image="/x.img")
    assert run.status == "failed"
    assert any("target_root and target_image" in m for m in run.failures())


def test_not_a_linux_root_is_refused(run_playbook, tmp_path):
    (tmp_path / "empty").mkdir()
    run = run_playbook("playbooks/restore-glibc.yml", target_root=str(tmp_path / "empty"))
    assert run.status == "failed"
    assert any("does not look like a Linux root" in m for m in run.failures())


def test_a_root_without_glibc_is_refused(run_playbook, tmp_path):
    root = tmp_path / "static"
    for name in ("etc", "usr/bin", "bin"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "etc/os-release").write_text("ID=tiny\n")
    (root / "etc/fstab").write_text("")
    shutil.copy(shutil.which("true") or "/bin/true", root / "usr/bin/notelf")
    (root / "usr/bin/notelf").write_bytes(b"#!/bin/sh\n")
    run = run_playbook(
        "playbooks/restore-glibc.yml", target_root=str(root), lifeline_report_dir=str(tmp_path / "r")
    )
    assert run.status == "failed"
    assert any("no dynamically linked program found" in m for m in run.failures()), run.failures()
