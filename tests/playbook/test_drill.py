"""playbooks/drill.yml on this machine: offline drills on copies of a real Debian root, and refusals.

A drill's own proofs run the target's programs; here the end state is checked once more by other
means (the target's programs in a chroot, its files read back) and the refusals by comparing the
target before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from support import rpmroots
from support.roots import chroot
from support.trees import DEBS, TREES

PLAYBOOK = "playbooks/drill.yml"


def inventory(tmp_path: Path, **host_vars) -> Path:
    """localhost as a drill target, with the given host variables (lifeline_disposable among them)."""
    path = tmp_path / "inventory.json"
    host = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}"}
    path.write_text(json.dumps({"all": {"hosts": {"localhost": {**host, **host_vars}}}}))
    return path


def disposable_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    subprocess.run(["cp", "-a", str(TREES / "bookworm"), str(root)], check=True)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """What a planter touches: the library directory, /etc/crontab, rc.local, the systemd units."""
    found = {}
    for top in ("usr/lib/x86_64-linux-gnu", "etc/crontab", "etc/rc.local", "etc/systemd/system", "usr/bin"):
        path = root / top
        entries = [path] if not path.is_dir() or path.is_symlink() else sorted(path.rglob("*"))
        for entry in entries:
            st = entry.lstat() if os.path.lexists(entry) else None
            found[str(entry.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns) if st else None
    return found


def record(report_dir: Path, fault: str) -> dict:
    [path] = report_dir.glob(f"drill-{fault}-localhost-*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("host_vars", "extra", "says"),
    [
        ({}, {}, "localhost is not marked disposable"),
        ({"lifeline_disposable": True}, {"drill_confirm": False}, "drill_confirm: true is required"),
        (
            {"lifeline_disposable": True},
            {"drill_fault": "glibc_link_removed", "drill_target_root": ""},
            "glibc_link_removed is drilled offline only: give drill_target_root",
        ),
        (
            {"lifeline_disposable": True},
            {"drill_fault": "root_on_old_disk"},
            "root_on_old_disk is drilled live only: leave drill_target_root empty",
        ),
        (
            {"lifeline_disposable": True},
            {"drill_fault": "glibc_file_deleted"},
            "drill_glibc_package is needed for glibc_file_deleted",
        ),
    ],
    ids=["not disposable", "not confirmed", "offline only", "live only", "a variable missing"],
)
def test_a_drill_is_refused_and_nothing_is_planted(run_playbook, tmp_path, host_vars, extra, says):
    root = disposable_root(tmp_path)
    before = snapshot(root)
    given = {"drill_fault": "crontab_nul_blocks", "drill_confirm": True, "drill_target_root": str(root)}
    given.update(extra)

    run = run_playbook(
        PLAYBOOK,
        inventory=inventory(tmp_path, **host_vars),
        lifeline_hosts="localhost",
        lifeline_report_dir=str(tmp_path / "r"),
        **given,
    )

    assert run.status == "failed"
    assert [m for m in run.failures() if says in m and "Nothing was planted" in m], run.failures()
    assert snapshot(root) == before
    assert not (tmp_path / "r").exists(), "no record: nothing was planted"


def test_a_drill_refuses_a_host_pattern_matching_nothing(run_playbook, tmp_path):
    run = run_playbook(
        PLAYBOOK,
        inventory=inventory(tmp_path, lifeline_disposable=True),
        lifeline_hosts="drill-target-not-in-the-inventory",
        drill_fault="crontab_nul_blocks",
        drill_confirm=True,
    )

    assert run.status == "failed"
    said = "No host matched lifeline_hosts=drill-target-not-in-the-inventory"
    assert [m for m in run.failures() if said in m], run.failures()
    plays = [e["event_data"]["play"] for e in run.events if e["event"] == "playbook_on_play_start"]
    assert plays == ["Refuse to run when lifeline_hosts matches no host"], "nothing ran after the refusal"


def test_a_drill_refuses_the_hosts_own_root_as_the_target_root(run_playbook, tmp_path):
    run = run_playbook(
        PLAYBOOK,
        inventory=inventory(tmp_path, lifeline_disposable=True),
        lifeline_hosts="localhost",
        drill_fault="crontab_nul_blocks",
        drill_confirm=True,
        drill_target_root="/",
    )

    assert run.status == "failed"
    assert [m for m in run.failures() if "is the host's own /" in m], run.failures()


@pytest.mark.parametrize(
    ("system", "fault", "broken_says"),
    [
        ("bookworm", "glibc_link_removed", "libc.so.6: cannot open shared object file"),
        ("bookworm", "glibc_file_deleted", "libc.so.6: cannot open shared object file"),
        ("bookworm", "crontab_nul_blocks", "NUL bytes"),
        # RPM roots real rpm installed (support/rpmroots.py): the recovery finds the package in
        # yum's or dnf's cache, where the planter left it.
        ("rhel6", "glibc_file_deleted_yum_cache", "libc.so.6: cannot open shared object file"),
        ("rhel8", "libc_truncated", "exit "),
    ],
)
def test_an_offline_drill_breaks_and_recovers_the_root(run_playbook, tmp_path, system, fault, broken_says):
    if system in rpmroots.LAYOUTS:
        root = rpmroots.root_copy(system, tmp_path / "root")
        package = rpmroots.package_file(system)
    else:
        root = disposable_root(tmp_path)
        [package] = (DEBS / system).glob("libc6_*_amd64.deb")
    reports = tmp_path / "reports"

    run = run_playbook(
        PLAYBOOK,
        inventory=inventory(tmp_path, lifeline_disposable=True),
        lifeline_hosts="localhost",
        drill_fault=fault,
        drill_confirm=True,
        drill_target_root=str(root),
        lifeline_report_dir=str(reports),
        drill_glibc_package=str(package),
    )

    assert run.status == "successful", run.failures()
    drilled = record(reports, fault)
    assert (drilled["result"], drilled["where"], drilled["broken"]["ok"]) == ("recovered", "offline", True)
    assert broken_says in drilled["broken"]["said"]
    # Once more, by the root's own programs and files.
    assert chroot(root, "/bin/ls", "/").returncode == 0
    if system in rpmroots.LAYOUTS:  # packed with what its programs link, not python's ssl
        assert chroot(root, "/usr/bin/python3", "-c", "import math").returncode == 0
    else:
        assert chroot(root, "/usr/bin/python3", "-c", "import math, ssl").returncode == 0
        assert b"\0" not in (root / "etc" / "crontab").read_bytes()
    # The recovery that ran is the real playbook's: its own report is there too.
    family = {"glibc": "restore-glibc", "crontab": "repair-crontab"}[drilled["family"]]
    assert len(list(reports.glob(f"{family}-localhost-*.json"))) == 1


# One mechanism of each of four planters: a login hook, a trusted host file, sudoers with its
# dropped program, a second uid 0 account.
PERSISTENCE = ["hooks:motd", "logins:rhosts", "services:sudoers_nopasswd", "accounts:uid0_account"]


def tree_state(root: Path) -> str:
    """Every entry of the root with its mode, size and modification time."""
    listing = ["find", str(root), "-printf", "%p %m %u %s %T@\\n"]
    return subprocess.run(listing, check=True, capture_output=True, text=True, timeout=120).stdout


def persistence_drill(run_playbook, tmp_path: Path, root: Path, reports: Path, mechanisms: list[str]):
    """An offline persistence_planted drill of ``mechanisms`` on ``root``, its record in ``reports``."""
    return run_playbook(
        PLAYBOOK,
        inventory=inventory(tmp_path, lifeline_disposable=True),
        lifeline_hosts="localhost",
        drill_fault="persistence_planted",
        drill_confirm=True,
        drill_target_root=str(root),
        lifeline_report_dir=str(reports),
        drill_persistence=mechanisms,
    )


def test_an_offline_drill_plants_persistence_and_the_quarantine_disarms_it(run_playbook, tmp_path):
    root = disposable_root(tmp_path)
    reports = tmp_path / "reports"

    run = persistence_drill(run_playbook, tmp_path, root, reports, PERSISTENCE)

    assert run.status == "successful", run.failures()
    drilled = record(reports, "persistence_planted")
    planted_dir = Path(drilled["planted_dir"])
    try:
        assert (drilled["result"], drilled["where"]) == ("recovered", "offline")
        assert drilled["broken"]["ok"] and drilled["recovered"]["ok"]
        assert drilled["persistence"] == PERSISTENCE
        assert {p["mechanism"] for p in drilled["planted_paths"]} == set(PERSISTENCE)
        assert planted_dir.parent == Path("/var/tmp"), "the record lies outside the target root"
        # Once more, by reading the root's files back: the hook and .rhosts moved away, the sudoers
        # lines commented and its program moved, toor locked.
        assert not (root / "etc/update-motd.d/137-python-upgrades").exists()
        assert not (root / "root/.rhosts").exists()
        sudoers = (root / "etc/sudoers.d/svc-maintenance").read_text().splitlines()
        assert [line for line in sudoers if "NOPASSWD" in line and not line.startswith("#")] == []
        assert not (root / "var/tmp/.lifeline-sudo").exists()
        passwd = [line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("toor:")]
        shadow = [line for line in (root / "etc/shadow").read_text().splitlines() if line.startswith("toor:")]
        assert passwd[0].endswith("/nologin") and shadow[0].split(":")[1].startswith("!"), (passwd, shadow)
        # The recovery that ran is repair-crontab's: its own report is there too.
        assert len(list(reports.glob("repair-crontab-localhost-*.json"))) == 1
    finally:
        shutil.rmtree(planted_dir, ignore_errors=True)


def test_a_persistence_drill_refuses_what_no_planter_plants_and_plants_nothing(run_playbook, tmp_path):
    root = disposable_root(tmp_path)
    before = tree_state(root)

    refused = ["hooks:motd", "hooks:no_such_mechanism", "tampering:binary_wrapper"]
    run = persistence_drill(run_playbook, tmp_path, root, tmp_path / "r", refused)

    assert run.status == "failed"
    said = [m for m in run.failures() if "Nothing was planted" in m]
    assert said, run.failures()
    assert "plants: hooks:no_such_mechanism (" in said[0], said
    assert "tampering:binary_wrapper: a replaced packaged program is never moved" in said[0], said
    assert tree_state(root) == before
    assert not (tmp_path / "r").exists(), "no record: nothing was planted"
