"""rootfs: a broken root read as data, on real directory trees, including hostile ones."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs
from ansible_collections.lifeline.rescue.plugins.module_utils.target.rootfs import RootError

TREES = Path(os.environ.get("LIFELINE_TREES", "/var/cache/lifeline/trees"))
RESCUER_OS_RELEASE = Path("/etc/os-release")


@dataclass(frozen=True)
class Link:
    target: str


@dataclass(frozen=True)
class Node:
    """A special file: "dir", "fifo" or "chardev" (a copy of /dev/null's device number)."""

    kind: str


DIR, FIFO, CHARDEV = Node("dir"), Node("fifo"), Node("chardev")


def build(root: Path, spec: dict[str, str | bytes | Link | Node]) -> Path:
    """Make ``root`` hold exactly the files of ``spec`` (relative path -> content, link or node)."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, what in spec.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(what, Link):
            path.symlink_to(what.target)
        elif what == DIR:
            path.mkdir()
        elif what == FIFO:
            os.mkfifo(path)
        elif what == CHARDEV:
            os.mknod(path, 0o600 | 0o020000, os.stat("/dev/null").st_rdev)
        elif isinstance(what, bytes):
            path.write_bytes(what)
        else:
            path.write_text(what)
    return root


def assert_inside(root: Path, host: str) -> None:
    real_root = os.path.realpath(root)
    assert os.path.commonpath([real_root, os.path.realpath(host)]) == real_root, f"{host} is outside {root}"


def sh_os_release(path: Path, keys: list[str]) -> dict[str, str]:
    """What a POSIX shell sourcing ``path`` sees for ``keys``: the oracle, independent of rootfs."""
    script = '. "$1"; shift; for k; do eval "printf \'%s\\0\' \\"\\$$k\\""; done'
    out = subprocess.run(
        ["sh", "-c", script, "sh", str(path), *keys], capture_output=True, text=True, check=True
    )
    return dict(zip(keys, out.stdout.split("\0")[: len(keys)], strict=True))


# ---- resolve ------------------------------------------------------------------------------------

TARGET_OS = "ID=target-os\nVERSION_ID=7\n"

RESOLVE_CASES = [
    pytest.param(
        {"usr/lib/os-release": TARGET_OS, "etc/os-release": Link("/usr/lib/os-release")},
        "/etc/os-release",
        "/usr/lib/os-release",
        False,
        id="absolute link resolves against the root",
    ),
    pytest.param(
        {"usr/lib/os-release": TARGET_OS, "etc/os-release": Link("../usr/lib/os-release")},
        "/etc/os-release",
        "/usr/lib/os-release",
        False,
        id="relative link",
    ),
    pytest.param(
        {"usr/lib/x86_64-linux-gnu/libc.so.6": "", "lib": Link("usr/lib")},
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/usr/lib/x86_64-linux-gnu/libc.so.6",
        False,
        id="link in the middle of the path (merged /usr)",
    ),
    pytest.param(
        {"usr/lib/os-release": TARGET_OS, "etc/os-release": Link("../../../../../../usr/lib/os-release")},
        "/etc/os-release",
        "/usr/lib/os-release",
        True,
        id="dotdot above the root clamps at the root",
    ),
    pytest.param({"etc": DIR}, "/../../../etc", "/etc", True, id="dotdot in the path itself clamps"),
    pytest.param(
        {"etc/os-release": Link("/../os-release")},
        "/etc/os-release",
        "/os-release",
        True,
        id="slash-dotdot link",
    ),
    pytest.param(
        {"usr/bin": DIR, "bin": Link("usr/bin")}, "/bin/../etc", "/usr/etc", False, id="dotdot after a link"
    ),
    pytest.param({"a/b": DIR, "a/top": Link("/")}, "/a/top/a/b", "/a/b", False, id="link to the root itself"),
    pytest.param(
        {"etc": DIR}, "/etc/missing/deeper/file", "/etc/missing/deeper/file", False, id="missing kept"
    ),
    pytest.param(
        {"etc/os-release": Link("/nowhere/os-release")},
        "/etc/os-release",
        "/nowhere/os-release",
        False,
        id="dangling link followed to the missing name",
    ),
    pytest.param(
        {"etc": DIR}, "etc//./os-release", "/etc/os-release", False, id="relative path, double slash, dot"
    ),
    pytest.param({}, "/", "/", False, id="the root itself"),
]


@pytest.mark.parametrize(("spec", "path", "inside", "escaped"), RESOLVE_CASES)
def test_resolve(tmp_path, spec, path, inside, escaped):
    root = build(tmp_path / "root", spec)

    found = rootfs.resolve(str(root), path)

    assert (found.inside, found.escaped) == (inside, escaped)
    assert found.host == (str(root) if inside == "/" else str(root) + inside)
    assert_inside(root, found.host)


def test_resolve_records_each_link_followed(tmp_path):
    root = build(
        tmp_path / "root", {"usr/lib/os-release": TARGET_OS, "etc/os-release": Link("/usr/lib/os-release")}
    )

    assert rootfs.resolve(str(root), "/etc/os-release").links == ["/etc/os-release -> /usr/lib/os-release"]


def test_resolve_keeps_the_last_link_when_asked(tmp_path):
    root = build(tmp_path / "root", {"lib": Link("usr/lib"), "usr/lib/os-release": Link("/nowhere")})

    found = rootfs.resolve(str(root), "/lib/os-release", follow_last=False)

    assert (found.inside, found.links) == ("/usr/lib/os-release", ["/lib -> usr/lib"])


def _outcome(root: str, path: str, follow_last: bool) -> tuple:
    try:
        found = rootfs.resolve(root, path, follow_last=follow_last)
    except RootError as exc:
        return ("error", str(exc))
    return (found.inside, found.escaped, tuple(found.links))


def test_remembered_lookups_resolve_every_path_as_a_fresh_lookup_does(tmp_path, deadline):
    """Paths through links, .., loops, escapes and missing parts, asked in an order that fills the
    memory first with their own prefixes and then with others'."""
    spec = {
        "usr/lib/x86_64-linux-gnu/libc.so.6": "libc\n",
        "usr/bin/ls": "ls\n",
        "bin": Link("usr/bin"),
        "lib": Link("/usr/lib"),
        "lib64": Link("usr/lib/../lib/x86_64-linux-gnu"),
        "etc/alternatives/awk": Link("/usr/bin/ls"),
        "etc/loop": Link("loop2"),
        "etc/loop2": Link("/etc/loop"),
        "opt/up": Link("../../../.."),
        "opt/deep": Link("up/usr/lib"),
        "srv/chain": Link("a"),
        "srv/a": Link("b"),
        "srv/b": Link("../usr"),
    }
    root = str(build(tmp_path / "root", spec))
    for n in range(38):
        os.symlink(f"c{n + 1}", f"{root}/srv/c{n}")
    os.symlink("/srv/chain", f"{root}/srv/c38")
    tails = ["", "/x86_64-linux-gnu/libc.so.6", "/bin/ls", "/missing/file", "/../etc/loop/x", "/.."]
    heads = [
        "/lib",
        "/lib64",
        "/usr/lib",
        "/bin",
        "/opt/up",
        "/opt/deep",
        "/srv/chain",
        "/srv/c0",
        "/etc/alternatives/awk",
        "/etc/loop",
        "/nowhere",
        "/..",
        "/usr/../usr/lib",
    ]
    paths = [h + t for h in heads for t in tails]
    with deadline(30):
        fresh = {(p, f): _outcome(root, p, f) for p in paths for f in (True, False)}
        for order in (paths, list(reversed(paths)), sorted(paths, key=len)):
            with rootfs.remembered_lookups():
                remembered = {(p, f): _outcome(root, p, f) for p in order for f in (False, True)}
            assert remembered == fresh
    assert rootfs._remembered is None
    assert any(o[0] == "error" for o in fresh.values()) and any(
        o[1] for o in fresh.values() if o[0] != "error"
    )


@pytest.mark.parametrize(
    ("spec", "exists"),
    [
        pytest.param({"etc/os-release": TARGET_OS}, True, id="a file"),
        pytest.param({"etc/os-release": Link("/nowhere")}, True, id="a dangling link"),
        pytest.param(
            {"etc": Link("/etc-real"), "etc-real/os-release": TARGET_OS}, True, id="through a linked dir"
        ),
        pytest.param({"etc": DIR}, False, id="missing"),
        pytest.param({"etc": Link("/etc")}, None, id="through a link loop"),
    ],
)
def test_lexists(tmp_path, spec, exists):
    root = build(tmp_path / "root", spec)

    if exists is None:
        with pytest.raises(RootError):
            rootfs.lexists(str(root), "/etc/os-release")
    else:
        assert rootfs.lexists(str(root), "/etc/os-release") is exists


LOOPS = [
    pytest.param({"a": Link("b"), "b": Link("a")}, "/a", id="a to b to a"),
    pytest.param({"a": Link("a")}, "/a", id="link to itself"),
    pytest.param({"a": Link("/a")}, "/a/x", id="absolute link to itself, then more"),
    pytest.param({"d/x": Link("../d/x")}, "/d/x", id="loop through its directory"),
    pytest.param({"a": Link("a/a")}, "/a", id="ever longer"),
    pytest.param({"etc": Link("/etc")}, "/etc/os-release", id="etc links to /etc"),
]


@pytest.mark.parametrize(("spec", "path"), LOOPS)
def test_resolve_link_loop_raises(tmp_path, deadline, spec, path):
    root = build(tmp_path / "root", spec)

    with deadline(5), pytest.raises(RootError, match="too many levels of symbolic links"):
        rootfs.resolve(str(root), path)


def chain(root: Path, count: int) -> Path:
    """l0 -> l1 -> ... -> l<count-1> -> file: resolving /l0 follows ``count`` links."""
    build(root, {"file": "end\n"})
    for n in range(count):
        (root / f"l{n}").symlink_to(f"l{n + 1}" if n + 1 < count else "file")
    return root


def test_resolve_follows_forty_links(tmp_path):
    found = rootfs.resolve(str(chain(tmp_path / "root", 40)), "/l0")

    assert (found.inside, len(found.links)) == ("/file", 40)


def test_resolve_refuses_forty_one_links(tmp_path):
    with pytest.raises(RootError):
        rootfs.resolve(str(chain(tmp_path / "root", 41)), "/l0")


# ---- hostile os-release links: never the rescuer's file -----------------------------------------

HOSTILE_OS_RELEASE = [
    pytest.param({"etc/os-release": Link("/etc/os-release")}, {}, id="absolute link to /etc/os-release"),
    pytest.param({"etc/os-release": Link("../../../../../../etc/os-release")}, {}, id="dotdot chain to etc"),
    pytest.param({"etc": Link("/etc")}, {}, id="etc is a link to /etc"),
    pytest.param({"etc": Link("../../../../../../../etc")}, {}, id="etc climbs to the rescuer's etc"),
    pytest.param(
        {"etc/os-release": Link("/proc/self/root/etc/os-release")}, {}, id="through /proc/self/root"
    ),
    pytest.param(
        {"etc/os-release": Link("/usr/lib/os-release"), "usr/lib/os-release": Link("/etc/os-release")},
        {},
        id="two files pointing at each other",
    ),
    pytest.param(
        {"etc/os-release": Link("../../../../../../usr/lib/os-release"), "usr/lib/os-release": TARGET_OS},
        {"ID": "target-os", "VERSION_ID": "7"},
        id="dotdot chain lands on the root's own file",
    ),
    pytest.param(
        {"etc": Link("/../../etc-real"), "etc-real/os-release": TARGET_OS},
        {"ID": "target-os", "VERSION_ID": "7"},
        id="etc links above the root, clamped to the root's own etc",
    ),
]


@pytest.mark.parametrize(("spec", "expected"), HOSTILE_OS_RELEASE)
def test_os_release_never_reads_the_rescuers_file(tmp_path, deadline, spec, expected):
    assert RESCUER_OS_RELEASE.is_file(), "this test needs a rescuer with /etc/os-release to be tempting"
    rescuer = rootfs.parse_os_release(RESCUER_OS_RELEASE.read_text())
    root = build(tmp_path / "root", spec)

    with deadline(5):
        found = rootfs.os_release(str(root))

    assert found == expected
    assert found != rescuer


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        pytest.param({"etc/os-release": FIFO}, "not a regular file", id="a FIFO (a reader would block)"),
        pytest.param(
            {"etc/os-release": Link("fifo"), "etc/fifo": FIFO}, "not a regular file", id="a link to a FIFO"
        ),
        pytest.param({"etc/os-release": DIR}, "not a regular file", id="a directory"),
        pytest.param({"etc/os-release": CHARDEV}, "not a regular file", id="a character device node"),
        pytest.param({"etc/os-release": "x" * (2 << 20)}, "larger than", id="a 2 MB file"),
        pytest.param({"etc/os-release": b"ID=debian\n" + b"\0" * 512 + b"x\n"}, "NUL bytes", id="NUL bytes"),
        pytest.param({"etc": DIR}, "No such file", id="missing"),
        pytest.param({"etc/os-release": Link("/usr/lib/os-release")}, "No such file", id="dangling link"),
    ],
)
def test_read_text_refuses(tmp_path, deadline, spec, why):
    root = build(tmp_path / "root", spec)

    with deadline(5), pytest.raises(RootError, match=why) as raised:
        rootfs.read_text(str(root), "/etc/os-release")

    assert "/etc/os-release" in str(raised.value)
    assert str(root) in str(raised.value)


def test_os_release_skips_a_fifo_for_the_next_candidate(tmp_path, deadline):
    root = build(tmp_path / "root", {"etc/os-release": FIFO, "usr/lib/os-release": TARGET_OS})

    with deadline(5):
        assert rootfs.os_release(str(root)) == {"ID": "target-os", "VERSION_ID": "7"}


def test_read_text_limit_is_exact(tmp_path):
    root = build(tmp_path / "root", {"f": "a" * 100})

    assert rootfs.read_text(str(root), "/f", limit=100) == "a" * 100
    with pytest.raises(RootError, match="larger than 99 bytes"):
        rootfs.read_text(str(root), "/f", limit=99)


def test_read_text_replaces_invalid_utf8(tmp_path):
    root = build(tmp_path / "root", {"etc/motd": b"caf\xe9\n"})

    assert rootfs.read_text(str(root), "/etc/motd") == "caf\ufffd\n"


# ---- parse_os_release ---------------------------------------------------------------------------

DEBIAN_12 = """\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

# (text, expected, valid shell: a POSIX sh sourcing the text must agree with the expectation)
OS_RELEASE_CASES = [
    pytest.param(
        DEBIAN_12,
        {
            "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)",
            "NAME": "Debian GNU/Linux",
            "VERSION_ID": "12",
            "VERSION": "12 (bookworm)",
            "VERSION_CODENAME": "bookworm",
            "ID": "debian",
            "HOME_URL": "https://www.debian.org/",
        },
        True,
        id="debian 12 as shipped",
    ),
    pytest.param(
        "ID='rocky'\nNAME='Rocky Linux'\n", {"ID": "rocky", "NAME": "Rocky Linux"}, True, id="single quoted"
    ),
    pytest.param(
        "ID=alpine\nVERSION_ID=3.19.1\n", {"ID": "alpine", "VERSION_ID": "3.19.1"}, True, id="unquoted"
    ),
    pytest.param(
        "# a comment\n\n   \n  # indented comment\nID=arch\n\n",
        {"ID": "arch"},
        True,
        id="comments and blank lines",
    ),
    pytest.param("  ID=fedora  \r\n", {"ID": "fedora"}, False, id="surrounding blanks and CRLF"),
    pytest.param(
        'garbage line\n=value\n1ID=x\nMY KEY=x\nNAME="unterminated\nID=debian\n',
        {"ID": "debian"},
        False,
        id="garbage lines skipped",
    ),
    pytest.param('VARIANT=""\nVARIANT_ID=\n', {"VARIANT": "", "VARIANT_ID": ""}, True, id="empty values"),
    pytest.param(
        'PRETTY_NAME="Foo \\"Bar\\" Linux"\n',
        {"PRETTY_NAME": 'Foo "Bar" Linux'},
        True,
        id="escaped double quotes",
    ),
    pytest.param(
        'NAME="a\\$b \\`c\\` d\\\\e"\n',
        {"NAME": "a$b `c` d\\e"},
        True,
        id="escaped dollar backtick backslash (os-release(5): shell style)",
    ),
    pytest.param("ID=debian\nID=ubuntu\n", {"ID": "ubuntu"}, True, id="last assignment wins"),
    pytest.param(
        'URL="https://x/?a=b"\n', {"URL": "https://x/?a=b"}, True, id="equals sign inside the value"
    ),
    pytest.param("", {}, True, id="empty file"),
]


@pytest.mark.parametrize(("text", "expected", "shell_ok"), OS_RELEASE_CASES)
def test_parse_os_release(text, expected, shell_ok):
    assert rootfs.parse_os_release(text) == expected


@pytest.mark.parametrize(("text", "expected", "shell_ok"), [p for p in OS_RELEASE_CASES if p.values[2]])
def test_os_release_table_agrees_with_sh(tmp_path, text, expected, shell_ok):
    """The table's expectations are what a shell sourcing the file sees (an independent oracle)."""
    source = tmp_path / "os-release"
    source.write_text(text)

    assert sh_os_release(source, sorted(expected)) == expected


# ---- what a root looks like ---------------------------------------------------------------------

GOOD = {"etc/os-release": TARGET_OS, "usr/bin": DIR}

ROOT_PROBLEMS = [
    pytest.param(GOOD, [], id="good tree"),
    pytest.param(
        {"etc/os-release": Link("../usr/lib/os-release"), "usr/lib/os-release": TARGET_OS},
        [],
        id="merged usr",
    ),
    pytest.param(
        {"etc/redhat-release": "CentOS release 6.10 (Final)\n", "usr": DIR}, [], id="redhat-release only"
    ),
    pytest.param({"etc": DIR, "usr/lib/os-release": TARGET_OS}, [], id="usr/lib/os-release only"),
    pytest.param(
        {"etc/os-release": Link("/usr/lib/os-release"), "usr": DIR},
        [],
        id="dangling os-release link still counts",
    ),
    pytest.param(
        {"usr/lib/os-release": TARGET_OS},
        ["no /etc directory"],
        id="missing etc (os-release in usr/lib counts)",
    ),
    pytest.param({"etc/os-release": TARGET_OS}, ["no /usr directory"], id="missing usr"),
    pytest.param(
        {"etc/hostname": "x\n", "usr": DIR},
        ["no etc/os-release, usr/lib/os-release or etc/redhat-release"],
        id="missing os-release",
    ),
    pytest.param(
        {"etc": "a file\n", "usr": "a file\n"},
        [
            "no /etc directory",
            "no /usr directory",
            "no etc/os-release, usr/lib/os-release or etc/redhat-release",
        ],
        id="etc and usr are files",
    ),
]


@pytest.mark.parametrize(("spec", "problems"), ROOT_PROBLEMS)
def test_linux_root_problems(tmp_path, spec, problems):
    assert rootfs.linux_root_problems(str(build(tmp_path / "root", spec))) == problems


@pytest.mark.parametrize("target", ["/usr", "../../../../../usr", "/proc/self/root/usr"])
def test_linux_root_refuses_usr_linked_to_the_rescuers(tmp_path, target):
    """usr pointing at the rescuer's /usr must never make the tree pass as a root (a problem or an error)."""
    root = build(tmp_path / "root", {"etc/os-release": TARGET_OS, "usr": Link(target)})

    try:
        problems = rootfs.linux_root_problems(str(root))
    except RootError as exc:
        problems = [str(exc)]

    assert problems, f"{root} with usr -> {target} passed as a Linux root"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_linux_root_problems_of_a_non_directory(tmp_path, kind):
    root = tmp_path / "root"
    if kind == "file":
        root.write_text("not a root\n")

    assert rootfs.linux_root_problems(str(root)) == [f"{root} is not a directory"]


def test_not_a_linux_root_names_the_option_and_every_problem(tmp_path):
    root = build(tmp_path / "root", {"etc/hostname": "x\n"})
    good = build(tmp_path / "good", {"etc/os-release": TARGET_OS, "usr/bin": DIR})

    refusal = rootfs.not_a_linux_root("target_root", "./root", str(root))

    assert refusal == (
        "target_root=./root does not look like a Linux root: no /usr directory; "
        "no etc/os-release, usr/lib/os-release or etc/redhat-release"
    )
    assert rootfs.not_a_linux_root("root", "./good", str(good)) == ""


def test_is_running_root(tmp_path):
    (tmp_path / "slash").symlink_to("/")

    assert rootfs.is_running_root("/")
    assert rootfs.is_running_root(str(tmp_path / "slash")), "the running root reached through a link"
    assert not rootfs.is_running_root(str(tmp_path))
    assert not rootfs.is_running_root(str(tmp_path / "missing"))
    assert rootfs.is_running_root(str(tmp_path), running_root=str(tmp_path))


# ---- safe_directory -----------------------------------------------------------------------------

SAFE_DIRECTORIES = [
    pytest.param({"boot": DIR, "etc": DIR}, "/boot", "boot", id="a real directory"),
    pytest.param({"boot/efi": DIR}, "boot/efi", "boot/efi", id="nested, relative path"),
]


@pytest.mark.parametrize(("spec", "path", "where"), SAFE_DIRECTORIES)
def test_safe_directory(tmp_path, spec, path, where):
    root = build(tmp_path / "root", spec)

    found = rootfs.safe_directory(str(root), path)

    assert found == str(root / where)
    assert found != "/etc"
    assert_inside(root, found)


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        pytest.param({"boot": "a file\n"}, "not a directory", id="a regular file"),
        pytest.param({"etc": DIR}, "no such directory", id="missing"),
        pytest.param({"boot": Link("/nowhere")}, "symbolic link", id="dangling link"),
        pytest.param({"boot": FIFO}, "not a directory", id="a FIFO"),
        pytest.param(
            {"boot": Link("/etc/passwd"), "etc/passwd": "root:x:0:0::/root:/bin/sh\n"},
            "symbolic link",
            id="link to a file",
        ),
        # A mount onto a link would land wherever the link points: only real directories are used.
        pytest.param({"boot": Link("/etc"), "etc": DIR}, "symbolic link", id="boot -> /etc"),
        pytest.param({"boot": Link("../../../../etc"), "etc": DIR}, "symbolic link", id="boot climbs out"),
        pytest.param(
            {"srv/data": DIR, "boot": Link("srv/data")}, "symbolic link", id="a link inside the root"
        ),
        pytest.param({"boot": Link("boot")}, "too many levels", id="link loop"),
    ],
)
def test_safe_directory_refuses(tmp_path, spec, why):
    root = build(tmp_path / "root", spec)

    with pytest.raises(RootError, match=why):
        rootfs.safe_directory(str(root), "/boot")


def test_safe_directory_catches_a_link_swapped_in_after_resolving(tmp_path, monkeypatch):
    """The last check looks at the real path: a boot that became a link to /etc after resolve() is refused."""
    root = build(tmp_path / "root", {"boot": Link("/etc")})
    monkeypatch.setattr(rootfs, "resolve", lambda root, path: rootfs.Resolved(root=root, inside="/boot"))

    with pytest.raises(RootError, match="leads outside the root"):
        rootfs.safe_directory(str(root), "/boot")


def test_safe_directory_works_through_a_linked_root(tmp_path):
    build(tmp_path / "real", {"boot": DIR})
    (tmp_path / "alias").symlink_to("real")

    assert rootfs.safe_directory(str(tmp_path / "alias"), "/boot") == str(tmp_path / "alias" / "boot")


@pytest.mark.parametrize("target", ["/", "../../../.."], ids=["boot -> /", "boot -> ../../../.."])
def test_safe_directory_refuses_the_root_itself(tmp_path, target):
    """A hostile root can point boot (or dev, proc) at the root itself: mounting there would hide the root.

    rescue_attach mounts the target's /boot and binds the rescuer's /dev onto what this returns; a
    directory that *is* the root is no place to mount another filesystem.
    """
    root = build(tmp_path / "root", {"boot": Link(target), "etc/os-release": TARGET_OS})

    with pytest.raises(RootError):
        rootfs.safe_directory(str(root), "/boot")


# ---- a real Debian root -------------------------------------------------------------------------


def test_real_debian_root():
    tree = TREES / "bookworm"
    if not (tree / "usr" / "lib" / "os-release").is_file():
        pytest.fail(f"{tree} is missing: run `make images` (it builds the Debian trees the unit lane reads)")

    found = rootfs.os_release(str(tree))

    assert (found["ID"], found["VERSION_ID"]) == ("debian", "12")
    assert found == sh_os_release(tree / "usr" / "lib" / "os-release", sorted(found))
    assert rootfs.linux_root_problems(str(tree)) == []
    assert not rootfs.is_running_root(str(tree))
    assert rootfs.resolve(str(tree), "/bin/sh").inside in ("/usr/bin/dash", "/bin/dash")
