# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which package database a root holds, opened as a packages.model.Database.

The root is looked at, never the rescuer: a root with dpkg's status file is read by dpkg/, one with
an rpm database by rpm/. Nothing here runs the rescuer's dpkg or rpm against the target.
"""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import Database
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

# Where package databases live, for a message about a root that has none.
WHERE = "/var/lib/dpkg/status, /var/lib/rpm, /usr/lib/sysimage/rpm"


def database_of(root: str) -> Database | None:
    """The root's package database; None when it holds none; PackageError when the one it holds
    cannot be read (a damaged database is never taken for "nothing installed")."""
    if rootfs.lexists(root, dpkgdb.STATUS):
        return dpkgdb.DpkgDatabase(root)
    return None
