"""cron/logs.py: reading the crontab errors cron already logged: real log lines, rotations, gzip,
hostile logs, the journal.

tests/unit/data/cron/logs/ holds the syslogs the oracle lane's cron wrote on bullseye (rsyslog's
traditional timestamps), bookworm and trixie (RFC 3339); the cronie lines are written after its source.
"""

from __future__ import annotations

import calendar
import gzip
import os
import shutil
import subprocess
import time
import zlib
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import logs as cron_logs
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.logs import (
    LoggedError,
    parse_line,
    scan_logs,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import ToolError

from support.paths import DATA
from support.runners import FakeRunner, run

LOGS = DATA / "cron" / "logs"

# (log line, kind, crontab, timestamp, program, pid)
ERRORS = [
    (
        "Nov 22 13:46:21 3bba2a69fb2b cron[14]: Error: bad minute; while reading /etc/crontab",
        "bad minute",
        "/etc/crontab",
        "Nov 22 13:46:21",
        "cron",
        14,
    ),
    (
        "2026-11-22T13:46:24.870396+00:00 20435d62b45c cron[14]: (*system*) ERROR "
        "(Syntax error, this crontab file will be ignored)",
        "syntax error",
        "/etc/crontab",
        "2026-11-22T13:46:24.870396+00:00",
        "cron",
        14,
    ),
    (
        "Nov 22 13:46:21 3bba2a69fb2b cron[14]: Error: bad username; while reading /etc/cron.d/nouser",
        "bad username",
        "/etc/cron.d/nouser",
        "Nov 22 13:46:21",
        "cron",
        14,
    ),
    (
        "Nov  2 03:04:05 host cron[7]: Error: command too long; while reading crontab for user alice",
        "command too long",
        "/var/spool/cron/crontabs/alice",
        "Nov  2 03:04:05",
        "cron",
        7,
    ),
    (
        "2026-11-22T13:46:24.875255+00:00 20435d62b45c cron[14]: (*system*nonl) ERROR "
        "(Missing newline before EOF, this crontab file will be ignored)",
        "missing newline before EOF",
        "/etc/cron.d/nonl",
        "2026-11-22T13:46:24.875255+00:00",
        "cron",
        14,
    ),
    (
        "2026-11-22T13:46:24.880734+00:00 20435d62b45c cron[14]: (*system*lines10004) ERROR "
        "(crontab must not be longer than 10000 lines, this crontab file will be ignored)",
        "crontab must not be longer than 10000 lines",
        "/etc/cron.d/lines10004",
        "2026-11-22T13:46:24.880734+00:00",
        "cron",
        14,
    ),
    (
        "2026-11-22T13:46:24.873704+00:00 20435d62b45c cron[14]: (*system*gwrite) INSECURE MODE "
        "(group/other writable) (/etc/cron.d/gwrite)",
        "INSECURE MODE (group/other writable)",
        "/etc/cron.d/gwrite",
        "2026-11-22T13:46:24.873704+00:00",
        "cron",
        14,
    ),
    (
        "2026-11-22T13:46:24.883565+00:00 20435d62b45c cron[14]: (umode644) INSECURE MODE "
        "(mode 0600 expected) (crontabs/umode644)",
        "INSECURE MODE (mode 0600 expected)",
        "/var/spool/cron/crontabs/umode644",
        "2026-11-22T13:46:24.883565+00:00",
        "cron",
        14,
    ),
    (
        "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (uwrongowner) WRONG FILE OWNER (crontabs/uwrongowner)",
        "WRONG FILE OWNER",
        "/var/spool/cron/crontabs/uwrongowner",
        "Nov 22 13:46:21",
        "cron",
        14,
    ),
    (
        "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (*system*ownedlink) WRONG SYMLINK OWNER "
        "(/etc/cron.d/ownedlink)",
        "WRONG SYMLINK OWNER",
        "/etc/cron.d/ownedlink",
        "Nov 22 13:46:21",
        "cron",
        14,
    ),
    (
        "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (*system*hardlink1) NUMBER OF HARD LINKS > 1 "
        "(/etc/cron.d/hardlink1)",
        "NUMBER OF HARD LINKS > 1",
        "/etc/cron.d/hardlink1",
        "Nov 22 13:46:21",
        "cron",
        14,
    ),
    (
        "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (*system*adir) NOT A REGULAR FILE (/etc/cron.d/adir)",
        "NOT A REGULAR FILE",
        "/etc/cron.d/adir",
        "Nov 22 13:46:21",
        "cron",
        14,
    ),
    (
        "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (usymlink) CAN'T OPEN (crontabs/usymlink)",
        "CAN'T OPEN",
        "/var/spool/cron/crontabs/usymlink",
        "Nov 22 13:46:21",
        "cron",
        14,
    ),
    (
        "2026-11-22T13:46:24.883544+00:00 20435d62b45c cron[14]: (ghost) ORPHAN (no passwd entry)",
        "ORPHAN",
        "/var/spool/cron/crontabs/ghost",
        "2026-11-22T13:46:24.883544+00:00",
        "cron",
        14,
    ),
    # Older Debian cron, before its mode checks were reworded.
    (
        "Nov 02 17:10:01 testbox CRON[2210]: (testuser) WRONG INODE INFO (crontabs/testuser)",
        "WRONG INODE INFO",
        "/var/spool/cron/crontabs/testuser",
        "Nov 02 17:10:01",
        "CRON",
        2210,
    ),
    # cronie (Red Hat): log_it("CRON", pid, ecode, file) and its file checks.
    (
        "Mar  1 10:00:01 rhel crond[812]: (CRON) bad minute (/etc/crontab)",
        "bad minute",
        "/etc/crontab",
        "Mar  1 10:00:01",
        "crond",
        812,
    ),
    (
        "Mar  1 10:00:01 rhel crond[812]: (CRON) bad username (/etc/cron.d/0hourly)",
        "bad username",
        "/etc/cron.d/0hourly",
        "Mar  1 10:00:01",
        "crond",
        812,
    ),
    (
        "Mar  1 10:00:01 rhel crond[812]: (root) BAD FILE MODE (/etc/cron.d/job)",
        "BAD FILE MODE",
        "/etc/cron.d/job",
        "Mar  1 10:00:01",
        "crond",
        812,
    ),
    (
        "Mar  1 10:00:01 rhel crond[812]: (alice) WRONG FILE OWNER (/var/spool/cron/alice)",
        "WRONG FILE OWNER",
        "/var/spool/cron/alice",
        "Mar  1 10:00:01",
        "crond",
        812,
    ),
    (
        "Mar  1 10:00:01 rhel crond[812]: (root) CAN'T OPEN (/etc/cron.d/gone): No such file or directory",
        "CAN'T OPEN",
        "/etc/cron.d/gone",
        "Mar  1 10:00:01",
        "crond",
        812,
    ),
    (
        "Mar  1 10:00:01 rhel crond[812]: (bob) ORPHAN (no passwd entry)",
        "ORPHAN",
        "/var/spool/cron/bob",
        "Mar  1 10:00:01",
        "crond",
        812,
    ),
    (
        "2024-03-01T10:00:01+01:00 rhel crond[812]: (root) BAD LINK COUNT (/var/spool/cron/root)",
        "BAD LINK COUNT",
        "/var/spool/cron/root",
        "2024-03-01T10:00:01+01:00",
        "crond",
        812,
    ),
]

# Lines that are not a crontab error of cron's: other programs, cron's own news, jobs.
NOT_ERRORS = [
    "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (CRON) INFO (pidfile fd = 3)",
    "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (CRON) INFO (Running @reboot jobs)",
    "Nov 22 13:46:21 3bba2a69fb2b CRON[28]: (root) CMD (-)",
    "Nov 22 13:46:21 3bba2a69fb2b CRON[30]: (CRON) info (No MTA installed, discarding output)",
    "2026-11-22T13:44:50.962597+00:00 8bb783f2e60e CRON[17]: Authentication failure",
    "Nov 22 13:46:21 3bba2a69fb2b cron[14]: (*system*) RELOAD (/etc/crontab)",
    "Nov 22 13:46:22 3bba2a69fb2b rsyslogd: imklog: cannot open kernel log (/proc/kmsg)",
    "Nov 22 13:46:22 host anacron[99]: Error: bad minute; while reading /etc/crontab",
    "Nov 22 13:46:22 host sshd[99]: (*system*) WRONG FILE OWNER (/etc/crontab)",
    "Nov 22 13:46:22 host cron[14] Error: bad minute; while reading /etc/crontab",
    "not a log line at all",
    "",
]


@pytest.mark.parametrize(("line", "kind", "path", "timestamp", "program", "pid"), ERRORS)
def test_error_lines(line, kind, path, timestamp, program, pid):
    error = parse_line(line, "/var/log/syslog", 7)
    assert error is not None
    assert (error.kind, error.crontab, error.timestamp, error.program, error.pid) == (
        kind,
        path,
        timestamp,
        program,
        pid,
    )
    assert (error.log, error.line) == ("/var/log/syslog", 7)
    assert line.endswith(error.message) and error.message.startswith(("Error:", "("))


@pytest.mark.parametrize("line", NOT_ERRORS)
def test_lines_that_are_no_crontab_error(line):
    assert parse_line(line) is None


@pytest.mark.parametrize("suite", ["bullseye", "bookworm", "trixie"])
def test_a_whole_captured_syslog(tmp_path, suite):
    (tmp_path / "var" / "log").mkdir(parents=True)
    shutil.copy(LOGS / f"{suite}.syslog", tmp_path / "var" / "log" / "syslog")
    errors = scan_logs(str(tmp_path))
    lines = (LOGS / f"{suite}.syslog").read_text().splitlines()
    # Every "Error:" line and every file verdict of cron's is found, nothing else.
    expected = [n for n, text in enumerate(lines, start=1) if "cron[" in text and "INFO" not in text]
    assert [e.line for e in errors] == expected
    kinds = Counter(e.kind for e in errors)
    assert kinds["syntax error"] > 50 and kinds["bad minute"] > 30
    for kind in ("bad hour", "bad day-of-month", "bad month", "bad day-of-week", "bad command"):
        assert kinds[kind] >= 4, kind
    assert {"missing newline before EOF", "ORPHAN", "WRONG FILE OWNER", "NOT A REGULAR FILE"} <= set(kinds)
    # Each refused line comes with cron's verdict on its file, right after it.
    for error, after in pairwise(errors):
        if error.message.startswith("Error:"):
            assert (after.kind, after.crontab, after.line) == ("syntax error", error.crontab, error.line + 1)
    # The incident: NUL blocks in /etc/crontab.
    assert {e.kind for e in errors if e.crontab == "/etc/crontab"} == {"bad minute", "syntax error"}
    assert all(e.host and e.program == "cron" for e in errors)


def _root_with_logs(tmp_path: Path, files: dict[str, bytes]) -> str:
    log_dir = tmp_path / "var" / "log"
    log_dir.mkdir(parents=True)
    for name, data in files.items():
        (log_dir / name).write_bytes(data)
    return str(tmp_path)


def _line(n: int, path: str = "/etc/crontab", kind: str = "bad minute") -> bytes:
    return f"Nov 22 13:20:{n:02d} host cron[1]: Error: {kind}; while reading {path}\n".encode()


def test_rotations_gzip_and_every_log_family(tmp_path):
    two_members = gzip.compress(_line(1)) + gzip.compress(b"noise\n" + _line(2))
    root = _root_with_logs(
        tmp_path,
        {
            "syslog": b"Nov 22 13:20:09 host kernel: x\n" + _line(9),
            "syslog.1": _line(8),
            "syslog.2.gz": gzip.compress(_line(7)),
            "syslog.10.gz": two_members,
            "cron.log": _line(20, "/etc/cron.d/a"),
            "cron-20240101.gz": gzip.compress(_line(18, "/etc/cron.d/b")),
            "cron-20240102": _line(19, "/etc/cron.d/c"),
            "messages": _line(30, "/etc/cron.d/m"),
            "daemon.log.1": _line(40, "/etc/cron.d/d"),
            "syslog.bak": _line(50),
            "auth.log": _line(51),
        },
    )
    notes: list[str] = []
    errors = scan_logs(root, notes=notes)
    assert [(e.log, e.line, e.timestamp[-2:]) for e in errors] == [
        ("/var/log/cron-20240101.gz", 1, "18"),
        ("/var/log/cron-20240102", 1, "19"),
        ("/var/log/cron.log", 1, "20"),
        ("/var/log/daemon.log.1", 1, "40"),
        ("/var/log/messages", 1, "30"),
        ("/var/log/syslog.10.gz", 1, "01"),
        ("/var/log/syslog.10.gz", 3, "02"),
        ("/var/log/syslog.2.gz", 1, "07"),
        ("/var/log/syslog.1", 1, "08"),
        ("/var/log/syslog", 2, "09"),
    ]
    assert notes == []


def test_no_log_directory_is_no_error(tmp_path):
    notes: list[str] = []
    assert scan_logs(str(tmp_path), notes=notes) == [] and notes == []


def test_links_stay_inside_the_root(tmp_path):
    """An absolute link in the target resolves against the target, never the rescuer's /."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "messages").write_bytes(_line(5, "/etc/cron.d/inside"))
    log_dir = tmp_path / "var" / "log"
    log_dir.mkdir(parents=True)
    os.symlink("/elsewhere/messages", log_dir / "messages")
    os.symlink("/../../../../../../var/log/syslog", log_dir / "syslog")  # the rescuer's syslog
    os.symlink("daemon.log", log_dir / "daemon.log")  # a loop
    notes: list[str] = []
    errors = scan_logs(str(tmp_path), notes=notes)
    assert [(e.log, e.crontab) for e in errors] == [("/var/log/messages", "/etc/cron.d/inside")]
    assert any("daemon.log" in note for note in notes)


def test_a_linked_log_directory(tmp_path):
    (tmp_path / "data" / "logs").mkdir(parents=True)
    (tmp_path / "data" / "logs" / "syslog").write_bytes(_line(3))
    (tmp_path / "var").mkdir()
    os.symlink("/data/logs", tmp_path / "var" / "log")
    (error,) = scan_logs(str(tmp_path))
    assert error.log == "/data/logs/syslog"


def test_devices_fifos_and_directories_are_never_opened(tmp_path, deadline):
    log_dir = tmp_path / "var" / "log"
    log_dir.mkdir(parents=True)
    os.mkfifo(log_dir / "syslog")  # opening it would block forever
    (log_dir / "cron").mkdir()  # Red Hat's name, but a directory here
    os.symlink("/dev/zero", log_dir / "messages")  # a device in the target, never read
    notes: list[str] = []
    with deadline(5):
        assert scan_logs(str(tmp_path), notes=notes) == []
    assert len(notes) == 3 and all("not a regular file" in note or "not read" in note for note in notes)


def test_a_gzip_bomb_is_cut(tmp_path, deadline):
    engine = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\n" * (1 << 20)
    bomb = b"".join(engine.compress(block) for _ in range(80)) + engine.flush()  # 80 MB of newlines
    assert len(bomb) < 1 << 20
    root = _root_with_logs(tmp_path, {"syslog.2.gz": gzip.compress(_line(1)) + bomb})
    notes: list[str] = []
    started = time.process_time()  # CPU time: a busy machine does not stretch it
    with deadline(20):
        errors = scan_logs(root, notes=notes)
    assert [e.line for e in errors] == [1]
    assert notes == [
        f"/var/log/syslog.2.gz: only the first {cron_logs.MAX_BYTES} bytes of its decompressed text were "
        "read (it holds more)"
    ]
    assert time.process_time() - started < 10


def test_a_damaged_gzip_keeps_what_came_before(tmp_path):
    data = gzip.compress(_line(1) + _line(2) * 2000)
    root = _root_with_logs(tmp_path, {"syslog.3.gz": data[: len(data) // 2], "syslog.4.gz": b"not gzip"})
    notes: list[str] = []
    errors = scan_logs(root, notes=notes)
    assert errors and errors[0].line == 1 and errors[0].log == "/var/log/syslog.3.gz"
    assert any("syslog.3.gz: the gzip data ends early" in note for note in notes)
    assert any("syslog.4.gz: damaged gzip data" in note for note in notes)


def test_a_large_plain_log_is_read_from_its_end(tmp_path):
    filler = b"Nov 22 13:20:00 host kernel: " + b"x" * 70 + b"\n"  # 100 bytes a line
    root = _root_with_logs(tmp_path, {"syslog": _line(1) + filler * 5000 + _line(2)})
    notes: list[str] = []
    errors = scan_logs(root, max_bytes=10_000, notes=notes)
    assert [(e.line, e.timestamp[-2:]) for e in errors] == [(5002, "02")]
    assert len(notes) == 1 and "only its last 10000 bytes" in notes[0]
    whole = scan_logs(root)
    assert [e.line for e in whole] == [1, 5002]


def test_undecodable_bytes_do_not_stop_the_reader(tmp_path):
    named = b"Nov 22 13:20:04 host cron[1]: Error: bad hour; while reading /etc/cron.d/\xe9t\xe9\n"
    root = _root_with_logs(tmp_path, {"syslog": b"\xff\xfe garbage\n\0\0\0\n" + named})
    (error,) = scan_logs(root)
    assert error.line == 3 and error.crontab == "/etc/cron.d/\udce9t\udce9"


def test_logged_error_is_a_plain_record():
    error = LoggedError("/var/log/syslog", 1, "Nov 22 13:20:01", "bad minute", "/etc/crontab", "Error: x")
    assert (error.host, error.program, error.pid) == ("", "", 0)


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-22T13:46:24.873704+00:00", calendar.timegm((2026, 11, 22, 13, 46, 24)) + 0.873704),
        ("2026-11-22T14:46:24+01:00", calendar.timegm((2026, 11, 22, 13, 46, 24))),
        ("Nov 22 13:46:21", time.mktime((2026, 11, 22, 13, 46, 21, 0, 0, -1))),
        ("Feb  3 01:02:03", time.mktime((2026, 2, 3, 1, 2, 3, 0, 0, -1))),
        ("yesterday", None),
        ("Foo 22 13:46:21", None),
    ],
)
def test_seconds_of_reads_both_timestamp_forms(timestamp, expected):
    assert cron_logs.seconds_of(timestamp, 2026) == expected


# ---- the systemd journal (a host without rsyslog) ------------------------------------------------

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
MACHINE_ID = "0123456789abcdef0123456789abcdef"


def export_entry(fields: dict[str, str | bytes], when: int, monotonic: int) -> bytes:
    """One entry in the journal export format; bytes values are written in its binary form."""
    out = f"__REALTIME_TIMESTAMP={when}\n__MONOTONIC_TIMESTAMP={monotonic}\n_BOOT_ID={'1' * 32}\n".encode()
    for name, value in fields.items():
        if isinstance(value, bytes):
            out += name.encode() + b"\n" + len(value).to_bytes(8, "little") + value + b"\n"
        else:
            out += f"{name}={value}\n".encode()
    return out + b"\n"


def write_journal(root: Path, entries: list[dict[str, str | bytes]], start: int) -> Path:
    """A real journal file made by systemd-journal-remote, where the host keeps it."""
    directory = root / "var" / "log" / "journal" / MACHINE_ID
    directory.mkdir(parents=True)
    export = root.parent / "entries.export"
    export.write_bytes(
        b"".join(export_entry(e, start + i * 1_000_000, 10**6 * (i + 1)) for i, e in enumerate(entries))
    )
    journal = directory / "system.journal"
    subprocess.run([JOURNAL_REMOTE, f"--output={journal}", str(export)], check=True, capture_output=True)
    return journal


def test_cron_errors_are_read_from_a_real_journal_and_nothing_else(tmp_path):
    root = tmp_path / "root"
    start = 1_795_375_688_000_000  # microseconds
    write_journal(
        root,
        [
            {
                "SYSLOG_IDENTIFIER": "cron",
                "_PID": "16",
                "_HOSTNAME": "patient",
                "MESSAGE": "Error: bad minute; while reading /etc/crontab",
            },
            {
                "SYSLOG_IDENTIFIER": "cron",
                "_PID": "16",
                "_HOSTNAME": "patient",
                "MESSAGE": "(*system*) ERROR (Syntax error, this crontab file will be ignored)",
            },
            {"SYSLOG_IDENTIFIER": "CRON", "_PID": "40", "MESSAGE": "(root) CMD (date >> /var/tmp/x.log)"},
            {
                "SYSLOG_IDENTIFIER": "sshd",
                "_PID": "41",
                "MESSAGE": "Error: bad minute; while reading /etc/crontab",
            },
            {
                "SYSLOG_IDENTIFIER": "cron",
                "_PID": "16",
                "MESSAGE": b"Error: bad hour; while reading /etc/cron.d/j\xff",
            },
            {"SYSLOG_IDENTIFIER": "crond", "_PID": "9", "MESSAGE": "(CRON) bad minute (/etc/crontab)"},
        ],
        start,
    )
    notes: list[str] = []

    found = cron_logs.scan_journal(str(root), run, notes)

    assert notes == []
    assert [(e.kind, e.crontab, e.program, e.pid) for e in found] == [
        ("bad minute", "/etc/crontab", "cron", 16),
        ("syntax error", "/etc/crontab", "cron", 16),
        ("bad hour", "/etc/cron.d/j\ufffd", "cron", 16),
        ("bad minute", "/etc/crontab", "crond", 9),
    ]
    assert found[0].log == "journal:/var/log/journal" and found[0].host == "patient"
    assert cron_logs.seconds_of(found[0].timestamp, 2026) == start / 1e6
    assert cron_logs.seconds_of(found[1].timestamp, 2026) == start / 1e6 + 1


def test_a_journal_link_out_of_the_root_is_not_followed_to_the_rescuers_journal(tmp_path):
    elsewhere = tmp_path / "rescuer"
    write_journal(
        elsewhere,
        [{"SYSLOG_IDENTIFIER": "cron", "MESSAGE": "Error: bad minute; while reading /etc/crontab"}],
        1,
    )
    root = tmp_path / "root"
    (root / "var" / "log").mkdir(parents=True)
    (root / "var" / "log" / "journal").symlink_to(elsewhere / "var" / "log" / "journal")
    recording = FakeRunner(otherwise=run)

    assert cron_logs.scan_journal(str(root), recording, []) == []
    assert all(str(elsewhere) not in " ".join(argv) for argv in recording.calls)


def test_without_journalctl_or_a_journal_the_scan_says_so_and_finds_nothing(tmp_path):
    root = tmp_path / "root"
    write_journal(
        root, [{"SYSLOG_IDENTIFIER": "cron", "MESSAGE": "Error: bad minute; while reading /etc/crontab"}], 1
    )

    def missing(argv):
        raise ToolError("journalctl is not installed on this rescuer")

    notes: list[str] = []
    assert cron_logs.scan_journal(str(root), missing, notes) == []
    assert notes == [
        "the journal in /var/log/journal was not read: journalctl is not installed on this rescuer"
    ]
    bare = tmp_path / "bare"
    (bare / "etc").mkdir(parents=True)
    assert cron_logs.scan_journal(str(bare), missing, notes) == [] and len(notes) == 1


def test_journal_lines_that_are_not_json_or_not_crons_are_skipped():
    lines = [
        "not json",
        '{"SYSLOG_IDENTIFIER": "cron", "MESSAGE": 42}',
        '{"SYSLOG_IDENTIFIER": "cron", "MESSAGE": "Error: bad minute; while reading /etc/crontab",'
        ' "__REALTIME_TIMESTAMP": "garbage", "_PID": "x"}',
    ]
    [error] = cron_logs.parse_journal(lines)
    assert (error.line, error.pid, error.timestamp) == (3, 0, "1970-01-01T00:00:00+00:00")


def test_a_journal_file_that_is_a_link_is_not_read(tmp_path):
    """A journal file linked to the rescuer's own journal must not be read as the target's."""
    elsewhere = tmp_path / "rescuer"
    theirs = write_journal(
        elsewhere,
        [{"SYSLOG_IDENTIFIER": "cron", "MESSAGE": "Error: bad minute; while reading /etc/crontab"}],
        1,
    )
    root = tmp_path / "root"
    directory = root / "var" / "log" / "journal" / MACHINE_ID
    directory.mkdir(parents=True)
    (directory / "system.journal").symlink_to(theirs)
    (root / "var" / "log" / "journal" / "other").symlink_to(theirs.parent)

    assert cron_logs.journal_files(str(root / "var" / "log" / "journal")) == []
    assert cron_logs.scan_journal(str(root), run, []) == []
