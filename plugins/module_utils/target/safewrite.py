# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Change files inside a target root so that no failure leaves a half-written file behind.

Every write goes to a temporary file in the same directory, is flushed to disk and renamed over
the old name, so a reader (or a crash) sees the old file or the new one, never a mix. What is
replaced is first copied into a backup directory inside the same root, path for path.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs


class WriteError(LifelineError):
    """A file in the target cannot be changed safely; the message says where and what to do."""


def host_path(root: str, path: str) -> str:
    """The rescuer's path of ``path`` in the root: its directory resolved inside the root, its last
    component not followed (a link is replaced, never written through)."""
    where = rootfs.resolve(root, path, follow_last=False)
    if where.escaped:
        raise WriteError(f"{path} in {root} leads out of the root ({'; '.join(where.links)}); not written")
    return where.host


def refuse_read_only(host: str) -> None:
    directory = host if os.path.isdir(host) else os.path.dirname(host)
    try:
        flags = os.statvfs(directory).f_flag
    except OSError as exc:
        raise WriteError(f"{directory}: {exc.strerror}") from exc
    if flags & os.ST_RDONLY:
        raise WriteError(
            f"{directory} is on a read-only filesystem: remount it read-write "
            f"(mount -o remount,rw <its mount point>) and run again"
        )


def sync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_name(host: str) -> str:
    """A fresh name beside ``host``: a temporary file left by a killed run never blocks this one."""
    return os.path.join(
        os.path.dirname(host), f".{os.path.basename(host)}.lifeline-{os.getpid()}-{os.urandom(4).hex()}"
    )


# Labels a replaced file keeps: a crontab without its SELinux type is refused by crond on an
# enforcing host, and the file the repair writes must stay what the policy expects there.
KEPT_XATTRS = ("security.selinux",)


def _labels_of(host: str) -> dict[str, bytes]:
    labels = {}
    if os.path.isfile(host) and not os.path.islink(host):
        for name in KEPT_XATTRS:
            try:
                labels[name] = os.getxattr(host, name, follow_symlinks=False)
            except OSError:
                continue  # no label, or a filesystem without extended attributes
    return labels


def write_file(host: str, data: bytes, mode: int, uid: int, gid: int) -> None:
    """Replace ``host`` atomically with ``data``, owned by uid:gid with ``mode``, keeping the SELinux
    label of the file it replaces."""
    directory = os.path.dirname(host)
    refuse_read_only(directory)
    labels = _labels_of(host)
    tmp = _temp_name(host)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchown(fd, uid, gid)
        os.fchmod(fd, stat.S_IMODE(mode))
        for name, value in labels.items():
            os.setxattr(fd, name, value)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    _replace(tmp, host)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def locked(host: str, timeout: float = 30.0) -> Iterator[None]:
    """Hold an exclusive flock(2) on ``host`` (its directory when the file is missing) while a change
    is made: a writer that locks the file too (flock(1), editors, cron's own crontab tools) waits.

    Raises WriteError when the lock is not granted within ``timeout`` seconds.
    """
    target = host if os.path.lexists(host) and not os.path.islink(host) else os.path.dirname(host)
    fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WriteError(
                        f"{host} is locked by another writer for more than {timeout:g} s; nothing was "
                        "changed: find it (fuser -v the file) and run again when it is done"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@dataclass(frozen=True)
class ReadFrom:
    """The file a repair read its bytes from: its path on the rescuer (links resolved inside the
    root) and its inode. The compare-and-swap needs it to tell a file that changed while the repair
    worked from a path that never was the file read (a link, a path resolving elsewhere)."""

    host: str
    device: int
    inode: int

    @classmethod
    def of(cls, host: str) -> ReadFrom:
        st = os.lstat(host)
        return cls(host, st.st_dev, st.st_ino)


def refuse_another_file(host: str, read_from: ReadFrom | None = None) -> os.stat_result:
    """The inode at ``host`` (never followed), or WriteError when it is not the file that was read.

    "Not the file read" is no other writer's doing: ``host`` is a symbolic link (what was read came
    from the file it leads to, and a link is never written through), or ``read_from`` names another
    path. A different inode at the same path is another writer's: it replaced the file meanwhile.
    """
    try:
        st = os.lstat(host)
    except OSError as exc:
        raise WriteError(f"{host}: {exc.strerror}; nothing was changed") from exc
    if stat.S_ISLNK(st.st_mode):
        raise WriteError(
            f"{host} is a symbolic link to {os.readlink(host)}: what was read came from the file it leads "
            "to, not from this path, and a file is never rewritten through a link; nothing was changed "
            "(no other writer is involved): look at where the link leads and remove the link if it "
            "does not belong there"
        )
    if read_from is not None and os.path.normpath(read_from.host) != os.path.normpath(host):
        raise WriteError(
            f"{host} is not the file that was read ({read_from.host}, which the path resolved to); a "
            "file is only rewritten at the path it was read from; nothing was changed (no other writer "
            "is involved)"
        )
    if read_from is not None and (st.st_dev, st.st_ino) != (read_from.device, read_from.inode):
        raise WriteError(
            f"{host} was replaced by another file while it was being repaired (another writer is "
            f"active: inode {read_from.inode} read, {st.st_ino} now); nothing was changed: stop the "
            "other writer and run again"
        )
    return st


def replace_if_unchanged(
    host: str,
    expected: bytes,
    data: bytes,
    mode: int,
    uid: int,
    gid: int,
    *,
    read_from: ReadFrom | None = None,
) -> None:
    """Replace ``host`` with ``data`` only if it is still the file that was read (``read_from``:
    same path, same inode) and still holds ``expected``, under the file's lock.

    The content is compared again after the lock is taken, so a concurrent writer can neither
    interleave with this write nor have its own write silently overwritten: WriteError instead,
    which claims another writer only when the file itself changed; a path that is a link or that is
    not the file read is refused as such.
    """
    with locked(host):
        refuse_another_file(host, read_from)
        try:
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise WriteError(f"{host}: {exc.strerror}; nothing was changed") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise WriteError(f"{host} is not a regular file; nothing was changed")
            with os.fdopen(os.dup(fd), "rb") as current:
                now = current.read(len(expected) + 1)
        finally:
            os.close(fd)
        if now != expected:
            raise WriteError(
                f"{host} changed while it was being repaired (another writer is active: sha256 "
                f"{sha256_of(expected)[:12]} read, {sha256_of(now)[:12]} now); nothing was changed: "
                "stop the other writer and run again"
            )
        write_file(host, data, mode, uid, gid)


def write_link(host: str, target: str) -> None:
    """Make ``host`` a symbolic link to ``target`` atomically (whatever it was before)."""
    directory = os.path.dirname(host)
    refuse_read_only(directory)
    tmp = _temp_name(host)
    os.symlink(target, tmp)
    _replace(tmp, host)


def _replace(tmp: str, host: str) -> None:
    """Rename ``tmp`` over ``host`` and flush the directory; a failed rename leaves no ``tmp`` behind."""
    try:
        os.rename(tmp, host)
    except BaseException:
        os.unlink(tmp)
        raise
    sync_dir(os.path.dirname(host))


def run_stamp() -> str:
    """The name of one run's backup or quarantine directory: the UTC time, sortable."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def backup_dir_for(root: str, backup_dir: str, stamp: str | None = None) -> str:
    """A new directory for this run's backups under ``backup_dir`` inside the root (created)."""
    where = rootfs.resolve(root, backup_dir)
    if where.escaped:
        raise WriteError(f"the backup directory {backup_dir} leads out of {root}; choose another")
    run = os.path.join(where.host, stamp or run_stamp())
    os.makedirs(run, mode=0o700, exist_ok=True)
    return run


def backup(root: str, path: str, run_dir: str) -> str:
    """Copy what is at ``path`` (a file, or a link as a link) into ``run_dir``; '' when nothing is there.

    Returns the backup's path as seen inside the root.
    """
    host = host_path(root, path)
    if not os.path.lexists(host):
        return ""
    dest = os.path.join(run_dir, path.lstrip("/"))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if os.path.lexists(dest):
        # Changed twice in one run (two lines of one file): the first backup holds it as it was.
        return "/" + os.path.relpath(dest, os.path.abspath(root))
    if os.path.islink(host):
        os.symlink(os.readlink(host), dest)
    elif os.path.isfile(host):
        shutil.copy2(host, dest, follow_symlinks=False)
        st = os.lstat(host)
        os.chown(dest, st.st_uid, st.st_gid)
        os.chmod(dest, stat.S_IMODE(st.st_mode))  # chown cleared setuid and setgid
    else:
        raise WriteError(f"{path} in {root} is neither a file nor a link; not replaced")
    return "/" + os.path.relpath(dest, os.path.abspath(root))
