"""The root_copy module on real loop devices, run in-process the way Ansible runs it: check mode writes
nothing, refusals, block copies (a UUID of their own when asked), file copies to a new filesystem type,
an overlay counted by its files.

Every device is a loop device backed by a sparse file in a fresh directory under /var/tmp (the lab of
support/lab.py); what the copy holds is judged by diff, blkid, dumpe2fs, xfs_db and the filesystem
checks, not by the module.
"""

from __future__ import annotations

import json
import os

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import destination, rootcopy
from ansible_collections.lifeline.rescue.plugins.modules import root_copy

from support.lab import MIB, ext_size, sha256, small_tree, stamped, uuid_of, xfs_size
from support.modules import run_module
from support.runners import execute, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mounts need root")
pytest_plugins = ("support.lab",)


def test_the_module_in_check_mode_writes_nothing(lab, capsys, deadline):
    source = lab.device("source", 64, "ext4")
    target, before = stamped(lab, "target", 128)
    top = lab.mount(source, "source")
    progress = lab.root / "run" / "progress.json"

    rc, block = run_module(
        root_copy,
        capsys,
        deadline(180),
        source=str(top),
        target_device=target,
        progress_path=str(progress),
        _ansible_check_mode=True,
    )
    rc_file, file = run_module(
        root_copy,
        capsys,
        deadline(180),
        source=str(top),
        target_device=target,
        fstype="xfs",
        progress_path=str(progress),
        _ansible_check_mode=True,
    )

    assert (rc, rc_file) == (0, 0), (block.get("msg"), file.get("msg"))
    assert (block["method"], block["bytes_total"], block["source_device"]) == ("block", 64 * MIB, source)
    assert (file["method"], file["fstype"], file["bytes_total"]) == (
        "file",
        "xfs",
        rootcopy.used_bytes(str(top)),
    )
    assert "from ext4 to xfs" in file["reason"]
    assert block["changed"] is file["changed"] is True and block["target_signatures"] == []
    assert sha256(target, MIB) == before and not progress.parent.exists()
    assert not {"skipped", "failed"} & set(block)


def test_the_module_names_the_new_storage_destination_and_keeps_the_old_names(lab, capsys, deadline):
    source = lab.device("source", 64, "ext4")
    destination, before = stamped(lab, "destination", 128)
    top = lab.mount(source, "source")

    rc, result = run_module(
        root_copy,
        capsys,
        deadline(180),
        source=str(top),
        destination_device=destination,
        _ansible_check_mode=True,
    )

    assert rc == 0, result.get("msg")
    assert result["destination_device"] == result["target_device"] == destination
    assert result["destination_signatures"] == result["target_signatures"] == []
    assert sha256(destination, MIB) == before


def test_the_module_refuses_a_used_target_in_check_mode_too(lab, capsys, deadline):
    source, target = lab.device("source", 64, "ext4"), lab.device("target", 128, "ext4")
    top = lab.mount(source, "source")

    rc, result = run_module(
        root_copy, capsys, deadline(180), source=str(top), target_device=target, _ansible_check_mode=True
    )

    assert rc == 1 and "holds ext4" in result["msg"] and "overwrite=true" in result["msg"]


def test_the_module_refuses_a_block_copy_of_a_source_mounted_read_write(lab, capsys, deadline):
    source = lab.device("source", 64, "ext4")
    target, before = stamped(lab, "target", 96)
    top = lab.mount(source, "source")
    progress = lab.root / "run" / "progress.json"

    rc, result = run_module(
        root_copy, capsys, deadline(180), source=str(top), target_device=target, progress_path=str(progress)
    )

    assert rc == 1 and f"mount -o remount,ro {top}" in result["msg"]
    assert result["method"] == "block" and sha256(target, MIB) == before and not progress.exists()


def test_the_module_copies_blocks(lab, capsys, deadline):
    source, target = lab.device("source", 64, "ext4"), lab.device("target", 96)
    top = lab.mount(source, "source")
    small_tree(top)
    sh("mount", "-o", "remount,ro", str(top))
    progress = lab.root / "run" / "progress.json"

    rc, result = run_module(
        root_copy, capsys, deadline(180), source=str(top), target_device=target, progress_path=str(progress)
    )

    assert rc == 0, result.get("msg")
    assert (result["method"], result["fstype"], result["bytes_done"]) == ("block", "ext4", 64 * MIB)
    assert result["fsck"]["ok"] and result["fsck"]["rc"] == 0
    assert result["grow"] == {"before": 64 * MIB, "after": 96 * MIB} and ext_size(target) == 96 * MIB
    assert result["uuid"] == uuid_of(source) and result["uuid_shared"] is True
    assert any("both carry the filesystem UUID" in str(w) for w in result["warnings"])
    assert json.loads(progress.read_text())["state"] == "done"
    assert result["seconds"] > 0 and result["rate"] > 0


@pytest.mark.parametrize(("fstype", "size"), [("ext4", 64), ("xfs", 320)])
def test_the_module_gives_a_block_copy_a_uuid_of_its_own(lab, capsys, deadline, fstype, size):
    source, target = lab.device("source", size, fstype), lab.device("target", size + 32)
    top = lab.mount(source, "source")
    small_tree(top)
    sh("mount", "-o", "remount,ro", str(top))
    progress = lab.root / "run" / "progress.json"

    rc, result = run_module(
        root_copy,
        capsys,
        deadline(180),
        source=str(top),
        target_device=target,
        progress_path=str(progress),
        new_uuid=True,
    )

    assert rc == 0, result.get("msg")
    assert result["method"] == "block" and result["uuid_shared"] is False
    assert result["uuid"] == uuid_of(target) not in ("", uuid_of(source))
    assert not any("both carry" in str(w) for w in result.get("warnings", []))
    copy = lab.mount(target, "copy", "ro")  # no nouuid needed for xfs now
    assert sh("diff", "-r", "--no-dereference", str(top), str(copy), check=False).returncode == 0
    lab.umount(copy)
    fsck = destination.check_copy(execute, target, fstype)
    assert fsck.ok, fsck.output


def test_the_module_copies_files_to_a_new_filesystem_type(lab, capsys, deadline):
    source, target = lab.device("source", 64, "ext4"), lab.device("target", 320, "ext4")
    top = lab.mount(source, "source")
    small_tree(top)
    (top / "skipped").mkdir()
    (top / "skipped" / "cache").write_text("left out\n")
    progress = lab.root / "run" / "progress.json"

    rc, result = run_module(
        root_copy,
        capsys,
        deadline(180),
        source=str(top),
        target_device=target,
        fstype="xfs",
        overwrite=True,
        exclude=[str(top / "skipped")],
        progress_path=str(progress),
    )

    assert rc == 0, result.get("msg")
    assert (result["method"], result["fstype"], result["target_signatures"]) == ("file", "xfs", ["ext4"])
    assert result["fsck"]["command"] == ["xfs_repair", "-n", target] and result["fsck"]["ok"]
    assert result["grow"]["before"] == result["grow"]["after"] == xfs_size(target)
    assert result["uuid"] == uuid_of(target) != uuid_of(source) and result["uuid_shared"] is False
    assert os.listdir(progress.parent) == ["progress.json"], "the temporary mount point is gone"
    copy = lab.mount(target, "copy", "ro")
    assert (
        sh(
            "diff",
            "-r",
            "--no-dereference",
            "-x",
            "skipped",
            "-x",
            "lost+found",
            str(top),
            str(copy),
            check=False,
        ).returncode
        == 0
    )
    assert os.listdir(copy / "skipped") == []


def test_the_module_copies_an_overlay_counting_its_files(lab, capsys, deadline):
    """A container's root: statvfs of an overlay is its upper layer's whole filesystem (here the one of
    /var/tmp, far larger than the target), so the bytes to copy are the files' (du -sx)."""
    lower, upper, work = (lab.root / name for name in ("lower", "upper", "work"))
    for directory in (lower, upper, work):
        directory.mkdir()
    small_tree(lower)
    (upper / "written").write_text("in the upper layer\n")
    top = lab.mount(
        "overlay", "merged", f"lowerdir={lower}", f"upperdir={upper}", f"workdir={work}", fstype="overlay"
    )
    target = lab.device("target", 96)
    progress = lab.root / "run" / "progress.json"
    du = int(sh("du", "-s", "-x", "-B1", str(top)).stdout.split()[0])
    assert rootcopy.used_bytes(str(top)) > 96 * MIB, "statvfs would ask for more than the target has"

    rc, result = run_module(
        root_copy,
        capsys,
        deadline(180),
        source=str(top),
        target_device=target,
        fstype="ext4",
        progress_path=str(progress),
    )

    assert rc == 0, result.get("msg")
    assert (result["method"], result["fstype"], result["source_device"]) == ("file", "ext4", None)
    assert result["bytes_total"] == result["bytes_done"] == du
    assert json.loads(progress.read_text())["bytes_total"] == du
    copy = lab.mount(target, "copy", "ro")
    diff = sh("diff", "-r", "--no-dereference", "-x", "lost+found", str(top), str(copy), check=False)
    assert diff.returncode == 0, diff.stdout
