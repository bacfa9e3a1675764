"""restore-glibc through real playbook runs on RPM-family roots (support/rpmroots.py: real binaries
packed by rpmbuild, installed by real rpm, laid out as RHEL 6, 8 and 9) broken like incidents 1 to 3.

The proof of each repair is independent of the code under test: the target's own programs run in a
chroot, real rpm's ``rpm -V glibc`` finds no glibc file changed, and glibc's files equal the pristine
root's byte for byte. The repair must never write the target's package database.
"""

from __future__ import annotations

import hashlib
import signal
import subprocess
from pathlib import Path

import pytest

from support import rpmroots
from support.faults import plant_glibc
from support.images import disk_image
from support.playbooks import assert_glibc_repaired, report_of, restore_glibc
from support.roots import chroot, fails_for_glibc, library_listing, mounts_under

# The programs that must run after a repair: the shell and env a chroot needs, and python3.
PROGRAMS = (
    ["/bin/true"],
    ["/bin/ls", "/"],
    ["/bin/sh", "-c", "echo ok"],
    ["/usr/bin/env", "true"],
    ["/usr/bin/python3", "-B", "-c", "import math"],
)


def libdir(layout: str) -> str:
    """Where glibc's files are: /lib64 on RHEL 6, /usr/lib64 (which /lib64 leads to) after usrmove."""
    return "usr/lib64" if rpmroots.LAYOUTS[layout].usrmove else "lib64"


def broken_root(tmp_path: Path, layout: str, faults: tuple[str, ...], where: Path | None = None) -> Path:
    """A copy of the layout's root with ``faults`` planted in order by the drill role's planter."""
    root = rpmroots.root_copy(layout, where or tmp_path / f"{layout}-{'-'.join(faults)}")
    package = rpmroots.package_file(layout)
    for fault in faults:
        extra = {
            "libc_foreign": [rpmroots.foreign_libc()],
            "glibc_deleted_yum_cache": [package],
            "glibc_deleted_dnf_cache": [package],
            "libc_truncated_dnf_cache": [package],
        }.get(fault, [])
        plant_glibc(root, fault, *extra)
    return root


def database_state(root: Path) -> dict[str, str]:
    """Every file of the root's rpm database with its sha256 (none when the database is gone)."""
    top = root / "var/lib/rpm"
    if not top.is_dir():
        return {}
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(top.iterdir())}


def glibc_changes(root: Path, layout: str, scratch: Path) -> str:
    """What real rpm says changed among glibc's files: empty when nothing did. rpm runs on a copy of
    the database (support.rpmroots.rpm_of_copy: it would leave sqlite's -shm and -wal files in the
    target otherwise); a root whose database is gone is checked against the pristine root's.
    --nomtime: a file restored from a package is as new as the restore, unless the repair sets the
    package's time; content, size, mode, owner and link target are what must be rpm's."""
    database = None if (root / "var/lib/rpm").is_dir() else rpmroots.pristine_root(layout) / "var/lib/rpm"
    done = rpmroots.rpm_of_copy(root, "-V", "--nomtime", "glibc", scratch=scratch, database=database)
    return done.stdout + done.stderr + ("" if done.returncode == 0 else f"rpm -V exit {done.returncode}")


def assert_repaired(root: Path, layout: str, tmp_path: Path) -> None:
    for argv in PROGRAMS:
        done = chroot(root, *argv)
        assert done.returncode == 0, (argv, done.stderr)
    assert glibc_changes(root, layout, tmp_path) == ""
    pristine = library_listing(rpmroots.pristine_root(layout), libdir(layout))
    after = library_listing(root, libdir(layout))
    assert {name: after.get(name) for name in pristine} == pristine


# layout, faults planted in order, glibc_restore_source given, the source the repair must take
CASES = [
    ("rhel6", ("libc_renamed",), False, "the root's own file"),
    ("rhel6", ("libc_foreign",), False, "the root's own file"),
    ("rhel6", ("glibc_deleted_yum_cache",), False, "package cache"),
    ("rhel8", ("loader_link_removed",), False, "the root's own file"),
    ("rhel8", ("glibc_deleted_yum_cache",), False, "package cache"),
    ("rhel8", ("libc_truncated_dnf_cache",), False, "package cache"),
    ("rhel8", ("rpmdb_removed", "libc_foreign"), False, "the root's own file"),
    ("rhel9", ("libc_foreign",), True, "package file"),
    ("rhel9", ("glibc_deleted",), True, "package file"),
    ("rhel9", ("glibc_deleted_dnf_cache",), False, "package cache"),
]


@pytest.mark.parametrize(
    ("layout", "faults", "with_package", "source"), CASES, ids=[f"{c[0]}-{'+'.join(c[1])}" for c in CASES]
)
def test_a_broken_rpm_root_is_restored_and_its_programs_run(
    run_playbook, tmp_path, layout, faults, with_package, source
):
    root = broken_root(tmp_path, layout, faults)
    before = chroot(root, "/bin/sh", "-c", "echo ok")
    # A libc cut short kills the program with SIGBUS when the loader maps past its end.
    assert fails_for_glibc(before) or before.returncode == -signal.SIGBUS, before
    database = database_state(root)

    package = rpmroots.package_file(layout) if with_package else None
    restore_glibc(run_playbook, root, tmp_path / "reports", package)

    assert_repaired(root, layout, tmp_path)
    # The database was read, never written (no -shm or -wal left either).
    assert database_state(root) == database
    report = assert_glibc_repaired(tmp_path / "reports", source)
    if database:
        # The package as rpm -qa names it.
        assert report["glibc"]["package"] == f"glibc-2.36-{rpmroots.LAYOUTS[layout].release}.x86_64"
        # The report names the database's backend and the algorithm of the digests checked.
        assert report["glibc"]["database"] == "rpm sqlite /var/lib/rpm/rpmdb.sqlite"
        assert report["glibc"]["digest"] == rpmroots.LAYOUTS[layout].digest
    assert mounts_under(root) == []


def test_a_broken_rpm_root_in_a_disk_image_is_restored(run_playbook, tmp_path):
    root = broken_root(tmp_path, "rhel8", ("libc_truncated_dnf_cache",))
    image = tmp_path / "vm-108-disk-1.raw"
    disk_image(root, image)

    run = run_playbook(
        "playbooks/restore-glibc.yml",
        target_image=str(image),
        lifeline_report_dir=str(tmp_path / "reports"),
    )
    assert run.status == "successful", run.failures()

    # Mounted by hand, read-only, to check the repair from outside the code under test.
    point = tmp_path / "mounted"
    point.mkdir()
    subprocess.run(["mount", "-o", "ro,loop,offset=1048576", str(image), str(point)], check=True, timeout=60)
    try:
        assert_repaired(point, "rhel8", tmp_path)
    finally:
        subprocess.run(["umount", str(point)], check=True, timeout=60)
    assert report_of(tmp_path / "reports", "restore-glibc")["result"] == "repaired"
    losetup = subprocess.run(
        ["losetup", "--list", "--noheadings"], capture_output=True, text=True, check=True
    )
    assert str(image) not in losetup.stdout


def test_without_a_package_a_deleted_glibc_says_what_to_give(run_playbook, tmp_path):
    root = broken_root(tmp_path, "rhel9", ("glibc_deleted",))
    listing = library_listing(root, "usr/lib64")
    run = run_playbook(
        "playbooks/restore-glibc.yml", target_root=str(root), lifeline_report_dir=str(tmp_path / "r")
    )
    assert run.status == "failed"
    assert any(
        "no good copy found for" in m and "glibc_restore_source" in m and "glibc-2.36-1.el9.x86_64" in m
        for m in run.failures()
    ), run.failures()
    assert library_listing(root, "usr/lib64") == listing
