"""The glibc_audit module, run in-process the way Ansible runs it, on real and broken roots."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.modules import glibc_audit

from support.modules import run_module
from support.trees import debian_tree as tree

LIBDIR = "lib/x86_64-linux-gnu"
LIBC = f"usr/{LIBDIR}/libc.so.6"


def warnings(result: dict) -> list[str]:
    """The warnings' texts (ansible-core 2.19 returns each as a structured WarningSummary)."""
    return [w["event"]["msg"] if isinstance(w, dict) else w for w in result.get("warnings", [])]


@pytest.fixture
def no_libc(small_root) -> Path:
    """Incident 1: libc.so.6 renamed away; true and dash are broken."""
    libc = small_root / LIBC
    libc.rename(libc.with_name("libc.so.6.bak"))
    return small_root


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_a_healthy_debian_root(capsys, deadline, check_mode):
    root = tree("bookworm")
    rc, result = run_module(
        glibc_audit, capsys, deadline(120), root=str(root), _ansible_check_mode=check_mode
    )

    assert rc == 0, result.get("msg")
    assert result["changed"] is False
    assert result["healthy"] is True
    assert result["root"] == os.path.realpath(root)
    assert result["summary"]["elf_files"] > 500
    assert result["summary"]["broken_files"] == result["summary"]["bad_links"] == 0
    assert (result["broken"], result["links"], result["truncated"]) == ([], [], False)
    assert isinstance(result["seconds"], float)
    assert not {"skipped", "failed"} & set(result)


def test_the_small_root_is_healthy(capsys, deadline, small_root):
    rc, result = run_module(glibc_audit, capsys, deadline(120), root=str(small_root))

    assert (rc, result["healthy"]) == (0, True), result
    assert result["summary"] == {"elf_files": 4, "broken_files": 0, "missing_libraries": 0, "bad_links": 0}


def test_libc_renamed_away_is_reported(capsys, deadline, no_libc):
    rc, result = run_module(glibc_audit, capsys, deadline(120), root=str(no_libc))

    assert rc == 0, result.get("msg")
    assert (result["changed"], result["healthy"], result["truncated"]) == (False, False, False)
    assert result["summary"] == {"elf_files": 4, "broken_files": 2, "missing_libraries": 2, "bad_links": 0}
    assert [f["path"] for f in result["broken"]] == ["/usr/bin/dash", "/usr/bin/true"]
    assert result["broken"][1] == {
        "path": "/usr/bin/true",
        "kind": "PIE",
        "interpreter": "/lib64/ld-linux-x86-64.so.2",
        "libraries": {"libc.so.6": None},
        "problems": ["libc.so.6: not found"],
    }


@pytest.mark.parametrize("fail_on_broken", [False, True])
def test_check_mode_gives_the_same_result(capsys, deadline, no_libc, fail_on_broken):
    args = {"root": str(no_libc), "fail_on_broken": fail_on_broken}
    rc, result = run_module(glibc_audit, capsys, deadline(120), **args)
    check_rc, in_check = run_module(glibc_audit, capsys, deadline(120), **args, _ansible_check_mode=True)

    assert (check_rc, in_check["changed"]) == (rc, False)
    assert {**in_check, "seconds": 0} == {**result, "seconds": 0}


def test_fail_on_broken_names_the_count_and_the_first_problems(capsys, deadline, no_libc):
    rc, result = run_module(glibc_audit, capsys, deadline(120), root=str(no_libc), fail_on_broken=True)

    assert rc == 1
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["msg"] == (
        f"2 of 4 ELF files broken under {no_libc}: "
        "/usr/bin/dash: libc.so.6: not found; /usr/bin/true: libc.so.6: not found"
    )
    assert result["summary"]["broken_files"] == 2  # the findings come with the failure


def test_fail_on_broken_also_fails_on_a_bad_link(capsys, deadline, small_root):
    os.symlink("libgone.so.1", small_root / "usr" / LIBDIR / "libdangling.so.1")
    rc, result = run_module(glibc_audit, capsys, deadline(120), root=str(small_root), fail_on_broken=True)

    assert rc == 1
    assert result["msg"].startswith(f"0 of 4 ELF files broken and 1 bad links under {small_root}: ")
    assert f"/usr/{LIBDIR}/libdangling.so.1: dangling link" in result["msg"]


@pytest.mark.parametrize(
    ("max_broken", "broken", "links", "truncated"),
    [
        (200, ["/usr/bin/dash", "/usr/bin/true"], 2, False),
        (2, ["/usr/bin/dash", "/usr/bin/true"], 2, False),
        (1, ["/usr/bin/dash"], 1, True),
        (0, [], 0, True),
    ],
)
def test_max_broken_cuts_the_details_not_the_counts(
    capsys, deadline, no_libc, max_broken, broken, links, truncated
):
    for name in ("libgone.so.1", "libgone.so.2"):
        os.symlink(f"{name}.0", no_libc / "usr" / LIBDIR / name)
    rc, result = run_module(glibc_audit, capsys, deadline(120), root=str(no_libc), max_broken=max_broken)

    assert rc == 0, result.get("msg")
    assert [f["path"] for f in result["broken"]] == broken
    assert len(result["links"]) == links
    assert result["truncated"] is truncated
    assert result["summary"] == {"elf_files": 4, "broken_files": 2, "missing_libraries": 2, "bad_links": 2}


def test_more_paths_are_audited_inside_the_root(capsys, deadline, small_root):
    app = small_root / "srv" / "app"
    app.mkdir(parents=True)
    shutil.copy2(small_root / "usr" / "bin" / "true", app / "tool")
    (small_root / LIBC).unlink()
    rc, result = run_module(
        glibc_audit, capsys, deadline(120), root=str(small_root), paths=["/srv/app", "srv/missing"]
    )

    assert rc == 0, result.get("msg")
    assert "/srv/app/tool" in [f["path"] for f in result["broken"]]
    assert warnings(result) == [
        f"paths: /srv/missing is not a directory inside {small_root}; it was not audited"
    ]


@pytest.mark.parametrize(
    ("make", "args", "msg"),
    [
        (None, {"root": "{tmp}/nowhere"}, "root={tmp}/nowhere does not exist: give the directory where"),
        ("file", {"root": "{tmp}/file"}, "root={tmp}/file is not a directory: give the directory where"),
        ("dir", {"root": "{tmp}/dir", "max_broken": -1}, "max_broken=-1: give 0 or more"),
        ("dir", {"root": "{tmp}/dir", "max_broken": "many"}, "argument 'max_broken' is of type"),
        (None, {}, "missing required arguments: root"),
    ],
    ids=["missing root", "root is a file", "negative max_broken", "max_broken not int", "no root"],
)
def test_bad_arguments_fail_with_a_clear_message(capsys, deadline, tmp_path, make, args, msg):
    if make == "file":
        (tmp_path / "file").write_text("not a root\n")
    elif make == "dir":
        (tmp_path / "dir").mkdir()
    args = {k: v.format(tmp=tmp_path) if isinstance(v, str) else v for k, v in args.items()}
    rc, result = run_module(glibc_audit, capsys, deadline(120), **args)

    assert rc == 1
    assert result["failed"] is True
    assert result["msg"].startswith(msg.format(tmp=tmp_path)), result["msg"]


def test_an_audit_error_fails_once_naming_the_root(capsys, deadline, small_root):
    """A scanned directory that is a link loop stops the audit (audit.walk raises RootError)."""
    os.symlink("opt", small_root / "opt")
    rc, result = run_module(glibc_audit, capsys, deadline(120), root=str(small_root))

    assert rc == 1
    assert result["msg"].startswith(f"auditing {small_root} failed: /opt: too many levels of symbolic links")
    assert result["msg"].endswith("(run the audit as root)")
    assert "summary" not in result
