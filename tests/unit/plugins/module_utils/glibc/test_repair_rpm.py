"""glibc diagnosis and repair on RPM roots real rpm installed (support/rpmroots.py), for what the
playbook lane does not run: every package cache of the RPM family, the database where RHEL 10 keeps
it, and caches and databases a hostile or damaged root holds. Each repair is proven by the root's own
programs in a chroot and by real rpm's ``rpm -V glibc`` on a copy of the database."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import diagnosis as glibc
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import repair as glibc_repair
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc.diagnosis import GlibcError

from support import rpmroots
from support.roots import chroot
from support.trees import deb_of

BACKUPS = "/var/backups/lifeline"
# Where each package manager of the family keeps what it downloaded.
CACHES = {
    "yum": "var/cache/yum/x86_64/7/updates/packages",
    "dnf": "var/cache/dnf/appstream-773ef6463612e8e2/packages",
    "dnf5": "var/cache/libdnf5/baseos-1a2b3c4d5e6f7a8b/packages",
    "zypper": "var/cache/zypp/packages/repo-oss/x86_64",
}


def repaired_by_rpm(root: Path, layout: str, tmp_path: Path) -> None:
    assert chroot(root, "/usr/bin/python3", "-c", "import math").returncode == 0
    done = rpmroots.rpm_of_copy(root, "-V", "--nomtime", "glibc", scratch=tmp_path / "rpm")
    assert (done.returncode, done.stdout) == (0, ""), done.stdout + done.stderr


@pytest.mark.parametrize("cache", sorted(CACHES))
def test_libm_deleted_comes_back_from_every_cache_of_the_family(tmp_path, cache):
    root = rpmroots.root_copy("rhel9", tmp_path / "root")
    (root / "usr/lib64/libm.so.6").unlink()
    where = root / CACHES[cache]
    where.mkdir(parents=True)
    package = rpmroots.package_file("rhel9")
    shutil.copy(package, where / package.name)

    diagnosis = glibc.diagnose(str(root))
    assert diagnosis.identity.package == "glibc-2.36-1.el9.x86_64"
    assert diagnosis.identity.database == "rpm sqlite /var/lib/rpm/rpmdb.sqlite"
    assert diagnosis.identity.digest == "sha256"
    actions = glibc_repair.plan(str(root), diagnosis, "")
    assert [(a.path, a.source, a.origin, a.algorithm) for a in actions] == [
        ("/lib64/libm.so.6", "package cache", f"/{CACHES[cache]}/{package.name}", "sha256")
    ]
    glibc_repair.apply(str(root), actions, BACKUPS)
    repaired_by_rpm(root, "rhel9", tmp_path)


def test_the_database_where_rhel_10_keeps_it_is_read_through_the_link(tmp_path):
    """/usr/lib/sysimage/rpm holds the database, /var/lib/rpm leads to it."""
    root = rpmroots.root_copy("rhel8", tmp_path / "root")
    (root / "usr/lib/sysimage").mkdir(parents=True, exist_ok=True)
    shutil.move(str(root / "var/lib/rpm"), str(root / "usr/lib/sysimage/rpm"))
    os.symlink("../../usr/lib/sysimage/rpm", root / "var/lib/rpm")
    os.rename(root / "usr/lib64/libc.so.6", root / "usr/lib64/libc.so.6.bak")

    diagnosis = glibc.diagnose(str(root))
    assert diagnosis.identity.database == "rpm sqlite /usr/lib/sysimage/rpm/rpmdb.sqlite"
    actions = glibc_repair.plan(str(root), diagnosis, "")
    # The database records libc.so.6 as a link to libc-2.36.so: it goes back as that link.
    assert [(a.action, a.after) for a in actions] == [("relink", "link -> libc-2.36.so")]
    glibc_repair.apply(str(root), actions, BACKUPS)
    assert os.readlink(root / "usr/lib64/libc.so.6") == "libc-2.36.so"
    repaired_by_rpm(root, "rhel8", tmp_path)


def test_a_hostile_cache_and_a_damaged_database_are_passed_over_with_the_reason(tmp_path):
    root = rpmroots.root_copy("rhel8", tmp_path / "root")
    (root / "var/lib/rpm/rpmdb.sqlite").write_bytes(b"garbage" * 1000)
    for name in ("libc-2.36.so", "libm-2.36.so"):
        (root / "usr/lib64" / name).unlink()
    cache = root / CACHES["dnf"]
    cache.mkdir(parents=True)
    os.symlink("/etc/shadow", cache / "glibc-2.36-1.el8.x86_64.rpm")  # leads out of the root
    package = rpmroots.package_file("rhel8").read_bytes()
    (cache / "glibc-2.36-2.el8.x86_64.rpm").write_bytes(package[:5000])  # cut short

    diagnosis = glibc.diagnose(str(root))
    assert diagnosis.identity.package == ""
    assert any(e.startswith("the package database cannot be read: ") for e in diagnosis.identity.evidence)
    with pytest.raises(GlibcError, match=r"^no good copy found for: .*libc\.so\.6.*/var/cache/dnf/"):
        glibc_repair.plan(str(root), diagnosis, "")
    with pytest.raises(GlibcError, match=r"glibc_restore_source: .* is not an rpm package \(.*cut short"):
        glibc_repair.plan(str(root), diagnosis, str(cache / "glibc-2.36-2.el8.x86_64.rpm"))


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("debian", r"is libc6 .*, a Debian package; the target's packages are rpm's"),
        ("other release", r"is glibc-2\.36-1\.el9\.x86_64, the target has glibc-2\.36-1\.el8\.x86_64"),
    ],
)
def test_a_package_of_another_manager_or_release_is_refused(tmp_path, given, says):
    root = rpmroots.root_copy("rhel8", tmp_path / "root")
    for name in ("libc-2.36.so", "libm-2.36.so"):
        (root / "usr/lib64" / name).unlink()
    source = rpmroots.package_file("rhel9") if given == "other release" else deb_of("bookworm", "libc6")
    diagnosis = glibc.diagnose(str(root))
    with pytest.raises(GlibcError, match=says):
        glibc_repair.plan(str(root), diagnosis, str(source))
