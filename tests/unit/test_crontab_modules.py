"""The crontab_audit and crontab_repair modules, run in-process the way Ansible runs them, on a copy
of a real Debian root's cron files polluted like incident 4."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.modules import crontab_audit, crontab_repair

from support.modules import run_module
from support.trees import debian_tree

NULS = b"\0" * 2048
MINUTE = b"* * * * * root date >> /var/tmp/lifeline-minute.log\n"


@pytest.fixture
def polluted(tmp_path) -> tuple[Path, bytes]:
    """The cron files of bookworm, with NUL blocks in the middle of /etc/crontab."""
    tree = debian_tree("bookworm")
    root = tmp_path / "root"
    for name in ("etc/os-release", "etc/passwd", "etc/group", "etc/crontab", "etc/cron.d/e2scrub_all"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(tree / name, root / name, follow_symlinks=True)
    (root / "usr").mkdir()
    (root / "var/log").mkdir(parents=True)
    original = (root / "etc/crontab").read_bytes()
    lines = original.splitlines(keepends=True)
    (root / "etc/crontab").write_bytes(
        b"".join(lines[:-3]) + NULS + MINUTE[:10] + NULS + MINUTE[10:] + NULS + b"".join(lines[-3:])
    )
    return root, original


def test_audit_finds_the_nul_blocks_and_the_bad_minute(polluted, capsys, deadline):
    root, _ = polluted
    rc, result = run_module(crontab_audit, capsys, deadline(60), root=str(root))
    assert rc == 0 and result["changed"] is False and result["healthy"] is False
    (crontab,) = [f for f in result["files"] if f["path"] == "/etc/crontab"]
    assert [b["kind"] for b in crontab["bytes"]] == ["nul", "nul", "nul"]
    # The line the NUL run split, and the line the next NUL block was glued to.
    assert [line["error"] for line in crontab["lines"]] == ["bad minute", "bad minute"]
    assert result["summary"]["refused_lines"] == 2


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


def test_modules_refuse_a_directory_that_is_not_a_linux_root(tmp_path, capsys, deadline):
    for module in (crontab_audit, crontab_repair):
        rc, result = run_module(module, capsys, deadline(60), root=str(tmp_path))
        assert rc == 1 and "does not look like a Linux root" in result["msg"]


def test_logged_errors_say_whether_they_came_after_the_crontab_last_changed(polluted, capsys, deadline):
    root, _ = polluted
    os.utime(root / "etc/crontab", (1_700_000_000, 1_700_000_000))  # 2023-11-14T22:13:20Z
    (root / "var/log/syslog").write_text(
        "2023-11-14T20:00:01.000000+00:00 web1 cron[412]: Error: bad minute; while reading /etc/crontab\n"
        "2023-11-15T03:00:01.000000+00:00 web1 cron[412]: Error: bad minute; while reading /etc/crontab\n"
        "2023-11-15T03:00:02.000000+00:00 web1 cron[412]: Error: bad hour; while reading /etc/cron.d/gone\n"
    )
    rc, result = run_module(crontab_audit, capsys, deadline(60), root=str(root))
    assert rc == 0
    assert [(e["kind"], e["since_last_change"]) for e in result["logged_errors"]] == [
        ("bad minute", False),
        ("bad minute", True),
        ("bad hour", None),
    ]
    assert result["summary"]["logged_since_last_change"] == 2
