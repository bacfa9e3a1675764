"""The playbook lane: the project's playbooks on real Debian trees on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import playbooks, trees

# Warnings a run may print because the test asks for them, each with why; every other [WARNING]
# line fails the run's test.
EXPECTED_WARNINGS = {
    # Ansible's own notice about a host pattern matching nothing, in the test that names a host
    # missing from the inventory to prove the refusal.
    "[WARNING]: Could not match supplied host pattern, ignoring: drill-target-not-in-the-inventory",
}


@pytest.fixture
def run_playbook(tmp_path, request) -> playbooks.RunPlaybook:
    """Runs a playbook with ansible-runner (support/playbooks.py); a bare name is one of playbooks/ here.
    A run that prints a warning fails the test: warnings are how Ansible says a playbook is wrong
    in a way it still runs (duplicate YAML keys, an unmatched pattern, a deprecated use)."""
    run = playbooks.runner(tmp_path, Path(request.path).parent / "playbooks")

    def run_without_warnings(*args, **kwargs) -> playbooks.Run:
        done = run(*args, **kwargs)
        unexpected = [line for line in done.warnings() if line not in EXPECTED_WARNINGS]
        assert unexpected == [], f"the run printed warnings: {unexpected}"
        return done

    return run_without_warnings


@pytest.fixture(params=trees.SUITES)
def debian_tree(request) -> Path:
    """A real debootstrapped Debian root, built and cached by `make images`."""
    return trees.debian_tree(request.param)
