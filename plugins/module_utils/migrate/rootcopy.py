# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copy a root filesystem to new storage, block for block or file by file, and make the copy whole.

A block copy reads the source device into the target in chunks (a dd in Python); a file copy runs
``cp`` over a fresh filesystem, keeping owners, modes, times, hard links, ACLs, xattrs and SELinux
labels. Both write their progress to a small JSON file, replaced atomically at most every second,
so that another process (an Ansible task polling an async job) can read it while the copy runs.
The copy is then checked (e2fsck, xfs_repair) and grown to the size of its device.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Callable, List, Tuple

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts, sysfs
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner

# (argv) -> (exit code, stdout, stderr) for tools whose exit code carries the answer (fsck).
Exec = Callable[[List[str]], Tuple[int, str, str]]

CHUNK = 4 << 20
# A block copy flushes the target this often, so that bytes_done counts bytes on the device rather
# than in the page cache, and the final fsync does not stall for minutes at 100%.
SYNC_EVERY = 64 << 20
PROGRESS_INTERVAL = 1.0  # seconds between two rewrites of the progress file

EXT_FSTYPES = ("ext2", "ext3", "ext4")
MKFS_FSTYPES = (*EXT_FSTYPES, "xfs")
# cp keeps what --preserve names and fails when it cannot (-a would ignore lost xattrs silently).
# Without "context" the SELinux label is copied as the raw security.selinux xattr, which works the
# same whether or not the rescuer runs SELinux.
CP_PRESERVE = "mode,ownership,timestamps,links,xattr"
# The names libattr's /etc/xattr.conf tells cp to skip: xfs shows its ACLs a second time as
# trusted.SGI_*, and the kernel alone writes security.evm.
SKIPPED_XATTRS = ("trusted.SGI_*", "xfsroot.*", "user.Beagle.*", "security.evm", "afs.*")
LOST_FOUND = "lost+found"  # mkfs.ext* creates it: an otherwise empty target is still empty
SHOWN_LINES = 20  # lines of a failing cp's complaints kept in the error message


class CopyError(LifelineError):
    """A copy step was refused or failed; the message says what, where, and what to do next."""


@dataclass
class CopyResult:
    """What a copy did; ``rate`` is the average in bytes per second."""

    method: str
    bytes_done: int
    bytes_total: int
    seconds: float

    @property
    def rate(self) -> int:
        return int(self.bytes_done / self.seconds) if self.seconds > 0 else 0

    def as_dict(self) -> dict:
        return {**asdict(self), "seconds": round(self.seconds, 3), "rate": self.rate}


# ---- progress -----------------------------------------------------------------------------------


class Progress:
    """The progress file of one copy, replaced atomically so that a reader never sees half of it.

    Its JSON: method, state (running, done, failed), bytes_done, bytes_total, percent, started and
    updated (Unix time), seconds, rate (bytes per second so far), eta_seconds (null when unknown)
    and error (a failed copy's message, else "").
    """

    def __init__(self, path: str, method: str, bytes_total: int, interval: float = PROGRESS_INTERVAL):
        self.path, self.method, self.bytes_total, self.interval = path, method, bytes_total, interval
        self.bytes_done = 0
        self.started = time.time()
        self._begun = time.monotonic()
        self._written = float("-inf")

    def start(self) -> None:
        """Write the first state; a progress file that cannot be written stops the copy before it begins."""
        try:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._write("running", "")
        except OSError as exc:
            raise CopyError(
                f"cannot write the progress file {self.path}: {exc.strerror or exc}; give a progress_path "
                "on a writable filesystem other than the one copied (/run)"
            ) from exc

    def update(self, done: int) -> None:
        """Record ``done`` bytes, writing the file when ``interval`` has passed since the last write."""
        self.bytes_done = done
        if time.monotonic() - self._written >= self.interval:
            self._write("running", "")

    def finish(self) -> None:
        self.bytes_done = self.bytes_total
        self._write("done", "")

    def fail(self, message: str) -> None:
        self._write("failed", message)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self._begun

    def snapshot(self, state: str, error: str = "") -> dict:
        seconds = self.seconds
        rate = int(self.bytes_done / seconds) if seconds > 0 else 0
        left = self.bytes_total - self.bytes_done
        return {
            "method": self.method,
            "state": state,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
            "percent": round(100 * self.bytes_done / self.bytes_total, 1) if self.bytes_total else 100.0,
            "started": round(self.started, 3),
            "updated": round(time.time(), 3),
            "seconds": round(seconds, 3),
            "rate": rate,
            "eta_seconds": round(left / rate, 1) if rate and state == "running" else None,
            "error": error,
        }

    def _write(self, state: str, error: str) -> None:
        directory = os.path.dirname(self.path) or "."
        fd, tmp = tempfile.mkstemp(prefix=".progress.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.snapshot(state, error), handle)
                handle.write("\n")
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide it from an unprivileged reader
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        self._written = time.monotonic()


# ---- devices ------------------------------------------------------------------------------------


def devno_of(path: str) -> tuple[int, int]:
    """The numbers of a block device; CopyError for anything else."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise CopyError(f"{path}: {exc.strerror}: give an existing block device") from exc
    if not stat.S_ISBLK(st.st_mode):
        raise CopyError(f"{path} is not a block device: give the device node (/dev/...)")
    return (os.major(st.st_rdev), os.minor(st.st_rdev))


def device_size(path: str) -> int:
    """Size of a block device in bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def mounts_of(path: str, mountinfo: str = "/proc/self/mountinfo") -> list[mounts.Mount]:
    """Where a block device is mounted, by its numbers or by its node as the mount source."""
    return mounts.mounts_of_devices(mounts.read_mountinfo(mountinfo), {devno_of(path)}, {path})


def _writable(mount: mounts.Mount) -> bool:
    """The superblock's flag decides: a read-only bind mount of a read-write filesystem is still written."""
    return "rw" in mount.super_options.split(",")


def refuse_mounted(path: str, why: str, mountinfo: str = "/proc/self/mountinfo") -> None:
    """CopyError naming where ``path`` is mounted, and ``why`` that is in the way, when it is mounted."""
    where = sorted({m.mount_point for m in mounts_of(path, mountinfo)})
    if where:
        raise CopyError(
            f"{path} is mounted on {', '.join(where)}: {why}; unmount it (umount {where[0]}) first"
        )


def overlapping(first: str, second: str, sys: str = "/sys") -> bool:
    """True when two block devices share storage: the same device, a disk and its partition, or a
    device built on the other (device-mapper, md)."""
    a, b = devno_of(first), devno_of(second)
    if a == b:
        return True
    info_a, info_b = sysfs.block_device(sys, a), sysfs.block_device(sys, b)
    if info_a is None or info_b is None:
        return False
    below_a, below_b = sysfs.devices_below(sys, info_a.name), sysfs.devices_below(sys, info_b.name)
    return info_a.name in below_b or info_b.name in below_a


# ---- block copy ---------------------------------------------------------------------------------


def _check_block_copy(source: str, target: str, mountinfo: str, sys: str) -> int:
    """The source's size, once every refusal has been ruled out."""
    if overlapping(source, target, sys):
        raise CopyError(
            f"{target} is {source} or shares storage with it: the copy would overwrite what it reads; "
            "give another target device"
        )
    writers = [m.mount_point for m in mounts_of(source, mountinfo) if _writable(m)]
    if writers:
        raise CopyError(
            f"{source} is mounted read-write on {', '.join(sorted(writers))}: a block copy of a filesystem "
            f"that is being written is not consistent; stop its writers and remount it read-only "
            f"(mount -o remount,ro {sorted(writers)[0]}) first"
        )
    refuse_mounted(target, "the copy would overwrite a filesystem in use", mountinfo)
    source_bytes, target_bytes = device_size(source), device_size(target)
    if target_bytes < source_bytes:
        raise CopyError(
            f"{target} ({target_bytes} bytes) is smaller than {source} ({source_bytes} bytes): a block copy "
            "needs a target at least as large; use a file copy (method=file) or a larger device"
        )
    return source_bytes


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def block_copy(
    source_device: str,
    target_device: str,
    progress_path: str,
    chunk: int = CHUNK,
    *,
    interval: float = PROGRESS_INTERVAL,
    mountinfo: str = "/proc/self/mountinfo",
    sys: str = "/sys",
) -> CopyResult:
    """Copy a whole device onto a target at least as large, writing progress to ``progress_path``.

    The source must be unmounted or mounted read-only (the caller remounts / read-only first); the
    target must not be mounted. The copy carries the source's filesystem UUID.
    """
    source_bytes = _check_block_copy(source_device, target_device, mountinfo, sys)
    progress = Progress(progress_path, "block", source_bytes, interval)
    progress.start()
    try:
        src = os.open(source_device, os.O_RDONLY | os.O_CLOEXEC)
        try:
            # O_EXCL on a block device: the kernel refuses it while the device is mounted or claimed,
            # and keeps anyone else from mounting it while the copy runs.
            dst = os.open(target_device, os.O_WRONLY | os.O_CLOEXEC | os.O_EXCL)
        except OSError:
            os.close(src)
            raise
        try:
            done = _copy_blocks(src, dst, source_bytes, chunk, progress)
        finally:
            os.close(dst)
            os.close(src)
    except OSError as exc:
        reached = progress.bytes_done
        message = (
            f"block copy {source_device} -> {target_device} failed at byte {reached} of {source_bytes}: "
            f"{exc.strerror or exc}; the source is unchanged, "
            + ("the target holds a partial copy" if reached else "nothing was copied")
        )
        progress.fail(message)
        raise CopyError(message) from exc
    if done != source_bytes:
        message = f"{source_device} ended at byte {done}, before its size {source_bytes}: the copy is short"
        progress.fail(message)
        raise CopyError(message)
    progress.finish()
    return CopyResult("block", done, source_bytes, progress.seconds)


def _copy_blocks(src: int, dst: int, total: int, chunk: int, progress: Progress) -> int:
    # Pages of the source cached before the remount may be stale (xfs writes its metadata past the
    # block device's page cache): drop them so that every byte is read from the device.
    os.posix_fadvise(src, 0, 0, os.POSIX_FADV_DONTNEED)
    os.posix_fadvise(src, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    buffer = bytearray(chunk)
    view = memoryview(buffer)
    done = synced = 0
    while done < total:
        count = os.readv(src, [view[: min(chunk, total - done)]])
        if count == 0:
            break
        _write_all(dst, view[:count])
        done += count
        if done - synced >= SYNC_EVERY:
            os.fdatasync(dst)
            # Written and read pages are not needed again: leave the cache to the rest of the host.
            os.posix_fadvise(dst, synced, done - synced, os.POSIX_FADV_DONTNEED)
            os.posix_fadvise(src, synced, done - synced, os.POSIX_FADV_DONTNEED)
            synced = done
        progress.update(done)
    os.fsync(dst)
    return done


# ---- file copy ----------------------------------------------------------------------------------


def used_bytes(path: str) -> int:
    """Bytes in use on the filesystem holding ``path`` (statvfs, as df counts them)."""
    vfs = os.statvfs(path)
    return (vfs.f_blocks - vfs.f_bfree) * vfs.f_frsize


@dataclass
class CopyPlan:
    """What a file copy runs: cp once per directory level, and directories made here.

    Only a directory on the way to an excluded path is walked here; everything else is one cp
    argument, so hard links are kept across all of it (cp tracks links within one run).
    """

    cp_runs: list[tuple[str, list[str]]] = field(default_factory=list)  # (target dir, source paths)
    made: list[tuple[str, str]] = field(default_factory=list)  # (source dir, target dir), parents first


def plan_file_copy(
    source_dir: str, target_dir: str, exclude: Iterable[str], one_file_system: bool
) -> CopyPlan:
    """The cp runs and directories of a copy of ``source_dir`` into ``target_dir``.

    An excluded directory, and with ``one_file_system`` a mount point, becomes an empty directory
    with its metadata, as cp --one-file-system does with a mount point below its arguments; an
    excluded file is left out.
    """
    source_dev = os.lstat(source_dir).st_dev
    skipped = {os.path.relpath(p, source_dir) for p in exclude}
    on_the_way = {os.path.dirname(rel) for rel in skipped}
    for rel in list(on_the_way):
        while rel:
            rel = os.path.dirname(rel)
            on_the_way.add(rel)
    plan = CopyPlan()
    todo = [""]
    while todo:
        rel = todo.pop(0)
        sources = []
        for name in sorted(os.listdir(os.path.join(source_dir, rel))):
            inside = os.path.join(rel, name)
            host = os.path.join(source_dir, inside)
            st = os.lstat(host)
            is_dir = stat.S_ISDIR(st.st_mode)
            foreign = is_dir and one_file_system and st.st_dev != source_dev
            if inside in skipped or foreign:
                if is_dir:
                    plan.made.append((host, os.path.join(target_dir, inside)))
            elif inside in on_the_way and is_dir:
                plan.made.append((host, os.path.join(target_dir, inside)))
                todo.append(inside)
            else:
                sources.append(host)
        if sources:
            plan.cp_runs.append((os.path.join(target_dir, rel) if rel else target_dir, sources))
    return plan


def cp_argv(target: str, sources: list[str], one_file_system: bool) -> list[str]:
    argv = ["cp", "--no-dereference", "--recursive", f"--preserve={CP_PRESERVE}"]
    if one_file_system:
        argv.append("--one-file-system")
    return [*argv, "--target-directory", target, "--", *sources]


def copy_metadata(source: str, target: str) -> None:
    """Owner, xattrs (ACLs and SELinux label among them), mode and times of a directory, in the order
    that keeps each: chown clears set-id bits, and a later write inside would change the times."""
    st = os.lstat(source)
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    for name in os.listxattr(source, follow_symlinks=False):
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in SKIPPED_XATTRS):
            continue
        os.setxattr(target, name, os.getxattr(source, name, follow_symlinks=False), follow_symlinks=False)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _check_file_copy(source_dir: str, target_dir: str, exclude: list[str]) -> None:
    for path, what in ((source_dir, "source"), (target_dir, "target")):
        if not os.path.isdir(path):
            raise CopyError(f"the {what} {path} is not a directory")
    if os.path.samefile(source_dir, target_dir):
        raise CopyError(
            f"the target {target_dir} is the source itself: give the mount point of the new filesystem"
        )
    inside = mounts.is_under(target_dir, source_dir)
    same_fs = os.stat(target_dir).st_dev == os.stat(source_dir).st_dev
    if inside and same_fs and not any(mounts.is_under(target_dir, p) for p in exclude):
        raise CopyError(
            f"the target {target_dir} is inside the source {source_dir} on the same filesystem: the copy "
            "would copy itself; mount the target filesystem there or exclude it"
        )
    for path in exclude:
        if not mounts.is_under(path, source_dir) or path == source_dir:
            raise CopyError(f"exclude {path} is not a path inside the source {source_dir}")
    found = [name for name in os.listdir(target_dir) if name != LOST_FOUND]
    if found:
        raise CopyError(
            f"the target {target_dir} is not empty (it holds {', '.join(sorted(found)[:5])}): "
            "give the mount point of a fresh filesystem (prepare_target)"
        )


def file_copy(
    run: Runner,
    source_dir: str,
    target_dir: str,
    progress_path: str,
    one_file_system: bool = True,
    *,
    exclude: Iterable[str] = (),
    interval: float = PROGRESS_INTERVAL,
    total: int | None = None,
) -> CopyResult:
    """Copy the files of ``source_dir`` into the (empty) ``target_dir`` with cp, keeping owners, modes,
    times, hard links, symlinks, device nodes, FIFOs, sparse files, ACLs, xattrs and SELinux labels.

    Progress is the target filesystem's used bytes (less what it used before) against the source
    filesystem's used bytes (or ``total``, when the caller counted them otherwise); it is an estimate
    until the copy ends, and then bytes_done = bytes_total.
    Hard links between files on either side of an excluded path's parent directories are the one
    thing an exclude can split (cp runs once per such directory).
    """
    source_dir, target_dir = os.path.realpath(source_dir), os.path.realpath(target_dir)
    excluded = [os.path.normpath(os.path.join(source_dir, p)) for p in exclude]
    _check_file_copy(source_dir, target_dir, excluded)
    plan = plan_file_copy(source_dir, target_dir, excluded, one_file_system)
    total = used_bytes(source_dir) if total is None else total
    baseline = used_bytes(target_dir)
    progress = Progress(progress_path, "file", total, interval)
    progress.start()
    try:
        for _source, target in plan.made:
            os.makedirs(target, 0o700, exist_ok=True)  # lost+found may be there already
        _run_watched(
            lambda: [run(cp_argv(target, sources, one_file_system)) for target, sources in plan.cp_runs],
            lambda: progress.update(min(total, max(0, used_bytes(target_dir) - baseline))),
            interval,
        )
        # Deepest first, the top last: setting a directory's times must come after writing inside it.
        for source, target in [*reversed(plan.made), (source_dir, target_dir)]:
            copy_metadata(source, target)
    except (OSError, LifelineError) as exc:
        message = f"file copy {source_dir} -> {target_dir} failed: {_shortened(str(exc))}"
        progress.fail(message)
        raise CopyError(message) from exc
    progress.finish()
    return CopyResult("file", total, total, progress.seconds)


def _run_watched(work: Callable[[], object], tick: Callable[[], None], interval: float) -> None:
    """Run ``work`` in a thread, calling ``tick`` every ``interval`` until it ends; raise its error here."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller's thread, which reports it
            errors.append(exc)

    worker = threading.Thread(target=target, name="file-copy", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(max(interval, 0.01))
        tick()
    if errors:
        raise errors[0]


def _shortened(text: str) -> str:
    lines = text.splitlines()
    if len(lines) <= SHOWN_LINES:
        return text
    return "\n".join([*lines[:SHOWN_LINES], f"... ({len(lines) - SHOWN_LINES} more lines)"])
