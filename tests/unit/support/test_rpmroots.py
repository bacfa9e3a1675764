"""The RPM-family roots the tests are proven on: real rpm says each is what it claims to be (its
packages, glibc's files unchanged, who owns libc.so.6), the root's own programs run in a chroot, and
the glibc planter breaks each layout the way the incidents broke RHEL and CentOS hosts."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support import rpmroots
from support.faults import GLIBC_PLANTER, plant_glibc
from support.roots import chroot

LAYOUTS = tuple(rpmroots.LAYOUTS)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_real_rpm_sees_every_package_and_glibc_unchanged(layout, tmp_path):
    root = rpmroots.pristine_root(layout)
    release = rpmroots.LAYOUTS[layout].release
    listed = rpmroots.rpm_of_copy(
        root, "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n", scratch=tmp_path
    )
    assert listed.returncode == 0, listed.stderr
    names = set(listed.stdout.split())
    for package in ("filesystem", "setup", "bash", "coreutils", "python3"):
        assert any(n.startswith(f"{package}-") and n.endswith(f"-{release}.x86_64") for n in names), names
    assert f"glibc-2.36-{release}.x86_64" in names
    verified = rpmroots.rpm_of_copy(root, "-V", "glibc", "bash", "coreutils", scratch=tmp_path)
    assert (verified.returncode, verified.stdout, verified.stderr) == (0, "", "")
    for path in ("/lib64/libc.so.6", "/lib64/ld-linux-x86-64.so.2", "/usr/lib64/libc.so.6"):
        owner = rpmroots.rpm_of_copy(root, "-qf", "--qf", "%{NAME}\n", path, scratch=tmp_path)
        assert owner.stdout == "glibc\n", (path, owner.stdout, owner.stderr)
    # Reading never left sqlite's side files in the root.
    assert sorted(p.name for p in (root / "var/lib/rpm").iterdir()) == [".rpm.lock", "rpmdb.sqlite"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_roots_own_programs_run(layout):
    root = rpmroots.pristine_root(layout)
    assert chroot(root, "/bin/sh", "-c", "echo ok").stdout == "ok\n"
    assert chroot(root, "/usr/bin/env", "true").returncode == 0
    assert chroot(root, "/bin/ls", "/").returncode == 0
    done = chroot(root, "/usr/bin/python3", "-B", "-c", "import math, ssl; print(math.pi)")
    assert done.stdout.startswith("3.14"), done.stderr


def link_or_file(path: Path) -> str:
    return f"-> {os.readlink(path)}" if path.is_symlink() else "dir" if path.is_dir() else "file"


@pytest.mark.parametrize(
    ("layout", "lib64", "libc", "loader", "digest_length", "os_release"),
    [
        ("rhel6", "dir", "-> libc-2.36.so", "-> ld-2.36.so", 32, False),
        ("rhel8", "-> usr/lib64", "-> libc-2.36.so", "-> ld-2.36.so", 64, True),
        ("rhel9", "-> usr/lib64", "file", "file", 64, True),
    ],
)
def test_each_layout_is_laid_out_as_its_release(
    layout, lib64, libc, loader, digest_length, os_release, tmp_path
):
    root = rpmroots.pristine_root(layout)
    assert link_or_file(root / "lib64") == lib64
    assert link_or_file(root / "bin") == ("dir" if layout == "rhel6" else "-> usr/bin")
    assert link_or_file(root / "lib64/libc.so.6") == libc
    assert link_or_file(root / "lib64/ld-linux-x86-64.so.2") == loader
    assert (root / "etc/os-release").exists() == os_release
    assert (root / "etc/redhat-release").is_file()
    digests = rpmroots.rpm_of_copy(
        root, "-q", "--qf", "[%{FILENAMES} %{FILEDIGESTS}\n]", "glibc", scratch=tmp_path
    ).stdout
    libc_file = "/lib64/libc.so.6" if libc == "file" else "/lib64/libc-2.36.so"
    [digest] = [line.split()[1] for line in digests.splitlines() if line.split()[0] == libc_file]
    assert len(digest) == digest_length


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_glibc_package_is_what_rpm_installed(layout, tmp_path):
    package = rpmroots.package_file(layout)
    release = rpmroots.LAYOUTS[layout].release
    nevra = subprocess.run(
        ["rpm", "-qp", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}", str(package)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert nevra == f"glibc-2.36-{release}.x86_64"
    listing = subprocess.run(
        f"rpm2cpio {package} | cpio -t --quiet", shell=True, capture_output=True, text=True, timeout=60
    ).stdout.split()
    assert "./lib64/libc.so.6" in listing and "./sbin/ldconfig" in listing


def plant(root: Path, layout: str, fault: str) -> None:
    extra = {
        "libc_foreign": [rpmroots.foreign_libc()],
        "libm_deleted": [rpmroots.package_file(layout)],
        "glibc_deleted_yum_cache": [rpmroots.package_file(layout)],
        "glibc_deleted_dnf_cache": [rpmroots.package_file(layout)],
        "libc_truncated_dnf_cache": [rpmroots.package_file(layout)],
    }.get(fault, [])
    plant_glibc(root, fault, *extra)


# layout, fault, what the planter must have left (path inside the root: link text, size or None)
FAULTS = [
    ("rhel6", "libc_renamed", {"lib64/libc.so.6": None, "lib64/libc.so.6.bak": "-> libc-2.36.so"}),
    ("rhel6", "libc_foreign", {"lib64/libc.so.6": "-> /opt/glibc-2.31/lib/libc.so.6"}),
    ("rhel8", "loader_link_removed", {"lib64/ld-linux-x86-64.so.2": None, "lib64/ld-2.36.so": "file"}),
    ("rhel9", "libc_foreign", {"lib64/libc.so.6": "-> /opt/glibc-2.31/lib/libc.so.6"}),
    ("rhel8", "lib64_link_removed", {"lib64": None}),
    ("rhel8", "libm_deleted", {"lib64/libm.so.6": None, "lib64/libm-2.36.so": None}),
    (
        "rhel6",
        "glibc_deleted_yum_cache",
        {
            "lib64/libc-2.36.so": None,
            "var/cache/yum/x86_64/6/base/packages/glibc-2.36-1.el6.x86_64.rpm": "file",
        },
    ),
    (
        "rhel8",
        "glibc_deleted_yum_cache",
        {"lib64/libc.so.6": None, "var/cache/yum/x86_64/8/base/packages/glibc-2.36-1.el8.x86_64.rpm": "file"},
    ),
    ("rhel9", "glibc_deleted", {"lib64/libc.so.6": None, "lib64/librt.so.1": None}),
    ("rhel9", "glibc_deleted_dnf_cache", {"lib64/libc.so.6": None}),
    ("rhel8", "libc_truncated_dnf_cache", {"lib64/libc-2.36.so": 65536}),
    ("rhel9", "libc_truncated_dnf_cache", {"lib64/libc.so.6": 65536}),
]


def state(path: Path) -> object:
    if not os.path.lexists(path):
        return None
    if path.is_symlink():
        return f"-> {os.readlink(path)}"
    return path.stat().st_size if path.stat().st_size == 65536 else "file"


@pytest.mark.parametrize(("layout", "fault", "left"), FAULTS, ids=[f"{f[0]}-{f[1]}" for f in FAULTS])
def test_the_planter_breaks_rpm_layouts_like_the_incidents(layout, fault, left, tmp_path):
    root = rpmroots.root_copy(layout, tmp_path / "root")
    plant(root, layout, fault)
    assert {path: state(root / path) for path in left} == left
    if fault.endswith("dnf_cache") or fault == "libm_deleted":
        [cached] = (root / "var/cache/dnf").glob("baseos-*/packages/glibc-2.36-*.x86_64.rpm")
        assert cached.read_bytes() == rpmroots.package_file(layout).read_bytes()
    # bash needs no libm; python3 does.
    argv = (
        ["/usr/bin/python3", "-B", "-c", "print('ok')"]
        if fault == "libm_deleted"
        else ["/bin/sh", "-c", "echo ok"]
    )
    broken = chroot(root, *argv)
    assert broken.returncode != 0 and broken.stdout == "", broken


def test_the_database_can_be_removed_before_another_fault(tmp_path):
    root = rpmroots.root_copy("rhel8", tmp_path / "root")
    plant(root, "rhel8", "rpmdb_removed")
    assert not (root / "var/lib/rpm").exists()
    assert chroot(root, "/bin/sh", "-c", "echo ok").stdout == "ok\n"
    plant(root, "rhel8", "libc_foreign")
    assert chroot(root, "/bin/sh", "-c", "echo ok").returncode != 0


def test_rpmdb_removed_refuses_a_root_without_a_database(tmp_path):
    root = rpmroots.root_copy("rhel9", tmp_path / "root")
    plant(root, "rhel9", "rpmdb_removed")
    again = subprocess.run(
        ["sh", str(GLIBC_PLANTER), str(root), "rpmdb_removed"], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 2 and "has no rpm database" in again.stderr, again


@pytest.mark.parametrize(
    "fault", ["glibc_deleted_yum_cache", "glibc_deleted_dnf_cache", "libc_truncated_dnf_cache"]
)
def test_cache_faults_refuse_anything_but_an_rpm(fault, tmp_path):
    root = rpmroots.root_copy("rhel9", tmp_path / "root")
    done = subprocess.run(
        ["sh", str(GLIBC_PLANTER), str(root), fault, str(root / "etc/hosts")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "needs the root's glibc .rpm" in done.stderr
    assert chroot(root, "/bin/sh", "-c", "echo ok").stdout == "ok\n"


def test_two_workers_build_once_under_the_lock(tmp_path, monkeypatch):
    builds = []

    def slow_build(layout, tree, into):
        builds.append(layout.name)
        time.sleep(0.5)
        (into / "root").mkdir()

    monkeypatch.setattr(rpmroots, "CACHE", tmp_path)
    monkeypatch.setattr(rpmroots, "build_layout", slow_build)
    # Builds of other recipes: one unused for 8 days is removed, one used an hour ago is kept.
    stale, recent = tmp_path / "rpmroots/0000stale", tmp_path / "rpmroots/0000recent"
    for path, age in ((stale, 8 * 24 * 3600), (recent, 3600)):
        (path / "rhel8/root").mkdir(parents=True)
        os.utime(path, (time.time() - age, time.time() - age))
    found = []
    workers = [threading.Thread(target=lambda: found.append(rpmroots.cached("rhel8"))) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert builds == ["rhel8"]
    assert found[0] == found[1] and (found[0] / "root").is_dir()
    assert [p.name for p in found[0].parent.iterdir()] == ["rhel8"]
    assert not stale.exists() and recent.is_dir()


def test_a_changed_recipe_is_a_new_stamp(monkeypatch, tmp_path):
    tree = tmp_path / "tree"
    (tree / "var/lib/dpkg").mkdir(parents=True)
    (tree / "var/lib/dpkg/status").write_text("Package: libc6\nStatus: install ok\nVersion: 2.36-9\n\n")
    first = rpmroots.stamp(tree)
    (tree / "var/lib/dpkg/status").write_text("Package: libc6\nVersion: 2.41-12\n\n")
    assert rpmroots.glibc_version(tree) == "2.41"
    assert rpmroots.stamp(tree) != first
