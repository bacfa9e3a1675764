"""rootcopy on real loop devices: block and file copies, progress, checks, growth.

Every device is a loop device backed by a sparse file in a fresh directory under /var/tmp; the lab
unmounts and detaches all of it at the end, also when a test fails. What the copy kept is judged by
other tools than the code under test: stat, find, getfacl, cmp, diff, blkid, dumpe2fs, xfs_db,
e2fsck and xfs_repair, and the kernel's own xattr calls.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import ToolError
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import destination, rootcopy

from support.lab import MIB, ext_size, fill, sha256, size_of, small_tree, stamped, uuid_of, xfs_size
from support.runners import ENV, execute, run, sh

LABEL = b"system_u:object_r:etc_t:s0\x00"  # what SELinux stores in security.selinux

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="loop devices and mounts need root")
pytest_plugins = ("support.lab",)


# ---- block copy ---------------------------------------------------------------------------------


def test_block_copy_checks_grows_and_keeps_the_files(lab, deadline):
    source, target = lab.device("source", 64, "ext4"), lab.device("target", 128)
    mounted = lab.mount(source, "source")
    small_tree(mounted)
    sh("mount", "-o", "remount,ro", str(mounted))  # the expected case: / remounted read-only first
    progress = lab.root / "run" / "progress.json"

    with deadline(120):
        copied = rootcopy.block_copy(source, target, str(progress), chunk=MIB)

    assert (copied.method, copied.bytes_done, copied.bytes_total) == ("block", 64 * MIB, 64 * MIB)
    assert copied.seconds > 0 and copied.rate > 0
    final = json.loads(progress.read_text())
    assert final["state"] == "done" and final["bytes_done"] == final["bytes_total"] == 64 * MIB

    fsck = destination.check_copy(execute, target, "ext4")
    assert (fsck.ok, fsck.rc, fsck.verdict) == (True, 0, "clean"), fsck.output
    assert fsck.command == ["e2fsck", "-f", "-p", target]

    grown = destination.grow(run, target, "ext4")
    assert (grown.before, grown.after) == (64 * MIB, 128 * MIB)
    assert ext_size(target) == size_of(target) == 128 * MIB, "dumpe2fs: the copy spans its device"
    assert sh("e2fsck", "-f", "-n", target, check=False).returncode == 0, "clean after growing"

    # A block copy carries the UUID: two filesystems with one UUID while both exist.
    assert destination.filesystem_uuid(run, target) == uuid_of(target) == uuid_of(source) != ""

    copy = lab.mount(target, "copy", "ro")
    assert sh("diff", "-r", "--no-dereference", str(mounted), str(copy), check=False).returncode == 0
    for path in mounted.rglob("*"):
        if path.is_file() and not path.is_symlink() and "lost+found" not in path.parts:
            assert sha256(path) == sha256(copy / path.relative_to(mounted)), path
    assert os.stat(copy / "etc" / "hostname").st_ino == os.stat(copy / "etc" / "hostname.hard").st_ino


def test_block_copy_of_xfs_grows_on_a_temporary_mount(lab, deadline):
    """xfs grows only mounted; its copy shares the mounted source's UUID, so it mounts with nouuid."""
    source, target = lab.device("source", 320, "xfs"), lab.device("target", 400)
    mounted = lab.mount(source, "source")
    small_tree(mounted)
    sh("mount", "-o", "remount,ro", str(mounted))

    with deadline(120):
        rootcopy.block_copy(source, target, str(lab.root / "progress.json"))
    fsck = destination.check_copy(execute, target, "xfs")
    grown = destination.grow(run, target, "xfs")

    assert (fsck.ok, fsck.rc, fsck.command) == (True, 0, ["xfs_repair", "-n", target]), fsck.output
    assert grown.before == xfs_size(source) < grown.after == xfs_size(target)
    assert grown.after > 390 * MIB
    assert sh("xfs_repair", "-n", target, check=False).returncode == 0
    assert sh("findmnt", "--source", target, check=False).returncode == 1, "the temporary mount is gone"
    copy = lab.mount(target, "copy", "ro", "nouuid")
    assert sh("diff", "-r", "--no-dereference", str(mounted), str(copy), check=False).returncode == 0


def test_the_check_finds_and_repairs_errors(lab):
    """e2fsck's exit codes: 4 (left uncorrected) with -n, 1 (corrected) with -p, then 0."""
    device = lab.device("broken", 32, "ext4")
    mounted = lab.mount(device, "broken")
    (mounted / "file").write_text("x")
    inode = os.stat(mounted / "file").st_ino
    lab.umount(mounted)
    sh("debugfs", "-w", "-R", f"set_inode_field <{inode}> links_count 5", device)

    found = destination.check_copy(execute, device, "ext4", repair=False)
    repaired = destination.check_copy(execute, device, "ext4")
    again = destination.check_copy(execute, device, "ext4", repair=False)

    assert (found.ok, found.rc, found.verdict) == (False, 4, "errors left uncorrected")
    assert "count is 5, should be 1" in found.output
    assert (repaired.ok, repaired.rc, repaired.verdict) == (True, 1, "errors corrected"), repaired.output
    assert (again.ok, again.rc) == (True, 0)


def test_a_failing_check_is_not_ok():
    assert destination.fsck_verdict("ext4", 8) == (False, "e2fsck could not check it (exit 8)")
    assert destination.fsck_verdict("ext4", 12) == (False, "errors left uncorrected")
    assert destination.fsck_verdict("xfs", 1) == (False, "corruption found")
    assert destination.fsck_verdict("xfs", 2)[0] is False


# ---- file copy ----------------------------------------------------------------------------------


def need_setfacl() -> None:
    if not (shutil.which("setfacl") and shutil.which("getfacl")):
        pytest.fail("setfacl/getfacl are not installed: install the Debian package acl (make apt)")


def hostile_tree(top: Path) -> None:
    """Everything a root holds that a naive copy loses."""
    etc, usr, var, srv = top / "etc", top / "usr" / "bin", top / "var" / "cache", top / "srv"
    for directory in (
        etc,
        usr,
        var / "big",
        srv,
        top / "run",
        top / "dev",
        top / "tmp",
        top / "mnt" / "other",
    ):
        directory.mkdir(parents=True, exist_ok=True)
    (etc / "hosts").write_text("127.0.0.1 localhost\n")
    os.link(etc / "hosts", etc / "hosts.hard")
    os.link(etc / "hosts", usr / "hosts-elsewhere")  # a hard link across directories
    os.symlink("hosts", etc / "link")
    os.symlink("/nonexistent/target", etc / "dangling")
    os.mkfifo(top / "run" / "initctl")
    os.mknod(top / "dev" / "null", 0o20666, os.makedev(1, 3))
    os.mknod(top / "dev" / "loop99", 0o60660, os.makedev(7, 99))
    with open(top / "var" / "sparse.img", "wb") as handle:
        handle.truncate(32 * MIB)
        handle.seek(16 * MIB)
        handle.write(b"x")
    (etc / "labelled").write_text("secret\n")
    os.setxattr(etc / "labelled", "security.selinux", LABEL)
    os.setxattr(etc / "labelled", "user.comment", b"kept")
    os.setxattr(etc, "security.selinux", LABEL)
    os.setxattr(top, "security.selinux", LABEL)
    os.setxattr(top, "user.top", b"1")
    (srv / "shared").write_text("acl\n")
    sh("setfacl", "-m", "u:1234:rwx,g:5678:r-x", str(srv / "shared"))
    sh("setfacl", "-d", "-m", "u:1234:rwx", str(srv))
    (usr / "suid").write_text("#!/bin/sh\n")
    os.chown(usr / "suid", 1234, 5678)
    os.chmod(usr / "suid", 0o4755)
    os.chmod(top / "tmp", 0o1777)
    (var / "keep").write_text("kept beside an excluded directory\n")
    (var / "big" / "blob").write_bytes(os.urandom(MIB))
    os.chown(var / "big", 1234, 5678)
    os.chmod(var / "big", 0o750)
    os.setxattr(var, "user.cache", b"walked by hand")  # an excluded path's parent is made by rootcopy
    sh("setfacl", "-m", "u:1234:r-x", str(var))
    os.utime(etc / "hosts", (978307200, 978307200))
    os.utime(etc / "link", (978307200, 978307200), follow_symlinks=False)
    os.utime(var, (978307200, 978307200))


def listing(top: Path, *extra: str) -> dict[str, str]:
    """find's view of a tree on one filesystem: type, mode, owner, links, mtime, link target, size."""
    out = sh("find", str(top), "-xdev", *extra, "-printf", r"%P\0%y|%M|%U|%G|%n|%T@|%l|%s\0").stdout
    fields = out.split("\0")[:-1]
    entries = dict(zip(fields[::2], fields[1::2], strict=True))
    # Directory sizes are the filesystem's own business (ext4 and xfs differ).
    return {
        path: (line.rsplit("|", 1)[0] if line.startswith("d") else line) for path, line in entries.items()
    }


def xattrs(path: Path) -> dict[str, bytes]:
    """The extended attributes the kernel lists; xfs lists its ACLs a second time as trusted.SGI_ACL_*."""
    names = [n for n in os.listxattr(path, follow_symlinks=False) if not n.startswith("trusted.SGI_ACL_")]
    return {name: os.getxattr(path, name, follow_symlinks=False) for name in names}


def test_file_copy_keeps_links_nodes_sparse_files_acls_xattrs_and_labels(lab, deadline):
    need_setfacl()
    source, target = lab.device("source", 128, "ext4"), lab.device("target", 320)
    top = lab.mount(source, "source")
    hostile_tree(top)
    other = lab.mount("tmpfs", "source/mnt/other", "size=1m", fstype="tmpfs")
    (other / "on-another-filesystem").write_text("not copied\n")
    destination.prepare_target(run, target, "xfs")
    copy = lab.mount(target, "copy")
    progress = lab.root / "progress.json"

    with deadline(120):
        copied = rootcopy.file_copy(
            run, str(top), str(copy), str(progress), exclude=[str(top / "var/cache/big")]
        )

    assert copied.method == "file" and copied.bytes_done == copied.bytes_total > 0
    assert json.loads(progress.read_text())["state"] == "done"
    before = listing(top, "-path", str(top / "var/cache/big/*"), "-prune", "-o")
    after = listing(copy)
    assert after == before, "find: type, mode, owner, link count, mtime, link target, size"
    assert "var/cache/big/blob" not in after and after["var/cache/big"].startswith("d|drwxr-x---|1234|5678")
    assert "mnt/other/on-another-filesystem" not in after and "mnt/other" in after

    inodes = {os.stat(copy / p).st_ino for p in ("etc/hosts", "etc/hosts.hard", "usr/bin/hosts-elsewhere")}
    assert len(inodes) == 1 and os.stat(copy / "etc/hosts").st_nlink == 3
    assert sh("stat", "-c", "%F %t:%T", str(copy / "dev/null")).stdout.split() == [
        "character",
        "special",
        "file",
        "1:3",
    ]
    assert sh("stat", "-c", "%F %t:%T", str(copy / "dev/loop99")).stdout.split() == [
        "block",
        "special",
        "file",
        "7:63",
    ]
    assert sh("stat", "-c", "%F", str(copy / "run/initctl")).stdout.strip() == "fifo"
    assert sh("stat", "-c", "%u:%g %a", str(copy / "usr/bin/suid")).stdout.strip() == "1234:5678 4755"
    assert os.readlink(copy / "etc/dangling") == "/nonexistent/target"
    sparse = copy / "var/sparse.img"
    assert sh("cmp", str(top / "var/sparse.img"), str(sparse), check=False).returncode == 0
    assert os.stat(sparse).st_size == 32 * MIB and os.stat(sparse).st_blocks * 512 < MIB, "still sparse"
    for path in top.rglob("*"):
        inside = path.relative_to(top)
        if not path.is_file() or path.is_symlink() or path.stat().st_dev != top.stat().st_dev:
            continue  # links and nodes are judged above; a file of another filesystem is not copied
        if inside.parts[:3] != ("var", "cache", "big"):
            assert sh("cmp", str(path), str(copy / inside), check=False).returncode == 0, inside

    for inside in ("", "etc", "etc/labelled", "srv", "srv/shared", "var/cache", "var/cache/big", "etc/link"):
        assert xattrs(copy / inside) == xattrs(top / inside), f"xattrs of /{inside}"
    assert os.getxattr(copy / "etc/labelled", "security.selinux") == LABEL
    assert os.getxattr(copy, "security.selinux") == LABEL and os.getxattr(copy, "user.top") == b"1"
    assert os.getxattr(copy / "var/cache", "user.cache") == b"walked by hand"
    for inside in ("srv", "srv/shared", "var/cache"):
        acl = sh("getfacl", "--omit-header", str(copy / inside)).stdout
        assert acl == sh("getfacl", "--omit-header", str(top / inside)).stdout, inside
    assert "user:1234:rwx" in sh("getfacl", "--omit-header", str(copy / "srv/shared")).stdout
    assert "default:user:1234:rwx" in sh("getfacl", "--omit-header", str(copy / "srv")).stdout

    lab.umount(copy)
    fsck = destination.check_copy(execute, target, "xfs")
    assert fsck.ok, fsck.output
    assert sh("xfs_repair", "-n", target, check=False).returncode == 0
    assert destination.filesystem_uuid(run, target) not in ("", uuid_of(source))


def test_a_file_copy_from_xfs_keeps_acls_without_the_xfs_shadow_of_them(lab, deadline):
    """xfs lists its ACLs again as trusted.SGI_ACL_*: on ext4 they would be stray attributes."""
    need_setfacl()
    source, target = lab.device("source", 320, "xfs"), lab.device("target", 64)
    top = lab.mount(source, "source")
    (top / "file").write_text("acl\n")
    for path, args in (
        (top, ["-m", "u:1234:rwx", "-d", "-m", "u:1234:r-x"]),
        (top / "file", ["-m", "u:99:r--"]),
    ):
        sh("setfacl", *args, str(path))
    assert any(name.startswith("trusted.SGI_ACL_") for name in os.listxattr(top))
    destination.prepare_target(run, target, "ext4")
    copy = lab.mount(target, "copy")

    with deadline(60):
        rootcopy.file_copy(run, str(top), str(copy), str(lab.root / "progress.json"))

    for inside in ("", "file"):
        assert not [name for name in os.listxattr(copy / inside) if name.startswith("trusted.")], inside
        acl = sh("getfacl", "--omit-header", str(copy / inside)).stdout
        assert acl == sh("getfacl", "--omit-header", str(top / inside)).stdout, inside
    assert "default:user:1234:r-x" in sh("getfacl", "--omit-header", str(copy)).stdout


def test_the_copy_plan_walks_only_towards_excluded_paths(tmp_path):
    top = tmp_path / "top"
    for directory in ("a/b/skip", "a/c", "d"):
        (top / directory).mkdir(parents=True)
    (top / "a" / "b" / "file").write_text("x")
    (top / "a" / "b" / "skipfile").write_text("x")
    (top / "e").write_text("x")

    plan = rootcopy.plan_file_copy(str(top), "/T", [str(top / "a/b/skip"), str(top / "a/b/skipfile")], True)

    assert plan.made == [
        (str(top / "a"), "/T/a"),
        (str(top / "a/b"), "/T/a/b"),
        (str(top / "a/b/skip"), "/T/a/b/skip"),
    ]
    assert plan.cp_runs == [
        ("/T", [str(top / "d"), str(top / "e")]),
        ("/T/a", [str(top / "a/c")]),
        ("/T/a/b", [str(top / "a/b/file")]),
    ]
    assert rootcopy.plan_file_copy(str(top), "/T", [], True).cp_runs == [
        ("/T", [str(top / name) for name in ("a", "d", "e")])
    ]


# ---- progress while the copy runs ---------------------------------------------------------------


def watch(progress: Path, copying: threading.Thread) -> list[dict]:
    """Every distinct state of the progress file while the copy thread runs, and the last one."""
    seen: list[dict] = []
    while True:
        alive = copying.is_alive()  # read once more after the thread ended: its last state
        try:
            state = json.loads(progress.read_text())  # never half a file: it is renamed into place
        except FileNotFoundError:
            state = None
        if state is not None and (not seen or state != seen[-1]):
            seen.append(state)
        if not alive:
            return seen
        time.sleep(0.002)


def in_thread(call) -> tuple[threading.Thread, list]:
    outcome: list = []

    def target() -> None:
        try:
            outcome.append(call())
        except Exception as exc:  # handed to the test, which fails with it
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def assert_rising(seen: list[dict], total: int, method: str) -> list[int]:
    running = [s["bytes_done"] for s in seen if s["state"] == "running"]
    assert running == sorted(running), "bytes_done never goes back"
    assert all(s["bytes_total"] == total and s["method"] == method for s in seen)
    assert len({s["started"] for s in seen}) == 1
    assert seen[-1]["state"] == "done" and seen[-1]["bytes_done"] == total and seen[-1]["percent"] == 100.0
    assert seen[-1]["eta_seconds"] is None and seen[-1]["error"] == ""
    return [done for done in running if 0 < done < total]


def test_progress_is_readable_while_a_block_copy_runs(lab, deadline):
    source, target = lab.device("source", 64, "ext4"), lab.device("target", 64)
    progress = lab.root / "progress.json"

    with deadline(120):
        copying, outcome = in_thread(
            lambda: rootcopy.block_copy(source, target, str(progress), chunk=256 << 10, interval=0)
        )
        seen = watch(progress, copying)
        copying.join()

    assert isinstance(outcome[0], rootcopy.CopyResult), outcome
    between = assert_rising(seen, 64 * MIB, "block")
    assert len(set(between)) >= 3, f"progress seen while copying: {between}"
    assert any(s["rate"] > 0 for s in seen if s["state"] == "running")


def test_progress_is_readable_while_a_file_copy_runs(lab, deadline):
    source, target = lab.device("source", 256, "ext4"), lab.device("target", 256, "ext4")
    top = lab.mount(source, "source")
    fill(top, 48, 3)
    lab.umount(top)
    top = lab.mount(source, "source")  # nothing of it in the page cache: the copy reads the device
    copy = lab.mount(target, "copy")
    progress = lab.root / "progress.json"
    total = rootcopy.used_bytes(str(top))

    with deadline(120):
        copying, outcome = in_thread(
            lambda: rootcopy.file_copy(run, str(top), str(copy), str(progress), interval=0.01)
        )
        seen = watch(progress, copying)
        copying.join()

    assert isinstance(outcome[0], rootcopy.CopyResult), outcome
    between = assert_rising(seen, total, "file")
    assert between, f"no progress seen between 0 and {total}: {seen}"


def test_a_failed_copy_says_so_in_the_progress_file(lab):
    source, target = lab.device("source", 16, "ext4"), lab.device("target", 16, "ext4")
    top, copy = lab.mount(source, "source"), lab.mount(target, "copy")
    (top / "big").write_bytes(os.urandom(MIB))
    progress = lab.root / "progress.json"

    def refusing(argv: list[str]) -> str:
        raise ToolError(f"{argv[0]} failed (exit 1): No space left on device")

    with pytest.raises(rootcopy.CopyError, match="No space left on device"):
        rootcopy.file_copy(refusing, str(top), str(copy), str(progress))
    state = json.loads(progress.read_text())
    assert state["state"] == "failed" and "No space left on device" in state["error"]


def test_a_target_held_by_another_opener_fails_the_block_copy_cleanly(lab):
    """O_EXCL: while another holds the target exclusively (a mount, a VG, another copy) nothing is written."""
    source, (target, before) = lab.device("source", 16, "ext4"), stamped(lab, "target", 16)
    progress = lab.root / "progress.json"
    holder = os.open(target, os.O_RDONLY | os.O_EXCL)
    try:
        with pytest.raises(rootcopy.CopyError, match=r"failed at byte 0 of .*nothing was copied"):
            rootcopy.block_copy(source, target, str(progress))
    finally:
        os.close(holder)
    state = json.loads(progress.read_text())
    assert state["state"] == "failed" and "Device or resource busy" in state["error"]
    assert sha256(target, MIB) == before


# ---- refusals: nothing is written ---------------------------------------------------------------


def test_a_smaller_target_is_refused_for_a_block_copy(lab):
    source = lab.device("source", 64, "ext4")
    target, before = stamped(lab, "target", 32)
    progress = lab.root / "progress.json"

    with pytest.raises(rootcopy.CopyError, match=r"is smaller than .*use a file copy \(method=file\)"):
        rootcopy.block_copy(source, target, str(progress))

    assert sha256(target, MIB) == before and not progress.exists()


def test_the_source_itself_is_refused_as_target(lab):
    source = lab.device("source", 64, "ext4")
    before = sha256(source)
    alias = str(lab.root / "alias")  # another node of the same device
    os.mknod(alias, 0o60600, os.stat(source).st_rdev)
    progress = lab.root / "progress.json"

    for target in (source, alias):
        with pytest.raises(rootcopy.CopyError, match="shares storage with it"):
            rootcopy.block_copy(source, target, str(progress))

    assert sha256(source) == before and not progress.exists()


def test_a_partition_of_the_source_disk_is_refused(lab):
    disk = lab.device("disk", 64)
    subprocess.run(
        ["sfdisk", "--quiet", disk], input="start=2048, size=32768\n", text=True, check=True, env=ENV
    )
    sh("partx", "--update", disk)  # sfdisk may have added it already: update adds what is missing
    name = os.path.basename(disk)
    major, minor = Path(f"/sys/class/block/{name}/{name}p1/dev").read_text().split(":")
    partition = str(lab.root / "partition")  # a node of our own: /dev may hold a stale one
    os.mknod(partition, 0o60600, os.makedev(int(major), int(minor)))

    with pytest.raises(rootcopy.CopyError, match="shares storage"):
        rootcopy.block_copy(partition, disk, str(lab.root / "progress.json"))
    assert rootcopy.overlapping(disk, partition) and not rootcopy.overlapping(
        partition, lab.device("other", 16)
    )


def test_a_source_mounted_read_write_is_refused(lab):
    source = lab.device("source", 64, "ext4")
    target, before = stamped(lab, "target", 64)
    top = lab.mount(source, "source")

    with pytest.raises(rootcopy.CopyError, match=f"mounted read-write on {top}: .*remount it read-only"):
        rootcopy.block_copy(source, target, str(lab.root / "progress.json"))
    assert sha256(target, MIB) == before


def test_a_mounted_target_is_refused(lab):
    source, target = lab.device("source", 64, "ext4"), lab.device("target", 64, "ext4")
    where = lab.mount(target, "target")

    with pytest.raises(rootcopy.CopyError, match=f"is mounted on {where}"):
        rootcopy.block_copy(source, target, str(lab.root / "progress.json"))
    with pytest.raises(rootcopy.CopyError, match=f"is mounted on {where}"):
        destination.prepare_target(run, target, "xfs", overwrite=True)
    with pytest.raises(rootcopy.CopyError, match="checked unmounted"):
        destination.check_copy(execute, target, "ext4")
    with pytest.raises(rootcopy.CopyError, match="grows it offline"):
        destination.grow(run, target, "ext4")


def test_a_target_holding_a_filesystem_needs_overwrite(lab):
    target = lab.device("target", 320, "ext4")
    uuid = uuid_of(target)

    with pytest.raises(rootcopy.CopyError, match=r"holds ext4: .*\(overwrite=true\)"):
        destination.prepare_target(run, target, "xfs")
    assert uuid_of(target) == uuid

    destination.prepare_target(run, target, "xfs", label="newroot", overwrite=True)
    assert sh("blkid", "--probe", "--match-tag", "TYPE", "--output", "value", target).stdout.strip() == "xfs"
    assert uuid_of(target) != uuid


def test_a_file_copy_into_a_filesystem_with_files_is_refused(lab):
    source, target = lab.device("source", 16, "ext4"), lab.device("target", 16, "ext4")
    top, copy = lab.mount(source, "source"), lab.mount(target, "copy")
    (copy / "precious").write_text("keep\n")

    with pytest.raises(rootcopy.CopyError, match=r"is not empty \(it holds precious\)"):
        rootcopy.file_copy(run, str(top), str(copy), str(lab.root / "progress.json"))
    assert (copy / "precious").read_text() == "keep\n"
    with pytest.raises(rootcopy.CopyError, match="is the source itself"):
        rootcopy.file_copy(run, str(top), str(top), str(lab.root / "progress.json"))
