# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every package file reader does alike: open the file safely, read it by offset, close it."""

from __future__ import annotations

import errno
import io
import os
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.digests import CHUNK
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError


class PackageArchive:
    """An open package file; DebArchive and RpmArchive read their formats on top of it.

    The file is opened without following it anywhere a FIFO could block, and refused unless it is a
    regular file; a subclass's reading that fails closes it again.
    """

    KIND = "a package"  # in "X is not <KIND> (why)"

    def __init__(self, path: str) -> None:
        self.path = path
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
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise self.not_this_kind("not a regular file")
        self._handle = os.fdopen(fd, "rb", buffering=0)
        self.size = st.st_size

    def not_this_kind(self, why: str) -> PackageError:
        return PackageError(f"{self.path} is not {self.KIND} ({why})")

    def _pread(self, size: int, offset: int) -> bytes:
        try:
            return os.pread(self._handle.fileno(), size, offset)
        except OSError as exc:
            raise PackageError(f"{self.path}: {os.strerror(exc.errno or errno.EIO)}") from exc

    # -- lifetime

    def close(self) -> None:
        self._handle.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None:
            handle.close()


class Window(io.RawIOBase):
    """A read-only view of ``size`` bytes at ``offset`` of an open file (an ar member, an rpm
    payload), fed to ``digest`` as it is read when one is given."""

    def __init__(self, handle, offset: int, size: int, digest=None) -> None:
        super().__init__()
        self._handle, self._offset, self._left, self.digest = handle, offset, size, digest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self._left)
        if want <= 0:
            return 0
        data = os.pread(self._handle.fileno(), want, self._offset)
        buffer[: len(data)] = data
        if self.digest is not None:
            self.digest.update(data)
        self._offset += len(data)
        self._left -= len(data)
        return len(data)

    def drain(self) -> None:
        """Read what is left, so that the digest covers the whole view."""
        while self.read(CHUNK):
            pass
