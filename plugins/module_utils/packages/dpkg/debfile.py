# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read .deb files without dpkg.

A .deb is an ar archive of ``debian-binary``, ``control.tar.*`` and ``data.tar.*``; it is read with
packages/compression.py (xz, gzip, bzip2, lzma, uncompressed, and the ``zstd`` tool for Ubuntu's
``.zst`` members). Header fields, sizes and tar member paths are checked before they are used; a bad
archive raises PackageError naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.packages import compression
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.digests import CHUNK
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.database import (
    Package,
    absolute_path,
    parse_md5sums,
    path_lines,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import (
    InstalledPackage,
    PackageError,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.package_archive import (
    PackageArchive,
    Window,
)

# Caps far above what real packages hold, so a hostile archive cannot make the reader allocate without bound.
MAX_CONTROL_MEMBER = 64 << 20
MAX_HARDLINKS = 16
# A decompression bomb stops here instead of running for minutes; the largest Debian packages
# unpack to a few GB.
MAX_UNPACKED = 16 << 30
AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
AR_FMAG = b"`\n"
KINDS = ("file", "link", "dir", "hardlink", "other")


@dataclass
class Member:
    """One entry of a package's data.tar."""

    path: str  # normalized absolute path: "/usr/lib/x86_64-linux-gnu/libc.so.6"
    kind: str  # one of KINDS
    linkname: str = ""  # a symlink's target as written; a hardlink's target as a normalized path
    mode: int = 0  # permission bits with setuid, setgid and sticky
    size: int = 0
    uid: int = 0
    gid: int = 0
    index: int = field(default=0, repr=False, compare=False)  # position in data.tar


@dataclass
class _ArMember:
    name: str
    offset: int
    size: int


# How each data.tar / control.tar suffix dpkg writes is decompressed (compression's names).
_COMPRESSIONS = {"": "", "xz": "xz", "lzma": "lzma", "gz": "gzip", "bz2": "bzip2", "zst": "zstd"}


def _mode_kind(info: tarfile.TarInfo) -> str:
    if info.isreg():
        return "file"
    if info.issym():
        return "link"
    if info.isdir():
        return "dir"
    if info.islnk():
        return "hardlink"
    return "other"


class DebArchive(PackageArchive):
    """A .deb file read with the standard library: ar container, control.tar.*, data.tar.*.

    The ar container and control.tar are read when the object is made (PackageError when the file is
    no Debian package); data.tar when members() or read() first needs it, then its table is kept.
    """

    control: dict[str, str]  # the control file's fields: Package, Version, Architecture, Multi-Arch, ...
    md5sums: dict[str, str]  # control.tar's md5sums by absolute path (regular files, conffiles excepted)
    conffiles: list[str]  # control.tar's conffiles: absolute paths

    KIND = "a Debian package"

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.unpacked_limit = MAX_UNPACKED
        self._members: dict[str, Member] | None = None
        try:
            self._ar = self._read_ar()
            self._control_member = self._pick("control.tar")
            self._data_member = self._pick("data.tar")
            self.control, self.md5sums, self.conffiles = self._read_control()
        except BaseException:
            self._handle.close()
            raise

    # -- the ar container

    def _read_ar(self) -> list[_ArMember]:
        if self._pread(len(AR_MAGIC), 0) != AR_MAGIC:
            raise self.not_this_kind("no ar archive magic")
        members: list[_ArMember] = []
        offset = len(AR_MAGIC)
        # Every round moves on by at least one header, so the loop ends with the file.
        while offset < self.size:
            header = self._pread(AR_HEADER, offset)
            if len(header) < AR_HEADER:
                raise self.not_this_kind(
                    f"ar header at offset {offset} truncated: {len(header)} of {AR_HEADER} bytes"
                )
            if header[58:60] != AR_FMAG:
                raise self.not_this_kind(f"ar header at offset {offset} has no end marker (damaged archive)")
            raw_name = header[0:16].decode("ascii", "replace").rstrip(" ")
            raw_size = header[48:58].decode("ascii", "replace").strip(" ")
            if not raw_size.isdigit() or not raw_size.isascii():
                raise self.not_this_kind(
                    f"ar member {raw_name!r} at offset {offset} has size field {raw_size!r}"
                )
            size = int(raw_size)
            start = offset + AR_HEADER
            if size > self.size - start:
                raise self.not_this_kind(
                    f"ar member {raw_name!r} claims {size} bytes, only {self.size - start} remain "
                    "(truncated or damaged)"
                )
            # GNU ar ends names with "/"; "/" and "//" themselves are the symbol and name tables.
            name = raw_name[:-1] if raw_name.endswith("/") and raw_name not in ("/", "//") else raw_name
            members.append(_ArMember(name=name, offset=start, size=size))
            offset = start + size + (size & 1)
        if not members:
            raise self.not_this_kind("an empty ar archive")
        if members[0].name != "debian-binary":
            raise self.not_this_kind(f"its first member is {members[0].name!r}, not 'debian-binary'")
        version = self._pread(min(members[0].size, 64), members[0].offset)
        if not version.startswith(b"2."):
            raise self.not_this_kind(f"debian-binary says {version[:16]!r}, not format 2.x")
        return members

    def _pick(self, stem: str) -> _ArMember:
        found = [m for m in self._ar if m.name == stem or m.name.startswith(stem + ".")]
        if not found:
            names = ", ".join(m.name for m in self._ar)
            raise self.not_this_kind(f"no {stem}.* member; it holds {names}")
        if len(found) > 1:
            raise self.not_this_kind(f"{len(found)} {stem}.* members: {', '.join(m.name for m in found)}")
        return found[0]

    # -- compressed tar members

    @contextlib.contextmanager
    def _tar(self, member: _ArMember) -> Iterator[tarfile.TarFile]:
        """The member as a streaming tar, decompressed by its suffix."""
        what = f"{self.path}: {member.name}"
        raw = io.BufferedReader(Window(self._handle, member.offset, member.size), CHUNK)
        suffix = member.name.rsplit(".", 1)[1] if member.name.count(".") > 1 else ""
        if suffix not in _COMPRESSIONS:
            raise self.not_this_kind(f"{member.name} is compressed in a way dpkg does not write ({suffix})")
        with compression.decompressed(
            raw, _COMPRESSIONS[suffix], what, self.unpacked_limit, damaged=(tarfile.TarError,)
        ) as stream, tarfile.open(fileobj=stream, mode="r|") as tar:
            yield tar

    def _entries(self, tar: tarfile.TarFile, what: str) -> Iterator[tuple[int, tarfile.TarInfo]]:
        """The tar's entries in order, each size checked before tarfile skips over its data."""
        for index, info in enumerate(tar):
            if not 0 <= info.size <= self.unpacked_limit:
                raise PackageError(f"{self.path}: {what} entry {info.name!r} claims {info.size} bytes")
            yield index, info

    # -- control.tar

    def _read_control(self) -> tuple[dict[str, str], dict[str, str], list[str]]:
        wanted: dict[str, bytes] = {}
        with self._tar(self._control_member) as tar:
            for _member, info in self._entries(tar, self._control_member.name):
                name = absolute_path(info.name)
                if name in ("/control", "/md5sums", "/conffiles") and info.isreg():
                    if info.size > MAX_CONTROL_MEMBER:
                        raise PackageError(
                            f"{self.path}: control.tar's {name[1:]} is {info.size} bytes, too large"
                        )
                    handle = tar.extractfile(info)
                    wanted[name] = handle.read() if handle is not None else b""
        if "/control" not in wanted:
            raise self.not_this_kind(f"{self._control_member.name} holds no control file")
        control = parse_control(wanted["/control"])
        if not control.get("Package"):
            raise self.not_this_kind("its control file names no Package")
        # A conffiles line may start with a flag ("remove-on-upgrade /etc/x"); the path starts at "/".
        conffiles = [
            line[line.index("/") :] for line in path_lines(wanted.get("/conffiles", b"")) if "/" in line
        ]
        return control, parse_md5sums(wanted.get("/md5sums", b"")), conffiles

    @property
    def package(self) -> Package:
        """The package this archive installs, as the database would record it once installed."""
        return Package(
            name=self.control.get("Package", ""),
            version=self.control.get("Version", ""),
            arch=self.control.get("Architecture", ""),
            status="",
            multi_arch=self.control.get("Multi-Arch", "").lower(),
        )

    @property
    def identity(self) -> InstalledPackage:
        """The package in the shape every package manager's shares (packages/model.py)."""
        pkg = self.package
        return InstalledPackage(manager="dpkg", name=pkg.name, version=pkg.version, arch=pkg.arch)

    def recorded_digest(self, path: str) -> tuple[str, str]:
        """(digest, algorithm) the package records for the regular file ``path``; ("", "") if none."""
        digest = self.md5sums.get(path, "")
        return (digest, "md5") if digest else ("", "")

    # -- data.tar

    def _member_path(self, name: str) -> str:
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise PackageError(
                f"{self.path}: data.tar entry {name!r} climbs out of the root; archive refused"
            )
        return "/" + "/".join(parts)

    def members(self) -> dict[str, Member]:
        """The data.tar entries by normalized absolute path; read once per archive object."""
        if self._members is None:
            table: dict[str, Member] = {}
            with self._tar(self._data_member) as tar:
                for index, info in self._entries(tar, self._data_member.name):
                    path = self._member_path(info.name)
                    kind = _mode_kind(info)
                    if kind == "hardlink":
                        linkname = self._member_path(info.linkname)
                    else:
                        linkname = info.linkname if kind == "link" else ""
                    table[path] = Member(
                        path=path,
                        kind=kind,
                        linkname=linkname,
                        mode=info.mode & 0o7777,
                        size=info.size if kind == "file" else 0,
                        uid=info.uid,
                        gid=info.gid,
                        index=index,
                    )
            self._members = table
        return self._members

    def _content_member(self, path: str, limit: int) -> Member:
        table = self.members()
        wanted = absolute_path(path)
        member = table.get(wanted)
        if member is None:
            raise PackageError(f"{self.path} has no {wanted}")
        for _hop in range(MAX_HARDLINKS):
            if member.kind != "hardlink":
                break
            target = table.get(member.linkname)
            if target is None:
                raise PackageError(
                    f"{self.path}: {wanted} is a hard link to {member.linkname}, which it lacks"
                )
            member = target
        if member.kind != "file":
            raise PackageError(f"{self.path}: {wanted} is a {member.kind}, not a regular file")
        if member.size > limit:
            raise PackageError(f"{self.path}: {wanted} is {member.size} bytes, more than the {limit} allowed")
        return member

    def read_many(self, paths: Iterable[str], limit: int = 256 << 20) -> dict[str, bytes]:
        """The contents of several regular file members (hardlinks followed) in one pass over data.tar."""
        wanted = {p: self._content_member(p, limit) for p in paths}
        by_index: dict[int, list[str]] = {}
        for path, member in wanted.items():
            by_index.setdefault(member.index, []).append(path)
        result: dict[str, bytes] = {}
        if not by_index:
            return result
        last = max(by_index)
        with self._tar(self._data_member) as tar:
            for index, info in self._entries(tar, self._data_member.name):
                if index in by_index:
                    handle = tar.extractfile(info)
                    data = handle.read(limit + 1) if handle is not None else b""
                    for path in by_index[index]:
                        result[path] = data
                if index >= last:
                    break
        missing = [p for p in wanted if p not in result]
        if missing:
            raise PackageError(f"{self.path}: data.tar ended before {missing[0]} (it changed while read?)")
        return result

    def read(self, path: str, limit: int = 256 << 20) -> bytes:
        """The content of one regular file member (a hardlink member gives its target's content)."""
        return self.read_many([path], limit)[path]


def parse_control(data: bytes) -> dict[str, str]:
    """The fields of one control stanza; continuation lines are kept as dpkg-deb -f prints them."""
    fields: dict[str, str] = {}
    current = None
    for line in data.decode("utf-8", "replace").split("\n"):
        if not line.strip():
            if fields:
                break  # one stanza: a blank line ends it
            continue
        if line[0] in " \t":
            if current is not None:
                fields[current] += "\n" + line.rstrip()
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or any(c.isspace() for c in name):
            current = None
            continue
        current = name
        fields[name] = value.strip()
    return fields
