# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A package file opened by what its own bytes say it is, never by its name."""

from __future__ import annotations

import os

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.debfile import (
    AR_MAGIC,
    DebArchive,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError


def open_package(path: str) -> DebArchive:
    """The package file at ``path`` as an archive; PackageError when it is no package."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(len(AR_MAGIC))
    except OSError as exc:
        raise PackageError(f"{path}: {exc.strerror or exc}") from exc
    if magic == AR_MAGIC:
        return DebArchive(path)
    raise PackageError(f"{path} is neither a Debian package nor an rpm package ({os.path.basename(path)})")
