# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether a file of a root is still what its package installed, read offline.

For a path inside the root: which package lists it, the digest its manager recorded (dpkg: the
package's info/*.md5sums, or the Conffiles field of its status for a configuration file; rpm: the
header's file digests with their algorithm) and the file's own digest. Only the files asked about
are hashed, each once, so a scan checks the few hundred files that matter rather than the whole
root. dpkg's diversions (another package's or the admin's file at a packaged path) and
configuration files (changed by the admin as intended) are answers of their own, not damage.
"""

from __future__ import annotations

import os
import re
import stat
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.packages import digests
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import debfile
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import (
    Database,
    PackageError,
    PackageFile,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

MATCH = "match"  # the file has the digest its package recorded
MISMATCH = "mismatch"  # it does not: replaced or changed after the package installed it
CONFFILE = "conffile"  # a configuration file the admin changed, as configuration files are
DIVERTED = "diverted"  # dpkg-divert sent the package's file elsewhere: what lies here is not its
NOT_RECORDED = "not recorded"  # owned, but the manager recorded no digest (links, directories, ghosts)
UNOWNED = "unowned"  # no package lists it
MISSING = "missing"  # nothing is there
UNREADABLE = "unreadable"  # there, but it cannot be read (the problem says why)

# Where apt keeps the packages it downloaded: the .deb of an installed version records its modes.
APT_ARCHIVES = "/var/cache/apt/archives"
# Top-level directories a merged-/usr root links into /usr.
_MERGED = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# What a maintainer script changes a file's mode with.
MODE_CHANGERS = ("chmod", "chgrp", "dpkg-statoverride", "setcap")
# A .deb larger than this is not opened to read one file's mode.
MAX_DEB = 512 << 20
# Threads hashing the files asked about ahead (hashlib and read let go of the interpreter lock, so
# they use the other processors while the caller goes on reading).
HASHING_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class Verdict:
    """The integrity of one file: ``path`` as asked, ``listed`` as its package lists it."""

    path: str
    status: str
    packages: tuple[str, ...] = ()
    listed: str = ""
    recorded: str = ""
    algorithm: str = ""
    actual: str = ""
    mode: int = 0  # the mode the database recorded (rpm), 0 when it records none
    diverted_to: str = ""
    diverted_by: str = ""
    problem: str = ""

    @property
    def package(self) -> str:
        return self.packages[0] if self.packages else ""

    def as_dict(self) -> dict:
        return {
            "path": self.path,
            "status": self.status,
            "packages": list(self.packages),
            "listed": self.listed,
            "recorded": self.recorded,
            "algorithm": self.algorithm,
            "actual": self.actual,
            "diverted_to": self.diverted_to,
            "diverted_by": self.diverted_by,
            "problem": self.problem,
        }


class Integrity:
    """The integrity answers for one root and its database (packages.installed.database_of);
    ``owners`` is the database's path -> packages map when the caller already has it."""

    def __init__(self, root: str, database: Database | None, owners: dict[str, list[str]] | None = None):
        self.root = os.path.abspath(root)
        self.database = database
        self._owners = owners
        self._records: dict[str, dict[str, PackageFile]] = {}
        self._digests: dict[tuple[str, str], str] = {}
        self._hashing: dict[tuple[str, str], Future] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._verdicts: dict[str, Verdict] = {}
        self._conffiles: dict[str, tuple[str, str]] | None = None
        self._diversions: dict[str, tuple[str, str]] | None = None
        self._merged: set[str] | None = None

    @property
    def manager(self) -> str:
        return self.database.manager if self.database else ""

    # -- what the database says -----------------------------------------------------------------

    def owners(self) -> dict[str, list[str]]:
        if self._owners is None:
            self._owners = self.database.owners() if self.database else {}
        return self._owners

    def diversions(self) -> dict[str, tuple[str, str]]:
        if self._diversions is None:
            self._diversions = dpkgdb.diversions(self.root) if self.manager == "dpkg" else {}
        return self._diversions

    def _conffile(self, path: str) -> tuple[str, str] | None:
        if self._conffiles is None:
            self._conffiles = dpkgdb.conffiles(self.root) if self.manager == "dpkg" else {}
        return self._conffiles.get(path)

    def aliases(self, path: str) -> list[str]:
        """``path`` and its other spelling on a merged-/usr root (dpkg lists /bin/x for /usr/bin/x)."""
        if self._merged is None:
            self._merged = set()
            for top in _MERGED:
                try:
                    if rootfs.resolve(self.root, f"/{top}").inside == f"/usr/{top}":
                        self._merged.add(top)
                except rootfs.RootError:
                    continue
        parts = path.split("/", 3)
        if len(parts) > 2 and parts[1] in self._merged:
            return [path, "/usr" + path]
        if len(parts) > 3 and parts[1] == "usr" and parts[2] in self._merged:
            return [path, path[4:]]
        return [path]

    def records(self, package: str) -> dict[str, PackageFile]:
        """What ``package`` recorded about each of its paths, read once (md5sums for dpkg)."""
        if package not in self._records:
            found: dict[str, PackageFile] = {}
            if self.database is not None:
                for installed in self.database.find(package):
                    try:
                        for entry in self.database.files(installed):
                            found.setdefault(entry.path, entry)
                    except PackageError:
                        continue
            self._records[package] = found
        return self._records[package]

    def record(self, path: str) -> tuple[str, PackageFile, list[str]] | None:
        """(the path as listed, the record carrying a digest if any package has one, the packages)
        for a path inside the root; None when no package lists it."""
        for candidate in self.aliases(path):
            names = self.owners().get(candidate)
            if not names:
                continue
            chosen = None
            for name in names:
                entry = self.records(name).get(candidate)
                if entry is not None and (chosen is None or (entry.digest and not chosen.digest)):
                    chosen = entry
            conffile = self._conffile(candidate)
            if conffile is not None:
                chosen = PackageFile(candidate, conffile[0], "md5", config=True)
                names = [conffile[1], *[n for n in names if n != conffile[1]]]
            return candidate, chosen or PackageFile(candidate), list(names)
        return None

    # -- the file ---------------------------------------------------------------------------------

    def digest(self, inside: str, algorithm: str) -> str:
        """The digest of the regular file at ``inside`` (a resolved path), computed once."""
        key = (inside, algorithm)
        if key not in self._digests:
            pending = self._hashing.pop(key, None)
            if pending is not None and not pending.cancel():
                self._digests[key] = pending.result()  # its PackageError is raised here, as below
            else:
                self._digests[key] = digests.digest_of(rootfs.join(self.root, inside), algorithm)
        return self._digests[key]

    def hash_soon(self, paths: list[str]) -> None:
        """Start hashing, on other threads, the packaged regular files among ``paths`` (inside the
        root) whose package recorded a digest: ``verdict`` later finds the work done."""
        for path in paths:
            try:
                where = rootfs.resolve(self.root, path)
            except rootfs.RootError:
                continue
            found = None if where.escaped else self.record(where.inside)
            if found is None or not found[1].digest or found[1].ghost:
                continue
            key = (where.inside, found[1].algorithm)
            if key in self._digests or key in self._hashing:
                continue
            if self._pool is None:
                self._pool = ThreadPoolExecutor(HASHING_THREADS, thread_name_prefix="lifeline-hash")
            self._hashing[key] = self._pool.submit(digests.digest_of, rootfs.join(self.root, key[0]), key[1])

    def close(self) -> None:
        """Drop the hashing not yet started and wait for the rest (a scan ends with its threads)."""
        for pending in self._hashing.values():
            pending.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def verdict(self, path: str) -> Verdict:
        """The integrity of the file ``path`` leads to inside the root (answered once a path)."""
        if path not in self._verdicts:
            self._verdicts[path] = self._verdict(path)
        return self._verdicts[path]

    def _verdict(self, path: str) -> Verdict:
        try:
            where = rootfs.resolve(self.root, path)
        except rootfs.RootError as exc:
            return Verdict(path, UNREADABLE, problem=str(exc))
        if where.escaped:
            return Verdict(
                path, UNREADABLE, problem=f"a link leads out of the root ({'; '.join(where.links)})"
            )
        inside = where.inside
        found = self.record(inside)
        if found is None and inside != path:
            # The path a package shipped as a file may now be a link to something else.
            listed = self.record(path)
            if listed is not None and listed[1].digest:
                return Verdict(
                    path,
                    MISMATCH,
                    tuple(listed[2]),
                    listed[0],
                    listed[1].digest,
                    listed[1].algorithm,
                    problem=f"{listed[0]} was a regular file of its package; it is now a link to {inside}",
                )
        if found is None:
            return self._unlisted(path, inside)
        listed, entry, names = found
        diverted = self.diversions().get(listed)
        if diverted is not None and diverted[1] not in names:
            return Verdict(
                path, DIVERTED, tuple(names), listed, diverted_to=diverted[0], diverted_by=diverted[1]
            )
        verdict = Verdict(
            path, NOT_RECORDED, tuple(names), listed, entry.digest, entry.algorithm, mode=entry.mode
        )
        try:
            st = os.lstat(where.host)
        except OSError as exc:
            verdict.status = MISSING if isinstance(exc, FileNotFoundError) else UNREADABLE
            verdict.problem = "" if verdict.status == MISSING else (exc.strerror or str(exc))
            return verdict
        if not entry.digest or entry.ghost:
            return verdict
        if not stat.S_ISREG(st.st_mode):
            verdict.status = MISMATCH
            verdict.problem = f"its package shipped a regular file; this is not one (mode {st.st_mode:o})"
            return verdict
        try:
            verdict.actual = self.digest(inside, entry.algorithm)
        except PackageError as exc:
            verdict.status, verdict.problem = UNREADABLE, str(exc)
            return verdict
        if verdict.actual == entry.digest:
            verdict.status = MATCH
        else:
            verdict.status = CONFFILE if entry.config else MISMATCH
        return verdict

    def _unlisted(self, path: str, inside: str) -> Verdict:
        """A path no package lists: missing, unowned, or where a diversion put a package's file."""
        if not rootfs.lexists(self.root, inside):
            return Verdict(path, MISSING)
        for candidate in self.aliases(inside):
            for source, (target, by) in self.diversions().items():
                if target != candidate:
                    continue
                # dpkg-divert --rename moved the package's file here: it must still be that file.
                moved = self.record(source)
                if moved is None or not moved[1].digest:
                    return Verdict(path, DIVERTED, listed=source, diverted_to=target, diverted_by=by)
                try:
                    actual = self.digest(inside, moved[1].algorithm)
                except PackageError as exc:
                    return Verdict(path, UNREADABLE, tuple(moved[2]), source, problem=str(exc))
                status = MATCH if actual == moved[1].digest else MISMATCH
                return Verdict(
                    path,
                    status,
                    tuple(moved[2]),
                    source,
                    moved[1].digest,
                    moved[1].algorithm,
                    actual,
                    diverted_to=target,
                    diverted_by=by,
                )
        return Verdict(path, UNOWNED)

    def same_as_recorded(self, path: str, verdict: Verdict) -> bool:
        """Whether the regular file ``path`` (inside the root, not followed) has the digest
        ``verdict`` recorded: a copy of the package's original."""
        if not verdict.recorded:
            return False
        try:
            where = rootfs.resolve(self.root, path, follow_last=False)
            if where.escaped or not stat.S_ISREG(os.lstat(where.host).st_mode):
                return False
            return self.digest(where.inside, verdict.algorithm) == verdict.recorded
        except (OSError, rootfs.RootError, PackageError):
            return False

    # -- modes ------------------------------------------------------------------------------------

    def shipped_mode(self, path: str) -> int | None:
        """The permission bits (setuid, setgid and sticky included) the package shipped ``path``
        with: rpm's recorded mode, or on dpkg the mode in the package's .deb when apt kept it in
        /var/cache/apt/archives; None when neither says."""
        found = self.record(path)
        if found is None:
            return None
        listed, entry, names = found
        if entry.mode:
            return stat.S_IMODE(entry.mode)
        if self.manager != "dpkg" or self.database is None:
            return None
        if any(self._maintainer_script_sets_mode(name, listed) for name in names):
            return None  # its package changes the mode itself, after unpacking
        for name in names:
            for installed in self.database.find(name):
                deb = self._archived_deb(installed.name, installed.version, installed.arch)
                if deb is None:
                    continue
                try:
                    with debfile.DebArchive(deb) as archive:
                        member = archive.members().get(listed) or archive.members().get(
                            self.aliases(listed)[-1]
                        )
                except PackageError:
                    continue
                if member is not None and member.kind == "file":
                    return member.mode
        return None

    def _maintainer_script_sets_mode(self, package: str, path: str) -> bool:
        """Whether a line of ``package``'s postinst names the file (its whole path) and changes a
        mode (chmod, chgrp, dpkg-statoverride, setcap): a mode its .deb lacks is the package's own."""
        for name in (package, *(f"{p.name}:{p.arch}" for p in self.database.find(package) if p.arch)):
            try:
                data = rootfs.read_bytes(
                    self.root, f"{dpkgdb.INFO}/{name}.postinst", dpkgdb.MAX_INFO_FILE, missing_ok=True
                )
            except rootfs.RootError:
                continue
            names = re.compile("|".join(re.escape(a) + r"(?![\w./+-])" for a in self.aliases(path)))
            for line in (data or b"").decode("utf-8", "replace").splitlines():
                if names.search(line) and any(word in line for word in MODE_CHANGERS):
                    return True
        return False

    def _archived_deb(self, name: str, version: str, arch: str) -> str | None:
        """The rescuer's path of ``name``'s .deb of exactly this version in apt's cache, if kept."""
        quoted = version.replace(":", "%3a")
        for candidate in (f"{name}_{quoted}_{arch}.deb", f"{name}_{quoted}_all.deb"):
            try:
                where = rootfs.resolve(self.root, f"{APT_ARCHIVES}/{candidate}")
                st = os.lstat(where.host)
            except (OSError, rootfs.RootError):
                continue
            if not where.escaped and stat.S_ISREG(st.st_mode) and st.st_size <= MAX_DEB:
                return where.host
        return None
