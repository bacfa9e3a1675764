"""The drill runner's runs (lifeline_drill/run.py) with ansible-runner replaced: the contract with
drill.yml, targets side by side but one drill at a time per target, interruptions, leftovers killed."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lifeline_drill import run
from lifeline_drill.matrix import Drill
from support.drill import RECOVERY, at, drill_events
from support.paths import REPO


class FakeAnsibleRunner:
    """ansible_runner.run that replays a drill's events and records the calls (no Ansible)."""

    def __init__(self, fail: set[tuple[str, str]] = frozenset(), delay: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.delay = delay
        self.running: set[str] = set()
        self.overlap: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, **kwargs: Any) -> SimpleNamespace:
        target, fault = kwargs["extravars"]["lifeline_hosts"], kwargs["extravars"]["drill_fault"]
        with self.lock:
            self.calls.append(kwargs)
            if target in self.running:
                self.overlap.append(target)
            self.running.add(target)
        time.sleep(self.delay)
        bad = (fault, target) in self.fail
        for item in drill_events(RECOVERY if bad else None):
            kwargs["event_handler"](item)
        with self.lock:
            self.running.discard(target)
        return SimpleNamespace(status="failed" if bad else "successful", rc=2 if bad else 0)


def test_run_drill_keeps_the_contract_with_drill_yml(tmp_path, monkeypatch, capsys):
    fake = FakeAnsibleRunner()
    monkeypatch.setattr(run.ansible_runner, "run", fake)
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out")
    drill = Drill("crontab_nul_blocks", "drill-live", {"drill_target_root": "/srv/root"})
    result = run.run_drill(drill, settings, run.Console(), threading.Event())

    (call,) = fake.calls
    assert call["extravars"] == {
        "drill_target_root": "/srv/root",
        "drill_fault": "crontab_nul_blocks",
        "drill_confirm": True,
        "lifeline_hosts": "drill-live",
        "lifeline_report_dir": str(tmp_path / "out" / "reports"),
    }
    assert call["playbook"] == str(REPO / "playbooks" / "drill.yml")
    assert call["project_dir"] == str(REPO)
    assert call["inventory"] == str(tmp_path / "hosts.yml")
    assert call["envvars"]["ANSIBLE_CONFIG"] == str(REPO / "ansible.cfg")
    assert call["envvars"]["PATH"].startswith(str(Path(run.sys.executable).parent) + ":")
    assert call["quiet"] is True and "timeout" not in call
    private = Path(call["private_data_dir"])
    assert private.parent == tmp_path / "out" / "runs" and private.is_dir()
    assert result["artifacts"] == str(private)
    assert result["outcome"] == "recovered" and result["time_to_recovery"] == 8.0
    assert result["phases"]["plant"] == {"seconds": 2.0, "started": at(0)}

    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\[ +\d+\.\ds\] drill-live/crontab_nul_blocks: plant", out[0])
    assert any(line.endswith("drill-live/crontab_nul_blocks: recover (Restore its glibc)") for line in out)


def test_runner_that_cannot_start_costs_one_drill(tmp_path, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("ansible-playbook not found")

    monkeypatch.setattr(run.ansible_runner, "run", broken)
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out", timeout=30)
    result = run.run_drill(Drill("f", "t"), settings, run.Console(), threading.Event())
    assert result["outcome"] == "error"
    assert result["message"] == "ansible-runner could not run the playbook: ansible-playbook not found"


def test_targets_run_side_by_side_but_one_drill_at_a_time(tmp_path, monkeypatch, capsys):
    fake = FakeAnsibleRunner(fail={("f2", "b")}, delay=0.05)
    monkeypatch.setattr(run.ansible_runner, "run", fake)
    drills = [
        Drill(f, t) for f, t in [("f1", "a"), ("f1", "b"), ("f2", "a"), ("f2", "b"), ("f3", "a"), ("f1", "c")]
    ]
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out", jobs=2, timeout=60)
    console = run.Console(quiet=True)
    results = run.run_matrix(drills, settings, console)

    assert [(r["fault"], r["target"]) for r in results] == [(d.fault, d.target) for d in drills]
    assert [r["outcome"] for r in results] == ["recovered"] * 3 + ["not recovered"] + ["recovered"] * 2
    assert fake.overlap == []
    per_target = {}
    for call in fake.calls:
        per_target.setdefault(call["extravars"]["lifeline_hosts"], []).append(
            call["extravars"]["drill_fault"]
        )
    assert per_target == {"a": ["f1", "f2", "f3"], "b": ["f1", "f2"], "c": ["f1"]}
    assert all(call["timeout"] == 60 for call in fake.calls)
    # --quiet: only the ends of the drills.
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6
    assert any(
        line.endswith('b/f2: NOT RECOVERED in 4.0 s: recover, task "Restore its glibc": it failed')
        for line in out
    )


def test_interrupted_run_skips_the_rest(tmp_path, monkeypatch):
    fake = FakeAnsibleRunner()
    monkeypatch.setattr(run.ansible_runner, "run", fake)
    cancel = threading.Event()
    cancel.set()
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out")
    results = run.run_matrix([Drill("f", "a")], settings, run.Console(quiet=True), cancel)
    assert fake.calls == []
    assert results[0]["outcome"] == "error" and "interrupted" in results[0]["message"]


def test_leftovers_of_a_stopped_drill_are_killed(tmp_path):
    """ansible-core's workers run in sessions of their own: the runner's kill of the playbook's
    process group misses them. They carry the drill's private data dir in their command line."""
    private = tmp_path / "runs" / "drill-1"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen([*sleeper, f"{private}/env/extravars"], start_new_session=True)
    other = subprocess.Popen([*sleeper, f"{private}-other/env/extravars"], start_new_session=True)
    try:
        assert run.stop_leftovers(private) == 1
        assert ours.wait(timeout=10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for process in (ours, other):
            if process.poll() is None:
                process.kill()
                process.wait()
