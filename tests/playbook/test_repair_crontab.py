"""repair-crontab through real playbook runs on copies of real Debian roots planted like incident 4.

What the repair kept, commented and quarantined is checked against the fault planter's own record,
and the repaired crontab against chkcrontab, never against the code under test.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path

import chkcrontab_lib
import pytest

from support.paths import PLANTERS
from support.playbooks import report_of
from support.trees import TREES

FAULTS = PLANTERS / "cron.sh"
INCIDENT = ("crontab_nul_blocks", "crontab_bad_minute", "crontab_malware_job", "startup_item_malware")
PLAYBOOK = "playbooks/repair-crontab.yml"


def planted_copy(tmp_path: Path, suite: str, *faults: str) -> tuple[Path, Path]:
    """A copy of the suite's tree with the faults planted, and the planter's record of what it did."""
    root, record = tmp_path / suite, tmp_path / f"{suite}.record"
    subprocess.run(["cp", "-a", str(TREES / suite), str(root)], check=True)
    if faults:
        subprocess.run(
            ["sh", str(FAULTS), str(root), *faults],
            check=True,
            capture_output=True,
            env={**os.environ, "CRON_FAULT_RECORD": str(record)},
        )
    return root, record


def chkcrontab_errors(path: Path) -> int:
    """chkcrontab's error count for a system crontab (warnings alone do not count)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return chkcrontab_lib.check_crontab(str(path), chkcrontab_lib.LogCounter())


def state(root: Path) -> dict[str, tuple]:
    """Content and inode facts of everything the repair or the quarantine may touch."""
    found = {}
    for top in (
        "etc/crontab",
        "etc/cron.d",
        "etc/rc.local",
        "etc/systemd/system",
        "usr/bin",
        "var/spool/cron",
        "var",
    ):
        for path in [root / top, *sorted((root / top).rglob("*"))] if (root / top).is_dir() else [root / top]:
            if not path.exists() and not path.is_symlink():
                continue
            st = path.lstat()
            content = (
                path.read_bytes()
                if path.is_file() and not path.is_symlink()
                else os.readlink(path)
                if path.is_symlink()
                else ""
            )
            found[str(path.relative_to(root))] = (st.st_mode, st.st_uid, st.st_gid, content)
    return found


def lines_of(record: Path, name: str) -> list[str]:
    return (record / name).read_text().splitlines() if (record / name).exists() else []


@pytest.mark.parametrize("suite", ["bullseye", pytest.param("bookworm", marks=pytest.mark.smoke), "trixie"])
def test_the_incident_is_repaired_and_reported_without_losing_a_valid_line(run_playbook, tmp_path, suite):
    root, record = planted_copy(tmp_path, suite, *INCIDENT)
    crontab = root / "etc/crontab"
    assert chkcrontab_errors(crontab) > 0
    run = run_playbook(PLAYBOOK, target_root=str(root), lifeline_report_dir=str(tmp_path / "r"))
    assert run.status == "successful", run.failures()

    # Every valid line kept byte for byte and in order; every invalid one commented, none dropped.
    repaired = crontab.read_text().splitlines()
    # The malware job is valid for cron but held inactive (below): it is the one valid line commented.
    valid = [line for line in lines_of(record, "crontab.valid") if ".sysupdate" not in line]
    assert [line for line in repaired if line in valid] == valid
    for bad in lines_of(record, "crontab.invalid"):
        assert any(line.startswith("# lifeline-invalid") and line.endswith(bad) for line in repaired), bad
    assert b"\0" not in crontab.read_bytes()
    assert chkcrontab_errors(crontab) == 0

    report = report_of(tmp_path / "r", "repair-crontab")
    assert report["result"] == "repaired"
    assert report["verification"]["crontabs_healthy"] is True
    # Numbers stay numbers on every ansible-core of the range (before 2.19 a bare number rendered as text).
    assert all(isinstance(step["seconds"], (int, float)) for step in report["steps"]), report["steps"]
    found = {(f["path"], f["rule"]) for f in report["found"]["persistence"]}
    paths = {path for path, _ in found}
    assert {"/etc/crontab", "/etc/rc.local", "/etc/systemd/system/sysupdate.service"} <= paths, found
    # Report only: nothing is moved; the */3 job is held inactive (cron skipped the damaged file,
    # so the repair must not start it), the rc.local line is untouched.
    assert "*/3 * * * * root /usr/bin/.sysupdate" not in repaired
    assert "#lifeline-quarantine(exec-hidden-path) */3 * * * * root /usr/bin/.sysupdate" in repaired
    assert [a["path"] for a in report["actions"]["held_inactive"]] == ["/etc/crontab"]
    assert report["actions"]["quarantine"] == []
    assert "/usr/bin/.sysupdate &" in (root / "etc/rc.local").read_text().splitlines()
    assert (root / "etc/systemd/system/sysupdate.service").is_file()
    assert (root / "usr/bin/.sysupdate").is_file()
    # The first backup (the repair's) is the file as it was; the second is the hold's.
    backups = sorted((root / "var/backups/lifeline").rglob("etc/crontab"))
    assert b"\0" in backups[0].read_bytes()


def test_report_only_leaves_a_flagged_job_cron_was_already_running_as_it_was(run_playbook, tmp_path):
    root, _ = planted_copy(tmp_path, "bookworm", "crontab_malware_job")
    before = (root / "etc/crontab").read_bytes()
    run = run_playbook(PLAYBOOK, target_root=str(root), lifeline_report_dir=str(tmp_path / "r"))
    assert run.status == "successful", run.failures()
    assert run.changed() == []
    assert (root / "etc/crontab").read_bytes() == before
    report = report_of(tmp_path / "r", "repair-crontab")
    assert report["result"] == "crontabs healthy; persistence found, not quarantined"
    assert {f["rule"] for f in report["found"]["persistence"] if f["path"] == "/etc/crontab"} >= {
        "exec-hidden-path"
    }
    assert report["actions"]["held_inactive"] == []


def test_quarantine_comments_the_job_moves_the_startup_items_and_a_rerun_changes_nothing(
    run_playbook, tmp_path
):
    root, _ = planted_copy(tmp_path, "bookworm", *INCIDENT)
    run = run_playbook(
        PLAYBOOK,
        target_root=str(root),
        crontab_repair_quarantine=True,
        lifeline_report_dir=str(tmp_path / "r1"),
    )
    assert run.status == "successful", run.failures()
    repaired = (root / "etc/crontab").read_text().splitlines()
    assert "*/3 * * * * root /usr/bin/.sysupdate" not in repaired
    assert any(line.startswith("#lifeline-quarantine") and "/usr/bin/.sysupdate" in line for line in repaired)
    assert not (root / "etc/systemd/system/sysupdate.service").exists()
    assert not (root / "etc/systemd/system/multi-user.target.wants/sysupdate.service").is_symlink()
    assert not (root / "usr/bin/.sysupdate").exists()
    quarantined = list((root / "var/lib/lifeline/quarantine").rglob("sysupdate.service"))
    assert quarantined and list((root / "var/lib/lifeline/quarantine").rglob("*.lifeline.json"))
    rc_local = (root / "etc/rc.local").read_text()
    assert "\n/usr/bin/.sysupdate &\n" not in rc_local and "/usr/bin/.sysupdate &" in rc_local
    report = report_of(tmp_path / "r1", "repair-crontab")
    assert report["actions"]["quarantine"] and all(a["restore"] for a in report["actions"]["quarantine"])
    high = [
        f for f in report["verification"]["persistence_remaining"] if f["severity"] in ("high", "critical")
    ]
    assert high == []

    snapshot = state(root)
    again = run_playbook(
        PLAYBOOK,
        target_root=str(root),
        crontab_repair_quarantine=True,
        lifeline_report_dir=str(tmp_path / "r2"),
    )
    assert again.status == "successful", again.failures()
    assert again.changed() == []
    assert state(root) == snapshot
    assert report_of(tmp_path / "r2", "repair-crontab")["actions"]["already_quarantined"]


def test_what_needs_a_hand_is_reported_and_does_not_fail_the_quarantine(run_playbook, tmp_path):
    """A packaged program replaced by a wrapper can only be reinstalled: the quarantine moves what it
    can, names the reinstall as a manual step, and the run succeeds saying so; what it could have
    moved and did not would still fail it (the test above)."""
    root, _ = planted_copy(tmp_path, "bookworm", "crontab_malware_job")
    subprocess.run(
        ["sh", str(PLANTERS / "tampering.sh"), str(root), "binary_wrapper"], check=True, timeout=60
    )
    wrapper = (root / "usr/bin/who").read_bytes()
    run = run_playbook(
        PLAYBOOK,
        target_root=str(root),
        crontab_repair_quarantine=True,
        lifeline_report_dir=str(tmp_path / "r"),
    )
    assert run.status == "successful", run.failures()
    report = report_of(tmp_path / "r", "repair-crontab")
    manual = report["verification"]["manual_steps"]
    assert [step["path"] for step in manual] == ["/usr/bin/who"], manual
    assert "apt-get install --reinstall" in manual[0]["reason"]
    assert report["result"].startswith("repaired; 1 steps need a hand")
    # The wrapper is left for the reinstall, its hidden original moved; the malware job is commented.
    assert (root / "usr/bin/who").read_bytes() == wrapper
    assert not (root / "usr/bin/.sysupdate").exists()
    assert "\n*/3 * * * * root /usr/bin/.sysupdate\n" not in (root / "etc/crontab").read_text()


def test_check_mode_changes_nothing_and_shows_the_plan(run_playbook, tmp_path):
    root, _ = planted_copy(tmp_path, "bookworm", *INCIDENT)
    snapshot = state(root)
    run = run_playbook(
        PLAYBOOK,
        "--check --diff",
        target_root=str(root),
        crontab_repair_quarantine=True,
        lifeline_report_dir=str(tmp_path / "r"),
    )
    assert run.status == "successful", run.failures()
    assert state(root) == snapshot
    [planned] = run.results("Repair the crontabs, keeping every valid line")
    assert planned["changed"] is True and planned["diff"]
    report = report_of(tmp_path / "r", "repair-crontab")
    assert report["result"] == "planned (check mode)"
    assert report["actions"]["quarantine"]


def test_declared_jobs_win_over_a_salvage_and_the_left_out_lines_are_listed(run_playbook, tmp_path):
    root, _ = planted_copy(tmp_path, "bookworm", "crontab_nul_blocks", "crontab_malware_job")
    jobs = [
        {
            "schedule": "17 * * * *",
            "command": "cd / && run-parts --report /etc/cron.hourly",
            "comment": "hourly",
        },
        {"schedule": "@reboot", "user": "root", "command": "/usr/local/sbin/warm-cache"},
    ]
    run = run_playbook(
        PLAYBOOK,
        target_root=str(root),
        crontab_repair_system_jobs=jobs,
        lifeline_report_dir=str(tmp_path / "r"),
    )
    assert run.status == "successful", run.failures()
    lines = (root / "etc/crontab").read_text().splitlines()
    jobs_now = [line for line in lines if line and not line.startswith("#") and "=" not in line.split()[0]]
    assert jobs_now == [
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly",
        "@reboot root /usr/local/sbin/warm-cache",
    ]
    assert "SHELL=/bin/sh" in lines
    assert chkcrontab_errors(root / "etc/crontab") == 0
    (entry,) = [
        f
        for f in report_of(tmp_path / "r", "repair-crontab")["actions"]["crontabs"]
        if f["path"] == "/etc/crontab"
    ]
    dropped = [a["before"] for a in entry["lines"] if a["action"] == "dropped"]
    assert "*/3 * * * * root /usr/bin/.sysupdate" in dropped


def test_a_healthy_root_is_left_alone(run_playbook, tmp_path):
    root, _ = planted_copy(tmp_path, "trixie")
    snapshot = state(root)
    run = run_playbook(PLAYBOOK, target_root=str(root), lifeline_report_dir=str(tmp_path / "r"))
    assert run.status == "successful", run.failures()
    assert run.changed() == []
    assert state(root) == snapshot
    report = report_of(tmp_path / "r", "repair-crontab")
    assert report["result"] == "healthy, nothing to do"
    assert report["found"]["persistence"] == []


def test_a_declared_job_without_a_command_is_refused_before_anything_changes(run_playbook, tmp_path):
    root, _ = planted_copy(tmp_path, "bookworm", "crontab_nul_blocks")
    snapshot = state(root)
    run = run_playbook(
        PLAYBOOK,
        target_root=str(root),
        crontab_repair_system_jobs=[{"schedule": "* * * * *"}],
        lifeline_report_dir=str(tmp_path / "r"),
    )
    assert run.status == "failed"
    assert any("command" in m for m in run.failures()), run.failures()
    assert state(root) == snapshot
