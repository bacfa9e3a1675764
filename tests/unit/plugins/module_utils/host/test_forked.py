"""forked: a result brought back from a child process, and every way a child can fail to bring one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import forked


def test_the_result_comes_back_whole():
    big = [(f"/usr/bin/x{n}", os.stat("/"), b"\x01" * 20) for n in range(20000)]  # past a pipe's buffer

    assert forked.ForkedWork(lambda: big, timeout=60).result() == big


def test_the_child_works_on_its_own_copy():
    seen = []
    work = forked.ForkedWork(lambda: seen.append("child") or len(seen), timeout=60)

    assert work.result() == 1
    assert seen == []


def test_an_exception_in_the_child_is_a_fork_error_with_its_words():
    def fails():
        raise ValueError("no such tree")

    with pytest.raises(forked.ForkError, match="ValueError: no such tree"):
        forked.ForkedWork(fails, timeout=60).result()


def test_a_child_that_dies_gives_a_fork_error():
    with pytest.raises(forked.ForkError, match="ended without a result"):
        forked.ForkedWork(lambda: os._exit(3), timeout=60).result()


def test_a_child_past_its_time_is_stopped_and_reaped():
    work = forked.ForkedWork(lambda: time.sleep(60), timeout=0.5)
    pid = work._pid
    started = time.monotonic()

    with pytest.raises(forked.ForkTimeout, match=r"took more than 0\.5 s"):
        work.result()

    assert time.monotonic() - started < 30
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reaped: no zombie left
    work.close()  # twice is harmless


def test_closing_unread_work_stops_the_child():
    work = forked.ForkedWork(lambda: time.sleep(60), timeout=60)
    pid = work._pid

    work.close()

    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def test_the_child_flushes_nothing_of_the_parent_and_runs_no_exit_handler():
    program = (
        "import atexit, sys\n"
        "from ansible_collections.lifeline.rescue.plugins.module_utils.host import forked\n"
        "atexit.register(lambda: print('exit handler'))\n"
        "sys.stdout.write('buffered once ')\n"
        "print(forked.ForkedWork(lambda: 42, timeout=60).result())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "buffered once 42\nexit handler\n"
