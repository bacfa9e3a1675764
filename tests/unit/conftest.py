"""Unit lane: import this checkout as the collection lifeline.rescue, the way Ansible imports it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.paths import REPO
from support.trees import debian_tree

COLLECTIONS = REPO / ".collections"
_LINK = COLLECTIONS / "ansible_collections" / "lifeline" / "rescue"

if _LINK.resolve() != REPO:
    raise pytest.UsageError(f"{_LINK} must be a link to the checkout {REPO}; it leads to {_LINK.resolve()}")
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


@pytest.fixture(autouse=True)
def _no_warnings_of_earlier_tests() -> None:
    """A module's warnings go to a process-wide store that exit_json empties only when it
    returns them: each test starts with none, so a test sees only its own module's warnings."""
    from ansible.module_utils.common import warnings

    warnings._global_warnings.clear()
    warnings._global_deprecations.clear()


class Overdue(Exception):
    """The code under test ran past its deadline: it hangs on this input."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """``seconds`` of this process's CPU time (a busy machine does not make it expire sooner), and
    ten times as long on the clock for code that waits instead of spinning (a FIFO read)."""

    def expire(signum, frame):
        what = "of CPU time" if signum == signal.SIGPROF else "on the clock"
        raise Overdue(f"still running after {seconds} s {what}: the code under test hangs on this input")

    previous = {sig: signal.signal(sig, expire) for sig in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, max(60.0, 10 * seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@pytest.fixture
def deadline() -> Callable[[float], contextlib.AbstractContextManager[None]]:
    """``with deadline(5): call()`` fails the test instead of hanging it when ``call`` never returns."""
    return _deadline


# The bookworm files the small root is made of; Debian's trees hold them (support/trees.py).
_LIBDIR = "lib/x86_64-linux-gnu"


@pytest.fixture
def small_root(tmp_path) -> Path:
    """A merged-/usr root holding bookworm's /usr/bin/true, sh (dash), its libc and its loader."""
    source = debian_tree("bookworm")
    root = tmp_path / "root"
    for name in (
        "usr/bin/true",
        "usr/bin/dash",
        f"usr/{_LIBDIR}/libc.so.6",
        f"usr/{_LIBDIR}/ld-linux-x86-64.so.2",
    ):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, root / name)
    for link in ("bin", "lib", "sbin"):
        os.symlink(f"usr/{link}", root / link)
    (root / "lib64").mkdir()
    os.symlink(f"/{_LIBDIR}/ld-linux-x86-64.so.2", root / "lib64" / "ld-linux-x86-64.so.2")
    (root / "etc").mkdir()
    (root / "etc" / "ld.so.conf").write_text(f"/{_LIBDIR}\n/usr/{_LIBDIR}\n")
    return root
