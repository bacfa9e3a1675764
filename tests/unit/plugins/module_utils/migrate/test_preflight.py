"""preflight: fixture /proc, /sys and mount tables as data tables, then the real kernel finding processes
this test starts (a writer, a holder of a deleted file, a deleted program)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts, procfs
from ansible_collections.lifeline.rescue.plugins.module_utils.host.procfs import Process
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import preflight
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate.findings import Finding, Target
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate.preflight import Host

pytest_plugins = ("support.processes",)

GIB = 1 << 30
MIB = 1 << 20
# fdinfo shows f_flags in octal; 0100000 is O_LARGEFILE, which every 64-bit open carries.
RDONLY, WRONLY, RDWR, APPEND = "0100000", "0100001", "0100002", "0102001"

# A host whose / is /dev/sda1 (8:1), the first of the two disks; sdb is free and twice as large.
BASE_MOUNTS = [
    "21 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro",
    "22 21 0:20 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw",
    "23 21 0:21 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw",
    "24 21 0:5 / /dev rw,nosuid,relatime - devtmpfs udev rw,size=1000k",
    "25 24 0:23 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,mode=600",
    "26 21 0:22 / /run rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,size=200k",
]
ROOT_ID = 21


@dataclass(frozen=True)
class FixtureHost(Host):
    """A Host whose loop devices' backings are given: the kernel's answer, which a tree cannot give."""

    backings: dict = field(default_factory=dict)

    def loop_backing(self, name: str, devno: tuple[int, int]) -> tuple[int, int] | None:
        return self.backings.get(name)


class FakeHost:
    """A /proc, /sys and /dev tree under tmp_path that preflight reads the way it reads the kernel's."""

    def __init__(self, top: Path):
        self.proc, self.sys, self.dev = top / "proc", top / "sys", top / "dev"
        self.systemd_run = top / "run" / "systemd" / "system"
        for directory in (
            self.proc / "self",
            self.proc / "net",
            self.sys / "block",
            self.dev,
            self.systemd_run,
        ):
            directory.mkdir(parents=True)
        self.mounts = list(BASE_MOUNTS)
        self.systemctl = True
        self.meminfo(2 * GIB)
        self.unix: list[str] = []
        self.swaps: list[str] = []
        self.backings: dict[str, tuple[int, int]] = {}
        self.block("sda", (8, 0), 20 * GIB)
        self.block("sda1", (8, 1), 10 * GIB, parent="sda")
        self.block("sda2", (8, 2), 10 * GIB, parent="sda")
        self.block("sdb", (8, 16), 20 * GIB)
        self.process(1, "systemd", "/usr/lib/systemd/systemd", cgroup="0::/init.scope\n")
        self.process(500, "sshd", "/usr/sbin/sshd", unit="ssh.service")

    def process(
        self,
        pid: int,
        comm: str,
        exe: str,
        *,
        unit: str = "",
        cgroup: str | None = None,
        maps: tuple[tuple[str, str], ...] = (),
        fds: dict[int, tuple[str, str, int]] | None = None,
        root: str = "/",
    ) -> FakeHost:
        """A process; ``maps`` are (dev, path) besides its program, ``fds`` fd: (target, flags, mnt_id)."""
        base = self.proc / str(pid)
        shutil.rmtree(base, ignore_errors=True)
        (base / "fd").mkdir(parents=True)
        (base / "fdinfo").mkdir()
        (base / "comm").write_text(comm + "\n")
        (base / "root").symlink_to(root)
        if cgroup is None:
            cgroup = f"0::/system.slice/{unit}\n" if unit else "0::/user.slice\n"
        (base / "cgroup").write_text(cgroup)
        lines = [(f"08:01 {1000 + pid}", exe)] if exe else []
        lines += [(f"{dev} {2000 + n}", path) for n, (dev, path) in enumerate(maps)]
        lines.append(("00:00 0", "[heap]"))
        (base / "maps").write_text(
            "".join(
                f"7f00{n:08x}000-7f00{n:08x}fff r-xp 00000000 {where}          {path}\n"
                for n, (where, path) in enumerate(lines)
            )
        )
        if exe:  # a kernel thread has no program
            (base / "exe").symlink_to(exe)
        for fd, (target, flags, mnt_id) in (fds or {}).items():
            (base / "fd" / str(fd)).symlink_to(target)
            (base / "fdinfo" / str(fd)).write_text(
                f"pos:\t0\nflags:\t{flags}\nmnt_id:\t{mnt_id}\nino:\t{fd}\n"
            )
        return self

    def block(
        self,
        name: str,
        devno: tuple[int, int],
        size: int,
        *,
        parent: str = "",
        holders: tuple[str, ...] = (),
        slaves: tuple[str, ...] = (),
    ) -> FakeHost:
        where = self.sys / "devices" / "virtual" / "block" / (f"{parent}/{name}" if parent else name)
        where.mkdir(parents=True)
        (where / "size").write_text(f"{size // 512}\n")
        (where / "dev").write_text(f"{devno[0]}:{devno[1]}\n")
        for kind, names in (("holders", holders), ("slaves", slaves)):
            (where / kind).mkdir()
            for other in names:
                (where / kind / other).mkdir()
        if parent:
            (where / "partition").write_text("1\n")
        for link in (
            self.sys / "class" / "block" / name,
            self.sys / "dev" / "block" / f"{devno[0]}:{devno[1]}",
        ):
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(where)
        if not parent:
            (self.sys / "block" / name).symlink_to(where)
        return self

    def loop(
        self, name: str, devno: tuple[int, int], backing: str, on: tuple[int, int] | None = None
    ) -> FakeHost:
        """A loop device; ``on``: the filesystem the kernel says its file is on (None: no node to ask)."""
        if on is not None:
            self.backings[name] = on
        self.block(name, devno, 20 * GIB)
        (self.sys / "block" / name / "loop").mkdir()
        (self.sys / "block" / name / "loop" / "backing_file").write_text(backing + "\n")
        return self

    def mount(self, line: str) -> FakeHost:
        self.mounts.append(line)
        return self

    def root_mount(self, line: str) -> FakeHost:
        self.mounts[0] = line
        return self

    def swap(self, path: str, kind: str) -> FakeHost:
        self.swaps.append(f"{path}\t\t{kind}\t\t1048572\t\t0\t\t-2")
        return self

    def meminfo(self, available: int) -> FakeHost:
        (self.proc / "meminfo").write_text(
            "MemTotal:        4000000 kB\nMemFree:          100000 kB\n"
            f"MemAvailable:   {available // 1024:>8} kB\n"
        )
        return self

    def socket(self, inode: int, path: str) -> FakeHost:
        self.unix.append(f"0000000000000000: 00000002 00000000 00010000 0001 01 {inode} {path}")
        return self

    def host(self) -> Host:
        (self.proc / "self" / "mountinfo").write_text("\n".join(self.mounts) + "\n")
        (self.proc / "net" / "unix").write_text(
            "Num       RefCount Protocol Flags    Type St Inode Path\n" + "".join(f"{u}\n" for u in self.unix)
        )
        (self.proc / "swaps").write_text(
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n" + "".join(f"{s}\n" for s in self.swaps)
        )
        return FixtureHost(
            str(self.proc), str(self.sys), str(self.dev), str(self.systemd_run), self.systemctl, self.backings
        )

    def run(
        self,
        target: str = "/dev/sdb",
        devno: tuple[int, int] | None = (8, 16),
        usage: tuple[int, int] = (10 * GIB, 2 * GIB),
        **kwargs,
    ) -> preflight.Preflight:
        return preflight.run_preflight(
            Target(target, devno, ""), host=self.host(), usage=usage, exclude=(), **kwargs
        )


@pytest.fixture
def fake(tmp_path) -> FakeHost:
    return FakeHost(tmp_path)


def summary(findings: list[Finding]) -> list[tuple[str, str, list[int], bool]]:
    return sorted((f.kind, f.path, [p.pid for p in f.processes], f.handled) for f in findings)


# ---- a healthy host ----------------------------------------------------------------------------


def test_a_healthy_host_is_ready_with_a_block_copy(fake):
    found = fake.run()

    assert (found.blockers, found.notes, found.ready) == ([], [], True)
    assert found.plan.copy == {
        "method": "block",
        "reason": f"the target ({20 * GIB} bytes) is at least as large as the device of / and keeps ext4",
        "bytes": 10 * GIB,
    }
    assert (found.plan.prepare, found.plan.stop, found.plan.start) == ([], [], [])
    assert found.plan.restart_first == ["ssh.service"]
    assert found.plan.reexec_init == "systemctl daemon-reexec"
    assert [(m["mount_point"], m["kind"], m["action"]) for m in found.plan.move_mounts] == [
        ("/proc", "api", "move"),
        ("/sys", "api", "move"),
        ("/dev", "api", "move"),
        ("/run", "api", "move"),
        ("/dev/pts", "api", "carried"),
    ]
    assert found.facts["init"] == {
        "name": "systemd",
        "comm": "systemd",
        "exe": "/usr/lib/systemd/systemd",
        "systemctl": True,
        "reexec": "systemctl daemon-reexec",
    }
    assert found.facts["target"] == {
        "path": "/dev/sdb",
        "device": "8:16",
        "name": "sdb",
        "disk": "sdb",
        "size_bytes": 20 * GIB,
        "fstype": "",
    }
    assert (found.facts["device"], found.facts["device_name"], found.facts["device_bytes"]) == (
        "8:1",
        "sda1",
        10 * GIB,
    )
    assert (found.facts["propagation"], found.facts["fstype"], found.facts["used_bytes"]) == (
        "private",
        "ext4",
        2 * GIB,
    )


# ---- blockers, one situation each ---------------------------------------------------------------


def _app(pid: int = 100, **kwargs) -> Callable[[FakeHost], FakeHost]:
    """A process of app.service, with what a case gives it."""
    defaults = {"exe": "/usr/bin/app", "unit": "app.service"}
    return lambda host: host.process(pid, "app", **{**defaults, **kwargs})


LIBSSL = "/usr/lib/x86_64-linux-gnu/libssl.so.3"

BLOCKER_CASES = [
    pytest.param(
        _app(exe="/usr/bin/app (deleted)"),
        [("deleted_executable", "/usr/bin/app", [100], True)],
        id="a service running a deleted program",
    ),
    pytest.param(
        _app(maps=(("08:01", f"{LIBSSL} (deleted)"), ("08:01", "/usr/lib/x86_64-linux-gnu/libc.so.6"))),
        [("deleted_library", LIBSSL, [100], True)],
        id="a service mapping a deleted library",
    ),
    pytest.param(
        lambda h: _app(100, maps=(("08:01", f"{LIBSSL} (deleted)"),))(
            _app(101, maps=(("08:01", f"{LIBSSL} (deleted)"),))(h)
        ),
        [("deleted_library", LIBSSL, [100, 101], True)],
        id="two processes mapping one deleted library: one finding",
    ),
    pytest.param(
        _app(
            maps=(
                ("00:16", "/run/app/plugin.so (deleted)"),
                ("00:01", "/memfd:jit (deleted)"),
                ("00:01", "/SYSV00000000 (deleted)"),
            )
        ),
        [],
        id="deleted mappings on other filesystems (tmpfs, memfd, System V shm) are not blockers",
    ),
    pytest.param(
        _app(fds={3: ("/var/lib/app/data.db", WRONLY, ROOT_ID)}),
        [("open_for_writing", "/var/lib/app/data.db", [100], True)],
        id="a file open O_WRONLY on /",
    ),
    pytest.param(
        _app(fds={3: ("/var/lib/app/data.db", RDWR, ROOT_ID), 4: ("/var/log/app.log", APPEND, ROOT_ID)}),
        [
            ("open_for_writing", "/var/lib/app/data.db", [100], True),
            ("open_for_writing", "/var/log/app.log", [100], True),
        ],
        id="O_RDWR and O_WRONLY|O_APPEND",
    ),
    pytest.param(
        _app(
            fds={
                3: ("/usr/share/app/data", RDONLY, ROOT_ID),
                4: ("/run/app.pid", WRONLY, 26),
                5: ("pipe:[4242]", WRONLY, 12),
                6: ("socket:[4243]", RDWR, 9),
                7: ("anon_inode:[eventfd]", RDWR, 14),
            }
        ),
        [],
        id="read-only files, files on /run, pipes, sockets and anonymous inodes are not blockers",
    ),
    pytest.param(
        _app(fds={3: ("/lifeline-fixture/elsewhere/data", WRONLY, 9999)}),
        [],
        id="a file of a mount this namespace does not list, that cannot be reached, is not placed on /",
    ),
    pytest.param(
        _app(fds={3: ("/var/tmp/scratch (deleted)", RDONLY, ROOT_ID)}),
        [("deleted_open", "/var/tmp/scratch", [100], True)],
        id="a deleted file still open, even read-only",
    ),
    pytest.param(
        _app(fds={3: ("/var/log/app.log (deleted)", WRONLY, ROOT_ID)}),
        [("deleted_open", "/var/log/app.log", [100], True)],
        id="a deleted file open for writing is reported once, as deleted",
    ),
    pytest.param(
        lambda h: h.process(
            700,
            "vim",
            "/usr/bin/vim.basic",
            cgroup="0::/user.slice/user-0.slice/session-3.scope\n",
            fds={4: ("/etc/.hosts.swp", RDWR, ROOT_ID)},
        ),
        [("open_for_writing", "/etc/.hosts.swp", [700], False)],
        id="a writer in a login session: the plan cannot stop it",
    ),
    pytest.param(
        lambda h: h.process(
            600, "worker", "/usr/local/bin/worker", fds={3: ("/srv/out.csv", WRONLY, ROOT_ID)}
        ),
        [("open_for_writing", "/srv/out.csv", [600], False)],
        id="a writer in no unit",
    ),
    pytest.param(
        lambda h: h.process(500, "sshd", "/usr/sbin/sshd (deleted)", unit="ssh.service"),
        [("deleted_executable", "/usr/sbin/sshd", [500], True)],
        id="sshd running a deleted program: restarted, never stopped",
    ),
    pytest.param(
        lambda h: h.process(
            1,
            "systemd",
            "/usr/lib/systemd/systemd",
            cgroup="0::/init.scope\n",
            maps=(("08:01", "/usr/lib/systemd/libsystemd-shared-252.so (deleted)"),),
        ),
        [("deleted_library", "/usr/lib/systemd/libsystemd-shared-252.so", [1], True)],
        id="PID 1 mapping a deleted library: re-executed",
    ),
    pytest.param(
        lambda h: h.process(
            300,
            "systemd-journal",
            "/usr/lib/systemd/systemd-journald",
            unit="systemd-journald.service",
            fds={20: ("/var/log/journal/0123/system.journal", RDWR, ROOT_ID)},
        ),
        [("open_for_writing", "/var/log/journal/0123/system.journal", [300], True)],
        id="journald writing its journal: it moves to /run instead of stopping",
    ),
    pytest.param(
        lambda h: h.loop("loop0", (7, 0), "/var/lib/images/disk.img", on=(8, 1)).mount(
            "40 21 7:0 / /mnt/img rw - ext4 /dev/loop0 rw"
        ),
        [("loop_on_root", "/var/lib/images/disk.img", [], False)],
        id="a loop device backed by a file on /",
    ),
    pytest.param(
        lambda h: h.loop("loop1", (7, 1), "/run/scratch.img", on=(0, 22)),
        [],
        id="a loop device backed by a file on /run is not a blocker",
    ),
    pytest.param(
        lambda h: h.loop("loop2", (7, 2), "/var/lib/images/disk.img", on=(0, 22)),
        [],
        id="the kernel's word wins over the file's name (another namespace's path)",
    ),
    pytest.param(
        lambda h: h.mount(
            "41 21 0:40 / /var/lib/containers/storage/overlay/abc/merged rw - overlay overlay "
            "rw,lowerdir=/var/lib/containers/storage/overlay/l/X,"
            "upperdir=/var/lib/containers/storage/overlay/abc/diff,"
            "workdir=/var/lib/containers/storage/overlay/abc/work"
        ).process(
            800,
            "nginx",
            "/usr/sbin/nginx",
            cgroup="0::/machine.slice/libpod-abc.scope/container\n",
            root="/var/lib/containers/storage/overlay/abc/merged",
        ),
        [("overlay_on_root", "/var/lib/containers/storage/overlay/abc/merged", [800], False)],
        id="an overlay writing to / and the container using it",
    ),
    pytest.param(
        lambda h: h.mount("42 21 0:41 / /srv/ro rw - overlay overlay ro,lowerdir=/srv/a:/srv/b"),
        [],
        id="an overlay without an upper directory is not a blocker",
    ),
    pytest.param(
        lambda h: h.root_mount("21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw"),
        [("shared_propagation", "/", [], True)],
        id="a shared root mount",
    ),
    pytest.param(
        lambda h: h.swap("/swapfile", "file"),
        [("swap_on_root", "/swapfile", [], False)],
        id="a swap file on /",
    ),
    pytest.param(
        lambda h: h.meminfo(40 * MIB),
        [("low_memory", "", [], False)],
        id="less free memory than asked for",
    ),
]


@pytest.mark.parametrize(("situation", "expected"), BLOCKER_CASES)
def test_blockers(fake, situation, expected):
    situation(fake)

    found = fake.run()

    assert summary(found.blockers) == sorted(expected)
    assert found.ready is all(handled for *_, handled in expected)
    for blocker in found.blockers:
        assert blocker.detail and blocker.action


TARGET_CASES = [
    pytest.param(
        lambda h: h.mount("50 21 8:16 / /mnt/new rw,relatime - ext4 /dev/sdb rw"),
        {},
        [("target_mounted", "/dev/sdb", [], False)],
        id="the target is mounted",
    ),
    pytest.param(
        lambda h: h.block("sdb1", (8, 17), 19 * GIB, parent="sdb").mount(
            "50 21 8:17 / /srv rw - xfs /dev/sdb1 rw"
        ),
        {},
        [("target_mounted", "/dev/sdb", [], False)],
        id="a partition of the target is mounted",
    ),
    pytest.param(
        lambda h: h.block("sdc", (8, 32), GIB),
        {"target": "/dev/sdc", "devno": (8, 32)},
        [("target_too_small", "/dev/sdc", [], False)],
        id="the target is too small even for the files",
    ),
    pytest.param(
        lambda h: h,
        {"target": "/dev/sda2", "devno": (8, 2)},
        [("target_on_root_disk", "/dev/sda2", [], False)],
        id="the target is another partition of the disk / is on",
    ),
    pytest.param(
        lambda h: h,
        {"target": "/dev/sda", "devno": (8, 0)},
        [("target_holds_root", "/dev/sda", [], False), ("target_mounted", "/dev/sda", [], False)],
        id="the target is the disk / is on",
    ),
    pytest.param(
        lambda h: h,
        {"target": "/dev/sda1", "devno": (8, 1)},
        [("target_holds_root", "/dev/sda1", [], False), ("target_mounted", "/dev/sda1", [], False)],
        id="the target is / itself",
    ),
    pytest.param(
        lambda h: h.block("sdd", (8, 48), 20 * GIB, holders=("dm-0",)),
        {"target": "/dev/sdd", "devno": (8, 48)},
        [("target_in_use", "/dev/sdd", [], False)],
        id="a device-mapper device is built on the target",
    ),
    pytest.param(
        lambda h: h.swap("/dev/sdb", "partition"),
        {},
        [("target_in_use", "/dev/sdb", [], False)],
        id="the target is active swap",
    ),
    pytest.param(
        lambda h: h.loop("loop5", (7, 5), "/var/lib/images/new-root.img"),
        {"target": "/dev/loop5", "devno": (7, 5)},
        [("target_backed_by_root", "/dev/loop5", [], False)],
        id="the target is a loop device whose file is on / (judged once, as the target)",
    ),
    pytest.param(
        lambda h: h,
        {"target": "/dev/nothing-here", "devno": None},
        [("target_not_block_device", "/dev/nothing-here", [], False)],
        id="the target does not exist",
    ),
    pytest.param(
        lambda h: h,
        {"target": "/dev/sdz", "devno": (65, 144)},
        [("target_unknown", "/dev/sdz", [], False)],
        id="the kernel lists no such device",
    ),
]


@pytest.mark.parametrize(("situation", "target", "expected"), TARGET_CASES)
def test_target_blockers(fake, situation, target, expected):
    situation(fake)

    found = fake.run(**target)

    assert summary(found.blockers) == sorted(expected)
    assert found.ready is False


def test_a_target_too_small_for_a_block_copy_gets_a_file_copy(fake):
    fake.block("sdc", (8, 32), 5 * GIB)

    found = fake.run(target="/dev/sdc", devno=(8, 32))

    assert (found.blockers, found.ready) == ([], True)
    assert found.plan.copy["method"] == "file"
    assert found.plan.copy["bytes"] == 2 * GIB
    assert "smaller than the device of /" in found.plan.copy["reason"]


def test_a_target_held_open_by_a_process(fake):
    """holders() follows /proc/PID/fd to the device node: this machine's disk stands in for the target."""
    disk = next(p for p in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda") if os.path.exists(p))
    rdev = os.stat(disk).st_rdev
    devno = (os.major(rdev), os.minor(rdev))
    fake.block("target", devno, 40 * GIB)
    fake.process(900, "dd", "/usr/bin/dd", unit="backup.service", fds={3: (disk, RDONLY, 24)})

    found = fake.run(target=disk, devno=devno)

    assert summary(found.blockers) == [("target_in_use", disk, [900], False)]
    assert found.blockers[0].processes == [Process(900, "dd", "backup.service")]


# ---- notes ------------------------------------------------------------------------------------


NOTE_CASES = [
    pytest.param(
        lambda h: h.mount("60 21 0:50 / /mnt/share rw - nfs4 server:/export rw,vers=4.2"),
        [("network_mount", "/mnt/share", [], False)],
        id="an nfs mount under /",
    ),
    pytest.param(
        lambda h: h.mount("61 21 0:51 / /mnt/office rw - cifs //nas/office rw"),
        [("network_mount", "/mnt/office", [], False)],
        id="a cifs mount under /",
    ),
    pytest.param(
        lambda h: h.mount("62 21 0:52 / /mnt/remote rw,nosuid,nodev - fuse.sshfs user@host:/ rw"),
        [("fuse_mount", "/mnt/remote", [], False)],
        id="a fuse mount under /",
    ),
    pytest.param(
        lambda h: _app(fds={5: ("socket:[7001]", RDWR, 9)})(h.socket(7001, "/var/lib/app/app.sock")),
        [("socket_on_root", "/var/lib/app/app.sock", [100], False)],
        id="a unix socket bound under / and its server",
    ),
    pytest.param(
        lambda h: h.socket(7002, "/run/app.sock").socket(7003, "@/org/freedesktop/abstract").socket(7004, ""),
        [],
        id="sockets on /run, abstract and unbound ones are not noted",
    ),
    pytest.param(
        lambda h: h.process(1, "sleep", "/usr/bin/sleep", cgroup="0::/\n"),
        [("init_cannot_reexec", "", [], False)],
        id="PID 1 is neither systemd nor sysvinit",
    ),
    pytest.param(
        lambda h: h.loop("loop3", (7, 3), "/srv/images/other.img"),
        [("loop_maybe_on_root", "/srv/images/other.img", [], False)],
        id="a loop device with no node to ask: its file's name alone is only a note",
    ),
]


@pytest.mark.parametrize(("situation", "expected"), NOTE_CASES)
def test_notes(fake, situation, expected):
    situation(fake)

    found = fake.run()

    assert summary(found.notes) == sorted(expected)
    assert (found.blockers, found.ready) == ([], True)


def test_a_socket_path_with_spaces(fake):
    fake.socket(7005, "/srv/my app/control socket")
    fake.process(100, "app", "/usr/bin/app", unit="app.service", fds={5: ("socket:[7005]", RDWR, 9)})

    found = fake.run()

    assert [(n.path, n.processes) for n in found.notes] == [
        ("/srv/my app/control socket", [Process(100, "app", "app.service")])
    ]
    assert found.plan.restart == ["app.service"]


# ---- the plan ---------------------------------------------------------------------------------


def test_the_plan_stops_writers_loggers_last_and_starts_them_in_reverse(fake):
    fake.root_mount("21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw")
    fake.process(100, "app", "/usr/bin/app", unit="app.service", fds={3: ("/var/lib/app/db", RDWR, ROOT_ID)})
    fake.process(
        200,
        "rsyslogd",
        "/usr/sbin/rsyslogd",
        unit="rsyslog.service",
        fds={7: ("/var/log/syslog", APPEND, ROOT_ID)},
    )
    fake.process(250, "cron", "/usr/sbin/cron (deleted)", unit="cron.service")
    fake.process(
        300,
        "systemd-journal",
        "/usr/lib/systemd/systemd-journald",
        unit="systemd-journald.service",
        fds={20: ("/var/log/journal/x/system.journal", RDWR, ROOT_ID)},
    )
    fake.process(500, "sshd", "/usr/sbin/sshd (deleted)", unit="ssh.service")
    fake.process(
        1,
        "systemd",
        "/usr/lib/systemd/systemd",
        cgroup="0::/init.scope\n",
        maps=(("08:01", "/usr/lib/x86_64-linux-gnu/libc.so.6 (deleted)"),),
    )
    fake.socket(9001, "/var/lib/db/db.sock")
    fake.process(400, "db", "/usr/sbin/db", unit="db.service", fds={4: ("socket:[9001]", RDWR, 9)})

    found = fake.run()

    assert found.ready is True
    assert found.plan.prepare == [
        "systemctl daemon-reexec",
        "systemctl restart ssh.service",
        "journalctl --relinquish-var",
        "mount --make-rprivate /",
    ]
    assert found.plan.stop == ["app.service", "cron.service", "rsyslog.service"]
    assert found.plan.start == ["rsyslog.service", "cron.service", "app.service"]
    assert found.plan.restart_first == ["ssh.service"]
    assert "ssh.service" not in found.plan.stop + found.plan.start
    assert found.plan.restart == ["db.service"]
    assert found.plan.finish == ["journalctl --flush"]


def test_without_systemd_nothing_is_stopped_for_you(fake):
    fake.process(1, "init", "/sbin/init", cgroup="")
    fake.process(100, "app", "/usr/bin/app", fds={3: ("/var/lib/app/db", RDWR, ROOT_ID)})
    fake.process(500, "sshd", "/usr/sbin/sshd", cgroup="")

    found = fake.run()

    assert found.facts["init"]["name"] == "sysvinit"
    assert found.plan.reexec_init == "telinit u"
    assert summary(found.blockers) == [("open_for_writing", "/var/lib/app/db", [100], False)]
    assert (found.plan.stop, found.plan.restart_first, found.ready) == ([], [], False)


def test_systemd_without_systemctl_is_not_driven(fake):
    fake.systemctl = False
    _app(fds={3: ("/var/lib/app/db", RDWR, ROOT_ID)})(fake)

    found = fake.run()

    assert found.facts["init"]["systemctl"] is False
    assert summary(found.blockers) == [("open_for_writing", "/var/lib/app/db", [100], False)]


def test_mounts_come_back_by_depth_the_kernel_trees_first(fake):
    fake.mounts[1:] = [
        "30 21 8:2 / /home rw - ext4 /dev/sda2 rw",
        "31 21 0:50 / /mnt/share rw - nfs4 server:/export rw",
        "32 21 8:1 /srv/www /var/www rw - ext4 /dev/sda1 rw",
        "33 32 0:60 / /var/www/uploads rw - fuse.sshfs u@h:/up rw",
        "34 21 0:5 / /dev rw - devtmpfs udev rw",
        "35 34 0:23 / /dev/pts rw - devpts devpts rw",
        "36 21 0:22 / /run rw - tmpfs tmpfs rw",
        "37 21 0:21 / /sys rw - sysfs sysfs rw",
        "38 21 0:20 / /proc rw - proc proc rw",
    ]

    found = fake.run()

    assert [(m["mount_point"], m["kind"], m["action"]) for m in found.plan.move_mounts] == [
        ("/proc", "api", "move"),
        ("/sys", "api", "move"),
        ("/dev", "api", "move"),
        ("/run", "api", "move"),
        ("/home", "other", "move"),
        ("/mnt/share", "network", "move"),
        ("/var/www", "bind", "rebind"),
        ("/dev/pts", "api", "carried"),
        ("/var/www/uploads", "fuse", "move"),
    ]


def test_a_preflight_of_a_mount_point_that_is_not_mounted(fake):
    with pytest.raises(preflight.PreflightError, match="nothing is mounted on /srv"):
        fake.run(mount_point="/srv")


def test_a_stacked_root_is_judged_by_the_mount_on_top(fake):
    """A second mount over / (a container runtime's bind) hides the first: the visible one counts."""
    fake.mount("90 21 8:2 / / rw,relatime shared:7 - ext4 /dev/sda2 rw")

    found = fake.run()

    assert (found.facts["device"], found.facts["propagation"]) == ("8:2", "shared:7")


OVERLAY_ROOT = (
    "21 1 0:50 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/A,"
    "upperdir=/var/lib/containers/storage/overlay/abc/diff,workdir=/var/lib/containers/storage/overlay/abc/work"
)


@pytest.mark.parametrize(
    ("root", "fstype", "expected"),
    [
        pytest.param(OVERLAY_ROOT, "", ["copy_needs_fstype"], id="a container's overlay, no type given"),
        pytest.param(OVERLAY_ROOT, "ext4", [], id="a container's overlay onto ext4"),
        pytest.param(BASE_MOUNTS[0], "xfs", [], id="ext4 onto xfs"),
        pytest.param(BASE_MOUNTS[0], "", [], id="ext4 as it is (a block copy)"),
    ],
)
def test_a_file_copy_needs_a_type_it_can_make(fake, root, fstype, expected):
    fake.root_mount(root)

    found = fake.run(new_fstype=fstype)

    assert [f.kind for f in found.blockers if f.kind == "copy_needs_fstype"] == expected
    assert found.plan.copy["method"] == ("block" if root == BASE_MOUNTS[0] and not fstype else "file")


# ---- the pieces as tables -------------------------------------------------------------------------

COPY_CASES = [
    pytest.param(("ext4", "", 10 * GIB, 2 * GIB, 10 * GIB), "block", id="same size, same type"),
    pytest.param(("xfs", "", 10 * GIB, 2 * GIB, 20 * GIB), "block", id="larger, xfs"),
    pytest.param(("ext4", "", 10 * GIB, 2 * GIB, 5 * GIB), "file", id="smaller but the files fit"),
    pytest.param(("ext4", "xfs", 10 * GIB, 2 * GIB, 20 * GIB), "file", id="a new filesystem type"),
    pytest.param(("ext4", "ext4", 10 * GIB, 2 * GIB, 20 * GIB), "block", id="the same type asked for"),
    pytest.param(
        ("btrfs", "", 10 * GIB, 2 * GIB, 20 * GIB), "file", id="btrfs: no two devices with one UUID"
    ),
    pytest.param(
        ("overlay", "", None, 2 * GIB, 20 * GIB), "file", id="a container's root is on no block device"
    ),
    pytest.param(
        ("ext4", "", 10 * GIB, 2 * GIB, 2 * GIB), "", id="the used bytes fit, the new metadata does not"
    ),
    pytest.param(("ext4", "", 10 * GIB, 0, 0), "file", id="an empty root onto an empty device"),
    pytest.param(("ext4", "", 10 * GIB, 2 * GIB, None), "", id="the target's size is unknown"),
]


@pytest.mark.parametrize(("args", "method"), COPY_CASES)
def test_choose_copy(args, method):
    chosen = preflight.choose_copy(*args)

    assert chosen["method"] == method
    assert chosen["reason"]


CGROUP_CASES = [
    pytest.param("0::/system.slice/cron.service\n", "cron.service", id="cgroup v2"),
    pytest.param(
        "12:pids:/system.slice/cron.service\n1:name=systemd:/system.slice/nginx.service\n0::/\n",
        "nginx.service",
        id="hybrid: the name=systemd hierarchy",
    ),
    pytest.param(
        "0::/system.slice/podman.service/payload/worker\n", "podman.service", id="a delegated sub-group"
    ),
    pytest.param("0::/user.slice/user-0.slice/session-3.scope\n", "session-3.scope", id="a login session"),
    pytest.param("0::/machine.slice/libpod-abc.scope/container\n", "libpod-abc.scope", id="a container"),
    pytest.param("0::/init.scope\n", "init.scope", id="PID 1"),
    pytest.param("0::/\n", "", id="the root cgroup"),
    pytest.param("", "", id="empty (a process that exited)"),
    pytest.param("garbage\n::\n0:\n", "", id="hostile"),
]


@pytest.mark.parametrize(("text", "unit"), CGROUP_CASES)
def test_unit_of(text, unit):
    assert procfs.unit_of(text) == unit


INIT_CASES = [
    pytest.param("systemd", "/usr/lib/systemd/systemd", "systemd", id="systemd"),
    pytest.param("init", "/usr/lib/systemd/systemd", "systemd", id="systemd started as /sbin/init"),
    pytest.param("init", "/sbin/init", "sysvinit", id="sysvinit"),
    pytest.param("init", "", "sysvinit", id="init whose program cannot be read"),
    pytest.param("init", "/bin/busybox", "other", id="busybox init"),
    pytest.param("sleep", "/usr/bin/sleep", "other", id="a container's sleep"),
    pytest.param("tini", "/usr/bin/tini", "other", id="tini"),
]


@pytest.mark.parametrize(("comm", "exe", "name"), INIT_CASES)
def test_init_system(fake, comm, exe, name):
    fake.process(1, comm, exe, cgroup="0::/init.scope\n")

    host = fake.host()
    found = procfs.init_system(host.proc, host.systemd_run, host.systemctl)

    assert (found.name, found.comm, found.exe) == (name, comm, exe)
    assert found.systemctl is (name == "systemd")
    assert found.reexec == {"systemd": "systemctl daemon-reexec", "sysvinit": "telinit u"}.get(name, "")


def test_systemd_is_not_driven_without_its_run_directory(fake):
    fake.systemd_run.rmdir()

    host = fake.host()
    assert procfs.init_system(host.proc, host.systemd_run, host.systemctl).systemctl is False


MAPS_CASES = [
    pytest.param(
        "55d0c0a00000-55d0c0a02000 r--p 00000000 fe:00 1048 /usr/bin/cat\n",
        [("/usr/bin/cat", (254, 0))],
        id="a program",
    ),
    pytest.param(
        "7f1c2a000000-7f1c2a022000 r--p 00000000 103:02 77 /usr/lib/libc.so.6 (deleted)\n",
        [("/usr/lib/libc.so.6 (deleted)", (259, 2))],
        id="a deleted library on nvme (hex numbers)",
    ),
    pytest.param(
        "7f0000000000-7f0000001000 r--p 00000000 08:01 9 /opt/my app/lib x.so\n",
        [("/opt/my app/lib x.so", (8, 1))],
        id="spaces in the path",
    ),
    pytest.param(
        "7ffd1000-7ffd2000 rw-p 00000000 00:00 0 [stack]\n7ffd3000-7ffd4000 rw-p 00000000 00:00 0\n"
        "garbage\n7f-7f r--p 0 xx 5 /x\n",
        [],
        id="anonymous memory and hostile lines",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MAPS_CASES)
def test_parse_maps(text, expected):
    assert list(procfs.parse_maps(text)) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("pos:\t0\nflags:\t0100001\nmnt_id:\t27\nino:\t5\n", (0o100001, 27), id="a writer"),
        pytest.param("pos:\t0\nflags:\t02100002\nmnt_id:\t1\n", (0o2100002, 1), id="O_RDWR|O_CLOEXEC"),
        pytest.param("pos:\t0\nflags:\t0100000\n", (0o100000, -1), id="a kernel before 3.15: no mnt_id"),
        pytest.param(
            "pos:\t0\nflags:\t02\nmnt_id:\t15\nino:\t1\neventfd-count:    0\n", (0o2, 15), id="an eventfd"
        ),
    ],
)
def test_parse_fdinfo(text, expected):
    assert procfs.parse_fdinfo(text) == expected


def test_mount_at_and_mount_containing():
    table = mounts.parse_mountinfo(
        "21 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "30 21 8:2 / /srv rw - ext4 /dev/sda2 rw\n"
        "31 30 0:40 / /srv rw - tmpfs tmpfs rw\n"
        "32 21 0:41 / /srv2 rw - tmpfs tmpfs rw\n"
    )

    assert mounts.mount_at(table, "/srv").mount_id == 31
    assert mounts.mount_at(table, "/nothing") is None
    assert mounts.mount_containing(table, "/srv/a/b").mount_id == 31
    assert mounts.mount_containing(table, "/srv2x/a").mount_id == 21
    assert mounts.mount_containing(table, "/").mount_id == 21
    assert mounts.mount_containing([], "/x") is None
    assert (table[0].propagation, table[0].shared) == ("private", False)


# ---- the real kernel ------------------------------------------------------------------------------


@pytest.fixture
def on_root():
    """A directory on the filesystem of / (not tmpfs), removed at the end."""
    directory = Path(tempfile.mkdtemp(prefix="lifeline-preflight-", dir="/var/tmp"))
    assert os.stat(directory).st_dev == os.stat("/").st_dev, "/var/tmp is not on the root filesystem here"
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def ls_fds(pid: int) -> list[tuple[str, str, int]]:
    """(mode letters, target, st_dev) of each descriptor, from ls -l /proc/PID/fd: the link's mode is the
    descriptor's access mode (l-wx------ write only, lrwx------ read and write)."""
    out = subprocess.run(
        ["ls", "-l", f"/proc/{pid}/fd"],
        capture_output=True,
        text=True,
        check=True,
        env={"LC_ALL": "C", "PATH": os.environ["PATH"]},
    ).stdout
    found = []
    for line in out.splitlines():
        match = re.match(r"(l\S{9}) .* (\d+) -> (.*)$", line)
        if match:
            st = os.stat(f"/proc/{pid}/fd/{match[2]}")
            found.append((match[1], match[3], st.st_dev))
    return found


def written_on_root(pid: int) -> tuple[set[str], set[str]]:
    """(files open for writing, deleted files open) on the root filesystem, by ls's account."""
    root = os.stat("/").st_dev
    mine = [(mode, target) for mode, target, dev in ls_fds(pid) if dev == root and target.startswith("/")]
    writing = {target for mode, target in mine if mode[2] == "w" and not target.endswith(" (deleted)")}
    deleted = {target.removesuffix(" (deleted)") for mode, target in mine if target.endswith(" (deleted)")}
    return writing, deleted


def test_the_running_kernel(on_root, spawn):
    """A writer, a holder of an unlinked file and a deleted program, started here, found by their pids."""
    log, gone, program = on_root / "writer.log", on_root / "unlinked.tmp", on_root / "sleeper"
    writer = spawn(["sh", "-c", 'exec 3>>"$1"; exec sleep 60', "sh", str(log)], "/usr/bin/sleep")
    unlinker = spawn(
        ["sh", "-c", 'exec 4>"$1"; rm -f "$1"; exec sleep 60', "sh", str(gone)], "/usr/bin/sleep"
    )
    shutil.copy2("/usr/bin/sleep", program)
    deleted = spawn([str(program), "60"], str(program))
    program.unlink()
    assert os.readlink(f"/proc/{deleted.pid}/exe") == f"{program} (deleted)"

    found = preflight.run_preflight(preflight.target_of(str(on_root / "no-device")))

    def pids(kind: str, path: Path) -> set[int]:
        return {p.pid for f in found.blockers if f.kind == kind and f.path == str(path) for p in f.processes}

    assert pids("open_for_writing", log) == {writer.pid}
    assert pids("deleted_open", gone) == {unlinker.pid}
    assert pids("deleted_executable", program) == {deleted.pid}
    assert not {os.getpid()} & {p.pid for f in found.blockers for p in f.processes}
    assert found.ready is False
    assert any(f.kind == "target_not_block_device" for f in found.blockers)

    # ls -l /proc/PID/fd, not the code under test, says what each of them writes or holds deleted.
    for child in (writer, unlinker, deleted):
        writing, held_deleted = written_on_root(child.pid)
        reported = {
            f.path
            for f in found.blockers
            if f.kind == "open_for_writing"
            for p in f.processes
            if p.pid == child.pid
        }
        reported_deleted = {
            f.path
            for f in found.blockers
            if f.kind == "deleted_open"
            for p in f.processes
            if p.pid == child.pid
        }
        assert (reported, reported_deleted) == (writing, held_deleted), child.args
    assert written_on_root(writer.pid) == ({str(log)}, set())
    assert written_on_root(unlinker.pid) == (set(), {str(gone)})

    for child in (writer, unlinker, deleted):
        child.kill()
        child.wait()
    after = preflight.run_preflight(preflight.target_of(str(on_root / "no-device")))
    stopped = {writer.pid, unlinker.pid, deleted.pid}
    assert not stopped & {p.pid for f in after.blockers for p in f.processes}


@pytest.fixture
def loop_on_root(on_root):
    """A loop device backed by a file on the root filesystem, detached at the end."""
    image = on_root / "disk.img"
    with open(image, "wb") as handle:
        handle.truncate(64 * MIB)
    attached = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
    if attached.returncode != 0:
        pytest.skip(f"no loop device here: {attached.stderr.strip()}")
    device = attached.stdout.strip()
    try:
        yield device, image
    finally:
        subprocess.run(["losetup", "--detach", device], check=False)


def test_a_loop_device_backed_on_root(on_root, loop_on_root):
    """The kernel's own answer (LOOP_GET_STATUS64), checked against losetup's."""
    device, image = loop_on_root
    listed = subprocess.run(
        ["losetup", "--list", "--json", "--output", "NAME,BACK-MAJ:MIN", device],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    root = os.stat("/").st_dev
    assert (
        json.loads(listed)["loopdevices"][0]["back-maj:min"].strip() == f"{os.major(root)}:{os.minor(root)}"
    )

    as_target = preflight.run_preflight(preflight.target_of(device))
    elsewhere = preflight.run_preflight(preflight.target_of(str(on_root / "no-device")))

    assert [f.path for f in as_target.blockers if f.kind == "target_backed_by_root"] == [device]
    assert [f for f in as_target.blockers if f.kind == "loop_on_root" and f.path == str(image)] == []
    assert [f.path for f in elsewhere.blockers if f.kind == "loop_on_root" and f.path == str(image)] == [
        str(image)
    ]


def test_the_running_root_facts_match_the_kernel(on_root):
    found = preflight.run_preflight(preflight.target_of(str(on_root)))
    root = os.stat("/").st_dev
    df = subprocess.run(
        ["df", "-B1", "--output=size", "/"], capture_output=True, text=True, check=True
    ).stdout

    assert found.facts["device"] == f"{os.major(root)}:{os.minor(root)}"
    assert found.facts["size_bytes"] == int(df.split()[-1])
    assert found.facts["memory"]["available_bytes"] > 0
    assert [m["mount_point"] for m in found.plan.move_mounts][:2] == ["/proc", "/sys"]


@pytest.fixture
def overlay(on_root):
    """An overlay like a container's root, with a tmpfs mounted below it; unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting an overlay needs root")
    lower, upper, work, top = (on_root / name for name in ("lower", "upper", "work", "merged"))
    for directory in (lower / "etc", lower / "run", upper, work, top):
        directory.mkdir(parents=True)
    (lower / "etc" / "hostname").write_text("lower\n")
    os.link(lower / "etc" / "hostname", lower / "etc" / "hostname.hard")
    os.symlink("hostname", lower / "etc" / "link")
    (lower / "data.bin").write_bytes(os.urandom(3 * MIB))
    (upper / "written.bin").write_bytes(os.urandom(MIB))
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    mounted = subprocess.run(
        ["mount", "-t", "overlay", "-o", options, "overlay", str(top)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"no overlay here: {mounted.stderr.decode().strip()}")
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "run", str(top / "run")], check=True)
        (top / "run" / "elsewhere.bin").write_bytes(os.urandom(2 * MIB))
        yield top
    finally:
        subprocess.run(["umount", "--recursive", str(top)], check=False)


def test_the_used_bytes_of_an_overlay_are_its_files(overlay):
    """statvfs of an overlay is that of its upper layer's whole filesystem: the files are counted (du -sx)."""
    found = preflight.run_preflight(preflight.target_of(str(overlay / "no-device")), mount_point=str(overlay))
    du = subprocess.run(["du", "-s", "-x", "-B1", str(overlay)], capture_output=True, text=True, check=True)

    assert (found.facts["fstype"], found.facts["used_counted_by"]) == ("overlay", "files")
    assert found.facts["used_bytes"] == mounts.tree_bytes(str(overlay)) == int(du.stdout.split()[0])
    assert 4 * MIB <= found.facts["used_bytes"] < 5 * MIB, "no tmpfs below, no second hard link"
    # What statvfs says instead: the size of the upper layer's filesystem (/ here).
    assert mounts.usage_of(str(overlay))[0] == mounts.usage_of("/")[0]
