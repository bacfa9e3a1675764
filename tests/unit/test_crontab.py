"""The cron grammar: tables of lines Debian's cron accepts and refuses, file rules, hostile bytes."""

from __future__ import annotations

import time

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils import crontab
from ansible_collections.lifeline.rescue.plugins.module_utils.crontab import (
    ByteFinding,
    byte_findings,
    check_file_rules,
    parse_line,
    parse_text,
)

# (line, system format, expected kind)
VALID = [
    ("", False, "blank"),
    ("   \t ", True, "blank"),
    ("# m h dom mon dow user command", True, "comment"),
    ("   # indented comment", False, "comment"),
    ("#0 * * * * root broken but commented", True, "comment"),
    ("SHELL=/bin/sh", True, "env"),
    ("PATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin", True, "env"),
    ('MAILTO=""', False, "env"),
    ("MAILTO=ops@example.com", False, "env"),
    ("MAILTO = admin", False, "env"),
    ("CRON_TZ=Europe/Riga", False, "env"),
    ("  HOME = '/srv/app'  ", True, "env"),
    ('"QUOTED NAME"=x', False, "env"),
    ("EMPTY=", False, "env"),
    ("17 *\t* * *\troot    cd / && run-parts --report /etc/cron.hourly", True, "job"),
    (
        "25 6 * * * root test -x /usr/sbin/anacron || ( cd / && run-parts --report /etc/cron.daily )",
        True,
        "job",
    ),
    ("47 6 * * 7 root test -x /usr/sbin/anacron", True, "job"),
    ("52 6 1 * * root test -x /usr/sbin/anacron", True, "job"),
    ("*/3 * * * * root /tmp/.x/run", True, "job"),
    ("1-10/2 * * * * root true", True, "job"),
    ("0,15,30,45 * * * * root true", True, "job"),
    ("0 0-23/6 * * * root true", True, "job"),
    ("0 0 1,15 * * root true", True, "job"),
    ("0 0 31 12 * root true", True, "job"),
    ("0 0 * jan * root true", True, "job"),
    ("0 0 * JAN-Dec * root true", True, "job"),
    ("0 0 * jan-jun/2 * root true", True, "job"),
    ("0 0 * * sun root true", True, "job"),
    ("0 0 * * Mon-FRI root true", True, "job"),
    ("0 0 * * 0 root true", True, "job"),
    ("0 0 * * 7 root true", True, "job"),
    ("0 0 * * 1-7 root true", True, "job"),
    ("0 0 * * */2 root true", True, "job"),
    ("@reboot root /usr/local/bin/start", True, "job"),
    ("@yearly root true", True, "job"),
    ("@annually root true", True, "job"),
    ("@monthly root true", True, "job"),
    ("@weekly root true", True, "job"),
    ("@daily root true", True, "job"),
    ("@midnight root true", True, "job"),
    ("@hourly\troot true", True, "job"),
    ("  5 4 * * * root indented", True, "job"),
    ("* * * * * echo hello", False, "job"),
    ("@reboot /home/u/start.sh", False, "job"),
    ("0 9 * * 1-5 mail -s hi u%body%more", False, "job"),
    ("59 23 31 12 6 true", False, "job"),
    ("007 05 * * * leading zeros", False, "job"),
    # Vixie cron skips what follows a valid value up to the next blank: accepted, with a note.
    ("5# * * * * junk after minute", False, "job"),
    ("*x * * * * star then junk", False, "job"),
    # 3.0pl1 has no "N/step": the "/10" is skipped, the job runs at minute 5 only.
    ("5/10 * * * * single value then step", False, "job"),
    # A reversed range is accepted and selects nothing.
    ("10-5 * * * * never runs", False, "job"),
]

# (line, system format, cron's error)
INVALID = [
    ("\0\0\0\0\0\0\0\0", True, "bad minute"),
    ("\0\0\0* * * * * root true", True, "bad minute"),
    ("60 * * * * root true", True, "bad minute"),
    ("-1 * * * * root true", True, "bad minute"),
    ("a * * * * root true", True, "bad minute"),
    ("*/0 * * * * root true", True, "bad minute"),
    ("0-60 * * * * root true", True, "bad minute"),
    ("5-64/30 * * * * root true", True, "bad minute"),
    ("1-10/x * * * * root true", True, "bad minute"),
    (",5 * * * * root true", True, "bad minute"),
    ("5, * * * * root true", True, "bad minute"),
    ("jan * * * * root true", True, "bad minute"),
    ("1" * 100 + " * * * * root true", True, "bad minute"),
    ("0 24 * * * root true", True, "bad hour"),
    ("0 -5 * * * root true", True, "bad hour"),
    ("0 */0 * * * root true", True, "bad hour"),
    ("0 0-24 * * * root true", True, "bad hour"),
    ("0", False, "bad hour"),
    ("0 0 0 * * root true", True, "bad day-of-month"),
    ("0 0 32 * * root true", True, "bad day-of-month"),
    ("0 0 1-32 * * root true", True, "bad day-of-month"),
    ("0 0 mon * * root true", True, "bad day-of-month"),
    ("0 0", False, "bad day-of-month"),
    ("0 0 * 0 * root true", True, "bad month"),
    ("0 0 * 13 * root true", True, "bad month"),
    ("0 0 * january * root true", True, "bad month"),
    ("0 0 * sun * root true", True, "bad month"),
    ("0 0 * jan-13 * root true", True, "bad month"),
    ("0 0 *", False, "bad month"),
    ("0 0 * * 8 root true", True, "bad day-of-week"),
    ("0 0 * * 0-8 root true", True, "bad day-of-week"),
    ("0 0 * * sunday root true", True, "bad day-of-week"),
    ("0 0 * * jan root true", True, "bad day-of-week"),
    ("0 0 * * */0 root true", True, "bad day-of-week"),
    ("0 0 * *", False, "bad day-of-week"),
    ("0 0 * * ", True, "bad day-of-week"),
    ("0 0 * * * ", True, "bad username"),
    ("@daily", True, "bad username"),
    ("0 0 * * * root", True, "bad command"),
    ("0 0 * * * root   ", True, "bad command"),
    ("@reboot root", True, "bad command"),
    ("0 0 * * *", False, "bad command"),
    ("@hourly", False, "bad command"),
    ("@hourly   \t", False, "bad command"),
    ("@every_minute root true", True, "bad time specifier"),
    ("@Daily root true", True, "bad time specifier"),
    ("@ root true", True, "bad time specifier"),
    ("=value", False, "bad minute"),
    ('A="unterminated', False, "bad minute"),
    ("A='x' trailing", False, "bad minute"),
]


@pytest.mark.parametrize(("line", "system", "kind"), VALID)
def test_valid_lines(line, system, kind):
    entry = parse_line(line, system)
    assert entry.kind == kind, entry
    assert entry.error == ""


@pytest.mark.parametrize(("line", "system", "error"), INVALID)
def test_invalid_lines(line, system, error):
    entry = parse_line(line, system)
    assert (entry.kind, entry.error) == ("error", error), entry


def test_tables_are_large_enough():
    assert len(VALID) >= 40 and len(INVALID) >= 40
    assert {s for _, s, _ in VALID} == {True, False} == {s for _, s, _ in INVALID}


def test_job_fields_user_and_schedule():
    entry = parse_line("*/20 1-3 * jan,Mar Sun  root  /usr/bin/x --flag  ", True)
    assert entry.kind == "job"
    assert entry.fields == ("*/20", "1-3", "*", "jan,Mar", "Sun")
    assert entry.user == "root"
    assert entry.command == "/usr/bin/x --flag  "
    minute, hour, dom, month, dow = entry.schedule
    assert minute == {0, 20, 40}
    assert hour == {1, 2, 3}
    assert dom == set(range(1, 32))
    assert month == {1, 3}
    assert dow == {0, 7}


def test_sunday_is_zero_and_seven():
    assert parse_line("0 0 * * 7 true", False).schedule[4] == {0, 7}
    assert parse_line("0 0 * * 5-7 true", False).schedule[4] == {0, 5, 6, 7}
    assert parse_line("0 0 * * mon-fri true", False).schedule[4] == {1, 2, 3, 4, 5}


def test_user_crontab_has_no_user_field():
    entry = parse_line("0 0 * * * root true", False)
    assert (entry.user, entry.command) == ("", "root true")


def test_special_forms():
    entry = parse_line("@reboot   root   /opt/start", True)
    assert (entry.special, entry.user, entry.command, entry.fields) == ("@reboot", "root", "/opt/start", ())


def test_known_users():
    users = {"root", "www-data"}
    assert parse_line("0 0 * * * www-data true", True, users=users).kind == "job"
    entry = parse_line("0 0 * * * nobody2 true", True, users=users)
    assert (entry.error, entry.user) == ("bad username", "nobody2")


def test_environment_values():
    assert (parse_line("MAILTO = admin  ", False).name, parse_line("MAILTO = admin  ", False).value) == (
        "MAILTO",
        "admin",
    )
    entry = parse_line("  HOME = '/srv/app'  ", True)
    assert (entry.name, entry.value) == ("HOME", "/srv/app")
    entry = parse_line('"QUOTED NAME"="a # b"', False)
    assert (entry.name, entry.value) == ("QUOTED NAME", "a # b")
    assert parse_line('MAILTO=""', False).value == ""


def test_percent_becomes_stdin():
    entry = parse_line("0 9 * * * mail -s hi u%line one%line two", False)
    assert entry.command == "mail -s hi u%line one%line two"
    assert entry.shell_command == "mail -s hi u"
    assert entry.stdin == "line one\nline two"
    entry = parse_line(r"0 0 * * * root date +\%F > /tmp/d", True)
    assert (entry.shell_command, entry.stdin) == ("date +%F > /tmp/d", None)


def test_silently_accepted_oddities_are_noted():
    assert parse_line("5# * * * * x", False).notes
    assert parse_line("5/10 * * * * x", False).schedule[0] == {5}
    entry = parse_line("10-5 * * * * x", False)
    assert entry.schedule[0] == frozenset() and "selects nothing" in entry.notes[0]
    assert parse_line("0 0 * * * " + "x" * 1200, False).notes


def test_missing_newline_before_eof():
    entries = parse_text("SHELL=/bin/sh\n0 0 * * * root a\n0 1 * * * root b", True)
    assert [e.kind for e in entries] == ["env", "job", "error"]
    assert entries[2].error == "bad command" and entries[2].notes == ["missing newline before EOF"]
    assert [e.kind for e in parse_text("# only a comment", True)] == ["comment"]


def test_a_megabyte_line(deadline):
    line = "0 0 * * * root echo " + "a" * (1 << 20)
    with deadline(5):
        entry = parse_line(line, True)
        findings = byte_findings((line + "\n").encode())
    assert entry.kind == "job" and findings == []
    with deadline(5):
        assert parse_line("1" * (1 << 20), False).error == "bad minute"
        assert parse_line("* " * (1 << 19), False).kind == "job"


# (name, mode, uid, data, kind, expected words; [] means cron reads the file)
FILE_RULES = [
    ("crontab", 0o100644, 0, b"# ok\n", "crontab", []),
    ("php", 0o100644, 0, b"# ok\n", "cron.d", []),
    ("e2scrub_all", 0o644, 0, b"", "cron.d", []),
    ("php.dpkg-old", 0o100644, 0, b"\n", "cron.d", ["holding a dot"]),
    (".placeholder", 0o100644, 0, b"\n", "cron.d", ["holding a dot"]),
    ("back~up", 0o100644, 0, b"\n", "cron.d", ["[A-Za-z0-9_-]"]),
    ("job", 0o100664, 0, b"\n", "cron.d", ["WRONG INODE INFO"]),
    ("job", 0o100646, 0, b"\n", "cron.d", ["WRONG INODE INFO"]),
    ("job", 0o100644, 1000, b"\n", "cron.d", ["WRONG FILE OWNER"]),
    ("crontab", 0o100666, 33, b"\n", "crontab", ["WRONG FILE OWNER", "WRONG INODE INFO"]),
    ("crontab", 0o100644, 0, b"0 0 * * * root x", "crontab", ["missing newline before EOF"]),
    ("crontab", 0o040755, 0, b"", "crontab", ["not a regular file"]),
    ("alice", 0o100600, 1000, b"* * * * * x\n", "user", []),
]


@pytest.mark.parametrize(("name", "mode", "uid", "data", "kind", "words"), FILE_RULES)
def test_file_rules(name, mode, uid, data, kind, words):
    problems = check_file_rules(name, mode, uid, data, kind)
    assert len(problems) == len(words), problems
    for problem, word in zip(problems, words, strict=True):
        assert word in problem


def test_byte_findings_positions():
    data = b"ok\n\0\0\0x\r\n\x1b[0m\tfine\n\xff\xfeab\xc3\n\xe2\x82\xac good\n"
    assert byte_findings(data) == [
        ByteFinding("nul", 2, 3, 0, 3),
        ByteFinding("cr", 2, 7, 4, 1),
        ByteFinding("control", 3, 9, 0, 1),
        ByteFinding("utf8", 4, 19, 0, 2),
        ByteFinding("utf8", 4, 23, 4, 1),
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xc0\xaf", [(0, 2)]),  # overlong '/'
        (b"a\xed\xa0\x80b", [(1, 3)]),  # a surrogate
        (b"\xf4\x90\x80\x80", [(0, 4)]),  # above U+10FFFF
        (b"\xe2\x82", [(0, 2)]),  # cut short at the end
        (b"\xe2\x82\xac\xf0\x9f\x98\x80", []),
    ],
)
def test_invalid_utf8_offsets(data, expected):
    assert [(f.offset, f.length) for f in byte_findings(data) if f.kind == "utf8"] == expected


def test_tab_and_newline_are_not_findings():
    assert byte_findings(b"a\tb\nc\n") == []


def test_fifty_megabytes_of_nul(deadline):
    data = b"0 0 * * * root ok\n" + b"\0" * (50 << 20) + b"\n* * * * * root tail\n"
    started = time.monotonic()
    with deadline(5):
        findings = byte_findings(data)
    elapsed = time.monotonic() - started
    assert findings == [ByteFinding("nul", 2, 18, 0, 50 << 20)]
    assert elapsed < 1.0, f"{elapsed:.2f} s for 50 MB"


def test_nul_blocks_inside_a_crontab_line(deadline):
    blob = b"\0" * (50 << 20)
    with deadline(5):
        findings = byte_findings(blob + b"\xff")
        entry = parse_line(blob.decode(), True)
    assert [f.kind for f in findings] == ["nul", "utf8"]
    assert findings[1].offset == 50 << 20
    assert entry.error == "bad minute"


def test_error_words_match_cron():
    assert {f.error for f in crontab.FIELDS} == {
        "bad minute",
        "bad hour",
        "bad day-of-month",
        "bad month",
        "bad day-of-week",
    }
