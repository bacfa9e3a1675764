# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A package file opened by what it is: a .deb or an .rpm, told by its own first bytes, never its name."""

from __future__ import annotations

import errno
import os
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.debfile import (
    AR_MAGIC,
    DebArchive,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm.rpmfile import (
    LEAD_MAGIC,
    RpmArchive,
)


def open_package(path: str) -> DebArchive | RpmArchive:
    """The package file at ``path`` as a DebArchive or an RpmArchive; PackageError when it is neither."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PackageError(f"{path} is neither a Debian package nor an rpm package (not a regular file)")
        start = os.pread(fd, len(AR_MAGIC), 0)
    except OSError as exc:
        raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
    finally:
        os.close(fd)
    if start.startswith(LEAD_MAGIC):
        return RpmArchive(path)
    if start == AR_MAGIC:
        return DebArchive(path)
    raise PackageError(
        f"{path} is neither a Debian package nor an rpm package (its first bytes are {start[:8]!r})"
    )
