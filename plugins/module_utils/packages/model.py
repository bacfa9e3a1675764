# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every package manager's database says, in one shape: packages, their files, who owns a path.

A root holds one package database (dpkg's, or rpm's in one of its three backends); packages/installed.py
finds which and opens it as a ``Database``. The readers under dpkg/ and rpm/ fill these records; the
concerns above (glibc, cron, persistence) and the package_info module read only these.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError


class PackageError(LifelineError):
    """A package database or package file cannot be used; the message says where and why."""


@dataclass
class PackageFile:
    """One path a package lists, with what its database recorded about it (dpkg records less)."""

    path: str  # absolute, as installed: "/usr/lib64/libc.so.6"
    digest: str = ""  # lower-case hex of a regular file's content; "" when none is recorded
    algorithm: str = ""  # hashlib's name of the digest: "md5", "sha256", ...
    mode: int = 0  # st_mode with the file type; 0 when the database records none (dpkg)
    size: int = 0
    link: str = ""  # a symbolic link's target, as written
    user: str = ""
    group: str = ""
    config: bool = False  # a configuration file the admin may change
    ghost: bool = False  # listed but never shipped (rpm's %ghost): its absence is no damage

    @property
    def kind(self) -> str:
        """file, link, dir, other, or "" when the database records no mode."""
        if not self.mode:
            return ""
        if stat.S_ISREG(self.mode):
            return "file"
        if stat.S_ISLNK(self.mode):
            return "link"
        if stat.S_ISDIR(self.mode):
            return "dir"
        return "other"


@dataclass
class InstalledPackage:
    """One installed package, as its manager names it."""

    manager: str  # "dpkg" or "rpm"
    name: str
    version: str  # dpkg: the whole version ("1:2.36-9+deb12u4"); rpm: VERSION ("2.28")
    arch: str
    release: str = ""  # rpm: RELEASE ("42.el8_0.1"); dpkg: ""
    epoch: str = ""  # rpm: EPOCH when set; dpkg: inside version
    vendor: str = ""
    details: dict = field(default_factory=dict)  # manager-specific extras (dpkg status, rpm header digests)

    @property
    def upstream(self) -> str:
        """The upstream version: dpkg "1:2.36-9+deb12u4" -> "2.36"; rpm "2.28" -> "2.28"."""
        if self.manager != "dpkg":
            return self.version
        version = self.version.split(":", 1)[1] if ":" in self.version else self.version
        return version.rsplit("-", 1)[0] if "-" in version else version

    @property
    def label(self) -> str:
        """How the manager's own tools print it: "glibc-2.28-42.el8_0.1.x86_64", "libc6 2.36-9 amd64"."""
        if self.manager == "rpm":
            # rpm -qa's NVRA: the epoch is not printed (as_dict has it); gpg-pubkey entries have no arch.
            arch = f".{self.arch}" if self.arch else ""
            return f"{self.name}-{self.version}-{self.release}{arch}"
        return f"{self.name} {self.version} {self.arch}".strip()

    def as_dict(self) -> dict:
        found = {"name": self.name, "version": self.version, "arch": self.arch, "manager": self.manager}
        if self.manager == "rpm":
            found.update(release=self.release, epoch=self.epoch, vendor=self.vendor)
        return found


class Database:
    """A root's package database, read offline and never written. Subclasses fill it in."""

    manager = ""  # "dpkg" or "rpm"
    backend = ""  # "dpkg status", "sqlite", "bdb", "ndb"
    path = ""  # inside the root: "/var/lib/dpkg/status", "/var/lib/rpm/rpmdb.sqlite"
    _named: dict[str, list[InstalledPackage]] | None = None  # find()'s index, built once

    def packages(self) -> list[InstalledPackage]:
        raise NotImplementedError

    def files(self, package: InstalledPackage) -> list[PackageFile]:
        """Every path ``package`` lists; PackageError when its record cannot be read."""
        raise NotImplementedError

    def find(self, name: str, arch: str = "") -> list[InstalledPackage]:
        """The installed packages called ``name`` (of ``arch`` when given), native architecture first."""
        # Indexed once: a scan asks for hundreds of packages, and packages() reads them all.
        if self._named is None:
            self._named = {}
            for package in self.packages():
                self._named.setdefault(package.name, []).append(package)
        return [p for p in self._named.get(name, []) if not arch or p.arch == arch]

    def owners(self) -> dict[str, list[str]]:
        """Every path any package lists -> the names of the packages listing it."""
        result: dict[str, list[str]] = {}
        for package in self.packages():
            try:
                listed = self.files(package)
            except PackageError:
                continue  # a package whose file list cannot be read owns nothing here
            for entry in listed:
                names = result.setdefault(entry.path, [])
                if package.name not in names:
                    names.append(package.name)
        return result

    def describe(self) -> dict:
        return {"manager": self.manager, "backend": self.backend, "path": self.path}
