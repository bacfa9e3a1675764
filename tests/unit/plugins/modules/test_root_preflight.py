"""The root_preflight module, run in-process the way Ansible runs it, on this host: the disk of the
running root refused, a missing device and bad arguments reported, with blkid and findmnt as the
oracles."""

from __future__ import annotations

import os
import subprocess

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.modules import root_preflight

from support.modules import run_module


def root_disk() -> str:
    """The block device / is on, named by the mount table."""
    source = next(m.source for m in reversed(mounts.read_mountinfo()) if m.mount_point == "/")
    if not source.startswith("/dev/") or not os.path.exists(source):
        pytest.skip(f"/ is on {source}, not a device node here")
    return source


@pytest.mark.parametrize("check_mode", [False, True], ids=["run", "check"])
def test_the_module_refuses_the_disk_of_the_running_root(capsys, deadline, check_mode):
    disk = root_disk()
    rc, result = run_module(
        root_preflight, capsys, deadline(60), root_migrate_device=disk, _ansible_check_mode=check_mode
    )

    assert rc == 0, result.get("msg")
    assert (result["changed"], result["ready"]) == (False, False)
    assert {"target_holds_root", "target_mounted"} <= {b["kind"] for b in result["blockers"]}
    assert set(result) >= {"ready", "blockers", "notes", "plan", "facts"}
    assert not {"skipped", "failed"} & set(result)
    # blkid as the oracle; where it cannot read the disk (a sandbox), the module must not guess either.
    blkid = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", disk], capture_output=True, text=True)
    expected = blkid.stdout.strip() if blkid.returncode == 0 or not blkid.stderr else None
    assert result["facts"]["target"]["fstype"] == expected
    findmnt = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE", "/"], capture_output=True, text=True, check=True
    )
    assert result["facts"]["fstype"] == findmnt.stdout.strip()
    assert set(result["plan"]) == {
        "prepare", "stop", "restart_first", "reexec_init", "start", "restart", "finish", "move_mounts", "copy"
    }  # fmt: skip


def test_the_module_reports_a_missing_device(capsys, deadline, tmp_path):
    rc, result = run_module(
        root_preflight, capsys, deadline(60), root_migrate_device=str(tmp_path / "vg0-root")
    )

    assert rc == 0, result.get("msg")
    assert result["ready"] is False
    kinds = [b["kind"] for b in result["blockers"]]
    assert "target_not_block_device" in kinds
    assert not {"target_mounted", "target_holds_root", "target_in_use"} & set(kinds)
    assert result["facts"]["target"]["fstype"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"min_free_memory_mb": -1}, "min_free_memory_mb=-1: give 0 or more", id="negative memory"
        ),
        pytest.param(
            {"mount_point": "/lifeline-no-such-mount"},
            "nothing is mounted on /lifeline-no-such-mount",
            id="no such mount",
        ),
    ],
)
def test_the_module_fails_with_what_to_do(capsys, deadline, tmp_path, args, message):
    rc, result = run_module(root_preflight, capsys, deadline(60), root_migrate_device=str(tmp_path), **args)

    assert rc == 1
    assert message in result["msg"]
    assert result["changed"] is False
