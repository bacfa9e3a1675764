# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a Debian-family target's package database offline, and .deb files without dpkg.

The database is read from a root directory holding a broken system (never the rescuer's own /):
``var/lib/dpkg/status`` with the pending journal in ``var/lib/dpkg/updates/`` applied the way
dpkg-query applies it, and the ``info/<package>.list`` and ``.md5sums`` files. Every path inside
the target goes through ``rootfs.resolve``, so a symlink a hostile root planted never leads out.

A .deb is an ar archive of ``debian-binary``, ``control.tar.*`` and ``data.tar.*``; it is read with
the standard library (xz, gzip, bzip2, lzma, uncompressed) and the ``zstd`` tool for Ubuntu's
``.zst`` members. Header fields, sizes and tar member paths are checked before they are used; a bad
archive raises PackageError naming the file and the problem.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import stat
import subprocess
import tarfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

ADMINDIR = "/var/lib/dpkg"
STATUS = f"{ADMINDIR}/status"
UPDATES = f"{ADMINDIR}/updates"
INFO = f"{ADMINDIR}/info"

# Caps far above what dpkg writes (a desktop's status file is a few MB, a .list a few hundred kB),
# so a hostile root cannot make the reader allocate without bound.
MAX_STATUS = 512 << 20
MAX_INFO_FILE = 64 << 20
MAX_UPDATES = 4096
MAX_CONTROL_MEMBER = 64 << 20
MAX_HARDLINKS = 16
# A decompression bomb stops here instead of running for minutes; the largest Debian packages
# unpack to a few GB.
MAX_UNPACKED = 16 << 30
# A reader at the end of a tar stream asks once or twice more; a loop skipping a lying size asks forever.
MAX_READS_AT_END = 64
CHUNK = 1 << 20

AR_MAGIC = b"!<arch>\n"
AR_HEADER = 60
AR_FMAG = b"`\n"

KINDS = ("file", "link", "dir", "hardlink", "other")

# The fields installed() needs, found without walking every Description and Conffiles line: a field
# name starts a line, a blank line ends a stanza; dpkg's field names are case-insensitive. The pattern
# starts with a newline rather than "^", so the search skips ahead to newlines (4x faster on 50 MB).
_STANZA_FIELDS = re.compile(
    rb"\n(?:(package|status|version|architecture|multi-arch)[ \t]*:([^\n]*)|[ \t\r]*(?=\n))",
    re.IGNORECASE,
)
_UPDATE_NAME = re.compile(r"^[0-9]+$")
_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


class PackageError(LifelineError):
    """A package database or archive cannot be used; the message says where and why."""


@dataclass
class Package:
    """One package of the target's dpkg database."""

    name: str
    version: str
    arch: str
    status: str  # want, error flag and state: "install ok installed"
    multi_arch: str = ""  # "same" names the info files libc6:amd64.list

    @property
    def upstream(self) -> str:
        """The upstream part of the version: "1:2.36-9+deb12u4" -> "2.36"."""
        version = self.version.split(":", 1)[1] if ":" in self.version else self.version
        return version.rsplit("-", 1)[0] if "-" in version else version

    @property
    def key(self) -> str:
        """The name dpkg gives its info files: "libc6:amd64" when Multi-Arch: same, else "libc6"."""
        if self.multi_arch == "same" and self.arch:
            return f"{self.name}:{self.arch}"
        return self.name

    @property
    def qualified(self) -> str:
        """The name with its architecture, "libc6:amd64" (just the name when the stanza named none)."""
        return f"{self.name}:{self.arch}" if self.arch else self.name


# ---- reading files inside the target -----------------------------------------------------------


def _read(root: str, path: str, limit: int, *, missing_ok: bool = False) -> bytes | None:
    """rootfs.read_bytes, its refusal as a PackageError."""
    try:
        return rootfs.read_bytes(root, path, limit, missing_ok=missing_ok)
    except rootfs.RootError as exc:
        raise PackageError(str(exc)) from exc


def _paths(data: bytes) -> list[str]:
    # File names are bytes on disk; surrogateescape keeps a non-UTF-8 name the same file name.
    return [line for line in data.decode("utf-8", "surrogateescape").split("\n") if line]


# ---- the status database ---------------------------------------------------------------------


def parse_status(data: bytes) -> list[Package]:
    """Every stanza of a status file that names a package, a version and a status, in file order.

    Stanzas without those fields (a truncated last stanza, NUL blocks a crash left, garbage) are
    passed over.
    """
    found: list[Package] = []
    fields: dict[bytes, bytes] = {}
    for match in _STANZA_FIELDS.finditer(b"\n" + data + b"\n"):
        name = match.group(1)
        if name is not None:
            name = name.lower()
            if name == b"package" and name in fields:
                # A stanza cut short runs into the next one: it ends where the next Package starts.
                _add_stanza(found, fields)
                fields = {}
            fields.setdefault(name, match.group(2))
            continue
        if fields:
            _add_stanza(found, fields)
            fields = {}
    if fields:
        _add_stanza(found, fields)
    return found


def _add_stanza(found: list[Package], fields: dict[bytes, bytes]) -> None:
    values = {k.decode("ascii"): v.decode("utf-8", "replace").strip() for k, v in fields.items()}
    name, version, status = values.get("package", ""), values.get("version", ""), values.get("status", "")
    if not name or not version or len(status.split()) != 3 or any(c.isspace() or c == "\0" for c in name):
        return
    found.append(
        Package(
            name=name,
            version=version,
            arch=values.get("architecture", ""),
            status=" ".join(status.split()),
            multi_arch=values.get("multi-arch", "").lower(),
        )
    )


def fully_installed(pkg: Package) -> bool:
    """Unpacked and configured without error: "install ok installed", also when held or marked for removal.

    A held package ("hold ok installed") is as installed as any other, and libc6 is the package people hold.
    """
    want, flag, state = [*pkg.status.split(), "", "", ""][:3]
    return flag == "ok" and state == "installed" and want in ("install", "hold", "deinstall", "purge")


def _database(root: str) -> list[Package]:
    """Every package record: the status file, then the journal dpkg had not yet folded into it."""
    data = _read(root, STATUS, MAX_STATUS, missing_ok=True)
    if data is None:
        raise PackageError(
            f"{rootfs.shown(root, STATUS)} does not exist in {root}: not a Debian-family root, "
            "or its dpkg database is lost"
        )
    records: dict[tuple[str, str], Package] = {}
    for pkg in parse_status(data):
        records.setdefault((pkg.name, pkg.arch), pkg)
    # An interrupted dpkg run leaves its newer records in updates/NNNN; dpkg-query applies them in
    # name order, each replacing the whole record of its package.
    for name in _update_files(root):
        try:
            update = _read(root, f"{UPDATES}/{name}", MAX_STATUS, missing_ok=True) or b""
        except PackageError:
            continue  # dpkg would stop here; a rescuer still wants the rest of the database
        for pkg in parse_status(update):
            records[(pkg.name, pkg.arch)] = pkg
    return list(records.values())


def _update_files(root: str) -> list[str]:
    try:
        where = rootfs.resolve(root, UPDATES)
        names = os.listdir(where.host)
    except (OSError, rootfs.RootError):
        return []
    return sorted(n for n in names if _UPDATE_NAME.match(n))[:MAX_UPDATES]


def installed(root: str) -> dict[str, Package]:
    """The fully installed packages of the target, keyed by "name:arch" and by "name".

    Under the bare name the native architecture's package wins (the architecture dpkg itself has),
    else the first in the status file. PackageError only when the status file is missing or unreadable.
    """
    packages = [pkg for pkg in _database(root) if fully_installed(pkg)]
    native = next((p.arch for p in packages if p.name == "dpkg"), "")
    result: dict[str, Package] = {}
    for pkg in packages:
        result.setdefault(pkg.qualified, pkg)
    for pkg in packages:
        if pkg.arch == native:
            result.setdefault(pkg.name, pkg)
    for pkg in packages:
        result.setdefault(pkg.name, pkg)
    return result


def find(root: str, name: str, arch: str | None = None) -> Package | None:
    """The fully installed package ``name`` ("libc6" or "libc6:amd64"), of ``arch`` when given."""
    if arch is None and ":" in name:
        name, arch = name.split(":", 1)
    found = installed(root)
    pkg = found.get(f"{name}:{arch}" if arch else name)
    if pkg is None or pkg.name != name or (arch and pkg.arch != arch):
        return None
    return pkg


def _info_names(pkg: Package, suffix: str) -> list[str]:
    # dpkg names info files "name:arch" for Multi-Arch: same packages; a database whose status lost
    # that field still has the files, so the other spelling is tried second.
    names = [pkg.key, pkg.qualified, pkg.name]
    return [f"{INFO}/{n}.{suffix}" for n in dict.fromkeys(names)]


def _info_file(root: str, pkg: Package, suffix: str) -> bytes | None:
    for path in _info_names(pkg, suffix):
        data = _read(root, path, MAX_INFO_FILE, missing_ok=True)
        if data is not None:
            return data
    return None


def file_list(root: str, pkg: Package) -> list[str]:
    """What dpkg recorded as installed by ``pkg``: absolute paths, directories included ("/." first)."""
    data = _info_file(root, pkg, "list")
    if data is None:
        tried = ", ".join(_info_names(pkg, "list"))
        raise PackageError(f"no file list of {pkg.qualified} in {root} (tried {tried})")
    return _paths(data)


def parse_md5sums(data: bytes) -> dict[str, str]:
    """md5sum(1) lines ("<hex>  usr/lib/x") -> {"/usr/lib/x": "<hex>"}; malformed lines are passed over."""
    sums: dict[str, str] = {}
    for line in _paths(data):
        digest, _, rest = line.partition(" ")
        if not _HEX_MD5.match(digest):
            continue
        # md5sum writes "<hex>  name" (text mode) or "<hex> *name" (binary mode).
        if rest[:1] in (" ", "*"):
            rest = rest[1:]
        path = _absolute(rest)
        if path != "/":
            sums[path] = digest.lower()
    return sums


def _absolute(path: str) -> str:
    """A tar or md5sums path made absolute and clean: "./usr/lib/x" and "usr//lib/x" -> "/usr/lib/x"."""
    return "/" + "/".join(p for p in path.split("/") if p not in ("", "."))


def md5sums(root: str, pkg: Package) -> dict[str, str]:
    """The checksums dpkg recorded for ``pkg``'s regular files, by absolute path; {} when it recorded none."""
    data = _info_file(root, pkg, "md5sums")
    return parse_md5sums(data) if data is not None else {}


def owners(root: str) -> dict[str, list[str]]:
    """Every path a fully installed package lists -> the names of the packages listing it.

    A package whose file list is missing or unreadable owns nothing here.
    """
    result: dict[str, list[str]] = {}
    seen: set[str] = set()
    for pkg in installed(root).values():
        if pkg.qualified in seen:
            continue
        seen.add(pkg.qualified)
        try:
            data = _info_file(root, pkg, "list")
        except PackageError:
            continue
        if data is None:
            continue
        for path in _paths(data):
            names = result.get(path)
            if names is None:
                result[path] = [pkg.name]
            elif pkg.name not in names:
                names.append(pkg.name)
    return result


def md5_of(path: str) -> str:
    """The md5 of the rescuer's regular file ``path``, read in chunks; PackageError when it cannot be read."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        # Look before opening: opening a device node runs its driver's code.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise PackageError(f"{path} is not a regular file")
        fd = os.open(path, flags)
    except OSError as exc:
        raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
    digest = hashlib.md5(usedforsecurity=False)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PackageError(f"{path} is not a regular file")
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    except OSError as exc:
        raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
    finally:
        os.close(fd)
    return digest.hexdigest()


# ---- .deb archives -----------------------------------------------------------------------------


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


class _Window(io.RawIOBase):
    """A read-only view of ``size`` bytes at ``offset`` of an open file: one ar member."""

    def __init__(self, handle, offset: int, size: int) -> None:
        super().__init__()
        self._handle, self._offset, self._left = handle, offset, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        data = os.pread(self._handle.fileno(), want, self._offset)
        buffer[: len(data)] = data
        self._offset += len(data)
        self._left -= len(data)
        return len(data)


class _Capped(io.RawIOBase):
    """A decompressed stream that ends a decompression bomb at ``cap`` bytes, and a reader stuck at its end.

    tarfile skips a member's data by reading it block by block, and goes on asking at the end of the
    stream: a hostile size field (base-256 allows 2**95) would keep it asking for hours.
    """

    def __init__(self, stream, cap: int, what: str) -> None:
        super().__init__()
        self._stream, self._left, self._cap, self._what = stream, cap, cap, what
        self._reads_at_end = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        if len(data) > self._left:
            raise PackageError(f"{self._what} unpacks to more than {self._cap} bytes; not read further")
        if not data:
            self._reads_at_end += 1
            if self._reads_at_end > MAX_READS_AT_END:
                raise PackageError(
                    f"{self._what} ends inside an entry (cut short, or a size field that lies)"
                )
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


# How each data.tar / control.tar suffix dpkg writes is opened as a stream (zstd: _Zstd).
_OPENERS = {
    "": lambda raw: raw,
    "xz": lzma.LZMAFile,  # also reads the old .lzma format
    "lzma": lzma.LZMAFile,
    "gz": lambda raw: gzip.GzipFile(fileobj=raw),
    "bz2": bz2.BZ2File,
}


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


class _Zstd:
    """``zstd -dc`` over one ar member: a thread feeds it while the tar reader drains its output."""

    def __init__(self, raw, what: str) -> None:
        tool = shutil.which("zstd")
        if tool is None:
            raise PackageError(
                f"{what} is compressed with zstd: the zstd tool is needed on the rescuer to read it"
            )
        try:
            # stderr is read only once zstd has ended; -q keeps it to one line, far below a pipe's buffer.
            self._process = subprocess.Popen(
                [tool, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise PackageError(f"{what}: cannot run {tool}: {os.strerror(exc.errno or errno.EIO)}") from exc
        self.stdout = self._process.stdout
        self._complaint: str | None = None
        self._feeder = threading.Thread(target=self._feed, args=(raw,), daemon=True)
        self._feeder.start()

    def _feed(self, raw) -> None:
        stdin = self._process.stdin
        try:
            while chunk := raw.read(CHUNK):
                stdin.write(chunk)
        except (OSError, ValueError):
            pass  # zstd went away (it failed, or the reader stopped early and ended it)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def stop(self) -> str:
        """End zstd (a reader that stopped early leaves it blocked on a full pipe); its complaint, if any."""
        if self._complaint is None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._feeder.join(5)
            self.stdout.close()
            self._complaint = self._process.stderr.read(4096).decode("utf-8", "replace").strip()
            self._process.stderr.close()
        return f"; zstd says: {self._complaint}" if self._complaint else ""


class DebArchive:
    """A .deb file read with the standard library: ar container, control.tar.*, data.tar.*.

    The ar container and control.tar are read when the object is made (PackageError when the file is
    no Debian package); data.tar when members() or read() first needs it, then its table is kept.
    """

    control: dict[str, str]  # the control file's fields: Package, Version, Architecture, Multi-Arch, ...
    md5sums: dict[str, str]  # control.tar's md5sums by absolute path (regular files, conffiles excepted)
    conffiles: list[str]  # control.tar's conffiles: absolute paths

    def __init__(self, path: str) -> None:
        self.path = path
        self.unpacked_limit = MAX_UNPACKED
        self._members: dict[str, Member] | None = None
        try:
            # O_NONBLOCK: a FIFO given as the package must not block the open; it is refused below.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
        try:
            st = os.fstat(fd)
        except OSError as exc:
            os.close(fd)
            raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
        self._handle = os.fdopen(fd, "rb", buffering=0) if stat.S_ISREG(st.st_mode) else None
        if self._handle is None:
            os.close(fd)
            raise self._not_deb("not a regular file")
        try:
            self.size = st.st_size
            self._ar = self._read_ar()
            self._control_member = self._pick("control.tar")
            self._data_member = self._pick("data.tar")
            self.control, self.md5sums, self.conffiles = self._read_control()
        except BaseException:
            self._handle.close()
            raise

    # -- lifetime

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> DebArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()

    # -- the ar container

    def _not_deb(self, why: str) -> PackageError:
        return PackageError(f"{self.path} is not a Debian package ({why})")

    def _pread(self, size: int, offset: int) -> bytes:
        try:
            return os.pread(self._handle.fileno(), size, offset)
        except OSError as exc:
            raise PackageError(f"{self.path}: {os.strerror(exc.errno or errno.EIO)}") from exc

    def _read_ar(self) -> list[_ArMember]:
        if self._pread(len(AR_MAGIC), 0) != AR_MAGIC:
            raise self._not_deb("no ar archive magic")
        members: list[_ArMember] = []
        offset = len(AR_MAGIC)
        # Every round moves on by at least one header, so the loop ends with the file.
        while offset < self.size:
            header = self._pread(AR_HEADER, offset)
            if len(header) < AR_HEADER:
                raise self._not_deb(
                    f"ar header at offset {offset} truncated: {len(header)} of {AR_HEADER} bytes"
                )
            if header[58:60] != AR_FMAG:
                raise self._not_deb(f"ar header at offset {offset} has no end marker (damaged archive)")
            raw_name = header[0:16].decode("ascii", "replace").rstrip(" ")
            raw_size = header[48:58].decode("ascii", "replace").strip(" ")
            if not raw_size.isdigit() or not raw_size.isascii():
                raise self._not_deb(f"ar member {raw_name!r} at offset {offset} has size field {raw_size!r}")
            size = int(raw_size)
            start = offset + AR_HEADER
            if size > self.size - start:
                raise self._not_deb(
                    f"ar member {raw_name!r} claims {size} bytes, only {self.size - start} remain "
                    "(truncated or damaged)"
                )
            # GNU ar ends names with "/"; "/" and "//" themselves are the symbol and name tables.
            name = raw_name[:-1] if raw_name.endswith("/") and raw_name not in ("/", "//") else raw_name
            members.append(_ArMember(name=name, offset=start, size=size))
            offset = start + size + (size & 1)
        if not members:
            raise self._not_deb("an empty ar archive")
        if members[0].name != "debian-binary":
            raise self._not_deb(f"its first member is {members[0].name!r}, not 'debian-binary'")
        version = self._pread(min(members[0].size, 64), members[0].offset)
        if not version.startswith(b"2."):
            raise self._not_deb(f"debian-binary says {version[:16]!r}, not format 2.x")
        return members

    def _pick(self, stem: str) -> _ArMember:
        found = [m for m in self._ar if m.name == stem or m.name.startswith(stem + ".")]
        if not found:
            names = ", ".join(m.name for m in self._ar)
            raise self._not_deb(f"no {stem}.* member; it holds {names}")
        if len(found) > 1:
            raise self._not_deb(f"{len(found)} {stem}.* members: {', '.join(m.name for m in found)}")
        return found[0]

    # -- compressed tar members

    @contextlib.contextmanager
    def _tar(self, member: _ArMember) -> Iterator[tarfile.TarFile]:
        """The member as a streaming tar, decompressed by its suffix."""
        what = f"{self.path}: {member.name}"
        raw = io.BufferedReader(_Window(self._handle, member.offset, member.size), CHUNK)
        suffix = member.name.rsplit(".", 1)[1] if member.name.count(".") > 1 else ""
        if suffix not in _OPENERS and suffix != "zst":
            raise self._not_deb(f"{member.name} is compressed in a way dpkg does not write ({suffix})")
        zstd: _Zstd | None = None
        try:
            if suffix == "zst":
                zstd = _Zstd(raw, what)
                stream = zstd.stdout
            else:
                stream = _OPENERS[suffix](raw)
            capped = io.BufferedReader(_Capped(stream, self.unpacked_limit, what), CHUNK)
            try:
                with tarfile.open(fileobj=capped, mode="r|") as tar:
                    yield tar
            except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error, ValueError) as exc:
                detail = zstd.stop() if zstd is not None else ""
                raise PackageError(f"{what}: damaged ({exc or type(exc).__name__}){detail}") from exc
        finally:
            if zstd is not None:
                zstd.stop()

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
            for _, info in self._entries(tar, self._control_member.name):
                name = _absolute(info.name)
                if name in ("/control", "/md5sums", "/conffiles") and info.isreg():
                    if info.size > MAX_CONTROL_MEMBER:
                        raise PackageError(
                            f"{self.path}: control.tar's {name[1:]} is {info.size} bytes, too large"
                        )
                    handle = tar.extractfile(info)
                    wanted[name] = handle.read() if handle is not None else b""
        if "/control" not in wanted:
            raise self._not_deb(f"{self._control_member.name} holds no control file")
        control = parse_control(wanted["/control"])
        if not control.get("Package"):
            raise self._not_deb("its control file names no Package")
        # A conffiles line may start with a flag ("remove-on-upgrade /etc/x"); the path starts at "/".
        conffiles = [line[line.index("/") :] for line in _paths(wanted.get("/conffiles", b"")) if "/" in line]
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
        wanted = _absolute(path)
        member = table.get(wanted)
        if member is None:
            raise PackageError(f"{self.path} has no {wanted}")
        for _ in range(MAX_HARDLINKS):
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
