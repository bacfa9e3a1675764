"""The dpkg database read offline and .deb files read without dpkg: real trees and debs against dpkg's
own tools, synthetic debs in every compression, and hostile databases and archives."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import random
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import compression, digests, installed
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.database import Package
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.debfile import DebArchive
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

from support.package_readers import assert_only_regular_files_open, read_refusals
from support.processes import children
from support.runners import output
from support.trees import SUITES, deb_of
from support.trees import debian_tree as tree

GLOB_CHARS = set("*?[]\\")


def admindir(root: Path) -> str:
    return f"--admindir={root}/var/lib/dpkg"


def norm(name: str) -> str:
    """A tar listing's "./usr/lib/" as an absolute path "/usr/lib" (written apart from the module's)."""
    return "/" + "/".join(p for p in name.split("/") if p not in ("", "."))


# ---- the real Debian trees against dpkg-query, dpkg -S and md5sum --------------------------------

QUERY_FORMAT = "${binary:Package}\t${Package}\t${Version}\t${Architecture}\t${Status}\t${db:Status-Status}\n"


@pytest.mark.parametrize("suite", SUITES)
def test_installed_matches_dpkg_query(suite):
    root = tree(suite)
    expected = set()
    for line in output("dpkg-query", admindir(root), "-W", "-f", QUERY_FORMAT).splitlines():
        binary, name, version, arch, status, state = line.split("\t")
        if status.split()[1:] == ["ok", "installed"] and state == "installed":
            expected.add((binary, name, version, arch, status))
    found = dpkgdb.installed(str(root))
    assert {(p.key, p.name, p.version, p.arch, p.status) for p in found.values()} == expected
    assert len(expected) > 100
    for pkg in found.values():
        assert found[pkg.name].name == pkg.name
        assert found[f"{pkg.name}:{pkg.arch}"] is pkg
    libc = dpkgdb.find(str(root), "libc6")
    assert libc is not None and libc.key == "libc6:amd64" and libc.multi_arch == "same"
    assert dpkgdb.find(str(root), "libc6", "amd64") == libc
    assert dpkgdb.find(str(root), "libc6:amd64") == libc
    assert dpkgdb.find(str(root), "libc6", "i386") is None
    assert dpkgdb.find(str(root), "no-such-package") is None
    dpkg = dpkgdb.find(str(root), "dpkg")
    assert dpkg is not None and dpkg.key == "dpkg"


@pytest.mark.parametrize("suite", SUITES)
@pytest.mark.parametrize("name", ["libc6", "dpkg", "coreutils", "perl-base", "dash"])
def test_file_list_matches_dpkg_query_L(suite, name):
    root = tree(suite)
    # -L adds "diverted by"/"package diverts others" lines for diverted files: not part of the list.
    expected = [
        line for line in output("dpkg-query", admindir(root), "-L", name).splitlines() if line.startswith("/")
    ]
    pkg = dpkgdb.find(str(root), name)
    assert pkg is not None
    assert dpkgdb.file_list(str(root), pkg) == expected


@pytest.mark.parametrize("suite", SUITES)
def test_libc6_md5sums_match_the_files_of_the_tree(suite):
    root = tree(suite)
    libc = dpkgdb.find(str(root), "libc6")
    sums = dpkgdb.md5sums(str(root), libc)
    listed = dpkgdb.file_list(str(root), libc)
    regular = []
    for path in listed:
        where = rootfs.resolve(str(root), path, follow_last=False)
        if os.path.isfile(where.host) and not os.path.islink(where.host):
            regular.append(path)
    # md5sums covers every regular file unpacked but the conffiles (their sums are in the status file).
    conffiles = {
        line.split()[0]
        for line in output("dpkg-query", admindir(root), "-W", "-f", "${Conffiles}", "libc6").splitlines()
        if line.strip()
    }
    assert conffiles == {"/etc/ld.so.conf.d/x86_64-linux-gnu.conf"}
    assert sorted(sums) == sorted(set(regular) - conffiles)
    assert len(sums) > 250
    hosts = {path: rootfs.resolve(str(root), path).host for path in sums}
    tool = {}
    for line in output("md5sum", "--", *hosts.values()).splitlines():
        digest, host = line.split("  ", 1)
        tool[host] = digest
    for path, digest in sums.items():
        assert tool[hosts[path]] == digest, path
        assert digests.md5_of(hosts[path]) == digest, path


@pytest.mark.parametrize("suite", SUITES)
def test_owners_matches_dpkg_S(suite, deadline):
    root = tree(suite)
    with deadline(3):
        found = dpkgdb.owners(str(root))
    assert len(found) > 5000
    candidates = sorted(p for p in found if p != "/." and not GLOB_CHARS & set(p))
    sample = random.Random(suite).sample(candidates, 150)
    sample += ["/usr/share/doc", "/usr/bin/dpkg", "/etc/passwd", "/usr/bin/no-such-program", "/bin/sh"]
    expected: dict[str, set[str]] = {}
    for line in output("dpkg", "-S", admindir(root), *sample, ok=(0, 1)).splitlines():
        if line.startswith(("diversion by ", "local diversion ")):
            continue
        names, _, path = line.partition(": ")
        expected[path] = {n.split(":")[0] for n in names.split(", ")}
    for path in sample:
        assert set(found.get(path, [])) == expected.get(path, set()), path
    assert "libc6" in found[next(p for p in found if p.endswith("/x86_64-linux-gnu/libc.so.6"))]
    assert "/etc/passwd" not in found


@pytest.mark.parametrize("suite", SUITES)
def test_pending_journal_is_applied_like_dpkg_query(suite, tmp_path):
    """An interrupted dpkg run leaves newer records in updates/: dpkg-query and installed() apply them."""
    root = tmp_path / "root"
    shutil.copytree(tree(suite) / "var/lib/dpkg", root / "var/lib/dpkg", symlinks=True)
    status = (root / "var/lib/dpkg/status").read_text()
    stanza = next(s for s in status.split("\n\n") if s.startswith("Package: dash\n"))
    (root / "var/lib/dpkg/updates/0000").write_text(
        stanza.replace("ok installed", "ok half-configured") + "\n"
    )
    (root / "var/lib/dpkg/updates/tmp.i").write_text("garbage dpkg never reads\n")
    shown = output("dpkg-query", admindir(root), "-W", "-f", "${Status}", "dash")
    assert shown == "install ok half-configured"
    found = dpkgdb.installed(str(root))
    assert "dash" not in found
    assert "bash" in found


# ---- real .debs against dpkg-deb ----------------------------------------------------------------


def mode_of(perms: str) -> int:
    """ls-style permissions ("-rwsr-xr-x") as mode bits."""
    mode = 0
    for char, bit in zip(perms[1:10], (0o400, 0o200, 0o100, 0o40, 0o20, 0o10, 0o4, 0o2, 0o1), strict=True):
        if char != "-" and char not in "ST":
            mode |= bit
    for position, bit in ((3, 0o4000), (6, 0o2000), (9, 0o1000)):
        if perms[position] in "sStT":
            mode |= bit
    return mode


def dpkg_deb_listing(deb: Path) -> dict[str, tuple[str, int, int, str, str]]:
    """dpkg-deb -c: path -> (kind, mode, size, link target, owner)."""
    kinds = {"-": "file", "d": "dir", "l": "link", "h": "hardlink"}
    listing = {}
    for line in output("dpkg-deb", "-c", deb).splitlines():
        perms, owner, size, _date, _time, rest = line.split(None, 5)
        kind = kinds.get(perms[0], "other")
        name, link = rest, ""
        if kind == "link":
            name, _, link = rest.partition(" -> ")
        elif kind == "hardlink":
            name, _, link = rest.partition(" link to ")
            link = norm(link)
        listing[norm(name)] = (kind, mode_of(perms), int(size), link, owner)
    return listing


REAL_DEBS = [(suite, name) for suite in SUITES for name in ("libc6", "perl-base", "mount")]


@pytest.mark.parametrize(("suite", "name"), REAL_DEBS)
def test_deb_matches_dpkg_deb(suite, name, tmp_path):
    path = deb_of(suite, name)
    deb = DebArchive(str(path))
    for field in deb.control:
        assert deb.control[field] == output("dpkg-deb", "-f", path, field).rstrip("\n"), field
    assert deb.control["Package"] == name
    assert set(deb.control) == {
        line.split(":")[0] for line in output("dpkg-deb", "-f", path).splitlines() if line[:1] not in " \t"
    }
    listing = dpkg_deb_listing(path)
    members = deb.members()
    assert set(members) == set(listing)
    for member in members.values():
        kind, mode, size, link, owner = listing[member.path]
        assert (member.kind, member.mode, member.linkname) == (kind, mode, link), member
        if kind == "file":
            assert member.size == size, member
        assert owner == "root/root" and (member.uid, member.gid) == (0, 0)
    # Every regular file and hard link, in one pass, against dpkg-deb's own extraction.
    out = tmp_path / "x"
    output("dpkg-deb", "-x", path, out)
    wanted = [m.path for m in members.values() if m.kind in ("file", "hardlink")]
    contents = deb.read_many(wanted)
    assert set(contents) == set(wanted)
    for member_path, data in contents.items():
        assert data == (out / member_path.lstrip("/")).read_bytes(), member_path
    # md5sums of control.tar, against the files and against the database of the tree it built.
    # md5sums covers regular files and hard links, not conffiles (their sums go to the status file);
    # dpkg-deb exits 2 for a package without conffiles.
    assert set(deb.conffiles) == set(output("dpkg-deb", "--info", path, "conffiles", ok=(0, 2)).split())
    assert set(deb.md5sums) == {p for p in wanted if p not in deb.conffiles}
    for member_path, digest in deb.md5sums.items():
        assert hashlib.md5(contents[member_path]).hexdigest() == digest, member_path
    installed = dpkgdb.find(str(tree(suite)), name)
    assert installed is not None and installed.version == deb.control["Version"]
    assert dpkgdb.md5sums(str(tree(suite)), installed) == deb.md5sums
    assert deb.package.key == installed.key
    assert set(dpkgdb.file_list(str(tree(suite)), installed)) - {"/."} == set(members) - {"/"}


@pytest.mark.parametrize("suite", SUITES)
def test_read_matches_fsys_tarfile(suite):
    """read() against `dpkg-deb --fsys-tarfile | tar -xO`; a hard link reads as its target."""
    libc = deb_of(suite, "libc6")
    deb = DebArchive(str(libc))
    files = [m for m in deb.members().values() if m.kind == "file" and "/libc" in m.path and ".so" in m.path]
    assert files
    for member in files[:3]:
        extracted = subprocess.run(
            f"dpkg-deb --fsys-tarfile {shlex.quote(str(libc))} | tar -xO {shlex.quote('.' + member.path)}",
            shell=True,
            capture_output=True,
            check=True,
        ).stdout
        assert deb.read(member.path) == extracted
        assert deb.read("." + member.path) == extracted
    perl = DebArchive(str(deb_of(suite, "perl-base")))
    links = [m for m in perl.members().values() if m.kind == "hardlink"]
    assert links, "perl-base ships /usr/bin/perl5.x as a hard link to /usr/bin/perl"
    assert perl.read(links[0].path) == perl.read(links[0].linkname)


@pytest.mark.parametrize("suite", SUITES)
def test_libc6_layout_of_each_suite(suite):
    """Where each suite's libc6 puts the loader and libc: what the glibc repair must restore."""
    layouts = {
        "bullseye": (
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-2.31.so",
            "/lib/x86_64-linux-gnu/libc-2.31.so",
        ),
        "bookworm": (
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/libc.so.6",
        ),
        "trixie": (
            "/usr/lib64/ld-linux-x86-64.so.2",
            "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
        ),
    }
    loader_link, loader_target, libc_file = layouts[suite]
    members = DebArchive(str(deb_of(suite, "libc6"))).members()
    assert members[loader_link].kind == "link"
    assert members[loader_link].linkname == loader_target
    assert members[libc_file].kind == "file"
    assert members[libc_file].mode == 0o755
    sums = dpkgdb.md5sums(str(tree(suite)), dpkgdb.find(str(tree(suite)), "libc6"))
    assert libc_file in sums and loader_link not in sums


# ---- synthetic debs: every compression, then hostile archives ------------------------------------

CONTROL = (
    b"Package: demo\nVersion: 1:2.0-3\nArchitecture: amd64\nMulti-Arch: same\n"
    b"Depends: libc6 (>= 2.34),\n libfoo\nDescription: a demo\n two lines\n"
)
DATA = [
    ("./", "dir", b"", 0o755),
    ("./usr/", "dir", b"", 0o755),
    ("./usr/bin/", "dir", b"", 0o755),
    ("./usr/bin/demo", "file", b"#!/bin/sh\necho demo\n", 0o4755),
    ("./usr/bin/demo-again", "hardlink", b"./usr/bin/demo", 0o4755),
    ("./usr/bin/demo-link", "link", b"demo", 0o777),
    ("./usr/share/", "dir", b"", 0o755),
    ("./usr/share/demo.txt", "file", b"hello\n" * 1000, 0o644),
]


def tar_of(entries, fmt=tarfile.GNU_FORMAT) -> bytes:
    buffer = io.BytesIO()
    types = {
        "dir": tarfile.DIRTYPE,
        "link": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, kind, data, mode in entries:
            info = tarfile.TarInfo(name)
            info.mode, info.uname, info.gname, info.mtime = mode, "root", "root", 1700000000
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = types[kind]
            if kind in ("link", "hardlink"):
                info.linkname = data.decode()
            tar.addfile(info)
    return buffer.getvalue()


def compress(data: bytes, suffix: str) -> bytes:
    if suffix == "zst":
        return subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    return {
        "": lambda d: d,
        "xz": lzma.compress,
        "lzma": lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
        "gz": gzip.compress,
        "bz2": bz2.compress,
    }[suffix](data)


def ar_header(name: str, size: int | str, fmag: bytes = b"`\n") -> bytes:
    return f"{name:<16}{1700000000:<12}{0:<6}{0:<6}{100644:<8}{size!s:<10}".encode() + fmag


def ar_of(members: list[tuple[str, bytes]]) -> bytes:
    """A GNU ar archive as dpkg-deb writes it: 60-byte headers, contents padded to an even size."""
    out = [b"!<arch>\n"]
    for name, data in members:
        out += [ar_header(name, len(data)), data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def deb_members(
    control: bytes = CONTROL, data=None, suffix: str = "xz", control_suffix: str | None = None
) -> list[tuple[str, bytes]]:
    data = DATA if data is None else data
    sums = "".join(
        f"{hashlib.md5(content).hexdigest()}  {name[2:]}\n"
        for name, kind, content, _ in data
        if kind == "file"
    ).encode()
    control_suffix = suffix if control_suffix is None else control_suffix
    control_tar = tar_of(
        [("./", "dir", b"", 0o755), ("./control", "file", control, 0o644), ("./md5sums", "file", sums, 0o644)]
    )
    return [
        ("debian-binary", b"2.0\n"),
        ("control.tar" + f".{control_suffix}" * bool(control_suffix), compress(control_tar, control_suffix)),
        ("data.tar" + f".{suffix}" * bool(suffix), compress(tar_of(data), suffix)),
    ]


def write(tmp_path: Path, content: bytes, name: str = "demo.deb") -> str:
    path = tmp_path / name
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("suffix", "control_suffix"),
    [("xz", "xz"), ("gz", "gz"), ("bz2", "xz"), ("", ""), ("zst", "zst"), ("lzma", "xz"), ("xz", "bz2")],
)
def test_synthetic_deb_in_every_compression(suffix, control_suffix, tmp_path, deadline):
    """dpkg-deb writes control.tar as gz, xz, zst or plain; lifeline also reads bz2 and lzma there."""
    path = write(tmp_path, ar_of(deb_members(suffix=suffix, control_suffix=control_suffix)))
    if control_suffix != "bz2":  # dpkg-deb vouches for the synthetic archive
        assert output("dpkg-deb", "-f", path, "Package") == "demo\n"
        assert set(dpkg_deb_listing(Path(path))) == {norm(e[0]) for e in DATA}
    with deadline(10):
        deb = DebArchive(path)
        members = deb.members()
        hard = deb.read("/usr/bin/demo-again")
        text = deb.read("usr/share/demo.txt")
    assert deb.control["Package"] == "demo"
    assert deb.control["Depends"] == "libc6 (>= 2.34),\n libfoo"
    assert deb.control["Description"] == "a demo\n two lines"
    assert deb.package == Package("demo", "1:2.0-3", "amd64", "", "same")
    assert deb.package.upstream == "2.0" and deb.package.key == "demo:amd64"
    assert deb.md5sums == {
        "/usr/bin/demo": hashlib.md5(DATA[3][2]).hexdigest(),
        "/usr/share/demo.txt": hashlib.md5(DATA[7][2]).hexdigest(),
    }
    assert sorted(members) == sorted(norm(e[0]) for e in DATA)
    assert members["/"].kind == "dir"
    demo = members["/usr/bin/demo"]
    assert (demo.kind, demo.mode, demo.size, demo.uid, demo.gid) == ("file", 0o4755, 20, 0, 0)
    assert (members["/usr/bin/demo-again"].kind, members["/usr/bin/demo-again"].linkname) == (
        "hardlink",
        "/usr/bin/demo",
    )
    assert (members["/usr/bin/demo-link"].kind, members["/usr/bin/demo-link"].linkname) == ("link", "demo")
    assert hard == DATA[3][2]
    assert text == DATA[7][2]
    assert deb.members() is members  # parsed once per archive object


def test_members_are_read_once(tmp_path, monkeypatch):
    deb = DebArchive(write(tmp_path, ar_of(deb_members())))
    deb.members()
    monkeypatch.setattr(DebArchive, "_tar", lambda *a: pytest.fail("data.tar read a second time"))
    assert deb.members()["/usr/bin/demo"].size == 20


@pytest.mark.parametrize(
    ("path", "limit", "problem"),
    read_refusals(directory="/usr/bin", link="/usr/bin/demo-link", regular="/usr/share/demo.txt", size=6000),
)
def test_read_refuses(path, limit, problem, tmp_path):
    deb = DebArchive(write(tmp_path, ar_of(deb_members())))
    with pytest.raises(PackageError, match=problem):
        deb.read(path, limit=limit)


def test_zstd_reader_stopping_early_ends_zstd(tmp_path, deadline):
    """read() stops at its member; zstd, blocked on a full pipe behind it, is ended, not waited for."""
    big = [
        *DATA[:3],
        ("./usr/bin/demo", "file", b"x", 0o755),
        ("./usr/big", "file", os.urandom(8 << 20), 0o644),
    ]
    deb = DebArchive(write(tmp_path, ar_of(deb_members(data=big, suffix="zst"))))
    with deadline(20):
        for _ in range(5):
            assert deb.read("/usr/bin/demo") == b"x"
    assert children() == []


def test_zstd_tool_missing_is_said(tmp_path, monkeypatch):
    path = write(tmp_path, ar_of(deb_members(suffix="zst")))
    monkeypatch.setattr(compression.shutil, "which", lambda name: None)
    with pytest.raises(
        PackageError, match=r"control.tar.zst is compressed with zstd: the zstd tool is needed"
    ):
        DebArchive(path)
    path = write(tmp_path, ar_of(deb_members(suffix="zst", control_suffix="xz")), "data-only.deb")
    deb = DebArchive(path)
    with pytest.raises(PackageError, match=r"data.tar.zst is compressed with zstd: the zstd tool is needed"):
        deb.members()


def _good() -> list[tuple[str, bytes]]:
    return deb_members()


def _cut(content: bytes, at: int) -> bytes:
    return content[:at]


def _swap_header(index: int, header: bytes) -> bytes:
    """The good deb with the header of ar member ``index`` replaced."""
    content = ar_of(_good())
    offset = 8
    for i, (_, data) in enumerate(_good()):
        if i == index:
            return content[:offset] + header + content[offset + 60 :]
        offset += 60 + len(data) + len(data) % 2
    raise AssertionError(index)


def lying_size(size: int) -> bytes:
    """A data.tar whose last entry claims ``size`` bytes and holds 100: tarfile would skip on for hours."""
    huge = tarfile.TarInfo("./usr/huge")
    huge.size = size
    data = tar_of(DATA[:3])[: 3 * tarfile.BLOCKSIZE] + huge.tobuf(tarfile.GNU_FORMAT) + b"x" * 100
    return ar_of([*_good()[:2], ("data.tar.xz", lzma.compress(data))])


def _bomb() -> list[tuple[str, bytes]]:
    zeros = [*DATA[:3], *((f"./usr/zeros{i}", "file", bytes(512 << 10), 0o644) for i in range(8))]
    return deb_members(data=zeros)


# (id, a function building the archive, the problem DebArchive() or members() reports, whether dpkg-deb
# -c or -f refuses it too)
HOSTILE_DEBS = [
    (
        "text-file",
        lambda: b"Package: demo\nVersion: 1\n",
        r"is not a Debian package \(no ar archive magic\)",
        True,
    ),
    ("empty-file", lambda: b"", r"no ar archive magic", True),
    ("magic-only", lambda: b"!<arch>\n", r"an empty ar archive", True),
    ("header-cut", lambda: ar_of(_good())[:40], r"ar header at offset 8 truncated: 32 of 60 bytes", True),
    ("member-cut", lambda: _cut(ar_of(_good()), 300), r"claims \d+ bytes, only \d+ remain", True),
    (
        "size-beyond-file",
        lambda: _swap_header(2, ar_header("data.tar.xz", 999999999)),
        r"claims 999999999 bytes",
        True,
    ),
    ("size-negative", lambda: _swap_header(0, ar_header("debian-binary", -4)), r"size field '-4'", True),
    ("size-garbage", lambda: _swap_header(0, ar_header("debian-binary", "4x")), r"size field '4x'", True),
    ("size-blank", lambda: _swap_header(0, ar_header("debian-binary", "")), r"size field ''", True),
    (
        "no-end-marker",
        lambda: _swap_header(1, ar_header("control.tar.xz", 10, b"XX")),
        r"has no end marker",
        True,
    ),
    ("first-not-debian-binary", lambda: ar_of(_good()[1:]), r"first member is 'control.tar.xz'", True),
    ("format-3", lambda: ar_of([("debian-binary", b"3.0\n"), *_good()[1:]]), r"not format 2.x", True),
    (
        "no-data-tar",
        lambda: ar_of(_good()[:2]),
        r"no data.tar.\* member; it holds debian-binary, control.tar.xz",
        True,
    ),
    ("no-control-tar", lambda: ar_of([_good()[0], _good()[2]]), r"no control.tar.\* member", True),
    # dpkg-deb reads the first and ignores the rest; lifeline refuses an archive that says two things.
    ("two-data-tars", lambda: ar_of([*_good(), ("data.tar.gz", b"x")]), r"2 data.tar.\* members", False),
    (
        "unknown-compression",
        lambda: ar_of([*_good()[:2], ("data.tar.lz4", b"x")]),
        r"compressed in a way",
        True,
    ),
    (
        "control-tar-without-control",
        lambda: ar_of([_good()[0], ("control.tar", tar_of([("./md5sums", "file", b"", 0o644)])), _good()[2]]),
        r"control.tar holds no control file",
        True,
    ),
    (
        "control-garbage",
        lambda: ar_of([_good()[0], ("control.tar.xz", b"garbage" * 10), _good()[2]]),
        r"damaged",
        True,
    ),
    ("control-no-package", lambda: ar_of(deb_members(control=b"Version: 1\n")), r"names no Package", False),
    (
        "data-garbage",
        lambda: ar_of([*_good()[:2], ("data.tar.xz", os.urandom(4096))]),
        r"data.tar.xz: damaged",
        True,
    ),
    (
        "data-xz-cut",
        lambda: ar_of([*_good()[:2], ("data.tar.xz", _good()[2][1][: len(_good()[2][1]) // 2])]),
        r"data.tar.xz: damaged",
        True,
    ),
    (
        "data-gz-garbage",
        lambda: ar_of([*_good()[:2], ("data.tar.gz", b"\x1f\x8b" + b"\0" * 200)]),
        r"damaged",
        True,
    ),
    (
        "data-zst-garbage",
        lambda: ar_of([*deb_members(suffix="zst")[:2], ("data.tar.zst", b"x" * 100)]),
        r"damaged",
        True,
    ),
    (
        "size-lies-huge",
        lambda: lying_size(2**62),
        r"entry './usr/huge' claims 4611686018427387904 bytes",
        True,
    ),
    ("size-lies-8g", lambda: lying_size(2**33 - 1), r"data.tar.xz ends inside an entry", True),
    (
        "dotdot-path",
        lambda: ar_of(deb_members(data=[*DATA, ("./usr/../../etc/shadow", "file", b"x", 0o644)])),
        r"entry './usr/../../etc/shadow' climbs out of the root",
        False,
    ),
    (
        "leading-dotdot",
        lambda: ar_of(deb_members(data=[*DATA, ("../outside", "file", b"x", 0o644)])),
        r"climbs out of the root",
        False,
    ),
    (
        "absolute-dotdot",
        lambda: ar_of(deb_members(data=[*DATA, ("/../../etc/cron.d/evil", "file", b"x", 0o644)])),
        r"climbs out of the root",
        False,
    ),
    (
        "hardlink-out",
        lambda: ar_of(
            deb_members(data=[*DATA, ("./usr/bin/shadow", "hardlink", b"../../etc/shadow", 0o644)])
        ),
        r"'../../etc/shadow' climbs out of the root",
        False,
    ),
]


@pytest.mark.parametrize(
    ("content", "problem", "dpkg_refuses"), [c[1:] for c in HOSTILE_DEBS], ids=[c[0] for c in HOSTILE_DEBS]
)
def test_hostile_deb(content, problem, dpkg_refuses, tmp_path, deadline):
    path = write(tmp_path, content())
    with deadline(10), pytest.raises(PackageError, match=problem):
        DebArchive(path).members()
    if dpkg_refuses:
        done = subprocess.run(["dpkg-deb", "-c", path], capture_output=True)
        control = subprocess.run(["dpkg-deb", "-f", path], capture_output=True)
        assert done.returncode != 0 or control.returncode != 0


def test_decompression_bomb_stops_at_the_cap(tmp_path, deadline):
    deb = DebArchive(write(tmp_path, ar_of(_bomb())))
    deb.unpacked_limit = 1 << 20
    with deadline(10), pytest.raises(PackageError, match=r"unpacks to more than 1048576 bytes"):
        deb.members()


def test_fifo_or_directory_as_deb_does_not_hang(tmp_path, deadline):
    with deadline(5):
        assert_only_regular_files_open(
            DebArchive, tmp_path, ".deb", r"not a Debian package \(not a regular file\)"
        )


def test_ar_names_ending_in_slash_and_odd_sizes(tmp_path):
    """GNU ar writes "data.tar.xz/"; odd-sized members are padded with a newline."""
    members = [(f"{name}/", data) for name, data in _good()]
    members[0] = ("debian-binary/", b"2.0\n")
    deb = DebArchive(write(tmp_path, ar_of(members)))
    assert deb.control["Package"] == "demo"
    assert "/usr/bin/demo" in deb.members()


# ---- synthetic databases: the status file and info files, hostile ones included ------------------

STANZAS = {
    "libc6-amd64": "Package: libc6\nStatus: install ok installed\nMulti-Arch: same\nArchitecture: amd64\n"
    "Version: 2.36-9+deb12u4\nDescription: GNU C Library\n Package: not-a-package\n .\n more\n",
    "libc6-i386": "Package: libc6\nStatus: install ok installed\nMulti-Arch: same\nArchitecture: i386\n"
    "Version: 2.36-9+deb12u4\n",
    "dpkg": "Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.21.22\n",
    "held": "Package: held\nStatus: hold ok installed\nArchitecture: all\nVersion: 1.0\n",
    "removed": "Package: removed\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\n",
    "half": "Package: half\nStatus: install ok half-configured\nArchitecture: amd64\nVersion: 1.0\n",
    "reinst": "Package: reinst\nStatus: install reinstreq installed\nArchitecture: amd64\nVersion: 1.0\n",
    "unpacked": "Package: unpacked\nStatus: install ok unpacked\nArchitecture: amd64\nVersion: 1.0\n",
    "no-version": "Package: noversion\nStatus: install ok installed\nArchitecture: amd64\n",
    "no-status": "Package: nostatus\nArchitecture: amd64\nVersion: 1.0\n",
    "lowercase": "package: lower\nstatus:   install ok installed  \narchitecture: amd64\nversion: 2:3.4\n",
}
INSTALLED = ["libc6:amd64", "libc6:i386", "dpkg:amd64", "held:all", "lower:amd64"]


def make_root(
    tmp_path: Path, status: bytes | str | None, infos: dict[str, bytes | str] | None = None
) -> Path:
    root = tmp_path / "root"
    (root / "var/lib/dpkg/info").mkdir(parents=True)
    (root / "var/lib/dpkg/updates").mkdir()
    if status is not None:
        (root / "var/lib/dpkg/status").write_bytes(status.encode() if isinstance(status, str) else status)
    for name, content in (infos or {}).items():
        (root / "var/lib/dpkg/info" / name).write_bytes(
            content.encode() if isinstance(content, str) else content
        )
    return root


def test_status_stanzas_and_states(tmp_path):
    # i386 first: under the bare name the native architecture (dpkg's own) still wins.
    order = ["libc6-i386", *[k for k in STANZAS if k != "libc6-i386"]]
    root = make_root(tmp_path, "\n".join(STANZAS[k] for k in order))
    found = dpkgdb.installed(str(root))
    assert sorted({p.qualified for p in found.values()}) == sorted(INSTALLED)
    assert found["libc6"].arch == "amd64" and found["libc6:i386"].arch == "i386"
    assert found["libc6"].key == "libc6:amd64" and found["dpkg"].key == "dpkg"
    assert found["held"].status == "hold ok installed"
    assert found["lower"] == Package("lower", "2:3.4", "amd64", "install ok installed")
    assert found["lower"].upstream == "3.4"
    assert "not-a-package" not in found  # a continuation line is no field


@pytest.mark.parametrize(
    ("version", "upstream"),
    [
        ("1:2.36-9+deb12u4", "2.36"),
        ("2.36", "2.36"),
        ("1.0-1-2", "1.0-1"),
        ("3:1.2:3-4", "1.2:3"),
        ("5", "5"),
    ],
)
def test_upstream_version(version, upstream):
    assert Package("p", version, "amd64", "install ok installed").upstream == upstream


def _big_status() -> bytes:
    description = "Description: filler\n" + " a long description line, as real packages have\n" * 20
    stanza = (
        "Package: pkg{i}\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64\n"
        "Version: 1.{i}-1\nDepends: libc6 (>= 2.34)\nConffiles:\n /etc/pkg{i}.conf 0123456789abcdef\n"
    ) + description
    return "\n".join(stanza.format(i=i) for i in range(40000)).encode()


# (id, status file bytes, the name:arch installed() returns)
HOSTILE_STATUS = [
    ("empty", b"", []),
    ("garbage", random.Random(7).randbytes(64 << 10), []),
    ("nul-blocks-after-crash", (STANZAS["dpkg"] + "\n").encode() + b"\0" * 8192, ["dpkg:amd64"]),
    (
        "nul-block-between",
        (STANZAS["dpkg"] + "\n").encode() + b"\0" * 4096 + b"\n\n" + STANZAS["held"].encode(),
        ["dpkg:amd64", "held:all"],
    ),
    ("cut-mid-stanza", (STANZAS["dpkg"] + "\n" + STANZAS["held"])[:-20].encode(), ["dpkg:amd64"]),
    ("cut-in-a-field-name", (STANZAS["dpkg"] + "\nPackage: x\nStat").encode(), ["dpkg:amd64"]),
    (
        "stanzas-run-together",
        (STANZAS["dpkg"] + STANZAS["held"].replace("Version: 1.0\n", "") + STANZAS["half"]).encode(),
        ["dpkg:amd64"],
    ),
    ("no-version", (STANZAS["no-version"] + "\n" + STANZAS["dpkg"]).encode(), ["dpkg:amd64"]),
    (
        "crlf-lines",
        (STANZAS["dpkg"] + "\n" + STANZAS["held"]).replace("\n", "\r\n").encode(),
        ["dpkg:amd64", "held:all"],
    ),
    (
        "many-blank-lines",
        ("\n\n\n" + STANZAS["dpkg"] + "\n \n\t\n\n" + STANZAS["held"] + "\n\n").encode(),
        ["dpkg:amd64", "held:all"],
    ),
    ("not-utf8", STANZAS["dpkg"].replace("1.21.22", "1.\xff").encode("latin-1"), ["dpkg:amd64"]),
    ("no-final-newline", STANZAS["dpkg"].rstrip("\n").encode(), ["dpkg:amd64"]),
    ("name-with-space", b"Package: a b\nStatus: install ok installed\nVersion: 1\n", []),
    ("status-two-words", b"Package: a\nStatus: install ok\nVersion: 1\n", []),
    (
        "duplicate-record",
        (STANZAS["dpkg"] + "\n" + STANZAS["dpkg"].replace("1.21.22", "9")).encode(),
        ["dpkg:amd64"],
    ),
]


@pytest.mark.parametrize(
    ("status", "expected"), [c[1:] for c in HOSTILE_STATUS], ids=[c[0] for c in HOSTILE_STATUS]
)
def test_hostile_status_file(status, expected, tmp_path, deadline):
    root = make_root(tmp_path, status)
    with deadline(5):
        found = dpkgdb.installed(str(root))
    assert sorted({p.qualified for p in found.values()}) == sorted(expected)


def test_very_large_status_file_stays_fast(tmp_path, deadline):
    root = make_root(tmp_path, _big_status())
    assert (root / "var/lib/dpkg/status").stat().st_size > 40 << 20
    started = time.process_time()  # CPU time: a busy machine does not stretch it
    with deadline(10):
        found = dpkgdb.installed(str(root))
    elapsed = time.process_time() - started
    assert len(found) == 80000  # by name:arch and by name
    assert found["pkg39999"].version == "1.39999-1"
    assert elapsed < 5, f"{elapsed:.1f} s for a 40 MB status file"


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("missing", r"/var/lib/dpkg/status does not exist in .*: not a Debian-family root"),
        ("directory", r"/var/lib/dpkg/status in .* is not a regular file"),
        ("fifo", r"/var/lib/dpkg/status in .* is not a regular file"),
        ("link-loop", r"too many levels of symbolic links"),
        ("link-out-of-the-root", None),
    ],
)
def test_status_file_missing_or_unreadable(setup, problem, tmp_path, deadline):
    root = make_root(tmp_path, None)
    status = root / "var/lib/dpkg/status"
    if setup == "directory":
        status.mkdir()
    elif setup == "fifo":
        os.mkfifo(status)
    elif setup == "link-loop":
        status.symlink_to("status")
    elif setup == "link-out-of-the-root":
        # A status file outside the root that a link names must not be read: the link resolves inside.
        outside = tmp_path / "outside-status"
        outside.write_text(STANZAS["dpkg"])
        status.symlink_to(outside)
        problem = rf"/var/lib/dpkg/status \(resolved to {re.escape(str(outside))}\) does not exist in "
    with deadline(5), pytest.raises(PackageError, match=problem):
        dpkgdb.installed(str(root))


def test_updates_journal_replaces_records_in_name_order(tmp_path):
    root = make_root(tmp_path, STANZAS["dpkg"] + "\n" + STANZAS["half"])
    updates = root / "var/lib/dpkg/updates"
    (updates / "0001").write_text(
        STANZAS["half"].replace("half-configured", "installed").replace("1.0", "1.1")
    )
    (updates / "0002").write_text(
        STANZAS["half"].replace("half-configured", "installed").replace("1.0", "1.2")
    )
    (updates / "0000").write_text(STANZAS["dpkg"].replace("install ok installed", "install ok unpacked"))
    (updates / "tmp.i").write_text(STANZAS["held"])  # not a journal entry: dpkg ignores it
    (updates / "0003").mkdir()  # unreadable entry: passed over
    found = dpkgdb.installed(str(root))
    assert sorted({p.qualified for p in found.values()}) == ["half:amd64"]
    assert found["half"].version == "1.2"


LIBC_LIST = "/.\n/usr\n/usr/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib/x86_64-linux-gnu/libc.so.6\n"
LIBC_SUMS = (
    "0123456789abcdef0123456789abcdef  usr/lib/x86_64-linux-gnu/libc.so.6\n"
    "FEDCBA9876543210FEDCBA9876543210 *usr/lib/x86_64-linux-gnu/libm.so.6\n"
    "not-a-digest  usr/lib/garbage\n"
    "0123456789abcdef0123456789abcde  usr/lib/short-digest\n"
    "\n"
    "0123456789abcdef0123456789abcdef  ./usr/lib/dot-slash\n"
)


def test_info_files_of_a_multi_arch_package(tmp_path):
    root = make_root(
        tmp_path,
        "\n".join(STANZAS[k] for k in ("libc6-amd64", "dpkg", "held")),
        {
            "libc6:amd64.list": LIBC_LIST,
            "libc6:amd64.md5sums": LIBC_SUMS,
            "dpkg.list": "/.\n/usr\n/usr/bin\n/usr/bin/dpkg\n",
        },
    )
    libc = dpkgdb.find(str(root), "libc6")
    assert dpkgdb.file_list(str(root), libc) == LIBC_LIST.split()
    assert dpkgdb.md5sums(str(root), libc) == {
        "/usr/lib/x86_64-linux-gnu/libc.so.6": "0123456789abcdef0123456789abcdef",
        "/usr/lib/x86_64-linux-gnu/libm.so.6": "fedcba9876543210fedcba9876543210",
        "/usr/lib/dot-slash": "0123456789abcdef0123456789abcdef",
    }
    # A record that lost its Multi-Arch field still finds libc6:amd64.list.
    assert (
        dpkgdb.file_list(str(root), Package("libc6", "2.36-9", "amd64", "install ok installed"))
        == LIBC_LIST.split()
    )
    held = dpkgdb.find(str(root), "held")
    assert dpkgdb.md5sums(str(root), held) == {}
    with pytest.raises(
        PackageError, match=r"no file list of held:all in .* \(tried /var/lib/dpkg/info/held.list"
    ):
        dpkgdb.file_list(str(root), held)
    owners = dpkgdb.owners(str(root))
    assert owners["/usr"] == ["libc6", "dpkg"]
    assert owners["/usr/lib/x86_64-linux-gnu/libc.so.6"] == ["libc6"]
    assert "/etc/passwd" not in owners


def test_info_list_link_pointing_out_of_the_root_resolves_inside(tmp_path, deadline):
    root = make_root(tmp_path, STANZAS["dpkg"] + "\n" + STANZAS["held"])
    outside = tmp_path / "outside.list"
    outside.write_text("/outside/secret\n")
    info = root / "var/lib/dpkg/info"
    (info / "dpkg.list").symlink_to(outside)  # absolute: read as ROOT + that path
    (info / "held.list").symlink_to("../../../../../../../../" + str(outside).lstrip("/"))  # .. stops at ROOT
    dpkg, held = dpkgdb.find(str(root), "dpkg"), dpkgdb.find(str(root), "held")
    with pytest.raises(PackageError, match=r"no file list of dpkg:amd64"):
        dpkgdb.file_list(str(root), dpkg)
    with pytest.raises(PackageError, match=r"no file list of held:all"):
        dpkgdb.file_list(str(root), held)
    assert dpkgdb.owners(str(root)) == {}
    # The same path inside the root is what the links lead to.
    inside = root / str(outside).lstrip("/")
    inside.parent.mkdir(parents=True)
    inside.write_text("/inside/file\n")
    assert dpkgdb.file_list(str(root), dpkg) == ["/inside/file"]
    assert dpkgdb.file_list(str(root), held) == ["/inside/file"]
    # A FIFO planted as an info file is refused without blocking.
    (info / "dpkg.md5sums").unlink(missing_ok=True)
    os.mkfifo(info / "dpkg.md5sums")
    with deadline(5), pytest.raises(PackageError, match=r"dpkg.md5sums in .* is not a regular file"):
        dpkgdb.md5sums(str(root), dpkg)


def test_owners_of_hundreds_of_packages_is_fast(tmp_path, deadline):
    stanzas, infos = [], {}
    for i in range(400):
        stanzas.append(f"Package: p{i}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1\n")
        infos[f"p{i}.list"] = "/.\n/usr\n/usr/share\n" + "".join(
            f"/usr/share/p{i}/f{j}\n" for j in range(100)
        )
    root = make_root(tmp_path, "\n".join(stanzas), infos)
    started = time.process_time()  # CPU time: a busy machine does not stretch it
    with deadline(5):
        found = dpkgdb.owners(str(root))
    assert time.process_time() - started < 2
    assert len(found["/usr/share"]) == 400
    assert found["/usr/share/p7/f3"] == ["p7"]


def test_md5_of(tmp_path, deadline):
    data = os.urandom(3 << 20)
    (tmp_path / "f").write_bytes(data)
    assert digests.md5_of(str(tmp_path / "f")) == hashlib.md5(data).hexdigest()
    os.mkfifo(tmp_path / "fifo")
    with deadline(5):
        with pytest.raises(PackageError, match="not a regular file"):
            digests.md5_of(str(tmp_path / "fifo"))
        with pytest.raises(PackageError, match="not a regular file"):
            digests.md5_of(str(tmp_path))
        with pytest.raises(PackageError, match="No such file"):
            digests.md5_of(str(tmp_path / "missing"))


@pytest.mark.parametrize("suite", SUITES)
def test_the_dpkg_database_in_the_common_shape_says_what_dpkg_query_says(suite):
    root = tree(suite)
    database = installed.database_of(str(root))
    assert isinstance(database, dpkgdb.DpkgDatabase)
    assert database.describe() == {
        "manager": "dpkg",
        "backend": "dpkg status",
        "path": "/var/lib/dpkg/status",
    }
    shown = output(
        "dpkg-query", admindir(root), "-W", "-f=${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\n"
    )
    expected = sorted(" ".join(line.split()[1:]) for line in shown.splitlines() if line.startswith("ii "))
    assert sorted(p.label for p in database.packages()) == expected
    (libc,) = database.find("libc6")
    listed = {f.path: f for f in database.files(libc)}
    assert set(listed) == set(output("dpkg-query", admindir(root), "-L", "libc6").split()) - {"/."}
    libc_so = next(p for p, f in listed.items() if re.search(r"/libc(-[\d.]+\.so|\.so\.6)$", p) and f.digest)
    assert listed[libc_so].algorithm == "md5"
    assert listed[libc_so].digest == digests.md5_of(str(root) + libc_so)
    assert database.owners()[libc_so] == ["libc6"]


def test_a_root_without_a_package_database_has_none(tmp_path):
    assert installed.database_of(str(tmp_path)) is None
