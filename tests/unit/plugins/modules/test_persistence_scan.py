"""The persistence_scan module, run in-process the way Ansible runs it, on the real Debian trees and on
a copy of bookworm planted like incident 4 (quarantined, scanned again, put back in a chroot)."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.lifeline.rescue.plugins.modules import persistence_scan

from support.modules import run_module
from support.paths import RULES_FILE
from support.trees import debian_tree, listing

RULES = yaml.safe_load(RULES_FILE.read_text())
CHROOT = "/usr/sbin/chroot"
FINDING_KEYS = {
    "rule",
    "description",
    "severity",
    "quarantine",
    "location",
    "path",
    "line",
    "text",
    "command",
    "user",
    "matched",
    "notes",
    "enabled_by",
    "file",
    "payload",
}
EVIDENCE_KEYS = {
    "path",
    "resolved",
    "links",
    "type",
    "owner",
    "uid",
    "gid",
    "mode",
    "size",
    "mtime",
    "ctime",
    "sha256",
    "package",
    "problem",
}
ACTION_KEYS = {
    "action",
    "path",
    "line",
    "rules",
    "reason",
    "before",
    "after",
    "destination",
    "metadata",
    "backup",
    "restore",
    "restore_host",
    "applied",
    "error",
}
JOB = "*/3 * * * * root /usr/bin/.sysupdate\n"
UNIT = "[Unit]\nDescription=System update\n[Service]\nExecStart=/usr/bin/.sysupdate\n[Install]\n"
PLANTED = {
    "etc/crontab": None,  # the tree's own, with NUL blocks and the job appended
    "usr/bin/.sysupdate": (b"#!/bin/sh\nsleep 600\n", 0o755),
    "etc/rc.local": (b"#!/bin/sh -e\n/usr/bin/.sysupdate &\nexit 0\n", 0o755),
    "etc/systemd/system/sysupdate.service": (UNIT.encode(), 0o644),
}
WANTS = "etc/systemd/system/multi-user.target.wants/sysupdate.service"


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """A copy of bookworm whose crontab holds NUL blocks and a */3 job running a hidden file, which
    rc.local and an enabled systemd unit start too."""
    root = tmp_path_factory.mktemp("incident") / "bookworm"
    subprocess.run(["cp", "-a", str(debian_tree("bookworm")), str(root)], check=True)
    crontab = root / "etc/crontab"
    crontab.write_bytes(crontab.read_bytes() + b"\0" * 8192 + b"\n" + JOB.encode())
    for path, spec in PLANTED.items():
        if spec:
            (root / path).write_bytes(spec[0])
            os.chmod(root / path, spec[1])
    os.symlink("/etc/systemd/system/sysupdate.service", root / WANTS)
    return root


def state(root: Path) -> tuple[dict, dict]:
    """The whole tree's listing and the sha256 of the planted files."""
    hashes = {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in PLANTED if (root / p).exists()}
    return listing(root), hashes


@pytest.mark.parametrize("suite", ["bullseye", "bookworm", "trixie"])
def test_a_stock_debian_root_has_nothing_to_quarantine(capsys, deadline, suite):
    rc, result = run_module(
        persistence_scan, capsys, deadline(120), root=str(debian_tree(suite)), rules=RULES, quarantine=True
    )

    assert rc == 0, result.get("msg")
    assert (result["changed"], result["actions"], result["already_quarantined"]) == (False, [], [])
    assert [f for f in result["findings"] if f["severity"] != "info"] == []
    summary = result["summary"]
    assert summary["package_database"] is True
    assert summary["findings"] == sum(summary["by_severity"].values()) == len(result["findings"])
    assert summary["files"] > 30 and summary["items"] > 200
    assert not {"skipped", "failed", "diff"} & set(result)


def test_the_incident_is_found_quarantined_idempotently_and_put_back(capsys, deadline, planted):
    before = state(planted)

    # Report only: findings with their evidence, nothing planned, nothing changed.
    rc, report = run_module(persistence_scan, capsys, deadline(120), root=str(planted), rules=RULES)
    assert rc == 0, report.get("msg")
    assert (report["changed"], report["actions"]) == (False, [])
    assert {(f["rule"], f["location"], f["path"], f["line"]) for f in report["findings"]} == {
        ("exec-hidden-path", "cron", "/etc/crontab", 24),
        ("frequent-unpackaged-job", "cron", "/etc/crontab", 24),
        ("exec-hidden-path", "rc_local", "/etc/rc.local", 2),
        ("exec-hidden-path", "systemd_unit", "/etc/systemd/system/sysupdate.service", 4),
        ("unpackaged-startup-runs-suspicious", "systemd_unit", "/etc/systemd/system/sysupdate.service", 4),
        ("unpackaged-startup-item", "systemd_unit", "/etc/systemd/system/sysupdate.service", None),
        ("systemd-enabled-unowned-unit", "systemd_unit", "/etc/systemd/system/sysupdate.service", 4),
        ("unowned-file-in-packaged-dir", "package_file", "/usr/bin/.sysupdate", None),
    }
    for finding in report["findings"]:
        assert set(finding) == FINDING_KEYS
        assert set(finding["file"]) == EVIDENCE_KEYS
        if finding["line"] is not None:
            assert set(finding["payload"]) == EVIDENCE_KEYS
            assert (finding["payload"]["path"], finding["payload"]["package"]) == (
                "/usr/bin/.sysupdate",
                None,
            )
    for finding in report["findings"]:
        expected = ["/" + WANTS] if finding["location"] == "systemd_unit" else []
        assert finding["enabled_by"] == expected, finding
    crontab_finding = next(f for f in report["findings"] if f["location"] == "cron")
    assert crontab_finding["file"]["package"] == "cron-daemon-common"
    assert report["summary"]["by_location"] == {
        "cron": 2,
        "rc_local": 1,
        "systemd_unit": 4,
        "package_file": 1,
    }
    assert report["summary"]["by_severity"] == {"info": 2, "low": 0, "medium": 1, "high": 4, "critical": 1}
    assert state(planted) == before

    # Check mode with diff: the whole plan, nothing changed.
    rc, checked = run_module(
        persistence_scan,
        capsys,
        deadline(120),
        root=str(planted),
        rules=RULES,
        quarantine=True,
        _ansible_check_mode=True,
        _ansible_diff=True,
    )
    assert (rc, checked["changed"]) == (0, True), checked.get("msg")
    plan = {(a["action"], a["path"], a["line"]) for a in checked["actions"]}
    assert plan == {
        ("comment", "/etc/crontab", 24),
        ("comment", "/etc/rc.local", 2),
        ("move", "/etc/systemd/system/sysupdate.service", None),
        ("move", "/" + WANTS, None),
        ("move", "/usr/bin/.sysupdate", None),
    }
    assert all(set(a) == ACTION_KEYS and not a["applied"] for a in checked["actions"])
    assert "/etc/crontab:24: " + JOB.strip() + "\n" in checked["diff"]["before"]
    assert (
        "/etc/crontab:24: #lifeline-quarantine(exec-hidden-path,frequent-unpackaged-job) "
        + JOB.strip()
        + "\n"
        in checked["diff"]["after"]
    )
    assert state(planted) == before

    # The quarantine.
    rc, done = run_module(
        persistence_scan, capsys, deadline(120), root=str(planted), rules=RULES, quarantine=True
    )
    assert (rc, done["changed"]) == (0, True), done.get("msg")
    assert all(a["applied"] and not a["error"] for a in done["actions"])
    lines = (planted / "etc/crontab").read_bytes().split(b"\n")
    assert (
        lines[23] == b"#lifeline-quarantine(exec-hidden-path,frequent-unpackaged-job) " + JOB.strip().encode()
    )
    for path in ("usr/bin/.sysupdate", "etc/systemd/system/sysupdate.service", WANTS):
        assert not os.path.lexists(planted / path)

    # Run again: nothing left to do, and the report says what the quarantine holds.
    rc, again = run_module(
        persistence_scan, capsys, deadline(120), root=str(planted), rules=RULES, quarantine=True
    )
    assert (rc, again["changed"], again["actions"]) == (0, False, [])
    assert [f for f in again["findings"] if f["severity"] != "info"] == []
    held = {(h["kind"], h["path"], h["line"], h["present"]) for h in again["already_quarantined"]}
    assert held == {
        ("line", "/etc/crontab", 24, True),
        ("line", "/etc/rc.local", 2, True),
        ("file", "/etc/systemd/system/sysupdate.service", None, True),
        ("file", "/" + WANTS, None, True),
        ("file", "/usr/bin/.sysupdate", None, True),
    }

    # Each restore command, run inside the target as an admin would, puts it back.
    for action in done["actions"]:
        subprocess.run([CHROOT, str(planted), "/bin/sh", "-c", action["restore"]], check=True)
    restored_listing, restored_hashes = state(planted)
    quarantine_dirs = ("var/lib/lifeline", "var/backups/lifeline")
    assert restored_hashes == before[1]
    kept = {p: v for p, v in restored_listing.items() if not p.startswith(quarantine_dirs)}
    assert kept == before[0]


def test_invalid_rules_fail_with_every_problem_named(capsys, deadline):
    rules = [*RULES, {"id": "mine", "description": "x", "severity": "high", "match": {"comand": "curl"}}]

    rc, result = run_module(
        persistence_scan, capsys, deadline(120), root=str(debian_tree("bookworm")), rules=rules
    )

    assert rc == 1
    assert result["msg"].startswith(
        f"invalid persistence rules: rule {len(rules)} (mine): unknown match key(s) comand; known: command,"
    )
    assert (result["changed"], result["findings"]) == (False, [])


def test_a_directory_that_is_no_linux_root_is_refused(capsys, deadline, tmp_path):
    rc, result = run_module(persistence_scan, capsys, deadline(120), root=str(tmp_path), rules=RULES)

    assert rc == 1
    assert result[
        "msg"
    ] == f"root={tmp_path} does not look like a Linux root: no /etc directory; no /usr " + (
        "directory; no etc/os-release, usr/lib/os-release or etc/redhat-release"
    )


def test_hold_comments_only_flagged_lines_of_the_files_named_and_moves_nothing(capsys, deadline, tmp_path):
    root = tmp_path / "bookworm"
    subprocess.run(["cp", "-a", str(debian_tree("bookworm")), str(root)], check=True)
    for path in ("etc/crontab", "etc/cron.d/e2scrub_all"):
        (root / path).write_bytes((root / path).read_bytes() + JOB.encode())
    for path, spec in PLANTED.items():
        if spec:
            (root / path).write_bytes(spec[0])
            os.chmod(root / path, spec[1])
    before = state(root)

    rc, planned = run_module(
        persistence_scan,
        capsys,
        deadline(120),
        root=str(root),
        rules=RULES,
        hold=["/etc/crontab"],
        _ansible_check_mode=True,
    )
    assert rc == 0 and planned["changed"] is True
    assert state(root) == before

    rc, held = run_module(
        persistence_scan, capsys, deadline(120), root=str(root), rules=RULES, hold=["/etc/crontab"]
    )
    assert rc == 0 and held["changed"] is True
    assert [(a["action"], a["path"]) for a in held["actions"]] == [("comment", "/etc/crontab")]
    crontab = (root / "etc/crontab").read_text().splitlines()
    assert crontab[-1].startswith("#lifeline-quarantine(") and crontab[-1].endswith(JOB.strip())
    # Not named in hold: the cron.d job, rc.local and the unit stay as they were.
    assert (root / "etc/cron.d/e2scrub_all").read_text().endswith(JOB)
    assert (root / "etc/rc.local").read_bytes() == PLANTED["etc/rc.local"][0]
    assert (root / "etc/systemd/system/sysupdate.service").exists()
    assert (root / "usr/bin/.sysupdate").exists()
