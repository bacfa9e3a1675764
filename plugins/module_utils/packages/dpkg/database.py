# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a Debian-family target's package database offline, as dpkg-query would.

The database is read from a root directory holding a broken system (never the rescuer's own /):
``var/lib/dpkg/status`` with the pending journal in ``var/lib/dpkg/updates/`` applied the way
dpkg-query applies it, and the ``info/<package>.list`` and ``.md5sums`` files. Every path inside
the target goes through ``rootfs.resolve``, so a symlink a hostile root planted never leads out.

A .deb file is read by debfile.py; DpkgDatabase gives this database the shape of every other
(packages/model.py).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import (
    Database,
    InstalledPackage,
    PackageError,
    PackageFile,
)
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


# The fields installed() needs, found without walking every Description and Conffiles line: a field
# name starts a line, a blank line ends a stanza; dpkg's field names are case-insensitive. The pattern
# starts with a newline rather than "^", so the search skips ahead to newlines (4x faster on 50 MB).
_STANZA_FIELDS = re.compile(
    rb"\n(?:(package|status|version|architecture|multi-arch)[ \t]*:([^\n]*)|[ \t\r]*(?=\n))",
    re.IGNORECASE,
)
_UPDATE_NAME = re.compile(r"^[0-9]+$")
_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")


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


def path_lines(data: bytes) -> list[str]:
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
    return path_lines(data)


def parse_md5sums(data: bytes) -> dict[str, str]:
    """md5sum(1) lines ("<hex>  usr/lib/x") -> {"/usr/lib/x": "<hex>"}; malformed lines are passed over."""
    sums: dict[str, str] = {}
    for line in path_lines(data):
        digest, _blank, rest = line.partition(" ")
        if not _HEX_MD5.match(digest):
            continue
        # md5sum writes "<hex>  name" (text mode) or "<hex> *name" (binary mode).
        if rest[:1] in (" ", "*"):
            rest = rest[1:]
        path = absolute_path(rest)
        if path != "/":
            sums[path] = digest.lower()
    return sums


def absolute_path(path: str) -> str:
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
        for path in path_lines(data):
            names = result.get(path)
            if names is None:
                result[path] = [pkg.name]
            elif pkg.name not in names:
                names.append(pkg.name)
    return result


class DpkgDatabase(Database):
    """The dpkg database in the shape of every package database (packages/model.py)."""

    manager = "dpkg"
    backend = "dpkg status"
    path = STATUS

    def __init__(self, root: str) -> None:
        self.root = root
        self._installed = installed(root)  # PackageError when the status file is missing or unreadable
        self._by_label: dict[str, Package] = {}

    def packages(self) -> list[InstalledPackage]:
        found = []
        for pkg in {id(p): p for p in self._installed.values()}.values():  # each once, under any key
            common = InstalledPackage(
                manager=self.manager,
                name=pkg.name,
                version=pkg.version,
                arch=pkg.arch,
                details={"status": pkg.status, "multi_arch": pkg.multi_arch},
            )
            self._by_label[common.label] = pkg
            found.append(common)
        return found

    def find(self, name: str, arch: str = "") -> list[InstalledPackage]:
        native = self._installed.get(name)
        found = super().find(name, arch)
        # dpkg's own architecture first, as installed() keys the bare name.
        return sorted(found, key=lambda p: not (native and p.arch == native.arch))

    def files(self, package: InstalledPackage) -> list[PackageFile]:
        pkg = self._by_label.get(package.label) or Package(package.name, package.version, package.arch, "")
        sums = md5sums(self.root, pkg)
        return [
            PackageFile(path=path, digest=sums.get(path, ""), algorithm="md5" if path in sums else "")
            for path in file_list(self.root, pkg)
            if path != "/."
        ]

    def owners(self) -> dict[str, list[str]]:
        return owners(self.root)  # the .list files alone: the md5sums are not needed for this


# ---- conffiles, diversions and permission overrides -----------------------------------------------

DIVERSIONS = f"{ADMINDIR}/diversions"
STATOVERRIDE = f"{ADMINDIR}/statoverride"
MAX_ADMIN_FILE = 16 << 20
_CONFFILE = re.compile(r"^[ \t]+(/\S+)[ \t]+([0-9a-fA-F]{32}|newconffile)(?:[ \t]+(\S+))?[ \t]*$")


def conffiles(root: str) -> dict[str, tuple[str, str]]:
    """The configuration files of the installed packages as their status records them:
    {"/etc/x": ("<md5>", "package")}; obsolete ones (no longer shipped) are left out."""
    data = _read(root, STATUS, MAX_STATUS, missing_ok=True) or b""
    found: dict[str, tuple[str, str]] = {}
    for stanza in data.decode("utf-8", "surrogateescape").split("\n\n"):
        package, in_conffiles, installed_here = "", False, False
        entries: list[tuple[str, str]] = []
        for line in stanza.split("\n"):
            if line[:1] in (" ", "\t"):
                match = _CONFFILE.match(line) if in_conffiles else None
                if match and match.group(3) != "obsolete" and match.group(2) != "newconffile":
                    entries.append((match.group(1), match.group(2).lower()))
                continue
            name, _sep, value = line.partition(":")
            name = name.strip().lower()
            in_conffiles = name == "conffiles"
            if name == "package":
                package = value.strip()
            elif name == "status":
                installed_here = value.split()[-1:] == ["installed"]
        if package and installed_here:
            for path, digest in entries:
                found.setdefault(path, (digest, package))
    return found


def diversions(root: str) -> dict[str, tuple[str, str]]:
    """dpkg-divert's records: {diverted path: (where the diverted package's file goes, diverting
    package)}; the package is ":" for a local diversion. A short last record is passed over."""
    data = _read(root, DIVERSIONS, MAX_ADMIN_FILE, missing_ok=True) or b""
    lines = data.decode("utf-8", "surrogateescape").split("\n")
    found: dict[str, tuple[str, str]] = {}
    for index in range(0, len(lines) - 2, 3):
        source, target, package = lines[index : index + 3]
        if source.startswith("/") and target.startswith("/") and package:
            found[source] = (target, package)
    return found


def statoverrides(root: str) -> dict[str, tuple[str, str, int]]:
    """dpkg-statoverride's records: {path: (user, group, mode)}, the owner and mode an admin (or a
    package's maintainer script) set on a packaged file; malformed lines are passed over."""
    data = _read(root, STATOVERRIDE, MAX_ADMIN_FILE, missing_ok=True) or b""
    found: dict[str, tuple[str, str, int]] = {}
    for line in path_lines(data):
        fields = line.split(None, 3)
        if len(fields) == 4 and fields[3].startswith("/"):
            try:
                found[fields[3]] = (fields[0], fields[1], int(fields[2], 8))
            except ValueError:
                continue
    return found
