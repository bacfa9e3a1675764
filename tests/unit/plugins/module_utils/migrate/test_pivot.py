"""pivot: the plan of a root switch as data tables over real mount tables, and real switches in a
private mount namespace (pivot_root, mount --move, the way back, failures part way, the dead-man
switch firing and confirmed).

Run as a script, this file is the helper that does the real switches inside the namespace that a
test starts with ``unshare --mount --propagation private`` (support/namespace.py): nothing it mounts
reaches the host.
"""

# The mount tables below are kernel lines as /proc/self/mountinfo prints them; they are not wrapped.
# ruff: noqa: E501

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import tempfile
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import deadman_switch, pivot

from support.namespace import assert_switched, helper, mountinfo, report, shape, table_of, tool, wait_for
from support.runners import tool_error

pytest_plugins = ("support.namespace",)

NEW = "/mnt/newroot"

# ---- real mount tables --------------------------------------------------------------------------

# A Debian 12 host booted by systemd, / on /dev/sda2, /boot and /boot/efi on their own partitions,
# the copy mounted on /mnt/newroot (the incident's LVM volume). systemd makes every mount shared.
DEBIAN_SYSTEMD = """\
21 27 0:20 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
23 27 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=1967540k,nr_inodes=491885,mode=755,inode64
24 23 0:22 / /dev/pts rw,nosuid,noexec,relatime shared:3 - devpts devpts rw,gid=5,mode=620,ptmxmode=000
25 27 0:23 / /run rw,nosuid,nodev,noexec,relatime shared:5 - tmpfs tmpfs rw,size=398560k,mode=755,inode64
27 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw,errors=remount-ro
26 21 0:6 / /sys/kernel/security rw,nosuid,nodev,noexec,relatime shared:8 - securityfs securityfs rw
28 23 0:24 / /dev/shm rw,nosuid,nodev shared:4 - tmpfs tmpfs rw,inode64
29 25 0:25 / /run/lock rw,nosuid,nodev,noexec,relatime shared:6 - tmpfs tmpfs rw,size=5120k,inode64
30 21 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
31 21 0:27 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw
32 21 0:28 / /sys/fs/bpf rw,nosuid,nodev,noexec,relatime shared:11 - bpf bpf rw,mode=700
33 22 0:29 / /proc/sys/fs/binfmt_misc rw,relatime shared:13 - autofs systemd-1 rw,fd=30,pgrp=1,timeout=0,minproto=5,maxproto=5,direct,pipe_ino=13788
34 23 0:19 / /dev/mqueue rw,nosuid,nodev,noexec,relatime shared:14 - mqueue mqueue rw
35 23 0:30 / /dev/hugepages rw,relatime shared:15 - hugetlbfs hugetlbfs rw,pagesize=2M
36 21 0:7 / /sys/kernel/debug rw,nosuid,nodev,noexec,relatime shared:16 - debugfs debugfs rw
37 21 0:12 / /sys/kernel/tracing rw,nosuid,nodev,noexec,relatime shared:17 - tracefs tracefs rw
38 21 0:31 / /sys/fs/fuse/connections rw,nosuid,nodev,noexec,relatime shared:18 - fusectl fusectl rw
39 21 0:32 / /sys/kernel/config rw,nosuid,nodev,noexec,relatime shared:19 - configfs configfs rw
40 25 0:33 / /run/credentials/systemd-sysctl.service ro,nosuid,nodev,noexec,relatime shared:20 - ramfs ramfs rw,mode=700
41 25 0:34 / /run/credentials/systemd-sysusers.service ro,nosuid,nodev,noexec,relatime shared:21 - ramfs ramfs rw,mode=700
62 27 8:3 / /boot rw,relatime shared:31 - ext4 /dev/sda3 rw
63 62 8:1 / /boot/efi rw,relatime shared:33 - vfat /dev/sda1 rw,fmask=0077,dmask=0077,codepage=437,iocharset=ascii,shortname=mixed,utf8,errors=remount-ro
67 33 0:39 / /proc/sys/fs/binfmt_misc rw,nosuid,nodev,noexec,relatime shared:37 - binfmt_misc binfmt_misc rw
412 25 0:46 / /run/user/0 rw,nosuid,nodev,relatime shared:227 - tmpfs tmpfs rw,size=398556k,nr_inodes=99639,mode=700,inode64
430 27 253:0 / /mnt/newroot rw,relatime shared:239 - ext4 /dev/mapper/vg0-root rw
"""

# A podman container (runc, cgroup v1): an overlay root whose parent is outside the namespace,
# files bound from the host (/etc/hosts), /proc and /sys masked by binds of their own parts.
PODMAN = """\
256 81 0:95 / / rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/24CYH7ILUO6PLG3HPRPWVNLY7H,upperdir=/var/lib/containers/storage/overlay/1d0eb2583f24/diff,workdir=/var/lib/containers/storage/overlay/1d0eb2583f24/work,uuid=on,fsync=volatile
257 256 0:98 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
258 256 0:99 / /dev rw,nosuid,noexec - tmpfs tmpfs rw,size=65536k,mode=755
259 256 0:100 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
260 258 0:101 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
261 258 0:97 / /dev/mqueue rw,nosuid,nodev,noexec,relatime - mqueue mqueue rw
262 256 254:0 /run/containers/storage/overlay-containers/12d938b529f2/userdata/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
263 258 0:94 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=64000k
264 256 254:0 /run/containers/storage/overlay-containers/12d938b529f2/userdata/.containerenv /run/.containerenv rw,relatime - ext4 /dev/vda rw
265 256 254:0 /run/containers/storage/overlay-containers/12d938b529f2/userdata/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw
266 259 0:102 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
267 266 0:29 /libpod_parent/libpod-12d938b529f2 /sys/fs/cgroup/cpu ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,cpu
276 266 0:37 /libpod_parent/libpod-12d938b529f2 /sys/fs/cgroup/systemd ro,nosuid,nodev,noexec,relatime - cgroup cgroup rw,name=systemd
82 257 0:98 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
85 257 0:98 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
86 257 0:103 / /proc/acpi ro,relatime - tmpfs tmpfs ro
87 257 0:99 /null /proc/keys rw,nosuid,noexec - tmpfs tmpfs rw,size=65536k,mode=755
89 259 0:104 / /sys/firmware ro,relatime - tmpfs tmpfs ro
300 256 7:0 / /mnt/newroot rw,relatime - ext4 /dev/loop0 rw
"""

# A build host running containers: devpts and shm stacked twice on /dev, cgroup v1 hierarchies,
# binds of the root filesystem itself (/run/netns, container storage) with mounts on them, a
# network namespace file shared from /run/netns, and the copy on /mnt/newroot.
NESTED = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334464k,nr_inodes=3083616,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
43 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw,discard
42 27 254:0 /var/lib/containers/storage/overlay /var/lib/containers/storage/overlay rw,relatime - ext4 /dev/vda rw,discard
49 27 0:51 / /var/lib/containers/storage/overlay-containers/8c0424f4/userdata/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=64000k
62 42 0:52 / /var/lib/containers/storage/overlay/211b954c/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/24CYH7ILUO6PLG3HPRPWVNLY7H,upperdir=/var/lib/containers/storage/overlay/211b954c/diff,workdir=/var/lib/containers/storage/overlay/211b954c/work,uuid=on
98 42 0:64 / /var/lib/containers/storage/overlay/c11b5cee/merged rw,relatime - overlay overlay rw,lowerdir=/var/lib/containers/storage/overlay/l/766LSRVEU747DVV4UO353DRM6W,upperdir=/var/lib/containers/storage/overlay/c11b5cee/diff,workdir=/var/lib/containers/storage/overlay/c11b5cee/work,uuid=on
55 43 0:4 net:[4026532472] /run/netns/netns-67e12dac rw shared:3 - nsfs nsfs rw
300 27 0:90 / /mnt/newroot rw,relatime - ext4 /dev/vdb rw
"""


def private(text: str) -> str:
    """The table after ``mount --make-rprivate /``, which the preflight's plan runs first."""
    return re.sub(r" shared:\d+", "", text)


def move(point: str) -> str:
    return f"mount --no-mtab --move /mnt/oldroot{point} {point}"


PIVOT = f"pivot_root {NEW} {NEW}/mnt/oldroot"
STORAGE = "/var/lib/containers/storage"

# (mount table, the commands of the switch in order, what each moved mount carries along, the mounts left)
PLAN_CASES = [
    pytest.param(
        private(DEBIAN_SYSTEMD),
        [PIVOT, move("/proc"), move("/sys"), move("/dev"), move("/run"), move("/boot")],
        {
            "/proc": {"/proc/sys/fs/binfmt_misc"},
            "/sys": {
                "/sys/kernel/security",
                "/sys/fs/cgroup",
                "/sys/fs/pstore",
                "/sys/fs/bpf",
                "/sys/kernel/debug",
                "/sys/kernel/tracing",
                "/sys/fs/fuse/connections",
                "/sys/kernel/config",
            },
            "/dev": {"/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/hugepages"},
            "/run": {
                "/run/lock",
                "/run/credentials/systemd-sysctl.service",
                "/run/credentials/systemd-sysusers.service",
                "/run/user/0",
            },
            "/boot": {"/boot/efi"},
        },
        [],
        id="debian host with systemd mounts",
    ),
    pytest.param(
        PODMAN,
        [
            PIVOT,
            move("/proc"),
            move("/sys"),
            move("/dev"),
            move("/etc/hosts"),
            move("/run/.containerenv"),
            move("/etc/hostname"),
        ],
        {
            "/proc": {"/proc/bus", "/proc/sys", "/proc/acpi", "/proc/keys"},
            "/sys": {"/sys/fs/cgroup", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/systemd", "/sys/firmware"},
            "/dev": {"/dev/pts", "/dev/mqueue", "/dev/shm"},
        },
        [],
        id="podman container",
    ),
    pytest.param(
        private(NESTED),
        [
            PIVOT,
            move("/proc"),
            move("/sys"),
            move("/dev"),
            "mount --no-mtab --bind /run/netns /run/netns",
            move("/run/netns/netns-67e12dac"),
            f"mount --no-mtab --bind {STORAGE}/overlay {STORAGE}/overlay",
            move(f"{STORAGE}/overlay/211b954c/merged"),
            move(f"{STORAGE}/overlay/c11b5cee/merged"),
            move(f"{STORAGE}/overlay-containers/8c0424f4/userdata/shm"),
        ],
        {
            "/sys": {
                "/sys/fs/cgroup",
                "/sys/fs/cgroup/cpu",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified",
            },
            "/dev": {"/dev/shm", "/dev/pts"},
        },
        [],
        id="nested and stacked submounts, binds of the root with mounts on them",
    ),
    pytest.param(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "2 1 0:5 / /proc rw - proc proc rw\n"
        "3 1 8:1 /run/netns /run/netns rw - ext4 /dev/sda1 rw\n"
        "4 1 0:6 / /run rw - tmpfs run rw\n"
        "5 3 0:4 net:[1] /run/netns/a rw - nsfs nsfs rw\n"
        "6 1 0:7 / /srv rw - tmpfs srv rw\n"
        "7 6 8:1 /data /srv/data rw - ext4 /dev/sda1 rw\n"
        "8 7 0:8 / /srv/data/x rw - tmpfs x rw\n"
        "9 1 8:9 / /mnt/newroot rw - ext4 /dev/sdb1 rw\n"
        "10 9 8:10 / /mnt/newroot/boot rw - ext4 /dev/sdb2 rw\n"
        "11 1 0:9 / /mnt/newroot/hidden rw - tmpfs hid rw\n",
        [PIVOT, move("/proc"), move("/run"), move("/srv")],
        {"/srv": {"/srv/data", "/srv/data/x"}, PIVOT: {"/mnt/newroot/boot"}},
        [
            ("/run/netns", "hidden under the mount on /run"),
            ("/run/netns/a", "hidden under the mount on /run"),
            ("/mnt/newroot/hidden", "hidden under the mount on /mnt/newroot"),
        ],
        id="hidden mounts stay, a bind of the root on a moved mount travels with it, the copy's own mounts",
    ),
]


@pytest.mark.parametrize(("text", "commands", "carries", "left"), PLAN_CASES)
def test_plan_switch(text, commands, carries, left):
    plan = pivot.plan_switch(text, NEW)

    assert [shlex.join(s["argv"]) for s in plan.steps] == commands
    found = {
        shlex.join(s["argv"]) if s["action"] == "pivot_root" else s["mount_point"]: set(s["carries"])
        for s in plan.steps
        if s["carries"]
    }
    assert found == carries
    assert [(m["mount_point"], m["reason"]) for m in plan.left] == left
    # Every mount under the old root is put back or left, once: moved itself or carried along.
    table = mounts.parse_mountinfo(text)
    root = mounts.mount_at(table, "/")
    copy = {m.mount_id for m in table if m.mount_point == NEW or m.mount_point.startswith(NEW + "/boot")}
    under = [m.mount_point for m in table if m.mount_id != root.mount_id and m.mount_id not in copy]
    put = [m["mount_point"] for m in plan.moved] + [m["mount_point"] for m in plan.left]
    assert sorted(put) == sorted(under)
    moved_itself = [s["mount_point"] for s in plan.steps[1:]]
    carried = [p for s in plan.steps[1:] for p in s["carries"]]
    assert sorted(moved_itself + carried) == sorted(m["mount_point"] for m in plan.moved)
    # Each step's undo is its exact reverse.
    for step in plan.steps:
        if step["action"] == "move":
            assert step["undo"][-2:] == step["argv"][-2:][::-1]
    assert plan.steps[0]["undo"] == ["pivot_root", "/mnt/oldroot", f"/mnt/oldroot{NEW}"]
    assert (plan.new_root_id, plan.old_root_id) == (mounts.mount_at(table, NEW).mount_id, root.mount_id)


def test_plan_switch_makes_file_mount_points_like_their_source():
    plan = pivot.plan_switch(PODMAN, NEW)
    hosts = next(s for s in plan.steps if s["mount_point"] == "/etc/hosts")

    assert (hosts["ensure"], hosts["like"]) == ("/etc/hosts", "/mnt/oldroot/etc/hosts")
    assert plan.steps[0]["like"] is None


def test_plan_switch_with_another_old_root_name():
    plan = pivot.plan_switch(private(DEBIAN_SYSTEMD), "/mnt/newroot/", "/oldroot/")

    assert plan.steps[0]["argv"] == ["pivot_root", NEW, f"{NEW}/oldroot"]
    assert plan.steps[1]["argv"] == ["mount", "--no-mtab", "--move", "/oldroot/proc", "/proc"]
    assert plan.old_path == "/oldroot"


REFUSALS = [
    pytest.param(
        DEBIAN_SYSTEMD,
        NEW,
        pivot.OLD_ROOT,
        "shared mount propagation on /, /boot, /dev, /mnt/newroot, "
        "/proc, /run, /sys: pivot_root and mount --move refuse shared mounts; run `mount "
        "--make-rprivate /` first",
        id="shared mounts (systemd)",
    ),
    pytest.param(
        NESTED,
        NEW,
        pivot.OLD_ROOT,
        "shared mount propagation on /run/netns, /run/netns/netns-67e12dac:",
        id="one shared bind",
    ),
    pytest.param(
        PODMAN,
        "/mnt/other",
        pivot.OLD_ROOT,
        "nothing is mounted on /mnt/other: mount the copy",
        id="the copy is not mounted",
    ),
    pytest.param(PODMAN, "/", pivot.OLD_ROOT, "nothing is mounted on /:", id="the new root is /"),
    pytest.param(
        PODMAN,
        NEW,
        "../up",
        "old_root='../up': give a directory below the new root",
        id="old_root climbs out",
    ),
    pytest.param(PODMAN, NEW, "/", "old_root='/': give a directory", id="old_root is the new root itself"),
    pytest.param(
        private(DEBIAN_SYSTEMD) + "500 27 0:60 / /mnt rw - tmpfs mnt rw\n",
        NEW,
        pivot.OLD_ROOT,
        "/mnt is mounted on the old root and would cover /mnt/oldroot in the new one",
        id="a mount that would hide the old root",
    ),
    pytest.param(
        private(DEBIAN_SYSTEMD) + "500 27 0:60 / /mnt/oldroot/x rw - tmpfs x rw\n",
        NEW,
        pivot.OLD_ROOT,
        "/mnt/oldroot/x already mounted under /mnt/oldroot, where the old root would go",
        id="a switch not undone",
    ),
    pytest.param(
        private(DEBIAN_SYSTEMD) + "500 430 0:60 / /mnt/newroot/mnt/oldroot rw - tmpfs x rw\n",
        NEW,
        pivot.OLD_ROOT,
        "/mnt/newroot/mnt/oldroot is a mount point: pivot_root needs an empty directory there",
        id="put_old is a mount point",
    ),
    pytest.param("garbage\n", NEW, pivot.OLD_ROOT, "the mount table has no /", id="no mount table"),
]


@pytest.mark.parametrize(("text", "new_root", "old_root", "message"), REFUSALS)
def test_plan_switch_refuses(text, new_root, old_root, message):
    with pytest.raises(pivot.SwitchError) as refused:
        pivot.plan_switch(text, new_root, old_root)

    assert message in str(refused.value)


def record_of(text: str) -> pivot.Record:
    """A record as if every step of the plan had run, the first one creating the old root's place."""
    plan = pivot.plan_switch(text, NEW)
    done = [{**s, "created": []} for s in plan.steps]
    done[0]["created"] = [f"{NEW}/mnt", f"{NEW}/mnt/oldroot"]
    done[-1]["created"] = ["/boot"]
    return pivot.Record(plan, done)


def test_undo_operations_reverse_every_step_and_what_it_created():
    ops = pivot.undo_operations(record_of(private(DEBIAN_SYSTEMD)))

    assert [shlex.join(pivot.op_argv(op)) for op in ops] == [
        "mount --no-mtab --move /boot /mnt/oldroot/boot",
        "rm -d /boot",
        "mount --no-mtab --move /run /mnt/oldroot/run",
        "mount --no-mtab --move /dev /mnt/oldroot/dev",
        "mount --no-mtab --move /sys /mnt/oldroot/sys",
        "mount --no-mtab --move /proc /mnt/oldroot/proc",
        "pivot_root /mnt/oldroot /mnt/oldroot/mnt/newroot",
        "rm -d /mnt/newroot/mnt/oldroot",
        "rm -d /mnt/newroot/mnt",
    ]


@pytest.mark.parametrize(
    ("failed", "expected"),
    [
        pytest.param(
            3,
            "/ is still the new root (/dev/mapper/vg0-root) and the old root (/dev/sda2) is on /mnt/oldroot; "
            "still in place on the new root: /dev, /sys, /proc. Finish by hand, in this order: "
            "`mount --no-mtab --move /dev /mnt/oldroot/dev`; `mount --no-mtab --move /sys /mnt/oldroot/sys`; "
            "`mount --no-mtab --move /proc /mnt/oldroot/proc`; "
            "`pivot_root /mnt/oldroot /mnt/oldroot/mnt/newroot`; `rm -d /mnt/newroot/mnt/oldroot`; "
            "`rm -d /mnt/newroot/mnt`",
            id="stopped at /dev",
        ),
        pytest.param(
            7,
            "/ is the old root (/dev/sda2) again. Finish by hand, in this order: "
            "`rm -d /mnt/newroot/mnt/oldroot`; `rm -d /mnt/newroot/mnt`",
            id="only a directory left",
        ),
    ],
)
def test_state_left_says_where_the_host_is_and_how_to_finish(failed, expected):
    record = record_of(private(DEBIAN_SYSTEMD))

    assert pivot.state_left(record.plan, pivot.undo_operations(record), failed) == expected


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(
            [
                "430 1 253:0 / / rw - ext4 /dev/mapper/vg0-root rw",
                "27 430 8:2 / /mnt/oldroot rw - ext4 /dev/sda2 rw",
            ],
            "switched",
            id="switched",
        ),
        pytest.param(
            [
                "27 1 8:2 / / rw - ext4 /dev/sda2 rw",
                "430 27 253:0 / /mnt/newroot rw - ext4 /dev/mapper/vg0-root rw",
            ],
            "old root",
            id="as before",
        ),
        pytest.param(
            [
                "27 1 8:2 / / rw - ext4 /dev/sda2 rw",
                "431 27 253:0 / /mnt/newroot rw - ext4 /dev/mapper/vg0-root rw",
            ],
            "unknown",
            id="the copy mounted again (another mount id)",
        ),
        pytest.param(
            ["430 1 253:0 / / rw - ext4 /dev/mapper/vg0-root rw"], "unknown", id="the old root gone"
        ),
    ],
)
def test_state_of(lines, expected):
    plan = pivot.plan_switch(private(DEBIAN_SYSTEMD), NEW)

    assert pivot.state_of(plan, mounts.parse_mountinfo("\n".join(lines))) == expected


def test_confirm_and_disarm_without_a_deadman_switch(tmp_path):
    assert deadman_switch.read_log(str(tmp_path)) is None
    assert deadman_switch.disarm(str(tmp_path)) is None
    with pytest.raises(pivot.SwitchError, match="no dead-man switch was armed in"):
        deadman_switch.confirm(str(tmp_path))
    (tmp_path / deadman_switch.LOG).write_text("{broken")
    with pytest.raises(pivot.SwitchError, match=r"deadman\.json cannot be read"):
        deadman_switch.read_log(str(tmp_path))


@pytest.mark.parametrize(
    ("log", "message"),
    [
        pytest.param(
            {"status": "switched back", "fired": "T"},
            "fired at T and is switched back: the host went back to its old root",
            id="fired",
        ),
        pytest.param(
            {"status": "switch back failed", "fired": "T"},
            "fired at T and could not switch back; it stopped where",
            id="fired and failed",
        ),
        pytest.param(
            {"status": "crashed", "error": "Traceback\nValueError: x\n"},
            "crashed (ValueError: x; see",
            id="crashed",
        ),
        pytest.param({"status": "disarmed", "finished": "F"}, "was disarmed at F", id="disarmed"),
        pytest.param(
            {"status": "waiting", "pid": 0, "script": "/nonexistent/deadman.py"},
            "(pid 0) is gone without a word",
            id="its process is gone",
        ),
    ],
)
def test_confirm_says_why_it_is_too_late(tmp_path, log, message):
    (tmp_path / deadman_switch.LOG).write_text(json.dumps(log))

    with pytest.raises(pivot.SwitchError) as refused:
        deadman_switch.confirm(str(tmp_path))

    assert message in str(refused.value)
    assert deadman_switch.disarm(str(tmp_path)) == log  # nothing waits: nothing to stop


@pytest.mark.parametrize("share", [False, True], ids=["private", "made shared after the switch"])
def test_switch_and_switch_back_for_real(namespace, share):
    report = namespace("switch", share=share)

    assert_switched(report["before"], report["switched"], report["plan"])
    assert report["status"].startswith("Name:")
    assert report["ls"].startswith("crw-rw-rw- 1 root root 1, 3 ")
    assert report["dev_null"] == "character special file"
    assert [e["outcome"] for e in report["log"]] == ["done"] * len(report["plan"]["steps"])
    # Back: every mount where it was, by id and parent; what the switch created is gone again.
    assert shape(report["back"]) == shape(report["before"])
    assert report["created"] and report["created_left"] == []
    assert all(e["outcome"] == "done" for e in report["back_log"])
    made_private = report["back_log"][0]["command"] == "mount --no-mtab --make-rprivate /"
    assert made_private is share


def test_other_work_that_ends_while_the_root_is_switched_does_not_stop_the_way_back(namespace):
    """Other work on this machine (a container) ends while a test has the root switched: its owner
    removes its mount point from the host's root, which is the old root in the test's namespace."""
    ended = Path(tempfile.mkdtemp(prefix="lifeline-other-", dir="/var/tmp"))
    try:
        report = namespace("others", others=[str(ended)])
        assert not ended.exists()  # the old root in the namespace is the host's root
    finally:
        with contextlib.suppress(FileNotFoundError):
            ended.rmdir()

    assert report["removed"] == [f"/mnt/oldroot{ended}"]
    assert report["error"] == ""
    assert shape(report["back"]) == shape(report["before"])


def test_a_mount_point_that_cannot_be_created_undoes_the_switch(namespace):
    report = namespace("fail", inject="mkdir")

    assert "cannot create the mount point /var/tmp/lifeline-pivot-" in report["error"]
    assert "Not a directory" in report["error"]
    assert "The switch was undone: the system is back on its old root" in report["error"]
    assert shape(report["after"]) == shape(report["before"])
    assert report["created_left"] == []
    undo = [e for e in report["log"] if e["phase"] == "undo"]
    assert undo and all(e["outcome"] == "done" for e in undo)
    assert undo[-2]["command"].startswith("pivot_root /mnt/oldroot /mnt/oldroot/var/tmp/lifeline-pivot-")


@pytest.mark.parametrize("at", ["pivot_root", "/dev", "last"])
def test_a_failing_step_undoes_the_switch(namespace, at):
    report = namespace("fail", inject="command", at=at)

    assert "injected failure" in report["error"]
    assert "back on its old root" in report["error"]
    assert shape(report["after"]) == shape(report["before"])
    assert report["created_left"] == []
    failed = [e for e in report["log"] if e["outcome"] == "failed"]
    assert len(failed) == 1 and failed[0]["phase"] == "switch"


def test_a_failing_undo_says_where_the_host_is_and_the_commands_finish_it(namespace):
    report = namespace("fail", inject="undo")

    error = report["error"]
    assert (
        "Undoing the switch failed too: mount --no-mtab --move /proc /mnt/oldroot/proc failed (exit 32)"
        in error
    )
    assert "/ is still the new root (overlay) and the old root" in error
    assert "still in place on the new root: /proc. Finish by hand, in this order: " in error
    # Left as the message says: on the copy, only /proc still there.
    left = table_of(report["after"])
    assert mounts.mount_at(left.values(), "/").mount_id == report["plan"]["new_root_id"]
    assert mounts.mount_at(left.values(), "/proc").fstype == "proc"
    assert mounts.mount_at(left.values(), "/sys") is None
    # The commands of the message, run by hand, finish the way back.
    assert report["by_hand"][0] == "mount --no-mtab --move /proc /mnt/oldroot/proc"
    assert shape(report["finished"]) == shape(report["before"])


@pytest.mark.parametrize("share", [False, True], ids=["private", "made shared after the switch"])
def test_the_deadman_switch_fires_without_confirmation(namespace, share):
    report = namespace("deadman", confirm=False, timeout=3, share=share)

    assert_switched(report["before"], report["armed_table"], report["plan"])
    log = report["log"]
    assert log["status"] == "switched back", json.dumps(log, indent=1)
    private = ["mount --no-mtab --make-rprivate /"] if share else []
    assert [s["command"] for s in log["steps"]] == private + report["undo"]
    assert all(s["outcome"] == "done" for s in log["steps"])
    assert [(r["command"], r["outcome"]) for r in log["restarts"]] == [
        ("/bin/sh -c 'touch /run/lifeline-restarted'", "done")
    ]
    assert report["restarted"] is True
    assert shape(report["after"]) == shape(report["before"])
    assert 3 <= report["fired_after"] < 20  # at the deadline, not before (slack for a loaded machine)
    assert report["alive"] is False


def test_the_deadman_switch_goes_back_from_a_copy_whose_dev_is_empty(namespace):
    """A real root's /dev is the empty directory devtmpfs is mounted on, and so is its copy's: once the
    way back has moved /dev under the old root there is no /dev/null on the copy for the next command."""
    report = namespace("deadman", confirm=False, timeout=3, empty_dev=True)

    log = report["log"]
    assert report["dev_on_copy"] == []
    assert log["status"] == "switched back", json.dumps(log, indent=1)
    assert [s["outcome"] for s in log["steps"]] == ["done"] * len(report["undo"])
    assert [r["outcome"] for r in log["restarts"]] == ["done"] and report["restarted"] is True
    assert shape(report["after"]) == shape(report["before"])


def test_the_deadman_switch_confirmed_changes_nothing(namespace):
    report = namespace("deadman", confirm=True, timeout=3)

    assert report["confirmed"] is True
    assert report["log"]["status"] == "confirmed"
    assert report["still_switched"] == "switched"
    assert_switched(report["before"], report["after"], report["plan"])
    assert report["restarted"] is False
    assert report["alive"] is False
    assert shape(report["finished"]) == shape(report["before"])


# ---- the helper's scenarios, run inside the namespace -----------------------------------------


def created_left(record: pivot.Record, new: str) -> list[str]:
    """What the switch created that still exists, looked up where it is now (the copy back on ``new``)."""
    names = [p for step in record.done for p in step.get("created", [])]
    return [p for p in names if os.path.lexists(p if p.startswith(new) else new + p)]


def scenario_switch(spec: dict, new: str) -> None:
    before = mountinfo()
    plan = pivot.plan_switch(before, new)
    record = pivot.switch(plan, tool)
    switched = mountinfo()
    status = Path("/proc/self/status").read_text().splitlines()[0]
    listing = tool(["ls", "-l", "/dev/null"])
    kind = tool(["stat", "-c", "%F", "/dev/null"]).strip()
    if spec.get("share"):  # what systemd does when it is re-executed on the new root
        tool(["mount", "-n", "--make-rshared", "/"])
    back_log = pivot.switch_back(record, tool)
    report(
        before=before,
        plan=plan.as_dict(),
        switched=switched,
        status=status,
        ls=listing,
        dev_null=kind,
        log=record.log,
        back=mountinfo(),
        back_log=back_log,
        created=[p for step in record.done for p in step["created"]],
        created_left=created_left(record, new),
    )


def scenario_others(spec: dict, new: str) -> None:
    before = mountinfo()
    plan = pivot.plan_switch(before, new)
    record = pivot.switch(plan, tool)
    # Their owner unmounts them in its own namespace, which does not reach this one, and removes their
    # mount points from the filesystem that is the old root here (podman, as a container ends).
    removed = [plan.old_path + point for point in spec["others"]]
    for path in removed:
        os.rmdir(path)
    try:
        pivot.switch_back(record, tool)
        error = ""
    except pivot.SwitchError as exc:
        error = str(exc)
    report(before=before, plan=plan.as_dict(), removed=removed, error=error, back=mountinfo())


def failing(*wrong: list[str]):
    """The tool runner, but the commands given fail once each."""
    pending = [list(argv) for argv in wrong]

    def run(argv: list[str]) -> str:
        if argv in pending:
            pending.remove(argv)
            raise tool_error(argv, 32, "injected failure")
        return tool(argv)

    return run


def scenario_fail(spec: dict, new: str) -> None:
    before = mountinfo()
    plan = pivot.plan_switch(before, new)
    steps = plan.steps
    run = tool
    if spec["inject"] == "mkdir":
        # /var/tmp of the copy is a file: the scratch tmpfs's mount point cannot be made there.
        os.rmdir(f"{new}/var/tmp")
        Path(f"{new}/var/tmp").write_text("not a directory\n")
    elif spec["inject"] == "command":
        at = {"pivot_root": steps[0], "last": steps[-1]}.get(spec["at"])
        at = at or next(s for s in steps if s["mount_point"] == spec["at"])
        run = failing(at["argv"])
    else:  # the last step fails, and then putting /proc back fails too
        proc = next(s for s in steps if s["mount_point"] == "/proc")
        run = failing(steps[-1]["argv"], proc["undo"])
    record = pivot.Record(plan)
    try:
        record = pivot.switch(plan, run)
        error, log = "", record.log
    except pivot.SwitchError as exc:
        error, log = str(exc), exc.log
    after = mountinfo()
    by_hand = []
    if "Finish by hand" in error:
        by_hand = re.findall(r"`([^`]+)`", error.split("Finish by hand", 1)[1])
        for command in by_hand:
            tool(shlex.split(command))
    created = [p for e in log for p in e.get("created", [])]
    report(
        before=before,
        plan=plan.as_dict(),
        error=error,
        log=log,
        after=after,
        by_hand=by_hand,
        finished=mountinfo(),
        created_left=[p for p in created if os.path.lexists(p if p.startswith(new) else new + p)],
    )


def alive(pid: int) -> bool:
    try:
        return b"deadman.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def gone(pid: int, seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    return not alive(pid)


def scenario_deadman(spec: dict, new: str) -> None:
    state_dir, timeout = "/run/lifeline", spec["timeout"]
    if spec.get("empty_dev"):  # the tree has device nodes in /dev; a copy of a live root has none
        tool(["find", f"{new}/dev", "-mindepth", "1", "-delete"])
    dev_on_copy = sorted(os.listdir(f"{new}/dev")) if spec.get("empty_dev") else None
    before = mountinfo()
    plan = pivot.plan_switch(before, new)
    record = pivot.switch(plan, tool)
    python = "/usr/bin/python3"  # the copy's own python: the script needs nothing of this checkout
    log = deadman_switch.arm(
        state_dir, timeout, f"{state_dir}/confirmed", ["touch /run/lifeline-restarted"], record, python
    )
    armed = time.monotonic()
    print(f"deadman-pid {log['pid']}", flush=True)
    if spec.get("share"):
        tool(["mount", "-n", "--make-rshared", "/"])
    armed_table = mountinfo()
    undo = [shlex.join(pivot.op_argv(op)) for op in pivot.undo_operations(record)]
    fields: dict = {"before": before, "plan": plan.as_dict(), "armed_table": armed_table, "undo": undo}
    fields["dev_on_copy"] = dev_on_copy
    if spec["confirm"]:
        time.sleep(1)
        changed, log = deadman_switch.confirm(state_dir)
        time.sleep(timeout + 1)
        fields.update(
            confirmed=changed,
            log=deadman_switch.read_log(state_dir),
            still_switched=pivot.state_of(plan, mounts.parse_mountinfo(mountinfo())),
            after=mountinfo(),
            alive=alive(log["pid"]),
        )
        pivot.switch_back(record, tool)
        fields["finished"] = mountinfo()
    else:
        log = wait_for(state_dir, deadman_switch.FINAL, timeout + 30)
        fields.update(
            log=log, fired_after=time.monotonic() - armed, alive=not gone(log["pid"]), after=mountinfo()
        )
    fields["restarted"] = os.path.exists("/run/lifeline-restarted")
    report(**fields)


SCENARIOS = {
    "switch": scenario_switch,
    "fail": scenario_fail,
    "others": scenario_others,
    "deadman": scenario_deadman,
}


if __name__ == "__main__":
    helper(SCENARIOS)
