"""The glibc_restore module, run in-process the way Ansible runs it, on copies of a real Debian root
broken the way the incidents broke theirs."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.modules import glibc_restore

from support.faults import plant_glibc
from support.modules import run_module
from support.roots import tmpfs
from support.trees import deb_of, listing
from support.trees import debian_tree as tree

CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
LIBDIR = "usr/lib/x86_64-linux-gnu"
SONAMES = ["libc.so.6", "libdl.so.2", "libm.so.6", "libpthread.so.0", "libresolv.so.2", "librt.so.1"]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Iterator[Path]:
    """A tmpfs under this module's tmp dir for the copies of the tree; unmounted afterwards."""
    with tmpfs(tmp_path_factory.mktemp("trees"), "2g") as where:
        yield where


@pytest.fixture(scope="module")
def deleted(scratch) -> Path:
    """bookworm with its glibc files deleted (incident 3); the tests using it must change nothing."""
    root = scratch / "deleted"
    subprocess.run(["cp", "-a", str(tree("bookworm")), str(root)], check=True)
    plant_glibc(root, "glibc_deleted")
    return root


@pytest.fixture
def unchanged(deleted) -> Iterator[Path]:
    """The deleted root, proven unchanged after the test (a full listing and the lib dir's md5s)."""
    before = listing(deleted)
    yield deleted
    assert listing(deleted) == before


def test_check_mode_shows_the_plan_and_its_diff_and_changes_nothing(capsys, deadline, unchanged):
    deb = deb_of("bookworm", "libc6")
    rc, result = run_module(
        glibc_restore,
        capsys,
        deadline(120),
        root=str(unchanged),
        source=str(deb),
        _ansible_check_mode=True,
        _ansible_diff=True,
    )

    assert rc == 0, result.get("msg")
    assert result["changed"] is True
    assert sorted(os.path.basename(a["path"]) for a in result["actions"]) == SONAMES
    for action in result["actions"]:
        assert (action["action"], action["source"], action["origin"]) == ("restore", "package file", str(deb))
        assert (action["before"], action["after"], action["backup"]) == ("missing", "", "")
        assert len(action["digest"]) == 32 and action["algorithm"] == "md5"
    paths = [a["path"] for a in result["actions"]]
    assert result["diff"]["before"] == "".join(f"{p}: missing\n" for p in paths)
    assert result["diff"]["after"] == "".join(f"{p}: restored from package file\n" for p in paths)
    assert result["remaining"] == result["findings"]
    assert {f["problem"] for f in result["findings"]} == {"missing"}


def test_repair_false_only_diagnoses(capsys, deadline, unchanged):
    rc, result = run_module(
        glibc_restore, capsys, deadline(120), root=str(unchanged), repair=False, _ansible_diff=True
    )

    assert rc == 0, result.get("msg")
    assert (result["changed"], result["actions"]) == (False, [])
    assert "diff" not in result
    assert sorted(os.path.basename(f["path"]) for f in result["findings"]) == SONAMES
    assert result["remaining"] == result["findings"]
    assert result["glibc"]["version"] == "2.36"
    assert result["members"] >= 15
    assert not {"skipped", "failed"} & set(result)


def test_a_failure_still_returns_the_findings(capsys, deadline, unchanged):
    rc, result = run_module(glibc_restore, capsys, deadline(120), root=str(unchanged))

    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith("no good copy found for: /lib/x86_64-linux-gnu/libc.so.6 is missing;")
    assert "give the package file of the target's glibc as glibc_restore_source" in result["msg"]
    assert sorted(os.path.basename(f["path"]) for f in result["findings"]) == SONAMES
    assert result["glibc"]["package"].startswith("libc6 2.36-")
    assert (result["changed"], result["actions"]) == (False, [])


def test_a_package_file_of_another_version_fails_with_the_findings(capsys, deadline, unchanged):
    rc, result = run_module(
        glibc_restore, capsys, deadline(120), root=str(unchanged), source=str(deb_of("bullseye", "libc6"))
    )

    assert rc == 1
    assert f"glibc_restore_source {deb_of('bullseye', 'libc6')} is libc6 2.31-" in result["msg"]
    assert ", the target has libc6 2.36-" in result["msg"]
    assert len(result["findings"]) == len(SONAMES)


def test_a_read_only_root_fails_with_the_findings_and_the_plan(capsys, deadline, deleted, tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    subprocess.run(["mount", "--bind", str(deleted), str(target)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        before = listing(target)
        rc, result = run_module(
            glibc_restore, capsys, deadline(120), root=str(target), source=str(deb_of("bookworm", "libc6"))
        )
        assert listing(target) == before
    finally:
        subprocess.run(["umount", str(target)], check=True)

    assert rc == 1
    assert "is on a read-only filesystem: remount it read-write" in result["msg"]
    assert len(result["findings"]) == len(result["actions"]) == len(SONAMES)
    assert all(a["backup"] == "" and a["after"] == "" for a in result["actions"])


def test_a_directory_that_is_no_linux_root(capsys, deadline, tmp_path):
    rc, result = run_module(glibc_restore, capsys, deadline(120), root=str(tmp_path))

    assert rc == 1
    assert result["msg"] == (
        f"root={tmp_path} does not look like a Linux root: no /etc directory; no /usr directory; "
        "no etc/os-release, usr/lib/os-release or etc/redhat-release"
    )
    assert (result["findings"], result["actions"], result["changed"]) == ([], [], False)


def test_a_repair_then_a_second_run_that_changes_nothing(capsys, deadline, scratch):
    root = scratch / "renamed"
    subprocess.run(["cp", "-a", str(tree("trixie")), str(root)], check=True)
    plant_glibc(root, "libc_renamed")

    rc, result = run_module(glibc_restore, capsys, deadline(120), root=str(root), _ansible_diff=True)

    assert rc == 0, result.get("msg")
    assert result["changed"] is True
    assert [(a["path"], a["action"], a["source"], a["origin"], a["before"]) for a in result["actions"]] == [
        (f"/{LIBDIR}/libc.so.6", "restore", "renamed-away copy", f"/{LIBDIR}/libc.so.6.bak", "missing")
    ]
    assert result["actions"][0]["after"].endswith("(matches the package's record)")
    assert [f["problem"] for f in result["findings"]] == ["missing"]
    assert result["remaining"] == []
    done = subprocess.run([CHROOT, str(root), "/bin/ls", "/"], capture_output=True, text=True)
    assert (done.returncode, done.stderr) == (0, "")

    rc, again = run_module(glibc_restore, capsys, deadline(120), root=str(root))
    assert rc == 0, again.get("msg")
    assert (again["changed"], again["findings"], again["actions"], again["remaining"]) == (False, [], [], [])
