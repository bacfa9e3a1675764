"""The crontab_audit module, run in-process the way Ansible runs it, on a copy of a real Debian root's
cron files polluted like incident 4 (the fixture ``polluted`` of support/planted_roots.py)."""

from __future__ import annotations

import os

from ansible_collections.lifeline.rescue.plugins.modules import crontab_audit

from support.modules import run_module

pytest_plugins = ("support.planted_roots",)


def test_audit_finds_the_nul_blocks_and_the_bad_minute(polluted, capsys, deadline):
    root, _ = polluted
    rc, result = run_module(crontab_audit, capsys, deadline(60), root=str(root))
    assert rc == 0 and result["changed"] is False and result["healthy"] is False
    (crontab,) = [f for f in result["files"] if f["path"] == "/etc/crontab"]
    assert [b["kind"] for b in crontab["bytes"]] == ["nul", "nul", "nul"]
    # The line the NUL run split, and the line the next NUL block was glued to.
    assert [line["error"] for line in crontab["lines"]] == ["bad minute", "bad minute"]
    assert result["summary"]["refused_lines"] == 2


def test_audit_refuses_a_directory_that_is_not_a_linux_root(tmp_path, capsys, deadline):
    rc, result = run_module(crontab_audit, capsys, deadline(60), root=str(tmp_path))
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
