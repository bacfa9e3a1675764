"""root_holders: the processes still using a filesystem (the old root after a switch), with their units."""

from __future__ import annotations

import os
import subprocess

import pytest
from ansible_collections.lifeline.rescue.plugins.modules import root_holders

from support.modules import run_module


def fake_process(proc, pid: int, comm: str, cgroup: str, **links: str) -> None:
    """A /proc/PID with its comm, cgroup and the named links (cwd, root, exe or fd/N)."""
    base = proc / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "comm").write_text(comm + "\n")
    (base / "cgroup").write_text(cgroup)
    for name, target in links.items():
        (base / name.replace("fd_", "fd/")).symlink_to(target)


def test_services_others_and_bystanders(tmp_path):
    old, proc = tmp_path / "oldroot", tmp_path / "proc"
    (old / "usr/sbin").mkdir(parents=True)
    proc.mkdir()
    fake_process(proc, 1, "init", "0::/init.scope\n", exe=f"{old}/usr/sbin/init")
    fake_process(proc, 812, "app", "0::/system.slice/app.service\n", cwd=f"{old}/srv")
    fake_process(proc, 813, "app", "0::/system.slice/app.service\n", fd_3=f"{old}/var/log/app.log")
    fake_process(proc, 900, "bash", "0::/user.slice/user-0.slice/session-3.scope\n", root=str(old))
    fake_process(proc, 950, "cron", "0::/system.slice/cron.service\n", cwd="/", exe="/usr/sbin/cron")
    fake_process(proc, 960, "x", "0::/system.slice/x.service\n", cwd=f"{old}x/srv")  # a sibling's name

    found = root_holders.holders_of(str(old), str(proc))

    assert [(h["pid"], h["unit"], h["how"]) for h in found["holders"]] == [
        (1, "init.scope", "exe"),
        (812, "app.service", "cwd"),
        (813, "app.service", "fd 3"),
        (900, "session-3.scope", "root"),
    ]
    assert found["services"] == ["app.service"]
    assert found["others"] == [f"pid 1 (init) exe {old}/usr/sbin/init", f"pid 900 (bash) root {old}"]


def test_the_module_finds_a_real_process_running_there(tmp_path, capsys):
    (tmp_path / "old" / "srv").mkdir(parents=True)
    with subprocess.Popen(["sleep", "30"], cwd=tmp_path / "old" / "srv") as sleeper:
        try:
            rc, result = run_module(root_holders, capsys, path=str(tmp_path / "old") + "/")
        finally:
            sleeper.kill()

    assert (rc, result["changed"]) == (0, False)
    assert [h for h in result["holders"] if h["pid"] == sleeper.pid] == [
        {"pid": sleeper.pid, "comm": "sleep", "unit": "", "how": "cwd", "path": str(tmp_path / "old" / "srv")}
    ]
    assert all(h["pid"] != os.getpid() for h in result["holders"])


@pytest.mark.parametrize("path", ["/", "/nonexistent/old"])
def test_the_module_refuses_the_live_root_and_a_missing_directory(capsys, path):
    rc, result = run_module(root_holders, capsys, path=path)

    assert (rc, result["failed"]) == (1, True)
    assert result["msg"].startswith(f"path={path}: give the mount point of a filesystem other than /")
