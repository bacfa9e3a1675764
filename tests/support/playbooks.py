"""What the playbook and VM lanes share: the project's playbooks run with ansible-runner, the way
ops tooling embeds Ansible. Only those lanes import this module (the unit lane never does); their
conftest files make ``runner`` the ``run_playbook`` fixture."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ansible_runner

from support import ansible_cores
from support.paths import REPO

# The colour codes ansible-runner's terminal output carries around each line.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Run:
    status: str
    rc: int
    events: list[dict]
    stdout: str = ""

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

    def warnings(self) -> list[str]:
        """Each ``[WARNING]`` line Ansible printed (deprecations have their own prefix)."""
        lines = (ANSI_ESCAPE.sub("", line).strip() for line in self.stdout.splitlines())
        return [line for line in lines if line.startswith("[WARNING]")]

    def failures(self) -> list[str]:
        return [
            str(e["event_data"]["res"].get("msg", ""))
            for e in self.events
            if e.get("event") == "runner_on_failed" and not e["event_data"].get("ignore_errors")
        ]


RunPlaybook = Callable[..., Run]


def runner(tmp_path: Path, own: Path) -> RunPlaybook:
    """``run(playbook, cmdline="", inventory=None, **extravars)``: "playbooks/x.yml" is the project's, a
    bare name one of the calling lane's own (in ``own``); each run gets a private data directory under
    ``tmp_path``."""

    def run(playbook: str, cmdline: str = "", inventory: Path | None = None, **extravars) -> Run:
        path = REPO / playbook if "/" in playbook else own / playbook
        # A private data directory per run: ansible-runner keeps a run's cmdline and settings in it.
        private = tmp_path / f"runner-{len(list(tmp_path.glob('runner-*')))}"
        private.mkdir()
        # The ansible-playbook of the environment running the tests (or of the older ansible-core
        # LIFELINE_ANSIBLE_CORE selects), not one found elsewhere.
        ansible_bin = ansible_cores.bin_dir()
        done = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(REPO),
            playbook=str(path),
            inventory=str(inventory or REPO / "inventory" / "hosts.yml"),
            extravars=extravars,
            envvars={
                "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "PATH": f"{ansible_bin}:{os.environ.get('PATH', '')}",
            },
            cmdline=cmdline or None,
            quiet=True,
        )
        with done.stdout as output:
            text = output.read()
        if ansible_cores.SELECTED:
            # On an older ansible-core of the range every run must be as quiet as on the pinned one.
            warned = ansible_cores.warnings_in(text)
            assert not warned, f"ansible-core {ansible_cores.SELECTED} warned running {playbook}: {warned}"
        return Run(done.status, done.rc, list(done.events), text)

    return run


def report_of(report_dir: Path, playbook: str) -> dict:
    """The one JSON report ``playbook`` (restore-glibc, repair-crontab) wrote into ``report_dir``."""
    [report] = report_dir.glob(f"{playbook}-*.json")
    return json.loads(report.read_text())


def restore_glibc(
    run_playbook: RunPlaybook, root: Path, report_dir: Path, package: Path | None = None
) -> Run:
    """A restore-glibc run on ``root`` (given ``package`` as glibc_restore_source), which must succeed."""
    extra = {"glibc_restore_source": str(package)} if package is not None else {}
    run = run_playbook(
        "playbooks/restore-glibc.yml", target_root=str(root), lifeline_report_dir=str(report_dir), **extra
    )
    assert run.status == "successful", run.failures()
    return run


def assert_glibc_repaired(report_dir: Path, source: str) -> dict:
    """restore-glibc's report says it repaired the root taking ``source`` and its smoke test passed;
    returns the report."""
    report = report_of(report_dir, "restore-glibc")
    assert report["result"] == "repaired"
    assert source in {a["source"] for a in report["actions"]}
    assert report["verification"]["glibc_problems"] == []
    assert [s["rc"] for s in report["verification"]["smoke_test"]] == [0, 0, 0, 0]
    return report
