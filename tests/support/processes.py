"""Processes a test starts on the real kernel, as a fixture (a test module loads it with
``pytest_plugins = ("support.processes",)``)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest


@pytest.fixture
def spawn():
    """``spawn(argv, program="/usr/bin/sleep", **popen)`` starts a process (in / unless ``cwd`` is given)
    and waits until it runs ``program``, so an ``sh -c 'exec 3<...; exec sleep'`` has its descriptors in
    place; every one started is killed at the end."""
    started: list[subprocess.Popen] = []

    def start(argv: list[str], program: str = "/usr/bin/sleep", **popen) -> subprocess.Popen:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **{"cwd": "/", **popen},
        )
        started.append(child)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{child.pid}/exe") == program:
                    return child
            except OSError:
                pass
            time.sleep(0.01)
        raise AssertionError(f"{argv} did not start running {program}")

    try:
        yield start
    finally:
        for child in started:
            child.kill()
            child.wait()


def children() -> list[str]:
    """The commands of this process's children still alive (or zombies nobody waited for)."""
    names = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
    return names
