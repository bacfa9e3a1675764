"""meta/runtime.yml claims exactly the range the lanes prove: its lower bound is the oldest
ansible-core the smoke set runs on (requirements/ansible-core-X.Y.lock, `make cores`), it has no upper
bound, and each older release's lock is current and pins every package by its digests."""

from __future__ import annotations

import hashlib
import re

import yaml

from support import ansible_cores
from support.paths import REPO


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def test_requires_ansible_is_the_oldest_proven_release_and_no_upper_bound():
    runtime = yaml.safe_load((REPO / "meta" / "runtime.yml").read_text())
    pinned = ansible_cores.locked_version(ansible_cores.REQUIREMENTS / "dev.lock")
    proven = [*ansible_cores.older_releases().values(), pinned]
    assert ansible_cores.older_releases(), "no requirements/ansible-core-X.Y.lock: the range has one release"

    assert runtime["requires_ansible"] == ">=" + min(proven, key=version_key)


def test_the_older_releases_are_older_than_the_pinned_one():
    pinned = version_key(ansible_cores.locked_version(ansible_cores.REQUIREMENTS / "dev.lock"))
    for minor, version in ansible_cores.older_releases().items():
        assert version.startswith(minor + "."), (minor, version)
        assert version_key(version) < pinned, version


def test_each_lock_is_current_and_every_package_is_pinned_with_its_digests():
    for lock in sorted(ansible_cores.REQUIREMENTS.glob("ansible-core-*.lock")):
        source = lock.with_suffix(".txt")
        header = lock.read_text().splitlines()[0]
        assert (
            header
            == f"# sha256 of requirements/{source.name}: " + hashlib.sha256(source.read_bytes()).hexdigest()
        ), f"{lock.name} is older than {source.name}: run `make lock`"
        # One requirement per logical line (backslash continuations joined).
        requirements = [r for r in re.sub(r"\\\n", " ", lock.read_text()).splitlines() if r and r[0] != "#"]
        assert requirements, lock
        for requirement in requirements:
            assert re.fullmatch(r"\S+==\S+( +--hash=sha256:[0-9a-f]{64})+", requirement.strip()), requirement
