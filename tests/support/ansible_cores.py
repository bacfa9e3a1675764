"""Which ansible-core the playbook lane runs: .venv's (the pinned release, the range's newest end), or
with ``LIFELINE_ANSIBLE_CORE=X.Y`` the older release tools/setup/ansible-cores.sh built from
requirements/ansible-core-X.Y.lock (``make cores`` runs the smoke set that way)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from support.paths import REPO
from support.trees import CACHE

SELECTED = os.environ.get("LIFELINE_ANSIBLE_CORE", "")
ENVIRONMENTS = CACHE / "ansible-core"
REQUIREMENTS = REPO / "requirements"
# What ansible prints when something it runs is not meant for it: a collection whose requires_ansible
# excludes this release, a deprecated keyword, an option it ignores.
WARNING_SIGNS = re.compile(r"\[WARNING\]|\[DEPRECATION WARNING\]|does not support", re.IGNORECASE)


def locked_version(lock: Path) -> str:
    """The ansible-core release a lock pins."""
    found = re.search(r"^ansible-core==(\S+)", lock.read_text(), re.MULTILINE)
    if not found:
        raise AssertionError(f"{lock} pins no ansible-core")
    return found.group(1)


def older_releases() -> dict[str, str]:
    """Each older minor release of the range (X.Y) and the exact version its lock pins."""
    return {
        lock.name.removeprefix("ansible-core-").removesuffix(".lock"): locked_version(lock)
        for lock in sorted(REQUIREMENTS.glob("ansible-core-*.lock"))
    }


def expected_version() -> str:
    """The exact ansible-core the lane must be running: the selected older release's, else dev.lock's."""
    if not SELECTED:
        return locked_version(REQUIREMENTS / "dev.lock")
    releases = older_releases()
    if SELECTED not in releases:
        pytest.fail(
            f"LIFELINE_ANSIBLE_CORE={SELECTED} is not a release of the range: "
            f"requirements/ansible-core-X.Y.lock exist for {sorted(releases)}"
        )
    return releases[SELECTED]


def bin_dir() -> Path:
    """The directory of the ansible-playbook the lane runs; a missing environment fails the test."""
    if not SELECTED:
        return Path(sys.executable).parent
    expected_version()
    environment = ENVIRONMENTS / SELECTED
    if (
        not (environment / "bin" / "ansible-playbook").is_file()
        or not (environment / ".lifeline-core.stamp").is_file()
    ):
        pytest.fail(
            f"{environment} is missing: run `make ansible-cores` (it builds the environment of "
            f"ansible-core {SELECTED} from requirements/ansible-core-{SELECTED}.lock)"
        )
    return environment / "bin"


def warnings_in(output: str) -> list[str]:
    """The lines of a run's output that say ansible warned about something."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", output)
    return [line.strip() for line in plain.splitlines() if WARNING_SIGNS.search(line)]
