"""The cron grammar: tables of lines Debian's cron accepts and refuses, file rules, hostile bytes."""

from __future__ import annotations

import time

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab, vixie
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.anacrontab import (
    complaint as anacron_complaint,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.anacrontab import (
    line_text as anacron_line_text,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.anacrontab import (
    parse_line as parse_anacrontab_line,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.anacrontab import (
    parse_text as parse_anacrontab_text,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.crontab import (
    CLASSIC,
    TRIXIE,
    dialect_for,
    first_error,
    parse_line,
    parse_text,
    split_percent,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.file_rules import (
    ByteFinding,
    byte_findings,
    check_file_rules,
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
    ('EMPTY=""', False, "env"),
    ("=value", False, "env"),
    ("1-A=b", False, "env"),
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
    # A reversed range is accepted and selects nothing.
    ("10-5 * * * * never runs", False, "job"),
    # A user crontab's command may be empty (the shell runs nothing); a system one may be blanks.
    ("0 0 * * *", False, "job"),
    ("@hourly   \t", False, "job"),
    ("0 0 * * * root   ", True, "job"),
    # get_number reads up to 999 characters; atoi cuts the number to 32 bits.
    ("0" * 998 + "5 * * * * x", False, "job"),
    ("4294967301 * * * * x", False, "job"),
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
    ("0" * 1000 + " * * * * root true", True, "bad minute"),
    ("5/10 * * * * root true", True, "bad minute"),
    ("1-59/2147483647 * * * * root true", True, "bad minute"),
    ("*/4294967295 * * * * root true", True, "bad minute"),
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
    # Alone in a file, a line without a user field ends the file while cron reads the user name.
    ("0 0 * * * ", True, "bad command"),
    ("@daily", True, "bad command"),
    ("0 0 * * * root", True, "bad command"),
    ("@reboot root", True, "bad command"),
    ("@daily\0root x", True, "bad username"),
    ("* * * * * * x", False, "bad command"),
    ("0 0 * * * " + "x" * 999, False, "command too long"),
    ("0 0 * * * root true\0junk", True, "bad minute"),
    ("A=b\0c", True, "bad minute"),
    ("@every_minute root true", True, "bad time specifier"),
    ("@Daily root true", True, "bad time specifier"),
    ("@ root true", True, "bad time specifier"),
    ("EMPTY=", False, "bad minute"),
    ("A B=c", False, "bad minute"),
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
    assert entry.stdin == "line one\nline two\n"
    entry = parse_line(r"0 0 * * * root date +\%F > /tmp/d", True)
    assert (entry.shell_command, entry.stdin) == ("date +%F > /tmp/d", None)


# (command, what the shell gets, the job's standard input): do_command.c, as the oracle lane saw it.
PERCENT = [
    ("true", "true", None),
    (r"a\%b%c%d", "a%b", "c\nd\n"),
    ("a\\\\%b", "a\\", "b\n"),
    (r"a\xb%c\%d\\e\f%", r"a\xb", "c%d\\\\e\\f\n"),
    ("x%", "x", ""),
    ("x%%", "x", "\n"),
    ("%only stdin", "", "only stdin\n"),
    ("x%y\\", "x", "y\\\n"),
    ("a\\", "a\\", None),
]


@pytest.mark.parametrize(("command", "shell", "stdin"), PERCENT)
def test_split_percent_like_cron(command, shell, stdin):
    assert split_percent(command) == (shell, stdin)


def test_system_command_keeps_its_blanks_for_the_shell():
    entry = parse_line("@reboot root   spaced  ", True)
    assert (entry.command, entry.shell_command) == ("spaced  ", "  spaced  ")
    assert entry.notes


def test_silently_accepted_oddities_are_noted():
    assert parse_line("5# * * * * x", False).notes
    assert parse_line("*x * * * * x", False).schedule[0] == frozenset(range(60))
    entry = parse_line("10-5 * * * * x", False)
    assert entry.schedule[0] == frozenset() and "selects nothing" in entry.notes[0]
    entry = parse_line("4294967296 * * * * x", False)
    assert entry.schedule[0] == {0} and "32" not in entry.notes[0] and "reads 0" in entry.notes[0]
    assert parse_line("0 0 * * * root true\r", True).notes
    assert parse_line("0 0 * * * root true\0", True).notes


def test_a_nul_byte_splits_a_line_in_two():
    entry = parse_line("0 0 * * * root true\0junk", True)
    assert entry.error == "bad minute" and any("NUL" in note for note in entry.notes)
    entry = parse_line("A=b\0C=d", True)
    assert (entry.kind, entry.name, entry.value) == ("env", "A", "b")
    assert parse_line("0 0 * * * root true\0   # comment", True).kind == "job"


def test_environment_like_cron():
    cases = {
        "A=\"'x'\"": "x",  # a value that still looks quoted loses a second pair
        'A=" spaced "': " spaced",  # trailing blanks go even inside quotes
        "A=x\r": "x",
        "A=\fx": "x",
        "A=b # not a comment": "b # not a comment",
        "A==b": "=b",
        "A=" + "v" * 1200: "v" * 996,  # cron reads 998 bytes of the line
    }
    for line, value in cases.items():
        entry = parse_line(line, True)
        assert (entry.kind, entry.name, entry.value) == ("env", "A", value), line
    assert parse_line('A="' + "v" * 1200 + '"', True).error == "bad minute"


@pytest.mark.parametrize("line", ["EMPTY=", "EMPTY=  ", "A =", "'A'=", "="])
def test_trixie_takes_an_empty_value(line):
    assert parse_line(line, True).error == "bad minute"
    entry = parse_line(line, True, dialect=TRIXIE)
    assert (entry.kind, entry.value) == ("env", "")


@pytest.mark.parametrize(
    ("version", "dialect"),
    [
        ("3.0pl1-137", CLASSIC),
        ("3.0pl1-162", CLASSIC),
        ("3.0pl1-186", CLASSIC),
        ("3.0pl1-187", TRIXIE),
        ("3.0pl1-197", TRIXIE),
        ("3.0pl1-197+deb13u1", TRIXIE),
        ("4.2-1", CLASSIC),
        ("", CLASSIC),
    ],
)
def test_dialect_for_a_package_version(version, dialect):
    assert dialect_for(version) is dialect


def test_missing_newline_before_eof():
    entries = parse_text("SHELL=/bin/sh\n0 0 * * * root a\n0 1 * * * root b", True)
    assert [e.kind for e in entries] == ["env", "job", "error"]
    assert [e.lineno for e in entries] == [1, 2, 3]
    assert entries[2].error == "missing newline before EOF"
    assert "valid job once it ends with a newline" in entries[2].notes[-1]
    assert parse_text("A=b", True)[0].error == "missing newline before EOF"
    # A comment or blank last line without its newline is fine.
    assert [e.kind for e in parse_text("# only a comment", True)] == ["comment"]
    assert [e.kind for e in parse_text("0 0 * * * root a\n   ", True)] == ["job", "blank"]
    assert first_error("0 0 * * * root a\n# end", True) is None


def test_a_missing_user_field_reads_into_the_next_line():
    text = "0 0 * * *\n17 * * * * root true\n"
    first, second = parse_text(text, True)
    assert first.error == "bad username" and "next line" in first.notes[0]
    assert second.kind == "job"
    # With no blank left in the file, cron reaches its end while reading the name.
    assert parse_text("0 0 * * *\n#end\n", True)[0].error == "bad command"


def test_first_error_is_where_cron_stops():
    text = "SHELL=/bin/sh\n17 * * * * root ok\n61 * * * * root bad\n0 25 * * * root worse\n"
    entry = first_error(text, True)
    assert (entry.lineno, entry.error) == (3, "bad minute")
    assert first_error("17 * * * * root ok\n", True) is None


def test_ten_thousand_lines():
    comments = "#\n" * 10002
    assert first_error(comments + "* * * * * root x\n", True) is None  # a job on line 10003
    entry = first_error(comments + "#\n* * * * * root x\n", True)  # on line 10004
    assert (entry.lineno, entry.error) == (10004, crontab.TOO_MANY_LINES)
    assert first_error("#\n" * 20000, True) is None


def test_a_megabyte_line(deadline):
    line = "0 0 * * * root echo " + "a" * (1 << 20)
    with deadline(5):
        entry = parse_line(line, True)
        findings = byte_findings((line + "\n").encode())
    assert entry.error == "command too long" and findings == []
    with deadline(5):
        assert parse_line("1" * (1 << 20), False).error == "bad minute"
        assert parse_line("* " * (1 << 19), False).error == "bad command"  # a sixth field
        assert parse_line("* * * * * " + "x" * (1 << 20), False).error == "command too long"
        assert parse_line("A=" + "b" * (1 << 20), False).value == "b" * 996


@pytest.mark.parametrize(
    "item",
    ["0", "59", "60", "1-5", "5-1", "*/7", "*", "1-10/3", "jan", "mon-fri", "5/10", "0-59/2147483647", "x"],
)
def test_a_long_list_reads_like_cron_reads_it(item, deadline):
    """Long lists take a shortcut (each distinct range read once): same values, same refusals."""
    for index in range(len(crontab.FIELDS)):
        token = ",".join([item, "1", item] * 30).encode()
        assert vixie._get_list(index, token) == vixie._get_list_uncached(index, token), (index, item)
    with deadline(5):
        entry = parse_line(",".join([item] * 200_000) + " * * * * x", False)
    assert entry.kind == parse_line(item + " * * * * x", False).kind


def test_parse_text_is_fast(deadline):
    text = "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n" * 10000
    started = time.process_time()  # CPU time: a busy machine does not stretch it
    with deadline(5):
        entries = parse_text(text, True)
    assert len(entries) == 10000 and {e.kind for e in entries} == {"job"}
    assert time.process_time() - started < 1.0


# (name, mode, uid, data, kind, keywords, expected words; [] means cron reads the file). The first
# problem is the one cron logs (the oracle lane checks that against the real daemon).
FILE_RULES = [
    ("crontab", 0o100644, 0, b"# ok\n", "crontab", {}, []),
    ("php", 0o100644, 0, b"# ok\n", "cron.d", {}, []),
    ("e2scrub_all", 0o644, 0, b"", "cron.d", {}, []),
    ("job", 0o100755, 0, b"* * * * * root x\n", "cron.d", {}, []),
    ("php.dpkg-old", 0o100644, 0, b"\n", "cron.d", {}, ["holding a dot"]),
    (".placeholder", 0o100644, 0, b"\n", "cron.d", {}, ["starting with a dot"]),
    ("back~up", 0o100644, 0, b"\n", "cron.d", {}, ["[A-Za-z0-9_-]"]),
    ("job", 0o100664, 0, b"\n", "cron.d", {}, ["INSECURE MODE (group/other writable)"]),
    ("job", 0o100646, 0, b"\n", "cron.d", {}, ["INSECURE MODE (group/other writable)"]),
    ("job", 0o100644, 1000, b"\n", "cron.d", {}, ["WRONG FILE OWNER"]),
    ("job", 0o100644, 0, b"\n", "cron.d", {"nlink": 2}, ["NUMBER OF HARD LINKS > 1"]),
    ("job", 0o100644, 0, b"\n", "cron.d", {"link_uid": 0}, []),
    ("job", 0o100644, 0, b"\n", "cron.d", {"link_uid": 1000}, ["WRONG SYMLINK OWNER"]),
    ("job", 0o040755, 0, b"", "cron.d", {}, ["NOT A REGULAR FILE"]),
    ("crontab", 0o100666, 33, b"\n", "crontab", {}, ["WRONG FILE OWNER", "INSECURE MODE (group"]),
    ("crontab", 0o100644, 0, b"0 0 * * * root x", "crontab", {}, ["Missing newline before EOF"]),
    ("crontab", 0o100644, 0, b"A=b", "crontab", {}, ["Missing newline before EOF"]),
    ("crontab", 0o100644, 0, b"0 0 * * * root x\n# end", "crontab", {}, []),
    ("crontab", 0o100644, 0, b"0 0 * * * root x\n  ", "crontab", {}, []),
    ("crontab", 0o040755, 0, b"", "crontab", {}, ["NOT A REGULAR FILE"]),
    ("alice", 0o100600, 1000, b"* * * * * x\n", "user", {}, []),
    ("alice", 0o100600, 1000, b"* * * * * x\n", "user", {"user_uid": 1000}, []),
    ("alice", 0o100600, 0, b"* * * * * x\n", "user", {"user_uid": 1000}, []),
    ("alice", 0o100600, 1001, b"* * * * * x\n", "user", {"user_uid": 1000}, ["WRONG FILE OWNER"]),
    ("alice", 0o100644, 1000, b"* * * * * x\n", "user", {}, ["INSECURE MODE (mode 0600 expected)"]),
    ("alice", 0o100400, 1000, b"* * * * * x\n", "user", {}, ["INSECURE MODE (mode 0600 expected)"]),
    ("alice", 0o100600, 1000, b"* * * * * x\n", "user", {"nlink": 2}, ["NUMBER OF HARD LINKS > 1"]),
    ("alice", 0o100600, 1000, b"* * * * * x\n", "user", {"link_uid": 1000}, ["CAN'T OPEN"]),
    ("alice", 0o040700, 1000, b"", "user", {}, ["NOT A REGULAR FILE", "INSECURE MODE (mode 0600"]),
    ("ghost", 0o100600, 0, b"", "user", {"known_user": False}, ["ORPHAN"]),
]


@pytest.mark.parametrize(("name", "mode", "uid", "data", "kind", "keywords", "words"), FILE_RULES)
def test_file_rules(name, mode, uid, data, kind, keywords, words):
    problems = check_file_rules(name, mode, uid, data, kind, **keywords)
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
    started = time.process_time()  # CPU time: a busy machine does not stretch it
    with deadline(5):
        findings = byte_findings(data)
    elapsed = time.process_time() - started
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


# (line, kind, error, what else it holds): Debian's anacron 2.3 (readtab.c), as `anacron -T` and a
# run of the real anacron of bullseye, bookworm and trixie showed it.
ANACRONTAB = [
    ("", "blank", "", {}),
    ("  \t", "blank", "", {}),
    ("# period delay job-identifier command", "comment", "", {}),
    ("   # indented", "comment", "", {}),
    ("SHELL=/bin/sh", "env", "", {"name": "SHELL", "value": "/bin/sh"}),
    ("HOME=/root", "env", "", {"name": "HOME", "value": "/root"}),
    ("START_HOURS_RANGE=3-22", "env", "", {"name": "START_HOURS_RANGE", "value": "3-22"}),
    ("RANDOM_DELAY=45", "env", "", {"name": "RANDOM_DELAY", "value": "45"}),
    ("START_HOURS_RANGE=22-3", "env", "", {"value": "22-3"}),
    ("A = b", "env", "", {"name": "A", "value": " b"}),  # blanks after '=' stay
    ("A=", "env", "", {"value": ""}),
    (
        "1\t5\tcron.daily\trun-parts --report /etc/cron.daily",
        "job",
        "",
        {"period_days": 1, "delay_minutes": 5},
    ),
    ("7 10 cron.weekly run-parts --report /etc/cron.weekly", "job", "", {"ident": "cron.weekly"}),
    ("  1 0 x  echo a  b ", "job", "", {"command": "echo a  b "}),
    ("0 0 now true", "job", "", {"period_days": 0}),
    (
        "@monthly 15 cron.monthly run-parts /etc/cron.monthly",
        "job",
        "",
        {"special": "@monthly", "delay_minutes": 15},
    ),
    ("@yearly 1 y true", "job", "", {"special": "@yearly"}),
    ("@monthlyfoo 1 m true", "job", "", {}),  # anacron compares 7 characters only
    ("@daily 1 d true", "job", "Unknown named period", {"period_days": 0}),
    ("@weekly 1 w true", "job", "Unknown named period", {}),
    ("@annually 1 a true", "job", "Unknown named period", {}),
    ("@foo 0 f /tmp/.x", "job", "Unknown named period", {"command": "/tmp/.x"}),
    ("1 99999999999 big true", "error", "number out of range", {}),
    ("2147483648 0 big true", "error", "number out of range", {}),
    ("2147483647 0 big true", "job", "", {"period_days": 2147483647}),
    ("@monthly 2147483648 big true", "error", "number out of range", {}),
    ("bad line here", "error", "Invalid syntax", {}),
    ("1 5 id", "error", "Invalid syntax", {}),
    ("7 0 id/slash true", "error", "Invalid syntax", {}),
    ("-1 0 id true", "error", "Invalid syntax", {}),
    ("1 x id true", "error", "Invalid syntax", {}),
    ("@ 1 id true", "error", "Invalid syntax", {}),
    ("* * * * * root true", "error", "Invalid syntax", {}),
]


@pytest.mark.parametrize(("line", "kind", "error", "fields"), ANACRONTAB)
def test_anacrontab_lines(line, kind, error, fields):
    entry = parse_anacrontab_line(line)
    assert (entry.kind, entry.error) == (kind, error), entry
    for name, value in fields.items():
        assert getattr(entry, name) == value, name


def test_anacron_runs_a_job_it_complains_about():
    entry = parse_anacrontab_line("@daily 0 j2 touch /tmp/o/j2")
    assert entry.kind == "job" and entry.command == "touch /tmp/o/j2"
    assert "still registers the job" in entry.notes[0]


@pytest.mark.parametrize(
    ("line", "kind", "error"),
    [
        ("@daily 1 d true", "job", ""),
        ("@weekly 1 w true", "job", ""),
        ("@annualy 1 a true", "job", ""),  # cronie's own spelling
        ("@annually 1 a true", "job", "Unknown named period"),  # "@annuall" is not "@annualy"
        ("@hourly 1 h true", "job", "Unknown named period"),
        ("START_HOURS_RANGE=3-22", "env", ""),
        ("START_HOURS_RANGE=22-3", "error", "Invalid syntax"),
        ("START_HOURS_RANGE=3", "error", "Invalid syntax"),
    ],
)
def test_anacrontab_of_cronie(line, kind, error):
    entry = parse_anacrontab_line(line, cronie=True)
    assert (entry.kind, entry.error) == (kind, error)


def test_anacron_line_text_drops_backslashes_and_nuls():
    assert anacron_line_text("1 5 x echo a\\b\0c") == "1 5 x echo abc"
    assert anacron_line_text("1 5 x echo a\\") == "1 5 x echo a\\"
    entry = parse_anacrontab_line("1 5 x printf 'a\\tb'")
    assert (entry.command, entry.line) == ("printf 'atb'", "1 5 x printf 'a\\tb'")


def test_anacrontab_text_joins_continued_lines():
    text = "SHELL=/bin/sh\n1 5 cont \\\n  echo joined\n@foo 1 x true\nbroken\n"
    entries = parse_anacrontab_text(text)
    assert [(e.lineno, e.kind) for e in entries] == [(1, "env"), (2, "job"), (3, "job"), (4, "error")]
    assert entries[1].command == "echo joined"
    assert entries[1].line == "1 5 cont \\\n  echo joined"
    assert [anacron_complaint(e) for e in entries] == [
        "",
        "",
        "/etc/anacrontab: Unknown named period on line 3, skipping",
        "Invalid syntax in /etc/anacrontab on line 4 - skipping this line",
    ]
    assert parse_anacrontab_text("1 1 x true")[0].kind == "job"  # no newline needed at the end
