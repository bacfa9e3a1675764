# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which package database a root holds, opened as a packages.model.Database.

The root is looked at, never the rescuer: a root with dpkg's status file is read by dpkg/, one with
an rpm database (/usr/lib/sysimage/rpm or /var/lib/rpm) by rpm/. Nothing here runs the rescuer's
dpkg or rpm against the target.

A root holding both (Debian with the rpm package installed and a few packages installed through it,
or an RPM distribution with a stray dpkg) is described by the database that lists the root's own
shell or dynamic loader: that manager installed the system. When both or neither list them, the
database with more packages is taken.
"""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import Database, PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm import database as rpmdb
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

# Where package databases live, for a message about a root that has none.
WHERE = "/var/lib/dpkg/status, /var/lib/rpm, /usr/lib/sysimage/rpm"

# What the system's own package manager installed: the shell and the loaders of common architectures.
SYSTEM_FILES = (
    "/bin/sh",
    "/lib64/ld-linux-x86-64.so.2",
    "/lib/ld-linux-aarch64.so.1",
    "/lib/ld-linux-armhf.so.3",
    "/lib64/ld64.so.2",
    "/lib64/ld64.so.1",
    "/lib/ld-linux.so.2",
)


UNREADABLE = "the package database cannot be read: "


def database_of(root: str) -> Database | None:
    """The root's package database; None when it holds none; PackageError ("the package database
    cannot be read: ...") when the one it holds cannot be (never taken for "nothing installed")."""
    try:
        return _open(root)
    except PackageError as exc:
        if str(exc).startswith(UNREADABLE):
            raise
        raise PackageError(UNREADABLE + str(exc)) from exc


def _open(root: str) -> Database | None:
    has_dpkg = rootfs.lexists(root, dpkgdb.STATUS)
    rpm_location = rpmdb.locate(root)
    if not rpm_location:
        return dpkgdb.DpkgDatabase(root) if has_dpkg else None
    rpm = rpmdb.RpmDatabase(root, rpm_location)
    if not has_dpkg:
        rpm.headers()  # read now: a damaged database raises here, not later as "nothing installed"
        return rpm
    return _system_database(root, [dpkgdb.DpkgDatabase, lambda r: rpm])


def _system_database(root: str, openers: list) -> Database:
    """Of several databases, the one listing the root's shell or loader, else the largest (the
    first readable one when the others fail; the first failure when all fail)."""
    opened, failures = [], []
    for opener in openers:
        try:
            database = opener(root)
            opened.append((database, database.packages()))
        except PackageError as exc:
            failures.append(exc)
    if not opened:
        raise failures[0]
    system_paths = _system_paths(root)
    scored = []
    for database, packages in opened:
        try:
            owned = sum(1 for path in database.owners() if path in system_paths)
        except PackageError:
            owned = 0
        scored.append((owned > 0, len(packages), database))
    return max(scored, key=lambda item: item[:2])[2]


def _system_paths(root: str) -> set[str]:
    """The system files as a package may list them: as named, with /usr in front (merged /usr), and
    where their links lead inside the root (/bin/sh -> /usr/bin/bash)."""
    paths = set()
    for path in SYSTEM_FILES:
        paths.update((path, "/usr" + path))
        try:
            paths.add(rootfs.resolve(root, path).inside)
        except rootfs.RootError:
            continue
    return paths
