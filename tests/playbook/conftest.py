"""Run the project's playbooks with ansible-runner, the way ops tooling embeds Ansible."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import ansible_runner
import pytest

REPO = Path(__file__).resolve().parents[2]
TREES = Path(os.environ.get("LIFELINE_TREES", "/var/cache/lifeline/trees"))
SUITES = ("bullseye", "bookworm", "trixie")


@dataclass
class Run:
    status: str
    rc: int
    events: list[dict]

    def results(self, task: str) -> list[dict]:
        """The module results of every task whose name ends with ``task``."""
        return [
            e["event_data"]["res"]
            for e in self.events
            if e.get("event") in ("runner_on_ok", "runner_on_failed")
            and e["event_data"].get("task", "").endswith(task)
        ]

    def changed(self) -> list[str]:
        """The names of the tasks that reported a change."""
        return [
            e["event_data"].get("task", "")
            for e in self.events
            if e.get("event") == "runner_on_ok" and e["event_data"]["res"].get("changed")
        ]

    def failures(self) -> list[str]:
        return [
            str(e["event_data"]["res"].get("msg", ""))
            for e in self.events
            if e.get("event") == "runner_on_failed" and not e["event_data"].get("ignore_errors")
        ]


@pytest.fixture
def run_playbook(tmp_path):
    def run(playbook: str, cmdline: str = "", inventory: Path | None = None, **extravars) -> Run:
        path = REPO / playbook if "/" in playbook else Path(__file__).parent / "playbooks" / playbook
        # A private data directory per run: ansible-runner keeps a run's cmdline and settings in it.
        private = tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}"
        private.mkdir()
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(REPO),
            playbook=str(path),
            inventory=str(inventory or REPO / "inventory" / "hosts.yml"),
            extravars=extravars,
            envvars={
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                # The ansible-playbook of the environment running the tests, not one found elsewhere.
                "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            },
            cmdline=cmdline or None,
            quiet=True,
        )
        return Run(runner.status, runner.rc, list(runner.events))

    return run


@pytest.fixture(params=SUITES)
def debian_tree(request) -> Path:
    """A real debootstrapped Debian root, built and cached by `make images`."""
    tree = TREES / request.param
    if not (tree / "etc" / "os-release").exists():
        pytest.fail(f"{tree} is missing: run `make images` (the playbook lane needs the real Debian trees)")
    return tree


def mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path``, read straight from the kernel."""
    top = str(path)
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        points = [line.split()[4] for line in handle]
    return [p for p in points if p == top or p.startswith(top + "/")]
