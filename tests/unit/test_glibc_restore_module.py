"""The glibc_restore module, run in-process the way Ansible runs it, on copies of a real Debian root
broken the way the incidents broke theirs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.lifeline.rescue.plugins.modules import glibc_restore
from trees import debian_tree as tree
from trees import listing

DEBS = Path(os.environ.get("LIFELINE_DEBS", "/var/cache/lifeline/debs"))
FAULTS = Path(__file__).resolve().parents[2] / "roles" / "drill" / "files" / "glibc.sh"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
LIBDIR = "usr/lib/x86_64-linux-gnu"
SONAMES = ["libc.so.6", "libdl.so.2", "libm.so.6", "libpthread.so.0", "libresolv.so.2", "librt.so.1"]


def libc6_deb(suite: str) -> Path:
    found = sorted((DEBS / suite).glob("libc6_*.deb"))
    if not found:
        pytest.fail(f"no libc6_*.deb in {DEBS / suite}: run `make images` (it keeps the downloaded debs)")
    return found[-1]


def run(capsys, deadline, **args) -> tuple[int, dict]:
    """The module's exit status and the JSON result it printed."""
    with patch_module_args(args), deadline(120), pytest.raises(SystemExit) as exited:
        glibc_restore.main()
    return exited.value.code, json.loads(capsys.readouterr().out)


def plant(root: Path, fault: str, *args: str | Path) -> None:
    done = subprocess.run(
        ["sh", str(FAULTS), str(root), fault, *map(str, args)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Iterator[Path]:
    """A tmpfs under this module's tmp dir for the copies of the tree; unmounted afterwards."""
    where = tmp_path_factory.mktemp("trees")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=0755,size=2g", "lifeline-test", str(where)], check=True
    )
    yield where
    subprocess.run(["umount", str(where)], check=True)


@pytest.fixture(scope="module")
def deleted(scratch) -> Path:
    """bookworm with its glibc files deleted (incident 3); the tests using it must change nothing."""
    root = scratch / "deleted"
    subprocess.run(["cp", "-a", str(tree("bookworm")), str(root)], check=True)
    plant(root, "glibc_deleted")
    return root


@pytest.fixture
def unchanged(deleted) -> Iterator[Path]:
    """The deleted root, proven unchanged after the test (a full listing and the lib dir's md5s)."""
    before = listing(deleted)
    yield deleted
    assert listing(deleted) == before


def test_check_mode_shows_the_plan_and_its_diff_and_changes_nothing(capsys, deadline, unchanged):
    deb = libc6_deb("bookworm")
    rc, result = run(
        capsys, deadline, root=str(unchanged), source=str(deb), _ansible_check_mode=True, _ansible_diff=True
    )

    assert rc == 0, result.get("msg")
    assert result["changed"] is True
    assert sorted(os.path.basename(a["path"]) for a in result["actions"]) == SONAMES
    for action in result["actions"]:
        assert (action["action"], action["source"], action["origin"]) == ("restore", "package file", str(deb))
        assert (action["before"], action["after"], action["backup"]) == ("missing", "", "")
        assert len(action["md5"]) == 32
    paths = [a["path"] for a in result["actions"]]
    assert result["diff"]["before"] == "".join(f"{p}: missing\n" for p in paths)
    assert result["diff"]["after"] == "".join(f"{p}: restored from package file\n" for p in paths)
    assert result["remaining"] == result["findings"]
    assert {f["problem"] for f in result["findings"]} == {"missing"}


def test_repair_false_only_diagnoses(capsys, deadline, unchanged):
    rc, result = run(capsys, deadline, root=str(unchanged), repair=False, _ansible_diff=True)

    assert rc == 0, result.get("msg")
    assert (result["changed"], result["actions"]) == (False, [])
    assert "diff" not in result
    assert sorted(os.path.basename(f["path"]) for f in result["findings"]) == SONAMES
    assert result["remaining"] == result["findings"]
    assert result["glibc"]["version"] == "2.36"
    assert result["members"] >= 15
    assert not {"skipped", "failed"} & set(result)


def test_a_failure_still_returns_the_findings(capsys, deadline, unchanged):
    rc, result = run(capsys, deadline, root=str(unchanged))

    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith("no good copy found for: /lib/x86_64-linux-gnu/libc.so.6 is missing;")
    assert "give the package file of the target's glibc as glibc_restore_source" in result["msg"]
    assert sorted(os.path.basename(f["path"]) for f in result["findings"]) == SONAMES
    assert result["glibc"]["package"].startswith("libc6 2.36-")
    assert (result["changed"], result["actions"]) == (False, [])


def test_a_package_file_of_another_version_fails_with_the_findings(capsys, deadline, unchanged):
    rc, result = run(capsys, deadline, root=str(unchanged), source=str(libc6_deb("bullseye")))

    assert rc == 1
    assert f"glibc_restore_source {libc6_deb('bullseye')} is libc6 2.31-" in result["msg"]
    assert ", the target has libc6 2.36-" in result["msg"]
    assert len(result["findings"]) == len(SONAMES)


def test_a_read_only_root_fails_with_the_findings_and_the_plan(capsys, deadline, deleted, tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    subprocess.run(["mount", "--bind", str(deleted), str(target)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], check=True)
        before = listing(target)
        rc, result = run(capsys, deadline, root=str(target), source=str(libc6_deb("bookworm")))
        assert listing(target) == before
    finally:
        subprocess.run(["umount", str(target)], check=True)

    assert rc == 1
    assert "is on a read-only filesystem: remount it read-write" in result["msg"]
    assert len(result["findings"]) == len(result["actions"]) == len(SONAMES)
    assert all(a["backup"] == "" and a["after"] == "" for a in result["actions"])


def test_a_directory_that_is_no_linux_root(capsys, deadline, tmp_path):
    rc, result = run(capsys, deadline, root=str(tmp_path))

    assert rc == 1
    assert result["msg"] == (
        f"root={tmp_path} does not look like a Linux root: no /etc directory; no /usr directory; "
        "no etc/os-release, usr/lib/os-release or etc/redhat-release"
    )
    assert (result["findings"], result["actions"], result["changed"]) == ([], [], False)


def test_a_repair_then_a_second_run_that_changes_nothing(capsys, deadline, scratch):
    root = scratch / "renamed"
    subprocess.run(["cp", "-a", str(tree("trixie")), str(root)], check=True)
    plant(root, "libc_renamed")

    rc, result = run(capsys, deadline, root=str(root), _ansible_diff=True)

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

    rc, again = run(capsys, deadline, root=str(root))
    assert rc == 0, again.get("msg")
    assert (again["changed"], again["findings"], again["actions"], again["remaining"]) == (False, [], [], [])
