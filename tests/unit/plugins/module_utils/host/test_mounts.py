"""mounts: mountinfo and fstab parsing, mount ordering, and who holds a tree, on the real kernel."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.mounts import FstabEntry, Holder, Mount

pytest_plugins = ("support.processes",)

FINDMNT_COLUMNS = "ID,PARENT,MAJ:MIN,FSROOT,TARGET,FSTYPE,SOURCE,VFS-OPTIONS,FS-OPTIONS,OPT-FIELDS"


def findmnt_mounts(raw: bytes) -> list[Mount]:
    """``findmnt --raw`` rows as Mount records; findmnt writes unsafe bytes as \\xHH (the oracle)."""

    def unhex(field: bytes) -> str:
        decoded = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m[1], 16)]), field)
        return decoded.decode("utf-8", "surrogateescape")

    found = []
    for line in raw.splitlines():
        mount_id, parent, majmin, root, target, fstype, source, vfs, fs, optional = map(
            unhex, line.split(b" ")
        )
        major, minor = majmin.split(":")
        found.append(
            Mount(
                int(mount_id),
                int(parent),
                int(major),
                int(minor),
                root,
                target,
                vfs,
                tuple(optional.split()),
                fstype,
                source,
                fs,
            )
        )
    return found


def findmnt(*args: str) -> bytes:
    argv = ["findmnt", "--raw", "--noheadings", "--kernel", "--nofsroot", "-o", FINDMNT_COLUMNS, *args]
    return subprocess.run(argv, capture_output=True, check=True, env={**os.environ, "LC_ALL": "C"}).stdout


# ---- parse_mountinfo on the real kernel ---------------------------------------------------------


def test_parse_mountinfo_matches_findmnt_on_this_system():
    # Other work on this machine may mount meanwhile: take a snapshot that did not change around findmnt.
    for _ in range(5):
        before = Path("/proc/self/mountinfo").read_bytes()
        oracle = findmnt_mounts(findmnt())
        if Path("/proc/self/mountinfo").read_bytes() == before:
            break
    else:
        pytest.fail("the mount table kept changing while it was read")

    parsed = mounts.parse_mountinfo(before.decode("utf-8", "surrogateescape"))

    assert len(parsed) == len(oracle) == len(before.splitlines())
    assert {(m.mount_point, m.fstype) for m in parsed} == {(m.mount_point, m.fstype) for m in oracle}
    assert parsed == oracle


def test_read_mountinfo_reads_this_process():
    found = mounts.read_mountinfo()

    assert any(m.mount_point == "/" for m in found)
    assert any(m.mount_point == "/proc" and m.fstype == "proc" for m in found)


# A mount point and source with each character the kernel escapes, made in a private mount namespace.
HOSTILE_MOUNTS = [
    pytest.param("sp ace", "src with space", False, id="space"),
    pytest.param("tab\tx", "t\tsrc", False, id="tab"),
    pytest.param("nl\nx", "a\nb", False, id="newline"),
    pytest.param("back\\sl", "s\\rc", False, id="backslash"),
    pytest.param("-", "-", False, id="a dash mount point and source"),
    pytest.param("caf\u00e9", "t", False, id="utf-8 name"),
    pytest.param("\\040literal", "\\011", False, id="text that looks like an escape"),
    pytest.param("shared", "t", True, id="shared (optional field)"),
    pytest.param("empty source", "", False, id="empty source (mount -t tmpfs '' DIR)"),
]


@pytest.mark.parametrize(("name", "source", "shared"), HOSTILE_MOUNTS)
def test_parse_mountinfo_in_a_namespace_with_hostile_names(tmp_path, name, source, shared):
    point = tmp_path / name
    point.mkdir()
    script = (
        'mount -t tmpfs "$2" "$1" && { [ "$3" = no ] || mount --make-shared "$1"; } && '
        'cat /proc/self/mountinfo && printf "\\0\\0" && '
        f'findmnt --raw --noheadings --kernel --nofsroot -o {FINDMNT_COLUMNS} --mountpoint "$1"'
    )
    out = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script, "sh", str(point), source, "yes" if shared else "no"],
        capture_output=True,
        check=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    mountinfo, oracle = out.split(b"\0\0")

    found = [
        m
        for m in mounts.parse_mountinfo(mountinfo.decode("utf-8", "surrogateescape"))
        if m.mount_point == str(point)
    ]

    assert found == findmnt_mounts(oracle)
    assert (found[0].source, found[0].fstype, found[0].shared) == (source, "tmpfs", shared)


# ---- parse_mountinfo tables ---------------------------------------------------------------------

MOUNTINFO_CASES = [
    pytest.param(
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n",
        [Mount(22, 27, 0, 21, "/", "/proc", "rw,relatime", (), "proc", "proc", "rw")],
        id="no optional fields",
    ),
    pytest.param(
        "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n",
        [
            Mount(
                36,
                35,
                98,
                0,
                "/mnt1",
                "/mnt2",
                "rw,noatime",
                ("master:1",),
                "ext3",
                "/dev/root",
                "rw,errors=continue",
            )
        ],
        id="proc(5) example",
    ),
    pytest.param(
        "44 27 254:0 /run/netns /run/netns rw,relatime shared:1 master:2 propagate_from:3 unbindable - ext4 "
        "/dev/vda rw,discard\n",
        [
            Mount(
                44,
                27,
                254,
                0,
                "/run/netns",
                "/run/netns",
                "rw,relatime",
                ("shared:1", "master:2", "propagate_from:3", "unbindable"),
                "ext4",
                "/dev/vda",
                "rw,discard",
            )
        ],
        id="several optional fields",
    ),
    pytest.param(
        "99 51 0:48 /a\\040b /mnt/sp\\040ace/t\\011ab/n\\012l/b\\134s rw - tmpfs src\\040x rw\n",
        [Mount(99, 51, 0, 48, "/a b", "/mnt/sp ace/t\tab/n\nl/b\\s", "rw", (), "tmpfs", "src x", "rw")],
        id="octal escapes: space tab newline backslash",
    ),
    pytest.param(
        "48 44 0:4 net:[4026532177] /run/netns/x rw shared:2 - nsfs nsfs rw\n",
        [Mount(48, 44, 0, 4, "net:[4026532177]", "/run/netns/x", "rw", ("shared:2",), "nsfs", "nsfs", "rw")],
        id="nsfs root",
    ),
    pytest.param(
        "30 25 0:27 / /dev/shm rw - tmpfs tmpfs\n",
        [Mount(30, 25, 0, 27, "/", "/dev/shm", "rw", (), "tmpfs", "tmpfs", "")],
        id="no super options (older kernels)",
    ),
    pytest.param(
        "\n"
        "garbage\n"
        "22 27 0:21 / /proc rw,relatime proc proc rw\n"
        "22 27 0:21 / /proc - proc proc rw\n"
        "22 27 0:21 / /proc rw - proc\n"
        "23 27 0:22 / /sys rw - sysfs sysfs rw\n",
        [Mount(23, 27, 0, 22, "/", "/sys", "rw", (), "sysfs", "sysfs", "rw")],
        id="malformed lines ignored: no separator, separator too early, too few fields",
    ),
    pytest.param(
        "x y 0:21 / /proc rw - proc proc rw\n"
        "22 27 zero:one / /proc rw - proc proc rw\n"
        "23 27 0:22 / /sys rw - sysfs sysfs rw\n",
        [Mount(23, 27, 0, 22, "/", "/sys", "rw", (), "sysfs", "sysfs", "rw")],
        id="malformed lines ignored: ids and device numbers that are not numbers",
    ),
    pytest.param("", [], id="empty"),
]


@pytest.mark.parametrize(("text", "expected"), MOUNTINFO_CASES)
def test_parse_mountinfo(text, expected):
    assert mounts.parse_mountinfo(text) == expected


def test_mount_properties():
    m = Mount(44, 27, 254, 0, "/", "/run/netns", "rw", ("master:2", "shared:1"), "ext4", "/dev/vda", "rw")

    assert (m.devno, m.shared) == ((254, 0), True)
    assert not Mount(1, 0, 0, 1, "/", "/", "rw", ("master:1",), "ext4", "x", "rw").shared


# ---- ordering -----------------------------------------------------------------------------------


def mount(mount_id: int, parent_id: int, point: str) -> Mount:
    return Mount(mount_id, parent_id, 0, mount_id, "/", point, "rw", (), "ext4", f"/dev/x{mount_id}", "rw")


MOUNTS_UNDER_CASES = [
    pytest.param(
        [
            mount(30, 1, "/mnt/x"),
            mount(32, 31, "/mnt/x/boot/efi"),
            mount(31, 30, "/mnt/x/boot"),
            mount(33, 1, "/mnt/xy"),
            mount(34, 30, "/mnt/x/usr"),
            mount(35, 1, "/mnt"),
        ],
        "/mnt/x",
        ["/mnt/x", "/mnt/x/boot", "/mnt/x/usr", "/mnt/x/boot/efi"],
        id="deepest last, sibling prefix excluded",
    ),
    pytest.param(
        [mount(40, 30, "/mnt/x/dev/pts"), mount(30, 1, "/mnt/x"), mount(39, 30, "/mnt/x/dev")],
        "/mnt/x/",
        ["/mnt/x", "/mnt/x/dev", "/mnt/x/dev/pts"],
        id="trailing slash on top",
    ),
    pytest.param(
        [mount(26, 24, "/dev/pts"), mount(29, 26, "/dev/pts"), mount(24, 27, "/dev")],
        "/dev",
        ["/dev", "/dev/pts", "/dev/pts"],
        id="stacked mounts keep their order",
    ),
    pytest.param(
        # This machine's own mount table: / (id 27) was mounted after /proc, /sys and /dev.
        [
            mount(22, 27, "/proc"),
            mount(23, 27, "/sys"),
            mount(24, 27, "/dev"),
            mount(25, 24, "/dev/shm"),
            mount(27, 1, "/"),
        ],
        "/",
        ["/", "/proc", "/sys", "/dev", "/dev/shm"],
        id="top / with the root mounted last",
    ),
    pytest.param([mount(30, 1, "/mnt/xy")], "/mnt/x", [], id="nothing under"),
]


@pytest.mark.parametrize(("table", "top", "expected"), MOUNTS_UNDER_CASES)
def test_mounts_under(table, top, expected):
    found = mounts.mounts_under(table, top)

    assert [m.mount_point for m in found] == expected
    assert_parents_first(found)


def assert_parents_first(ordered: list[Mount]) -> None:
    """The order to mount them: every mount comes after the mount it sits on."""
    seen: set[int] = set()
    present = {m.mount_id for m in ordered}
    for m in ordered:
        assert m.parent_id not in present or m.parent_id in seen, (
            f"{m.mount_point} (id {m.mount_id}) before its parent"
        )
        seen.add(m.mount_id)


def test_mounts_under_on_this_system_mounts_parents_first():
    table = mounts.read_mountinfo()
    for top in sorted({m.mount_point for m in table}):
        found = mounts.mounts_under(table, top)
        assert {m.mount_id for m in found} == {
            m.mount_id for m in table if mounts.is_under(m.mount_point, top)
        }
        assert_parents_first(found)


@pytest.mark.parametrize(
    ("path", "top", "expected"),
    [
        ("/mnt/a", "/mnt/a", True),
        ("/mnt/a/b", "/mnt/a", True),
        ("/mnt/a/b", "/mnt/a/", True),
        ("/mnt/a/b/c", "/mnt/a//", True),
        ("/mnt/ab", "/mnt/a", False),
        ("/mnt/a", "/mnt/ab", False),
        ("/mnt/a b", "/mnt/a", False),
        ("/mnt", "/mnt/a", False),
        ("/anything/at/all", "/", True),
        ("/", "/", True),
        ("/", "/mnt", False),
    ],
    ids=lambda v: repr(v) if isinstance(v, str) else None,
)
def test_is_under(path, top, expected):
    assert mounts.is_under(path, top) is expected


def test_mounts_of_devices():
    table = [mount(1, 0, "/"), mount(2, 1, "/boot"), mount(3, 1, "/srv")]

    assert [m.mount_point for m in mounts.mounts_of_devices(table, {(0, 2), (0, 3), (9, 9)})] == [
        "/boot",
        "/srv",
    ]
    assert mounts.mounts_of_devices(table, set()) == []


# ---- parse_fstab --------------------------------------------------------------------------------


def entry(spec, file, vfstype="auto", options="defaults", freq=0, passno=0, *, line=1) -> FstabEntry:
    return FstabEntry(spec, file, vfstype, options, freq, passno, line)


FSTAB_CASES = [
    pytest.param(
        "# /etc/fstab: static file system information.\n"
        "#\n"
        "\n"
        "UUID=1f0b2c3d-0000-4000-8000-000000000001 /               ext4    errors=remount-ro 0       1\n"
        "   # indented comment\n"
        "\t\n"
        "LABEL=boot      /boot           ext4    defaults        0       2\n"
        "PARTUUID=5e4f3a2b-02 /boot/efi vfat umask=0077 0 1\n"
        "/dev/mapper/vg0-swap none swap sw 0 0\n",
        [
            entry(
                "UUID=1f0b2c3d-0000-4000-8000-000000000001", "/", "ext4", "errors=remount-ro", 0, 1, line=4
            ),
            entry("LABEL=boot", "/boot", "ext4", "defaults", 0, 2, line=7),
            entry("PARTUUID=5e4f3a2b-02", "/boot/efi", "vfat", "umask=0077", 0, 1, line=8),
            entry("/dev/mapper/vg0-swap", "none", "swap", "sw", 0, 0, line=9),
        ],
        id="debian installer fstab: comments, blank lines, UUID LABEL PARTUUID",
    ),
    pytest.param("/dev/sda1 /boot\n", [entry("/dev/sda1", "/boot")], id="two fields get the defaults"),
    pytest.param("/dev/sda1 /boot xfs\n", [entry("/dev/sda1", "/boot", "xfs")], id="three fields"),
    pytest.param(
        "/dev/sda1 /boot xfs ro 1\n", [entry("/dev/sda1", "/boot", "xfs", "ro", 1, 0)], id="five fields"
    ),
    pytest.param(
        "LABEL=my\\040disk /mnt/my\\040disk\\011x ext4 defaults 0 0\n",
        [entry("LABEL=my disk", "/mnt/my disk\tx", "ext4", "defaults")],
        id="escaped space and tab",
    ),
    pytest.param(
        "/dev/sda1 /boot ext4 defaults x y\n/dev/sda2 /var ext4 defaults 0 two\n",
        [
            entry("/dev/sda1", "/boot", "ext4", "defaults"),
            entry("/dev/sda2", "/var", "ext4", "defaults", line=2),
        ],
        id="bad freq and passno read as 0",
    ),
    pytest.param(
        "/dev/sda1\n#/dev/sda2 /var ext4\n/dev/sda3 /usr ext4 defaults 0 2 extra fields\n",
        [entry("/dev/sda3", "/usr", "ext4", "defaults", 0, 2, line=3)],
        id="one field skipped, commented entry skipped, extra fields ignored",
    ),
    pytest.param(
        "tmpfs\t/tmp\ttmpfs\tnosuid,nodev\t0\t0\n",
        [entry("tmpfs", "/tmp", "tmpfs", "nosuid,nodev")],
        id="tabs",
    ),
    pytest.param("", [], id="empty"),
]


@pytest.mark.parametrize(("text", "expected"), FSTAB_CASES)
def test_parse_fstab(text, expected):
    assert mounts.parse_fstab(text) == expected


def test_fstab_option_list():
    assert entry("x", "/", options="ro,noatime,x-systemd.automount").option_list == [
        "ro",
        "noatime",
        "x-systemd.automount",
    ]


# ---- holders ------------------------------------------------------------------------------------


def holders_of(pid: int, found: list[Holder]) -> list[tuple[str, str]]:
    return sorted((h.how, h.path) for h in found if h.pid == pid)


def test_holders_finds_a_working_directory(tmp_path, spawn):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    sleeper = spawn(["sleep", "30"], cwd=tree / "sub")

    assert holders_of(sleeper.pid, mounts.holders(under=[str(tree)])) == [("cwd", str(tree / "sub"))]
    assert holders_of(sleeper.pid, mounts.holders(under=[str(tree) + "/"])) == [("cwd", str(tree / "sub"))]
    assert Holder(sleeper.pid, "sleep", "cwd", str(tree / "sub")) in mounts.holders(under=[str(tree)])


def test_holders_ignores_a_sibling_with_the_same_prefix(tmp_path, spawn):
    (tmp_path / "treex").mkdir()
    sleeper = spawn(["sleep", "30"], cwd=tmp_path / "treex")

    assert holders_of(sleeper.pid, mounts.holders(under=[str(tmp_path / "tree")])) == []


def test_holders_finds_an_open_file(tmp_path, spawn):
    held = tmp_path / "disk.raw"
    held.write_bytes(b"\0" * 4096)
    other = tmp_path / "other.raw"
    other.write_bytes(b"")
    sleeper = spawn(["sh", "-c", 'exec 3<"$1"; exec sleep 30', "sh", str(held)], cwd="/")
    st = held.stat()

    found = mounts.holders(files=[(st.st_dev, st.st_ino)])

    assert holders_of(sleeper.pid, found) == [("fd 3", str(held))]
    assert holders_of(sleeper.pid, mounts.holders(under=[str(tmp_path)])) == [("fd 3", str(held))]
    assert holders_of(sleeper.pid, mounts.holders(files=[(other.stat().st_dev, other.stat().st_ino)])) == []


@pytest.mark.parametrize(("redirect", "writing"), [("<", False), ("<>", True), (">>", True)])
def test_holders_says_which_descriptors_can_write(tmp_path, spawn, redirect, writing):
    """A running guest's qemu has its disk open for writing; a backup tool reading it does not."""
    held = tmp_path / "disk.raw"
    held.write_bytes(b"\0" * 4096)
    sleeper = spawn(["sh", "-c", f'exec 3{redirect}"$1"; exec sleep 30', "sh", str(held)], cwd="/")
    st = held.stat()

    [holder] = [h for h in mounts.holders(files=[(st.st_dev, st.st_ino)]) if h.pid == sleeper.pid]

    assert holder.writing is writing
    assert holder.describe().endswith(" (open for writing)") is writing


def test_holders_finds_a_mapped_file(tmp_path):
    """A library stays in use through its mapping once the loader has closed it (the old root's libc)."""
    import _json  # a small shared object of the standard library, loaded again from a copy

    mapped = tmp_path / "tree" / "libcopy.so"
    mapped.parent.mkdir()
    shutil.copyfile(_json.__file__, mapped)
    st = mapped.stat()
    script = "import ctypes, sys, time; ctypes.CDLL(sys.argv[1]); print(flush=True); time.sleep(30)"
    with subprocess.Popen(
        [sys.executable, "-c", script, str(mapped)], cwd="/", stdout=subprocess.PIPE
    ) as loader:
        try:
            loader.stdout.readline()  # loaded: mapped, its descriptor closed by the loader

            assert holders_of(loader.pid, mounts.holders(under=[str(mapped.parent)])) == [
                ("maps", str(mapped))
            ]
            assert holders_of(loader.pid, mounts.holders(files=[(st.st_dev, st.st_ino)])) == [
                ("maps", str(mapped))
            ]
            assert holders_of(loader.pid, mounts.holders(under=[str(tmp_path / "elsewhere")])) == []
        finally:
            loader.kill()


def test_holders_leaves_out_the_caller(tmp_path):
    held = tmp_path / "mine"
    held.write_text("x")
    st = held.stat()
    with open(held, encoding="utf-8"):
        assert [h for h in mounts.holders(files=[(st.st_dev, st.st_ino)]) if h.pid == os.getpid()] == []


def test_holders_of_a_block_device_ignores_a_character_device_with_the_same_numbers(tmp_path, spawn):
    """holders(devices=...) names block devices by st_rdev; a character device can share the numbers.

    /dev/null is character device 1:3, the same numbers as block device /dev/ram3 (on this machine
    character 254:0 is ndctl and block 254:0 is /dev/vda). A process with /dev/null open does not hold
    block device 1:3.
    """
    sleeper = spawn(["sh", "-c", "exec 3</dev/null; exec sleep 30"], cwd="/")
    ram3 = os.makedev(1, 3)
    assert os.stat("/dev/null").st_rdev == ram3

    assert holders_of(sleeper.pid, mounts.holders(devices=[ram3])) == []


def test_holder_describe():
    assert Holder(42, "sleep", "cwd", "/mnt/x").describe() == "pid 42 (sleep) cwd /mnt/x"


def test_holders_with_nothing_asked_finds_nothing():
    assert mounts.holders() == []
