"""The playbook lane: the project's playbooks on real Debian trees on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import playbooks, trees


@pytest.fixture
def run_playbook(tmp_path, request) -> playbooks.RunPlaybook:
    """Runs a playbook with ansible-runner (support/playbooks.py); a bare name is one of playbooks/ here."""
    return playbooks.runner(tmp_path, Path(request.path).parent / "playbooks")


@pytest.fixture(params=trees.SUITES)
def debian_tree(request) -> Path:
    """A real debootstrapped Debian root, built and cached by `make images`."""
    return trees.debian_tree(request.param)
