# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an RPM-family target's package database offline, as ``rpm -qa`` would, never writing it.

The database lives in ``/usr/lib/sysimage/rpm`` (RHEL 10, Fedora 36+, SUSE) or ``/var/lib/rpm``
(often a link to the other); every path goes through ``rootfs.resolve``, so a link never leads out
of the root. Its format shows in the files present: ``rpmdb.sqlite``, ``Packages.db`` (ndb) or
``Packages`` (Berkeley DB). When several are present, the one the root's own rpm would open
(``%_db_backend`` in its macro files) is read, else the newest format, and ``notes`` says so.

Headers are checked as rpm checks them: one whose structure or digest is bad is passed over, as
``rpm -qa`` passes over it, and listed in ``skipped`` with why. A database that cannot be read at all
raises PackageError "the package database cannot be read: ...", never an empty list. ``skipped``
lists the passed-over records as text, ``skipped_records`` as (instance, why); ``notes`` says what
was chosen where the root left a choice.
"""

from __future__ import annotations

import os
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import (
    Database,
    InstalledPackage,
    PackageError,
    PackageFile,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import header as rpmheader
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import storage
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

DIRECTORIES = ("/usr/lib/sysimage/rpm", "/var/lib/rpm")
# The file each backend keeps its headers in, newest format first.
BACKEND_FILES = (("sqlite", "rpmdb.sqlite"), ("ndb", "Packages.db"), ("bdb", "Packages"))
# %_db_backend values -> the backend reading their files.
MACRO_BACKENDS = {"sqlite": "sqlite", "ndb": "ndb", "bdb": "bdb", "bdb_ro": "bdb"}
MACRO_FILES = ("/usr/lib/rpm/macros", "/usr/lib/rpm/macros.d", "/etc/rpm")
MAX_MACRO_FILE = 1 << 20
MAX_MACRO_FILES = 200
_MACRO = re.compile(r"^%(_db_backend|_dbpath)[ \t]+(\S+)[ \t]*$", re.MULTILINE)
_MACRO_VALUES = {"%{_var}": "/var", "%{_usr}": "/usr", "%{_prefix}": "/usr", "%{_lib}": "lib"}

UNREADABLE = "the package database cannot be read"


class Location:
    """Where a root's rpm database is: its directory inside the root, the backend, its file."""

    def __init__(self, directory: str, backend: str, notes: list[str]):
        self.directory = directory
        self.backend = backend
        self.notes = notes

    @property
    def path(self) -> str:
        return f"{self.directory}/{dict(BACKEND_FILES)[self.backend]}"


def root_macros(root: str) -> dict[str, str]:
    """``%_dbpath`` and ``%_db_backend`` as the root's macro files set them (a later file wins, as for
    rpm: /usr/lib/rpm/macros, then macros.d, then /etc/rpm); only literal values and %{_var}-style ones."""
    found: dict[str, str] = {}
    files: list[str] = []
    for place in MACRO_FILES:
        try:
            host = rootfs.resolve(root, place).host
            if os.path.isdir(host):
                names = sorted(n for n in os.listdir(host) if n.startswith("macros"))[:MAX_MACRO_FILES]
                files.extend(f"{place}/{n}" for n in names)
            else:
                files.append(place)
        except (OSError, rootfs.RootError):
            continue
    for path in files:
        try:
            text = rootfs.read_text(root, path, MAX_MACRO_FILE)
        except rootfs.RootError:
            continue
        for name, value in _MACRO.findall(text):
            for macro, replacement in _MACRO_VALUES.items():
                value = value.replace(macro, replacement)
            if "%" not in value:
                found[name] = value
    return found


def _backends_in(root: str, directory: str) -> tuple[str, list[str]] | None:
    """(directory as resolved inside the root, backends whose file is there), None when it holds none."""
    try:
        where = rootfs.resolve(root, directory)
    except rootfs.RootError as exc:
        raise PackageError(f"{UNREADABLE}: {exc}") from exc
    if where.escaped:
        raise PackageError(
            f"{UNREADABLE}: {rootfs.shown(root, directory, where)} in {root} leads out of the root "
            f"({'; '.join(where.links)}), not followed"
        )
    present = [backend for backend, name in BACKEND_FILES if os.path.lexists(os.path.join(where.host, name))]
    if not present:
        return None
    return where.inside, present


def locate(root: str) -> Location | None:
    """The root's rpm database, None when it holds none; PackageError when a link leads out of the root."""
    candidates: dict[str, list[str]] = {}
    for directory in DIRECTORIES:
        found = _backends_in(root, directory)
        if found:
            candidates.setdefault(found[0], found[1])
    if not candidates:
        return None
    macros = root_macros(root)
    notes: list[str] = []
    directory = next(iter(candidates))
    if len(candidates) > 1:
        wanted = macros.get("_dbpath", "")
        wanted_inside = rootfs.resolve(root, wanted).inside if wanted else ""
        if wanted_inside in candidates:
            directory = wanted_inside
            notes.append(f"databases in {' and '.join(candidates)}: {directory} is the root's %_dbpath")
        else:
            notes.append(f"databases in {' and '.join(candidates)}: {directory} read (not the %_dbpath)")
    present = candidates[directory]
    backend = present[0]
    if len(present) > 1:
        wanted_backend = MACRO_BACKENDS.get(macros.get("_db_backend", ""), "")
        if wanted_backend in present:
            backend = wanted_backend
            notes.append(f"{', '.join(present)} files in {directory}: {backend} is the root's %_db_backend")
        else:
            notes.append(f"{', '.join(present)} files in {directory}: {backend}, the newest format, read")
    return Location(directory, backend, notes)


class RpmDatabase(Database):
    """A root's rpm database in the shape of every package database (packages/model.py)."""

    manager = "rpm"

    def __init__(self, root: str, location: Location | None = None) -> None:
        self.root = root
        location = location or locate(root)
        if location is None:
            raise PackageError(f"no rpm database in {root} (looked in {', '.join(DIRECTORIES)})")
        self.backend = location.backend
        self.path = location.path
        self.notes = list(location.notes)
        self.skipped_records: list[tuple[int, str]] = []  # (instance, why) for each header rpm passes over
        self._headers: list[rpmheader.Header] | None = None
        self._by_instance: dict[int, rpmheader.Header] = {}

    # ---- reading ---------------------------------------------------------------------------------

    def _open(self, path: str) -> storage.DatabaseFile:
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            raise PackageError(str(exc)) from exc
        shown = f"{rootfs.shown(self.root, path, where)} in {self.root}"
        if where.escaped:
            raise PackageError(f"{shown} leads out of the root ({'; '.join(where.links)}), not followed")
        return storage.DatabaseFile(where.host, shown)

    def _read_blobs(self) -> storage.Blobs:
        with self._open(self.path) as db:
            if self.backend == "bdb":
                return storage.read_bdb(db)
            if self.backend == "ndb":
                return storage.read_ndb(db)
            companions: dict[str, storage.DatabaseFile] = {}
            try:
                for suffix in storage.SQLITE_COMPANIONS:
                    if rootfs.lexists(self.root, self.path + suffix):
                        companions[suffix] = self._open(self.path + suffix)
                return storage.read_sqlite(db, companions)
            finally:
                for companion in companions.values():
                    companion.close()

    def headers(self) -> list[rpmheader.Header]:
        """Every header rpm -qa would list, read once; PackageError when the database cannot be read."""
        if self._headers is not None:
            return self._headers
        try:
            blobs = self._read_blobs()
        except PackageError as exc:
            raise PackageError(f"{UNREADABLE}: {exc}") from exc
        self.notes.extend(blobs.notes)
        self.skipped_records.extend(blobs.skipped)
        headers = []
        for instance, blob in blobs.found:
            try:
                parsed = rpmheader.parse(blob, instance, f"{self.path} header #{instance}")
            except PackageError as exc:
                self.skipped_records.append((instance, str(exc)))
                continue
            problem = parsed.digest_problem()
            if problem:
                self.skipped_records.append((instance, f"{parsed.nevra}: {problem}"))
                continue
            headers.append(parsed)
            self._by_instance[instance] = parsed
        self._headers = headers
        return headers

    # ---- the Database shape ----------------------------------------------------------------------

    def packages(self) -> list[InstalledPackage]:
        return [self._installed(h) for h in self.headers()]

    def _installed(self, found: rpmheader.Header) -> InstalledPackage:
        return InstalledPackage(
            manager=self.manager,
            name=found.name,
            version=found.version,
            release=found.release,
            arch=found.arch,
            epoch=found.epoch,
            vendor=found.vendor,
            details={
                "instance": found.instance,
                "nvra": found.nvra,
                "sourcerpm": found.sourcerpm,
                "sigmd5": found.sigmd5,
                "sha1header": found.sha1header,
                "sha256header": found.sha256header,
                "installtime": found.installtime,
            },
        )

    def header_of(self, package: InstalledPackage) -> rpmheader.Header:
        self.headers()
        found = self._by_instance.get(package.details.get("instance", -1))
        if found is None or found.name != package.name:
            matches = [h for h in self.headers() if self._installed(h).label == package.label]
            if not matches:
                raise PackageError(f"{package.label} is not in {self.path}")
            found = matches[0]
        return found

    def files(self, package: InstalledPackage) -> list[PackageFile]:
        return self.header_of(package).files()

    def find(self, name: str, arch: str = "") -> list[InstalledPackage]:
        found = super().find(name, arch)
        native = self.native_arch()
        return sorted(found, key=lambda p: p.arch != native)

    def native_arch(self) -> str:
        """The architecture of rpm itself (never multilib), else of the first package not noarch."""
        headers = self.headers()
        for h in headers:
            if h.name == "rpm":
                return h.arch
        return next((h.arch for h in headers if h.arch and h.arch != "noarch"), "")

    def owners(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for found in self.headers():
            try:
                paths = found.paths()
            except PackageError:
                continue  # as rpm: a package whose file list cannot be built owns nothing
            name = found.name
            for path in paths:
                names = result.setdefault(path, [])
                if name not in names:
                    names.append(name)
        return result

    @property
    def skipped(self) -> list[str]:
        """The records rpm -qa would pass over, each "#<instance>: <why>" (read the database first)."""
        return [f"#{instance}: {why}" for instance, why in self.skipped_records]
