"""Unit lane: import this checkout as the collection lifeline.rescue, the way Ansible imports it."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS = REPO / ".collections"
_LINK = COLLECTIONS / "ansible_collections" / "lifeline" / "rescue"

if _LINK.resolve() != REPO:
    raise pytest.UsageError(f"{_LINK} must be a link to the checkout {REPO}; it leads to {_LINK.resolve()}")
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


class Overdue(Exception):
    """The code under test ran past its deadline: it hangs on this input."""


@contextlib.contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    def expire(signum, frame):
        raise Overdue(f"still running after {seconds} s: the code under test hangs on this input")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def deadline() -> Callable[[float], contextlib.AbstractContextManager[None]]:
    """``with deadline(5): call()`` fails the test instead of hanging it when ``call`` never returns."""
    return _deadline
