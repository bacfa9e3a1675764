# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A package file opened by what it is: a .deb or an .rpm, told by its own first bytes, never its name."""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg.debfile import (
    AR_MAGIC,
    DebArchive,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.package_archive import PackageArchive
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.rpm.rpmfile import (
    LEAD_MAGIC,
    RpmArchive,
)


def open_package(path: str) -> DebArchive | RpmArchive:
    """The package file at ``path`` as a DebArchive or an RpmArchive; PackageError when it is neither."""
    with NeitherKind(path) as opened:
        start = opened.read_start(len(AR_MAGIC))
    if start.startswith(LEAD_MAGIC):
        return RpmArchive(path)
    if start == AR_MAGIC:
        return DebArchive(path)
    raise NeitherKind.refusal(path, f"its first bytes are {start[:8]!r}")


class NeitherKind(PackageArchive):
    """A package file not yet known to be a .deb or an .rpm: only its first bytes are read."""

    def read_start(self, size: int) -> bytes:
        return self._pread(size, 0)

    def not_this_kind(self, why: str) -> PackageError:
        return self.refusal(self.path, why)

    @staticmethod
    def refusal(path: str, why: str) -> PackageError:
        return PackageError(f"{path} is neither a Debian package nor an rpm package ({why})")
