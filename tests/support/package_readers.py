"""What the tests of both package readers (.deb and .rpm files) check alike."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.model import PackageError


def read_refusals(*, directory: str, link: str, regular: str, size: int) -> list[tuple[str, int, str]]:
    """(path, limit, problem) cases read() refuses in any package: a missing path, the package's
    ``directory`` and ``link``, and its ``regular`` file of ``size`` bytes read with too small a limit."""
    return [
        ("/usr/bin/missing", 1 << 20, "has no /usr/bin/missing"),
        (directory, 1 << 20, "is a dir, not a regular file"),
        (link, 1 << 20, "is a link, not a regular file"),
        (regular, 100, f"is {size} bytes, more than the 100 allowed"),
    ]


def assert_only_regular_files_open(
    open_package: Callable[[str], object], tmp_path: Path, suffix: str, refusal: str
) -> Path:
    """A FIFO (demo``suffix``), a directory and a missing file are each refused with a PackageError
    (``refusal`` for the first two), not read from; returns the FIFO. Call it under a deadline: a reader
    that opens the FIFO blocks."""
    fifo = tmp_path / f"demo{suffix}"
    os.mkfifo(fifo)
    for path in (fifo, tmp_path):
        with pytest.raises(PackageError, match=refusal):
            open_package(str(path))
    with pytest.raises(PackageError, match=r"No such file"):
        open_package(str(tmp_path / f"missing{suffix}"))
    return fifo
