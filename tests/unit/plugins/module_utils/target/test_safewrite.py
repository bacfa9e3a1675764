"""safewrite: atomic writes and links, backups and refusals inside a target root, and what a crash in
the middle of a write leaves behind (the old file, and nothing else)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.target import safewrite
from ansible_collections.lifeline.rescue.plugins.module_utils.target.safewrite import WriteError


def entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# ---- write_file -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "uid", "gid"),
    [(0o100644, 0, 0), (0o100755, 1234, 5678), (0o104755, 0, 0), (0o600, 65534, 42), (0o2750, 7, 8)],
    ids=["644 root", "755 other owner", "setuid 4755", "600 nobody", "setgid 2750"],
)
def test_write_file_replaces_the_file_atomically_with_the_mode_and_owner_given(tmp_path, mode, uid, gid):
    target = tmp_path / "libc.so.6"
    target.write_bytes(b"old content")
    old_inode = target.stat().st_ino
    with open(target, "rb") as reader:
        safewrite.write_file(str(target), b"new" * 100_000, mode, uid, gid)
        # A reader of the old file keeps the old file: the new one came in by rename, not by rewrite.
        assert reader.read() == b"old content"
    st = target.stat()
    assert target.read_bytes() == b"new" * 100_000
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (stat.S_IMODE(mode), uid, gid)
    assert st.st_ino != old_inode
    assert entries(tmp_path) == ["libc.so.6"]


def test_write_file_makes_a_file_that_was_missing(tmp_path):
    safewrite.write_file(str(tmp_path / "libm.so.6"), b"\x7fELF", 0o644, 0, 0)
    assert (tmp_path / "libm.so.6").read_bytes() == b"\x7fELF"
    assert entries(tmp_path) == ["libm.so.6"]


def test_write_file_replaces_a_link_and_never_writes_through_it(tmp_path):
    (tmp_path / "elsewhere").write_bytes(b"not to be touched")
    os.symlink("elsewhere", tmp_path / "libc.so.6")
    safewrite.write_file(str(tmp_path / "libc.so.6"), b"restored", 0o755, 0, 0)
    assert not (tmp_path / "libc.so.6").is_symlink()
    assert (tmp_path / "libc.so.6").read_bytes() == b"restored"
    assert (tmp_path / "elsewhere").read_bytes() == b"not to be touched"


# ---- write_link -------------------------------------------------------------------------------


@pytest.mark.parametrize("before", ["file", "link", "dangling link", "nothing"])
def test_write_link_replaces_whatever_was_there(tmp_path, before):
    (tmp_path / "libc-2.31.so").write_bytes(b"the real file")
    link = tmp_path / "libc.so.6"
    if before == "file":
        link.write_bytes(b"a foreign libc")
    elif before == "link":
        os.symlink("/opt/glibc-2.14/lib/libc.so.6", link)
    elif before == "dangling link":
        os.symlink("libc-gone.so", link)
    safewrite.write_link(str(link), "libc-2.31.so")
    assert os.readlink(link) == "libc-2.31.so"
    assert link.read_bytes() == b"the real file"
    assert entries(tmp_path) == ["libc-2.31.so", "libc.so.6"]


# ---- a crash in the middle of a write ---------------------------------------------------------


@pytest.fixture
def crash(monkeypatch) -> Callable[[str, BaseException], None]:
    """crash(name, exception): from now on os.<name> raises ``exception`` (monkeypatch puts it back)."""

    def arm(name: str, exception: BaseException) -> None:
        def fail(*args, **kwargs):
            raise exception

        monkeypatch.setattr(os, name, fail)

    return arm


EXCEPTIONS = {
    "EIO": OSError(errno.EIO, "Input/output error"),
    "ENOSPC": OSError(errno.ENOSPC, "No space left on device"),
    "interrupted": KeyboardInterrupt(),
}


@pytest.mark.parametrize("step", ["write", "fchown", "fsync", "rename"])
@pytest.mark.parametrize("exception", EXCEPTIONS)
def test_a_crash_mid_write_leaves_the_old_file_and_no_temporary_file(tmp_path, crash, step, exception):
    target = tmp_path / "libc.so.6"
    target.write_bytes(b"old content")
    os.chmod(target, 0o755)
    before = target.stat()
    crash(step, EXCEPTIONS[exception])
    with pytest.raises(type(EXCEPTIONS[exception])):
        safewrite.write_file(str(target), b"new content", 0o644, 0, 0)
    after = target.stat()
    assert target.read_bytes() == b"old content"
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert entries(tmp_path) == ["libc.so.6"]


@pytest.mark.parametrize("exception", EXCEPTIONS)
def test_a_crash_while_linking_leaves_the_old_link_and_no_temporary_link(tmp_path, crash, exception):
    os.symlink("/opt/glibc-2.14/lib/libc.so.6", tmp_path / "libc.so.6")
    crash("rename", EXCEPTIONS[exception])
    with pytest.raises(type(EXCEPTIONS[exception])):
        safewrite.write_link(str(tmp_path / "libc.so.6"), "libc-2.31.so")
    assert os.readlink(tmp_path / "libc.so.6") == "/opt/glibc-2.14/lib/libc.so.6"
    assert entries(tmp_path) == ["libc.so.6"]


# ---- backups ----------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path) -> Path:
    """A small root: /lib -> usr/lib (merged /usr), /lib64 -> /usr/lib64 (absolute, inside the root)."""
    root = tmp_path / "root"
    for name in ("usr/lib/x86_64-linux-gnu", "usr/lib64", "etc"):
        (root / name).mkdir(parents=True)
    os.symlink("usr/lib", root / "lib")
    os.symlink("/usr/lib64", root / "lib64")
    return root


def test_backup_of_a_file_keeps_content_mode_owner_and_time(root):
    libc = root / "usr/lib/x86_64-linux-gnu/libc.so.6"
    libc.write_bytes(b"\x7fELF the file")
    os.chown(libc, 1234, 5678)
    os.chmod(libc, 0o4711)  # after chown, which clears setuid
    os.utime(libc, ns=(1_000_000_000, 1_500_000_000))
    run = safewrite.backup_dir_for(str(root), "/var/backups/lifeline", stamp="20260101T000000")

    saved = safewrite.backup(str(root), "/lib/x86_64-linux-gnu/libc.so.6", run)

    assert saved == "/var/backups/lifeline/20260101T000000/lib/x86_64-linux-gnu/libc.so.6"
    copy = root / saved[1:]
    st = copy.lstat()
    assert copy.read_bytes() == b"\x7fELF the file"
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == (
        0o4711,
        1234,
        5678,
        1_500_000_000,
    )
    assert stat.S_IMODE((root / "var/backups/lifeline/20260101T000000").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "target", ["libc-2.31.so", "/opt/glibc-2.14/lib/libc.so.6", "../../../../etc/passwd"]
)
def test_backup_of_a_link_is_the_link_itself(root, target):
    os.symlink(target, root / "usr/lib/x86_64-linux-gnu/libc.so.6")
    run = safewrite.backup_dir_for(str(root), "/var/backups/lifeline", stamp="s")
    saved = safewrite.backup(str(root), "/lib/x86_64-linux-gnu/libc.so.6", run)
    assert os.readlink(root / saved[1:]) == target


def test_backup_of_nothing_and_of_a_directory(root):
    run = safewrite.backup_dir_for(str(root), "/var/backups/lifeline", stamp="s")
    assert safewrite.backup(str(root), "/lib/x86_64-linux-gnu/libgone.so.1", run) == ""
    with pytest.raises(WriteError, match="is neither a file nor a link; not replaced"):
        safewrite.backup(str(root), "/lib/x86_64-linux-gnu", run)


def test_a_path_backed_up_twice_in_one_run_keeps_the_first_copy(root):
    conf = root / "etc/environment"
    conf.write_bytes(b"as it was\n")
    run = safewrite.backup_dir_for(str(root), "/var/backups/lifeline", stamp="s")
    first = safewrite.backup(str(root), "/etc/environment", run)
    conf.write_bytes(b"changed once\n")
    assert safewrite.backup(str(root), "/etc/environment", run) == first
    assert (root / first[1:]).read_bytes() == b"as it was\n"


def test_the_backup_directory_stays_inside_the_root(root):
    os.symlink("/srv/backups", root / "backups")
    assert safewrite.backup_dir_for(str(root), "/backups", stamp="s") == str(root / "srv/backups/s")
    with pytest.raises(WriteError, match="leads out of"):
        safewrite.backup_dir_for(str(root), "/../../../tmp", stamp="s")


# ---- paths and refusals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "host"),
    [
        ("/lib/x86_64-linux-gnu/libc.so.6", "usr/lib/x86_64-linux-gnu/libc.so.6"),
        # An absolute parent link leads within the root, never to the rescuer's /usr/lib64.
        ("/lib64/ld-linux-x86-64.so.2", "usr/lib64/ld-linux-x86-64.so.2"),
        # The last component is never followed: a link there is replaced, not written through.
        ("/etc/passwd-link", "etc/passwd-link"),
        # As in a chroot, ".." after a link is the parent of where the link led: /usr/etc here.
        ("lib/../etc/environment", "usr/etc/environment"),
    ],
)
def test_host_path_resolves_inside_the_root(root, path, host):
    os.symlink("/etc/passwd", root / "etc/passwd-link")
    assert safewrite.host_path(str(root), path) == str(root / host)


@pytest.mark.parametrize(
    "path", ["/../../etc/passwd", "/climb/etc/passwd", "/usr/lib/../../../etc/shadow"], ids=str
)
def test_host_path_refuses_a_path_leading_out_of_the_root(root, path):
    os.symlink("../../../../../../..", root / "climb")
    with pytest.raises(WriteError, match=r"leads out of the root .*; not written"):
        safewrite.host_path(str(root), path)


@pytest.fixture
def read_only_dir(tmp_path) -> Iterator[Path]:
    where = tmp_path / "ro"
    where.mkdir()
    (where / "libc.so.6").write_bytes(b"old")
    subprocess.run(["mount", "--bind", str(where), str(where)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", str(where)], check=True)


def test_refuse_read_only(tmp_path, read_only_dir):
    safewrite.refuse_read_only(str(tmp_path))  # writable: nothing to say
    for path in (read_only_dir, read_only_dir / "libc.so.6", read_only_dir / "missing"):
        with pytest.raises(WriteError) as refused:
            safewrite.refuse_read_only(str(path))
        assert str(refused.value) == (
            f"{read_only_dir} is on a read-only filesystem: remount it read-write "
            "(mount -o remount,rw <its mount point>) and run again"
        )
    with pytest.raises(WriteError, match="No such file or directory"):
        safewrite.refuse_read_only(str(tmp_path / "no" / "such" / "dir"))


def test_writes_to_a_read_only_directory_are_refused_before_anything_is_made(read_only_dir):
    with pytest.raises(WriteError, match="read-only filesystem: remount it read-write"):
        safewrite.write_file(str(read_only_dir / "libc.so.6"), b"new", 0o644, 0, 0)
    with pytest.raises(WriteError, match="read-only filesystem: remount it read-write"):
        safewrite.write_link(str(read_only_dir / "libc.so.6"), "libc-2.31.so")
    assert (read_only_dir / "libc.so.6").read_bytes() == b"old"
    assert entries(read_only_dir) == ["libc.so.6"]


# ---- locked, replace_if_unchanged -----------------------------------------------------------------


def test_replace_if_unchanged_writes_when_the_file_holds_what_was_read(tmp_path):
    target = tmp_path / "crontab"
    target.write_bytes(b"* * * * * root true\n\0\0\0")
    safewrite.replace_if_unchanged(
        str(target), b"* * * * * root true\n\0\0\0", b"* * * * * root true\n", 0o644, 0, 0
    )
    assert target.read_bytes() == b"* * * * * root true\n"
    assert entries(tmp_path) == ["crontab"]


@pytest.mark.parametrize(
    "now",
    [b"* * * * * root true\n\0\0\0*/3 * * * * root /tmp/.x\n", b"* * * * * root true\n", b""],
    ids=["grown by a writer", "rewritten by a writer", "emptied by a writer"],
)
def test_replace_if_unchanged_refuses_when_a_concurrent_writer_changed_the_file(tmp_path, now):
    target = tmp_path / "crontab"
    target.write_bytes(now)
    with pytest.raises(WriteError, match="changed while it was being repaired"):
        safewrite.replace_if_unchanged(
            str(target), b"* * * * * root true\n\0\0\0", b"repaired\n", 0o644, 0, 0
        )
    assert target.read_bytes() == now
    assert entries(tmp_path) == ["crontab"]


def test_locked_waits_for_a_writer_holding_flock_and_gives_up_with_a_clear_error(tmp_path):
    target = tmp_path / "crontab"
    target.write_bytes(b"old\n")
    holder = subprocess.Popen(["flock", str(target), "sleep", "3"])
    try:
        for _ in range(100):  # wait until flock(1) holds the lock
            probe = subprocess.run(["flock", "-n", str(target), "true"], check=False)
            if probe.returncode != 0:
                break
            time.sleep(0.02)
        with (
            pytest.raises(WriteError, match="locked by another writer"),
            safewrite.locked(str(target), timeout=0.3),
        ):
            pass
        holder.wait(timeout=10)
        with safewrite.locked(str(target), timeout=5):
            # While lifeline holds it, flock(1) in non-blocking mode is refused.
            assert subprocess.run(["flock", "-n", str(target), "true"], check=False).returncode == 1
    finally:
        holder.kill()
        holder.wait()
    assert target.read_bytes() == b"old\n"


def test_write_file_keeps_the_selinux_label_of_the_file_it_replaces(tmp_path):
    target = tmp_path / "crontab"
    target.write_bytes(b"old\n")
    label = b"system_u:object_r:system_cron_spool_t:s0\0"
    os.setxattr(target, "security.selinux", label)
    safewrite.replace_if_unchanged(str(target), b"old\n", b"new\n", 0o644, 0, 0)
    assert target.read_bytes() == b"new\n"
    assert os.getxattr(target, "security.selinux") == label


# ---- the compare-and-swap tells a changed file from a path that is not the file read -------------


def test_replace_if_unchanged_never_writes_through_a_link_and_claims_no_other_writer(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.write_bytes(b"root:*:19700:0:99999:7:::\n")
    link = tmp_path / "evil"
    link.symlink_to("shadow")
    inode = shadow.stat().st_ino
    with pytest.raises(WriteError) as refused:
        safewrite.replace_if_unchanged(
            str(link),
            shadow.read_bytes(),
            b"# commented\n",
            0o640,
            0,
            0,
            read_from=safewrite.ReadFrom.of(str(shadow)),
        )
    message = str(refused.value)
    assert "symbolic link to shadow" in message and "no other writer" in message
    assert "another writer is active" not in message
    assert shadow.read_bytes() == b"root:*:19700:0:99999:7:::\n" and shadow.stat().st_ino == inode
    assert link.is_symlink() and os.readlink(link) == "shadow"


def test_replace_if_unchanged_refuses_a_path_other_than_the_one_read(tmp_path):
    read = tmp_path / "read"
    written = tmp_path / "written"
    for path in (read, written):
        path.write_bytes(b"0 1 * * * root true\n")
    with pytest.raises(WriteError, match="is not the file that was read") as refused:
        safewrite.replace_if_unchanged(
            str(written),
            b"0 1 * * * root true\n",
            b"new\n",
            0o644,
            0,
            0,
            read_from=safewrite.ReadFrom.of(str(read)),
        )
    assert "another writer" not in str(refused.value)
    assert written.read_bytes() == read.read_bytes() == b"0 1 * * * root true\n"


def test_replace_if_unchanged_names_another_writer_that_replaced_the_file_with_the_same_bytes(tmp_path):
    target = tmp_path / "crontab"
    target.write_bytes(b"0 1 * * * root true\n")
    read_from = safewrite.ReadFrom.of(str(target))
    replacement = tmp_path / "new"
    replacement.write_bytes(b"0 1 * * * root true\n")
    replacement.rename(target)  # an editor's or a package manager's save: a new inode, same bytes
    with pytest.raises(WriteError, match="replaced by another file while it was being repaired") as refused:
        safewrite.replace_if_unchanged(
            str(target), b"0 1 * * * root true\n", b"new\n", 0o644, 0, 0, read_from=read_from
        )
    assert "another writer is active" in str(refused.value)
    assert target.read_bytes() == b"0 1 * * * root true\n"


def test_replace_if_unchanged_with_the_file_read_writes_it(tmp_path):
    target = tmp_path / "crontab"
    target.write_bytes(b"old\n")
    safewrite.replace_if_unchanged(
        str(target), b"old\n", b"new\n", 0o644, 0, 0, read_from=safewrite.ReadFrom.of(str(target))
    )
    assert target.read_bytes() == b"new\n"
