# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming decompression of package payloads: .deb members and .rpm payloads.

gzip, bzip2, xz and lzma come from the standard library; zstd (Ubuntu's .deb members, Fedora's and
RHEL 9's rpm payloads) from the rescuer's ``zstd`` tool, which runs under a time limit and is ended
as soon as the reader stops. Every stream is capped, so a decompression bomb ends with a
PackageError instead of filling memory or running for minutes.
"""

from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import io
import lzma
import os
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterator

from ansible_collections.lifeline.rescue.plugins.module_utils.packages.digests import CHUNK
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError

# A reader at the end of a stream asks once or twice more; a loop skipping a lying size asks forever.
MAX_READS_AT_END = 64
# zstd unpacks a few hundred MB a second; a run past this is stuck (or fed a bomb the cap missed).
ZSTD_TIME_LIMIT = 600.0

# The compressions, by the names rpm's PAYLOADCOMPRESSOR uses ("" is none).
_OPENERS = {
    "": lambda raw: raw,
    "gzip": lambda raw: gzip.GzipFile(fileobj=raw),
    "bzip2": bz2.BZ2File,
    "xz": lzma.LZMAFile,  # also reads the old .lzma format
    "lzma": lzma.LZMAFile,
}
COMPRESSIONS = (*_OPENERS, "zstd")

# What the decompressors raise on damaged input.
DAMAGED = (EOFError, OSError, lzma.LZMAError, zlib.error, ValueError)


class Capped(io.RawIOBase):
    """A decompressed stream that ends a decompression bomb at ``cap`` bytes, and a reader stuck at its end.

    A consumer skipping an entry's data reads it chunk by chunk and goes on asking at the end of the
    stream: a hostile size field would keep it asking for hours.
    """

    def __init__(self, stream, cap: int, what: str) -> None:
        super().__init__()
        self._stream, self._left, self._cap, self._what = stream, cap, cap, what
        self._reads_at_end = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        if len(data) > self._left:
            raise PackageError(f"{self._what} unpacks to more than {self._cap} bytes; not read further")
        if not data:
            self._reads_at_end += 1
            if self._reads_at_end > MAX_READS_AT_END:
                raise PackageError(
                    f"{self._what} ends inside an entry (cut short, or a size field that lies)"
                )
        self._left -= len(data)
        buffer[: len(data)] = data
        return len(data)


class Zstd:
    """``zstd -dc`` over a raw stream: a thread feeds it while the reader drains its output.

    A timer ends zstd after ``time_limit`` seconds; ``stop()`` ends it when the reader is done early.
    """

    def __init__(self, raw, what: str, time_limit: float = ZSTD_TIME_LIMIT) -> None:
        tool = shutil.which("zstd")
        if tool is None:
            raise PackageError(
                f"{what} is compressed with zstd: the zstd tool is needed on the rescuer to read it"
            )
        try:
            # stderr is read only once zstd has ended; -q keeps it to one line, far below a pipe's buffer.
            self._process = subprocess.Popen(
                [tool, "-dcq"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise PackageError(f"{what}: cannot run {tool}: {os.strerror(exc.errno or errno.EIO)}") from exc
        self.stdout = self._process.stdout
        self._time_limit = time_limit
        self._expired = False
        self._complaint: str | None = None
        self._timer = threading.Timer(time_limit, self._expire)
        self._timer.daemon = True
        self._timer.start()
        self._feeder = threading.Thread(target=self._feed, args=(raw,), daemon=True)
        self._feeder.start()

    def _expire(self) -> None:
        self._expired = True
        with contextlib.suppress(OSError):
            self._process.kill()

    def _feed(self, raw) -> None:
        stdin = self._process.stdin
        try:
            while chunk := raw.read(CHUNK):
                stdin.write(chunk)
        except (OSError, ValueError):
            pass  # zstd went away (it failed, or the reader stopped early and ended it)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def stop(self) -> str:
        """End zstd (a reader that stopped early leaves it blocked on a full pipe); its complaint, if any."""
        if self._complaint is None:
            self._timer.cancel()
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()
            self._feeder.join(5)
            self.stdout.close()
            self._complaint = self._process.stderr.read(4096).decode("utf-8", "replace").strip()
            self._process.stderr.close()
            if self._expired:
                self._complaint = f"it ran longer than {self._time_limit:g} seconds and was stopped"
        return f"; zstd says: {self._complaint}" if self._complaint else ""


@contextlib.contextmanager
def decompressed(
    raw,
    compression: str,
    what: str,
    cap: int,
    damaged: tuple[type[BaseException], ...] = (),
    time_limit: float = ZSTD_TIME_LIMIT,
) -> Iterator[io.BufferedReader]:
    """``raw`` (a binary stream) decompressed with ``compression`` (one of COMPRESSIONS), capped at ``cap``.

    What the decompressor raises on damaged input, and the consumer's own ``damaged`` errors raised
    inside the block, become one PackageError naming ``what`` (with zstd's own words when it ran).
    """
    if compression not in COMPRESSIONS:
        raise PackageError(f"{what} is compressed with {compression!r}, which is not known")
    zstd: Zstd | None = None
    try:
        if compression == "zstd":
            zstd = Zstd(raw, what, time_limit)
            stream = zstd.stdout
        else:
            stream = _OPENERS[compression](raw)
        try:
            yield io.BufferedReader(Capped(stream, cap, what), CHUNK)
        except PackageError as exc:
            detail = zstd.stop() if zstd is not None else ""
            if detail:
                raise PackageError(f"{exc}{detail}") from exc
            raise
        except (*DAMAGED, *damaged) as exc:
            detail = zstd.stop() if zstd is not None else ""
            raise PackageError(f"{what}: damaged ({exc or type(exc).__name__}){detail}") from exc
    finally:
        if zstd is not None:
            zstd.stop()
