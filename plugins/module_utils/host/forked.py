# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Work done by a forked copy of this process, on another processor, its result read back.

For work that needs only what the process already holds (a walk of a tree while the caller reads
other files): the child computes, pickles its result into a pipe and leaves without running any of
the parent's exit handlers or flushing its output. Fork before starting threads: a thread's locks
are copied held.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Callable

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError

READ_CHUNK = 1 << 20


class ForkError(LifelineError):
    """The child did not bring a result back: it failed, died or ran out of time."""


class ForkTimeout(ForkError):
    """The child was still working when the time was up (it is stopped)."""


class ForkedWork:
    """``function()`` run in a child process started now; ``result()`` waits for it, at most
    ``timeout`` seconds from the start."""

    def __init__(self, function: Callable[[], object], timeout: float) -> None:
        self._deadline = time.monotonic() + timeout
        self._timeout = timeout
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(function, write)
        os.close(write)
        self._pid, self._pipe = pid, read

    def result(self) -> object:
        """What the function returned; ForkError when it raised, died or took too long."""
        chunks = []
        try:
            while True:
                left = self._deadline - time.monotonic()
                if left <= 0 or not select.select([self._pipe], [], [], left)[0]:
                    raise ForkTimeout(f"took more than {self._timeout:g} s")
                chunk = os.read(self._pipe, READ_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            self.close()
        if not chunks:
            raise ForkError("the child process ended without a result")
        done, value = pickle.loads(b"".join(chunks))
        if not done:
            raise ForkError(value)
        return value

    def close(self) -> None:
        """Stop the child if it still runs, and reap it (safe to call twice)."""
        if self._pid is None:
            return
        os.close(self._pipe)
        try:
            if os.waitpid(self._pid, os.WNOHANG) == (0, 0):
                os.kill(self._pid, signal.SIGKILL)
                os.waitpid(self._pid, 0)
        except ChildProcessError:
            pass
        self._pid = None


def _child(function: Callable[[], object], pipe: int) -> None:
    status = 0
    try:
        try:
            payload = pickle.dumps((True, function()))
        except Exception as exc:  # the parent raises it as a ForkError
            payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
        view = memoryview(payload)
        while view:
            view = view[os.write(pipe, view) :]
    except BaseException:  # a broken pipe or an interrupt: the parent sees no result
        status = 1
    finally:
        os._exit(status)
