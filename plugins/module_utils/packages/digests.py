# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File digests as package databases record them (dpkg: md5; rpm: md5, sha1, sha256, ...)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError

CHUNK = 1 << 20
ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_256", "sha3_512")


def new_digest(algorithm: str = "md5"):  # -> a hashlib object
    """A digest for comparing with a package database's record, not for security: FIPS mode
    refuses a plain md5 unless told so."""
    if algorithm not in ALGORITHMS:
        raise PackageError(f"unknown digest algorithm {algorithm!r}")
    try:
        return hashlib.new(algorithm, usedforsecurity=False)
    except TypeError:  # Python 3.8 knows no usedforsecurity (and has no FIPS switch for it)
        return hashlib.new(algorithm)


def new_md5():  # -> hashlib's md5 object
    return new_digest("md5")


def digest_of(path: str, algorithm: str = "md5") -> str:
    """The digest of the rescuer's regular file ``path``, read in chunks; PackageError if unreadable."""
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        # Look before opening: opening a device node runs its driver's code.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise PackageError(f"{path} is not a regular file")
        fd = os.open(path, flags)
    except OSError as exc:
        raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
    digest = new_digest(algorithm)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PackageError(f"{path} is not a regular file")
        while chunk := os.read(fd, CHUNK):
            digest.update(chunk)
    except OSError as exc:
        raise PackageError(f"{path}: {os.strerror(exc.errno or errno.EIO)}") from exc
    finally:
        os.close(fd)
    return digest.hexdigest()


def md5_of(path: str) -> str:
    return digest_of(path, "md5")
