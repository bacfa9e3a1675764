"""The glibc diagnosis (module_utils/glibc/diagnosis.py): which glibc a root runs and which member of its
family is broken, on the real Debian trees against dpkg's own tools, and on copies broken in new ways."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import diagnosis as glibc
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc.diagnosis import GlibcError

from support.faults import elf32
from support.runners import output
from support.trees import SUITES
from support.trees import debian_tree as tree

LIBDIR = "usr/lib/x86_64-linux-gnu"
INTERPRETER = "/lib64/ld-linux-x86-64.so.2"
LAYOUT = {
    "bullseye": "versioned files with soname links",
    "bookworm": "soname files",
    "trixie": "soname files",
}


def dpkg_query(root: Path, *args: str) -> str:
    return output("dpkg-query", f"--admindir={root}/var/lib/dpkg", *args)


def upstream(version: str) -> str:
    """The upstream part of a Debian version, written apart from dpkgdb.Package.upstream."""
    match = re.fullmatch(r"(?:\d+:)?(.+)-[^-]+", version)
    assert match, version
    return match.group(1)


def copy_tree(suite: str, dst: Path) -> Path:
    subprocess.run(["cp", "-a", str(tree(suite)), str(dst)], check=True)
    return dst


def kinds(diagnosis: glibc.Diagnosis) -> dict[str, str]:
    return {f.path: f.problem for f in diagnosis.findings}


@contextlib.contextmanager
def set_aside(root: Path, *rels: str) -> Iterator[None]:
    """Move the named paths of a shared copy aside; afterwards remove what the test left there and put
    the originals back, so the next test meets the copy unchanged."""
    stash = root / ".lifeline-test-stash"
    stash.mkdir(exist_ok=True)
    kept = []
    for n, rel in enumerate(rels):
        if os.path.lexists(root / rel):
            os.rename(root / rel, stash / str(n))
            kept.append(n)
    try:
        yield
    finally:
        for n, rel in enumerate(rels):
            path = root / rel
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                path.unlink()
            if n in kept:
                os.rename(stash / str(n), path)


@pytest.fixture(scope="module")
def bookworm(tmp_path_factory) -> Iterator[Path]:
    """A copy of the bookworm tree the tests of this module break and put back (set_aside), on a tmpfs
    (on this machine's disk a copy takes seconds when both workers copy at once); unmounted afterwards."""
    where = tmp_path_factory.mktemp("trees")
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "mode=0755,size=2g", "lifeline-test", str(where)], check=True
    )
    yield copy_tree("bookworm", where / "bookworm")
    subprocess.run(["umount", str(where)], check=True)


# ---- identity and members on the real trees, against dpkg-query, readelf and md5sum ---------------


@pytest.mark.parametrize("suite", SUITES)
def test_identify_matches_the_package_database(suite):
    root = tree(suite)
    version = dpkg_query(root, "-W", "-f", "${Version}", "libc6")
    libc = [p for p in dpkg_query(root, "-L", "libc6").splitlines() if p.endswith("/libc.so.6")]
    program = output("readelf", "-l", root / "usr/bin/ls")

    identity, _ = glibc.identify(str(root))

    assert identity.version == upstream(version)
    assert identity.package == f"libc6 {version} amd64"
    assert identity.layout == LAYOUT[suite]
    assert identity.interpreter == INTERPRETER
    assert f"[Requesting program interpreter: {INTERPRETER}]" in program
    assert [identity.libdir] == [os.path.dirname(p) for p in libc]
    assert (identity.machine, identity.bits, identity.merged_usr) == ("x86_64", 64, True)


@pytest.mark.parametrize("suite", SUITES)
def test_the_members_are_the_glibc_files_of_the_package(suite):
    root = tree(suite)
    listed = set(dpkg_query(root, "-L", "libc6").splitlines())
    _, members = glibc.identify(str(root))
    names = {os.path.basename(m.path) for m in members}

    assert {m.path for m in members} <= listed
    assert {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "ld-linux-x86-64.so.2"} <= names
    # The interpreter's link is a member, whichever spelling of /lib64 the package lists.
    interpreter = os.lstat(chrooted(root, INTERPRETER))
    assert any(os.path.samestat(os.lstat(chrooted(root, m.path)), interpreter) for m in members)
    files = [m for m in members if m.kind == "file"]
    sums = {}
    for line in output("md5sum", *(chrooted(root, m.path) for m in files)).splitlines():
        digest, host = line.split("  ", 1)
        sums[host] = digest
    for member in files:
        assert member.digest == sums[chrooted(root, member.path)], member.path
    for member in members:
        if member.kind == "link":
            link = chrooted(root, member.path)
            assert os.path.islink(link), member.path
            # Where the member says the link leads and where the tree's link leads: the same file.
            want = os.path.join(os.path.dirname(member.path), member.link)
            got = os.path.join(os.path.dirname(member.path), os.readlink(link))
            assert os.path.samefile(chrooted(root, want), chrooted(root, got)), member.path
            assert member.digest == sums[chrooted(root, want)], member.path


def chrooted(root: Path, inside: str) -> str:
    """The host path of ``inside`` (absolute inside the root); the trees' parent links are relative."""
    return str(root / os.path.normpath(inside).lstrip("/"))


@pytest.mark.parametrize("suite", SUITES)
def test_a_healthy_tree_has_no_findings(suite, deadline):
    with deadline(20):
        diagnosis = glibc.diagnose(str(tree(suite)))
    assert diagnosis.findings == []
    assert diagnosis.as_dict()["findings"] == []
    assert diagnosis.as_dict()["members"] == len(diagnosis.members) >= 15


# ---- file versions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suite", "name", "version"),
    [
        ("bullseye", "libc-2.31.so", "2.31"),
        ("bullseye", "ld-2.31.so", "2.31"),
        ("bookworm", "libc.so.6", "2.36"),
        ("trixie", "libc.so.6", "2.41"),
        ("trixie", "ld-linux-x86-64.so.2", "2.41"),
        # glibc's libthread_db-1.0.so: "1.0" is its own interface version, not a glibc release.
        ("bullseye", "libthread_db-1.0.so", ""),
        ("bookworm", "libpthread.so.0", ""),
    ],
)
def test_file_version(suite, name, version):
    assert glibc.file_version(str(tree(suite) / LIBDIR / name)) == version


def test_file_version_of_a_text_file(tmp_path):
    (tmp_path / "notes").write_text("nothing about a release\n")
    assert glibc.file_version(str(tmp_path / "notes")) == ""
    assert glibc.file_version(str(tmp_path / "missing")) == ""


# ---- what libc.so.6 is in a broken root --------------------------------------------------------


def flipped_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


# (what libc.so.6 becomes: a link target, or bytes made from the good file), kind, words in the detail
LIBC_SHAPES = {
    "dangling link": ("link", "libc-gone.so", "dangling", "is a dangling link"),
    "link climbing out": ("link", "../../../../../../../etc/passwd", "escapes", "leads out of the root"),
    # The rescuer's own /usr/lib/x86_64-linux-gnu/libc.so.6 is a good glibc 2.36; inside the root this
    # absolute link names itself.
    "absolute link to its own path": ("link", f"/{LIBDIR}/libc.so.6", "dangling", "(a link loop)"),
    "absolute link to a host-only file": ("link", "{host}/libc.so.6", "dangling", "is a dangling link"),
    "link loop through another link": ("link", "a", "dangling", "(a link loop)"),
    "absolute link to a text file": ("link", "/etc/passwd", "damaged", "not an ELF file"),
    "truncated to 100 bytes": ("data", lambda good: good[:100], "damaged", "truncated or corrupt"),
    "32-bit ELF": ("data", elf32, "wrong_arch", "is a 32-bit i386 file, not x86_64"),
    "one byte changed": (
        "data",
        flipped_last_byte,
        "modified",
        "differs from the file the package installed",
    ),
    "another glibc's libc": ("foreign", "", "foreign", "is glibc 2.31, the system runs glibc 2.36"),
}


@pytest.mark.parametrize("shape", LIBC_SHAPES)
def test_a_broken_libc_is_found_inside_the_root(bookworm, tmp_path, deadline, shape):
    kind, how, problem, words = LIBC_SHAPES[shape]
    libc = bookworm / LIBDIR / "libc.so.6"
    good = libc.read_bytes()
    host = tmp_path / "host"
    host.mkdir()
    # A libc that exists only on the rescuer: following a link to it on the host would find glibc 2.41.
    shutil.copy2(tree("trixie") / LIBDIR / "libc.so.6", host / "libc.so.6")
    with set_aside(bookworm, f"{LIBDIR}/libc.so.6", f"{LIBDIR}/a"):
        if kind == "link":
            os.symlink(how.format(host=host), libc)
            os.symlink("libc.so.6", bookworm / LIBDIR / "a")
        elif kind == "data":
            libc.write_bytes(how(good))
        else:
            libc.write_bytes((tree("bullseye") / LIBDIR / "libc-2.31.so").read_bytes())
        with deadline(20):
            diagnosis = glibc.diagnose(str(bookworm))
    assert kinds(diagnosis) == {"/lib/x86_64-linux-gnu/libc.so.6": problem}
    assert words in diagnosis.findings[0].detail, diagnosis.findings[0].detail


# ---- copies renamed away beside a member -------------------------------------------------------


# (member, [(name beside it, how it is made)], the copies that may stand in for it)
RENAMED = {
    "libm.so.6.orig": ("libm.so.6", [("libm.so.6.orig", "moved")], ["libm.so.6.orig"]),
    "libc.so.6.bak": ("libc.so.6", [("libc.so.6.bak", "moved")], ["libc.so.6.bak"]),
    "a copy whose md5 differs": ("libc.so.6", [("libc.so.6.bak", "changed")], []),
    "a copy of another glibc": ("libc.so.6", [("libc.so.6.old", "foreign")], []),
    "a good and a bad copy": (
        "libc.so.6",
        [("libc.so.6~", "changed"), ("libc.so.6.bak", "moved"), ("libc.so.6-x", "foreign")],
        ["libc.so.6.bak"],
    ),
    "a copy that is a link loop": ("libc.so.6", [("libc.so.6.bak", "loop")], []),
    "a name that only starts alike": ("libc.so.6", [("libc.so.6x", "moved")], []),
}


@pytest.mark.parametrize("case", RENAMED)
def test_renamed_away_copies(bookworm, deadline, case):
    member, copies, good = RENAMED[case]
    original = bookworm / LIBDIR / member
    data = original.read_bytes()
    with set_aside(bookworm, f"{LIBDIR}/{member}", *(f"{LIBDIR}/{name}" for name, _ in copies)):
        for name, how in copies:
            path = bookworm / LIBDIR / name
            if how == "moved":
                path.write_bytes(data)
            elif how == "changed":
                path.write_bytes(flipped_last_byte(data))
            elif how == "foreign":
                path.write_bytes((tree("bullseye") / LIBDIR / member).resolve().read_bytes())
            else:
                os.symlink(name, path)
        with deadline(20):
            diagnosis = glibc.diagnose(str(bookworm))
    assert kinds(diagnosis) == {f"/lib/x86_64-linux-gnu/{member}": "missing"}
    assert diagnosis.findings[0].renamed_away == [f"/{LIBDIR}/{name}" for name in good]


# ---- loader configuration ----------------------------------------------------------------------

OLD = "/opt/glibc-2.31/lib"


@pytest.fixture
def old_glibc(bookworm) -> Iterator[Path]:
    """bookworm with bullseye's libc (glibc 2.31) under /opt/glibc-2.31/lib, as incident 2 had it."""
    with set_aside(bookworm, "opt/glibc-2.31", "opt/same"):
        (bookworm / OLD[1:]).mkdir(parents=True)
        shutil.copy2(tree("bullseye") / LIBDIR / "libc-2.31.so", bookworm / OLD[1:] / "libc.so.6")
        # A directory holding the system's own glibc release brings in nothing foreign.
        (bookworm / "opt/same").mkdir()
        shutil.copy2(bookworm / LIBDIR / "libc.so.6", bookworm / "opt/same/libc.so.6")
        yield bookworm


# (file, its text, findings as (line, words in the detail))
CONFIG = {
    "ld.so.conf.d line": (
        "etc/ld.so.conf.d/zz-old.conf",
        f"# the old glibc\n/usr/local/lib\n{OLD}\n",
        [(3, f"{OLD} holds glibc 2.31 (libc.so.6), searched before the system's glibc")],
    ),
    "ld.so.conf.d line with a trailing slash": (
        "etc/ld.so.conf.d/zz-old.conf",
        f"{OLD}/\n",
        [(1, f"{OLD} holds glibc 2.31")],
    ),
    "ld.so.conf.d line of the same release": ("etc/ld.so.conf.d/zz-same.conf", "/opt/same\n", []),
    "ld.so.conf.d comment": ("etc/ld.so.conf.d/zz-old.conf", f"# {OLD}\n", []),
    "ld.so.preload of a foreign libc": (
        "etc/ld.so.preload",
        f"{OLD}/libc.so.6\n",
        [(1, f"{OLD}/libc.so.6 is glibc 2.31, the system runs glibc 2.36")],
    ),
    "ld.so.preload of a missing file": (
        "etc/ld.so.preload",
        "# keep\n/usr/lib/libgone.so\n",
        [(2, "/usr/lib/libgone.so is missing")],
    ),
    "LD_LIBRARY_PATH in /etc/environment": (
        "etc/environment",
        f'LANG=C.UTF-8\nLD_LIBRARY_PATH="/usr/local/lib:{OLD}"\n',
        [(2, f"LD_LIBRARY_PATH names {OLD}, which holds glibc 2.31 (libc.so.6)")],
    ),
    "LD_LIBRARY_PATH exported in profile.d": (
        "etc/profile.d/old-glibc.sh",
        f"export LD_LIBRARY_PATH={OLD}\n",
        [(1, f"LD_LIBRARY_PATH names {OLD}")],
    ),
    "LD_LIBRARY_PATH commented out": ("etc/environment", f"# LD_LIBRARY_PATH={OLD}\n", []),
    "LD_LIBRARY_PATH of the same release": ("etc/environment", "LD_LIBRARY_PATH=/opt/same\n", []),
}


@pytest.mark.parametrize("case", CONFIG)
def test_loader_configuration_bringing_in_another_glibc(old_glibc, case):
    rel, text, expected = CONFIG[case]
    with set_aside(old_glibc, rel):
        (old_glibc / rel).write_text(text)
        diagnosis = glibc.diagnose(str(old_glibc))
    found = [(f.path, f.problem, f.line) for f in diagnosis.findings]
    assert found == [("/" + rel, "config", line) for line, _ in expected]
    for finding, (_, words) in zip(diagnosis.findings, expected, strict=True):
        assert words in finding.detail, finding.detail


def test_the_systems_own_directories_are_never_config_findings(bookworm):
    """Even while the system's libc.so.6 is the foreign one, naming the system's own library
    directories is not what brings it in: only the member itself is a finding."""
    own = "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu/:/usr/lib/../lib/x86_64-linux-gnu"
    rels = [f"{LIBDIR}/libc.so.6", "opt/glibc-2.31", "etc/environment", "etc/ld.so.conf.d/zz-own.conf"]
    with set_aside(bookworm, *rels):
        (bookworm / OLD[1:]).mkdir(parents=True)
        shutil.copy2(tree("bullseye") / LIBDIR / "libc-2.31.so", bookworm / OLD[1:] / "libc.so.6")
        os.symlink(f"{OLD}/libc.so.6", bookworm / LIBDIR / "libc.so.6")
        (bookworm / "etc/environment").write_text(f"LD_LIBRARY_PATH={own}\n")
        (bookworm / "etc/ld.so.conf.d/zz-own.conf").write_text(own.replace(":", "\n") + "\n/lib\n")
        diagnosis = glibc.diagnose(str(bookworm))
    assert kinds(diagnosis) == {"/lib/x86_64-linux-gnu/libc.so.6": "foreign"}


# ---- roots with no glibc to diagnose ------------------------------------------------------------


@pytest.fixture
def bare_root(tmp_path) -> Path:
    root = tmp_path / "root"
    for name in ("etc", "usr/bin", "usr/lib"):
        (root / name).mkdir(parents=True)
    (root / "etc/os-release").write_text("ID=static\n")
    os.symlink("usr/bin", root / "bin")
    return root


def test_a_root_without_dynamically_linked_programs(bare_root):
    shutil.copy2("/sbin/ldconfig", bare_root / "usr/bin/ldconfig")  # static-pie: no interpreter
    (bare_root / "usr/bin/sh").write_text("#!/usr/bin/ldconfig\n")
    with pytest.raises(GlibcError, match=r"no dynamically linked program found .* no glibc to restore"):
        glibc.diagnose(str(bare_root))


def test_a_root_whose_programs_have_no_libc_anywhere(bare_root):
    shutil.copy2(tree("bookworm") / "usr/bin/true", bare_root / "usr/bin/true")
    with pytest.raises(GlibcError, match=r"no libc\.so\.6 is known to this root|cannot tell which glibc"):
        glibc.diagnose(str(bare_root))
