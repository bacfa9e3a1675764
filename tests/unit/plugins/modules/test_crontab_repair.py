"""The crontab_repair module, run in-process the way Ansible runs it, on a copy of a real Debian root's
cron files polluted like incident 4 (the fixture ``polluted`` of support/planted_roots.py)."""

from __future__ import annotations

from ansible_collections.lifeline.rescue.plugins.modules import crontab_repair

from support.modules import run_module
from support.planted import MINUTE

pytest_plugins = ("support.planted_roots",)


def test_repair_check_mode_plans_and_changes_nothing_then_repairs_then_is_idempotent(
    polluted, capsys, deadline
):
    root, original = polluted
    damaged = (root / "etc/crontab").read_bytes()
    rc, planned = run_module(
        crontab_repair, capsys, deadline(60), root=str(root), _ansible_check_mode=True, _ansible_diff=True
    )
    assert rc == 0 and planned["changed"] is True
    assert (root / "etc/crontab").read_bytes() == damaged
    assert not (root / "var/backups").exists()
    assert "\\x00" in planned["diff"][0]["before"] and "\\x00" not in planned["diff"][0]["after"]

    rc, repaired = run_module(crontab_repair, capsys, deadline(60), root=str(root))
    assert rc == 0 and repaired["changed"] is True and repaired["remaining"] == []
    lines = original.splitlines(keepends=True)
    assert (root / "etc/crontab").read_bytes() == b"".join(lines[:-3]) + MINUTE + b"".join(lines[-3:])
    (entry,) = repaired["files"]
    assert (root / entry["backup"].lstrip("/")).read_bytes() == damaged

    rc, again = run_module(crontab_repair, capsys, deadline(60), root=str(root))
    assert rc == 0 and again["changed"] is False and again["files"] == []


def test_repair_refuses_a_declared_baseline_cron_would_refuse(polluted, capsys, deadline):
    root, _ = polluted
    damaged = (root / "etc/crontab").read_bytes()
    rc, result = run_module(
        crontab_repair, capsys, deadline(60), root=str(root), system_crontab="* * * * root true\n"
    )
    assert rc == 1 and "line 1: bad day-of-week" in result["msg"]
    assert (root / "etc/crontab").read_bytes() == damaged


def test_repair_refuses_a_directory_that_is_not_a_linux_root(tmp_path, capsys, deadline):
    rc, result = run_module(crontab_repair, capsys, deadline(60), root=str(tmp_path))
    assert rc == 1 and "does not look like a Linux root" in result["msg"]
