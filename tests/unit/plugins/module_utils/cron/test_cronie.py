"""The cronie dialect: each way cronie 1.7 reads crontabs otherwise than Debian's cron (each test
fails with the Debian dialect), which cron a root has, and files.py, repair.py and logs.py on a
Red Hat layout root. The real cronie daemon judges the same rules in the oracle lane."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab, file_rules
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import logs as cron_logs
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import repair as crontab_repair
from ansible_collections.lifeline.rescue.plugins.module_utils.cron.crontab import (
    CRONIE,
    TRIXIE,
    first_error,
    parse_line,
    parse_text,
    split_percent,
)

from support import rpmbuild
from support.cron_corpus import CRONIE_LINES, USERS, CronieLine, load_corpus


def verdict(entry: crontab.Entry) -> str:
    return entry.error or entry.kind


# ---- lines ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("row", CRONIE_LINES, ids=str)
def test_cronie_lines(row: CronieLine):
    cronie = parse_line(row.line, row.system, users=USERS, dialect=CRONIE)
    debian = parse_line(row.line, row.system, users=USERS, dialect=TRIXIE)
    assert verdict(cronie) == row.cronie
    assert (verdict(debian) != row.cronie) == row.debian_differs, verdict(debian)


def test_the_corpus_holds_lines_each_cron_reads_otherwise():
    rows = load_corpus()
    differ = [row for row in rows if row.cron["cronie"] != row.cron["trixie"]]
    assert len(differ) >= 20
    assert {row.cron["cronie"] for row in differ} >= {"job", "bad minute", "bad command"}


def test_junk_after_a_value_is_refused():
    assert verdict(parse_line("5# * * * * root true", True, dialect=CRONIE)) == "bad minute"
    assert verdict(parse_line("5# * * * * root true", True, dialect=TRIXIE)) == "job"


def test_range_ends_are_not_checked_only_the_values_set():
    entry = parse_line("0-64/65 * * * * root true", True, dialect=CRONIE)
    assert entry.kind == "job" and entry.schedule[0] == frozenset({0})
    assert verdict(parse_line("0-64/65 * * * * root true", True, dialect=TRIXIE)) == "bad minute"
    # 60 would be set: refused.
    assert verdict(parse_line("0-64/60 * * * * root true", True, dialect=CRONIE)) == "bad minute"
    assert parse_line("99-5 * * * * root true", True, dialect=CRONIE).schedule[0] == frozenset()


def test_random_ranges():
    entry = parse_line("10~20 3~ * * * root true", True, dialect=CRONIE)
    assert entry.kind == "job"
    assert entry.schedule[0] == frozenset(range(10, 21)) and entry.schedule[1] == frozenset(range(3, 24))
    assert any("at random" in note for note in entry.notes)
    assert verdict(parse_line("~ * * * * root true", True, dialect=TRIXIE)) == "bad minute"


def test_the_leading_dash_is_for_system_crontabs_and_root():
    assert parse_line("-*/5 * * * * root true", True, dialect=CRONIE).kind == "job"
    assert verdict(parse_line("-*/5 * * * * true", False, dialect=CRONIE)) == "bad option"
    assert parse_line("-*/5 * * * * true", False, dialect=CRONIE, privileged=True).kind == "job"
    assert verdict(parse_line("-*/5 * * * * root true", True, dialect=TRIXIE)) == "bad minute"


def test_command_options():
    entry = parse_line("0 0 * * * root -n  mail-on-error", True, dialect=CRONIE)
    assert entry.command == "mail-on-error" and any("-n" in note for note in entry.notes)
    assert parse_line("0 0 * * * root -n  mail-on-error", True, dialect=TRIXIE).command == "-n  mail-on-error"
    assert verdict(parse_line("0 0 * * * root -rf /", True, dialect=CRONIE)) == "bad option"


def test_an_unknown_user_loads_and_says_so():
    entry = parse_line("0 0 * * * nosuchuser true", True, users=USERS, dialect=CRONIE)
    assert entry.kind == "job" and any("getpwnam() failed" in note for note in entry.notes)
    assert (
        verdict(parse_line("0 0 * * * nosuchuser true", True, users=USERS, dialect=TRIXIE)) == "bad username"
    )


def test_the_user_field_ends_at_the_newline():
    text = "0 0 * * *\n17 * * * * root true\n"
    assert [verdict(e) for e in parse_text(text, True, dialect=CRONIE)] == ["bad command", "job"]
    assert verdict(first_error(text, True, dialect=TRIXIE)) == "bad username"


def test_long_commands_and_assignments():
    command = "0 0 * * * root " + "x" * 5000
    assert parse_line(command, True, dialect=CRONIE).kind == "job"
    assert verdict(parse_line(command, True, dialect=TRIXIE)) == crontab.BAD_COMMAND_LEN
    assert parse_line('A="' + "v" * 2000 + '"', True, dialect=CRONIE).value == "v" * 2000


def test_assignment_values_are_kept_as_read():
    assert parse_line('PADDED=" x "', True, dialect=CRONIE).value == " x "
    assert parse_line('PADDED=" x "', True, dialect=TRIXIE).value == " x"
    assert parse_line("TWICE=\"'x'\"", True, dialect=CRONIE).value == "'x'"
    assert parse_line("TWICE=\"'x'\"", True, dialect=TRIXIE).value == "x"


def test_percent_keeps_double_backslashes():
    assert split_percent("a\\\\%b", cronie=True) == ("a\\\\", "b\n")
    assert split_percent("a\\\\%b") == ("a\\", "b\n")
    assert split_percent("date +\\%s%in", cronie=True) == ("date +%s", "in\n")


def test_random_delay_and_home_notes():
    entries = parse_text("RANDOM_DELAY=2000\n@daily root true\nHOME=/nowhere\n", True, dialect=CRONIE)
    assert any("bad value of RANDOM_DELAY" in note for note in entries[1].notes)
    assert any("HOME" in note for note in entries[2].notes)
    fine = parse_text("RANDOM_DELAY=abc\n@daily root true\n", True, dialect=CRONIE)[1]
    assert not any("RANDOM_DELAY" in note for note in fine.notes)  # strtol reads 0


# ---- whole files -----------------------------------------------------------------------------------

GOOD = "17 * * * * root true\n"


def test_a_bad_line_costs_only_itself():
    text = "SHELL=/bin/sh\n" + GOOD + "0 24 * * * root x\n* * * * 9 root y\n" + GOOD
    entries = parse_text(text, True, dialect=CRONIE)
    assert [verdict(e) for e in entries] == ["env", "job", "bad hour", "bad day-of-week", "job"]
    assert first_error(text, True, dialect=CRONIE) is None
    assert verdict(first_error(text, True, dialect=TRIXIE)) == "bad hour"


def test_a_missing_last_newline_costs_the_last_line_only():
    text = GOOD + "@daily root true"
    entries = parse_text(text, True, dialect=CRONIE)
    assert [verdict(e) for e in entries] == ["job", crontab.MISSING_NEWLINE]
    assert any("this last line only" in note for note in entries[1].notes)
    assert first_error(text, True, dialect=CRONIE) is None
    assert first_error(text, True, dialect=TRIXIE) is not None


def test_user_crontab_limits():
    many = "0 0 * * * true\n" * (crontab.CRONIE_MAX_USER_ENTRIES + 1)
    assert verdict(first_error(many, False, dialect=CRONIE)) == crontab.TOO_MANY_ENTRIES
    assert first_error(many, True, dialect=CRONIE) is None  # no limit on system crontabs
    assert first_error("0 0 * * * true\n" * crontab.CRONIE_MAX_USER_ENTRIES, False, dialect=CRONIE) is None
    envs = "".join(f"V{i}=1\n" for i in range(crontab.CRONIE_MAX_USER_ENVS + 1))
    assert verdict(first_error(envs, False, dialect=CRONIE)) == crontab.TOO_MANY_ENVS
    comments = "#" + "x" * crontab.CRONIE_MAX_GARBAGE + "\n" + GOOD
    assert verdict(first_error(comments, False, dialect=CRONIE)) == crontab.TOO_MUCH_GARBAGE
    assert first_error("#" + "x" * 100 + "\n" + "0 0 * * * true\n", False, dialect=CRONIE) is None
    # In a system crontab cronie reads on from the middle of that comment: a refused line.
    system = parse_text("#" + "x" * 40000 + "\n" + GOOD, True, dialect=CRONIE)
    assert [verdict(e) for e in system] == ["bad minute", "job"]


def test_a_refused_line_with_a_random_range_runs_on_into_the_next():
    # '~' with its low end above its high one, then a newline: cronie has read that newline.
    entries = parse_text("70~\n" + GOOD + GOOD, True, dialect=CRONIE)
    assert [verdict(e) for e in entries] == ["bad minute", "job", "job"]
    assert any("does not read this line" in note for note in entries[1].notes)


# ---- file rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, skipped",
    [
        ("job", False),
        ("dotted.name", False),
        ("old.dpkg-old", False),
        ("job.rpmnew", True),
        ("job.rpmsave", True),
        ("job.rpmorig", True),
        ("tilde~", True),
        ("#hash", True),
        (".hidden", True),
        ("x" * 243, False),
        ("x" * 244, True),
    ],
)
def test_cron_d_names(name, skipped):
    problems = file_rules.check_file_rules(name, stat.S_IFREG | 0o644, 0, b"", "cron.d", cronie=True)
    assert bool(problems and "ignored by cronie" in problems[0]) == skipped


def test_dotted_names_differ_from_debian():
    assert file_rules.check_file_rules("dotted.name", stat.S_IFREG | 0o644, 0, b"", "cron.d")
    assert not file_rules.check_file_rules("dotted.name", stat.S_IFREG | 0o644, 0, b"", "cron.d", cronie=True)


@pytest.mark.parametrize(
    "kind, mode, uid, nlink, link_uid, word",
    [
        ("cron.d", 0o644, 0, 1, None, ""),
        ("cron.d", 0o444, 0, 1, None, ""),
        ("cron.d", 0o640, 0, 1, None, ""),
        ("cron.d", 0o755, 0, 1, None, "BAD FILE MODE"),
        ("cron.d", 0o664, 0, 1, None, "BAD FILE MODE"),
        ("cron.d", 0o4644, 0, 1, None, "BAD FILE MODE"),
        ("cron.d", 0o200, 0, 1, None, "BAD FILE MODE"),
        ("cron.d", 0o644, 1, 1, None, "WRONG FILE OWNER"),
        ("cron.d", 0o644, 0, 2, None, ""),  # system crontabs may have hard links
        ("cron.d", 0o644, 0, 1, 1, ""),  # a link is followed whoever owns it
        ("user", 0o644, 1000, 1, None, ""),  # Debian wants 0600
        ("user", 0o600, 0, 1, None, ""),
        ("user", 0o600, 1001, 1, None, "WRONG FILE OWNER"),
        ("user", 0o600, 1000, 2, None, "BAD LINK COUNT"),
    ],
)
def test_modes_owners_links(kind, mode, uid, nlink, link_uid, word):
    problems = file_rules.check_file_rules(
        "alice",
        stat.S_IFREG | mode,
        uid,
        b"0 0 * * * true",  # no last newline: not a file rule for cronie
        kind,
        nlink=nlink,
        link_uid=link_uid,
        user_uid=1000,
        cronie=True,
    )
    assert (problems[0].rsplit("(", 1)[1].rstrip(")") if problems else "") == word


def test_orphan_and_directory():
    orphan = file_rules.check_file_rules(
        "ghost", stat.S_IFREG | 0o600, 0, b"", "user", known_user=False, cronie=True
    )
    assert orphan and "(ORPHAN)" in orphan[0]
    directory = file_rules.check_file_rules("adir", stat.S_IFDIR | 0o755, 0, b"", "cron.d", cronie=True)
    assert "(NOT REGULAR)" in directory[0]


# ---- which cron a root has ----------------------------------------------------------------------------


def _file(root: Path, path: str, data: bytes = b"", mode: int = 0o644) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    os.chmod(target, mode)
    return target


def _dpkg(root: Path, *packages: tuple[str, str]) -> None:
    stanzas = "".join(
        f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
        for name, version in (("dpkg", "1.22.21"), *packages)
    )
    _file(root, "/var/lib/dpkg/status", stanzas.encode())


def test_detection_by_the_dpkg_database(tmp_path):
    _dpkg(tmp_path, ("cronie", "1.7.2-4"))
    found = cron_files.installed_cron(str(tmp_path))
    assert (
        found.dialect is CRONIE
        and found.spool == cron_files.DEBIAN_SPOOL
        and "cronie 1.7.2-4" in found.evidence
    )
    _dpkg(tmp_path, ("cron", "3.0pl1-197"))
    assert cron_files.installed_cron(str(tmp_path)).dialect is TRIXIE


def _rpm_root(tmp_path: Path, name: str, *, suse: bool = False) -> Path:
    """A root whose rpm database (written by real rpm) holds ``name`` with a crond program; its
    daemon file is then removed, so that only the database can tell."""
    package = rpmbuild.Package(name, "1.5.7", "8.el9", tmp_path / "stage", "cron daemon")
    package.add_text("/usr/sbin/crond", b"\x7fELF", 0o755)
    root = tmp_path / "root"
    root.mkdir()
    rpmbuild.install(root, rpmbuild.build(package, tmp_path / "build"))
    (root / "usr/sbin/crond").unlink()
    if suse:
        (root / "var/spool/cron/tabs").mkdir(parents=True)
    return root


def test_detection_by_the_rpm_database(tmp_path):
    found = cron_files.installed_cron(str(_rpm_root(tmp_path, "cronie")))
    assert found.dialect is CRONIE and found.spool == cron_files.RED_HAT_SPOOL
    assert found.evidence == "rpm: cronie-1.5.7-8.el9.noarch"


def test_detection_of_suses_spool(tmp_path):
    found = cron_files.installed_cron(str(_rpm_root(tmp_path, "cronie", suse=True)))
    assert found.dialect is CRONIE and found.spool == cron_files.SUSE_SPOOL


def test_an_rpm_database_without_cronie_leaves_it_to_the_files(tmp_path):
    root = _rpm_root(tmp_path, "other-cron")
    assert cron_files.installed_cron(str(root)).dialect is crontab.CLASSIC
    _file(root, "/usr/sbin/crond", b"\x7fELF", 0o755)
    assert cron_files.installed_cron(str(root)).dialect is CRONIE


def test_detection_by_cronies_daemon(tmp_path):
    _file(tmp_path, "/usr/sbin/crond", b"\x7fELF", 0o755)
    found = cron_files.installed_cron(str(tmp_path))
    assert found.dialect is CRONIE and found.spool == cron_files.RED_HAT_SPOOL


def test_busybox_crond_is_not_cronie(tmp_path):
    _file(tmp_path, "/bin/busybox", b"\x7fELF", 0o755)
    (tmp_path / "usr/sbin").mkdir(parents=True)
    os.symlink("/bin/busybox", tmp_path / "usr/sbin/crond")
    assert cron_files.installed_cron(str(tmp_path)).dialect is crontab.CLASSIC


def test_detection_by_the_red_hat_spool_without_a_daemon(tmp_path):
    _file(tmp_path, "/var/spool/cron/alice", b"@daily true\n", 0o600)
    assert cron_files.installed_cron(str(tmp_path)).dialect is CRONIE
    (tmp_path / "var/spool/cron/crontabs").mkdir()
    assert cron_files.installed_cron(str(tmp_path)).dialect is crontab.CLASSIC


def test_nothing_found_is_the_classic_reading(tmp_path):
    found = cron_files.installed_cron(str(tmp_path))
    assert found.dialect is crontab.CLASSIC and found.spool == cron_files.DEBIAN_SPOOL


# ---- a Red Hat root: files.py and repair.py ----------------------------------------------------------


def red_hat_root(tmp_path: Path) -> Path:
    root = tmp_path
    _file(root, "/etc/os-release", b'ID=rocky\nPRETTY_NAME="Rocky Linux 9"\n')
    _file(root, "/etc/passwd", b"root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/sh\n")
    _file(root, "/etc/group", b"root:x:0:\nalice:x:1000:\n")
    _file(root, "/usr/sbin/crond", b"\x7fELF", 0o755)
    _file(root, "/etc/crontab", b"SHELL=/bin/bash\nMAILTO=root\n")
    _file(root, "/etc/cron.d/0hourly", b"SHELL=/bin/bash\n01 * * * * root run-parts /etc/cron.hourly\n")
    # A bad line amid good ones, a line only Debian's cron refuses, one only cronie refuses.
    _file(
        root,
        "/etc/cron.d/app.conf",
        b"*/5 * * * * root /opt/app/tick\n0 24 * * * root broken\n5-64/65 * * * * nobody-here x\n"
        b"0 0 * * * root -x true\n",
        0o755,
    )
    _file(root, "/etc/cron.d/app.conf.rpmnew", b"garbage that is never read\n")
    alice = _file(root, "/var/spool/cron/alice", b"@daily /home/alice/report\n", 0o644)
    os.chown(alice, 1000, 1000)
    return root


def test_files_on_a_red_hat_root(tmp_path):
    root = red_hat_root(tmp_path)
    checked = {f.path: f for f in cron_files.audit(str(root))}
    assert set(checked) == {
        "/etc/crontab",
        "/etc/cron.d/0hourly",
        "/etc/cron.d/app.conf",
        "/etc/cron.d/app.conf.rpmnew",
        "/var/spool/cron/alice",
    }
    assert "ignored by cronie" in checked["/etc/cron.d/app.conf.rpmnew"].ignored
    assert not checked["/etc/cron.d/app.conf.rpmnew"].cron_reads
    app = checked["/etc/cron.d/app.conf"]
    assert [(f.line, f.error) for f in app.lines] == [(2, "bad hour"), (4, "bad option")]
    assert any("BAD FILE MODE" in rule for rule in app.rules)
    alice = checked["/var/spool/cron/alice"]
    assert alice.healthy and alice.cron_reads and alice.jobs == 1  # 0644 and its user's: cronie reads it
    assert checked["/etc/cron.d/0hourly"].healthy


def test_a_bad_line_leaves_the_file_read_by_cronie(tmp_path):
    root = red_hat_root(tmp_path)
    os.chmod(root / "etc/cron.d/app.conf", 0o644)
    app = next(f for f in cron_files.audit(str(root)) if f.path == "/etc/cron.d/app.conf")
    assert app.cron_reads and not app.healthy and app.jobs == 2


def test_a_debian_spool_on_a_red_hat_root_is_not_read(tmp_path):
    root = red_hat_root(tmp_path)
    _file(root, "/var/spool/cron/crontabs/bob", b"@daily true\n", 0o600)
    bob = next(f for f in cron_files.audit(str(root)) if f.path.endswith("/bob"))
    assert "reads user crontabs in /var/spool/cron" in bob.ignored


def test_repair_on_a_red_hat_root(tmp_path):
    root = red_hat_root(tmp_path)
    reader = cron_files.reader_of(str(root))
    assert reader.dialect is CRONIE
    plans = [crontab_repair.plan(str(root), f, reader) for f in cron_files.audit(str(root))]
    plans = {p.path: p for p in plans if p is not None}
    assert set(plans) == {"/etc/cron.d/app.conf"}  # the .rpmnew file and alice's crontab stay as they are
    app = plans["/etc/cron.d/app.conf"]
    assert app.after == (
        b"*/5 * * * * root /opt/app/tick\n"
        b"# lifeline-invalid (bad hour): 0 24 * * * root broken\n"
        b"5-64/65 * * * * nobody-here x\n"  # Debian's cron would refuse it; cronie reads it
        b"# lifeline-invalid (bad option): 0 0 * * * root -x true\n"
    )
    assert app.new_mode == 0o644
    crontab_repair.apply(str(root), list(plans.values()), "/var/backups/lifeline")
    assert all(f.healthy for f in cron_files.audit(str(root)))
    assert (root / "etc/cron.d/app.conf.rpmnew").read_bytes() == b"garbage that is never read\n"


def test_the_debian_dialect_would_repair_otherwise(tmp_path):
    root = red_hat_root(tmp_path)
    app = next(f for f in cron_files.audit(str(root)) if f.path == "/etc/cron.d/app.conf")
    debian = cron_files.Reader({"root": (0, 0)}, TRIXIE, cron_files.DEBIAN_SPOOL)
    after = crontab_repair.salvage(app.data, cron_files.CRON_D, debian).data
    assert b"# lifeline-invalid (bad minute): 5-64/65" in after and b"root -x true\n" in after


# ---- logs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, kind, path",
    [
        (
            "Mar  1 10:00:01 rhel crond[812]: (CRON) bad option (/var/spool/cron/bob)",
            "bad option",
            "/var/spool/cron/bob",
        ),
        (
            "Mar  1 10:00:01 rhel crond[812]: (CRON) missing newline before EOF (/etc/cron.d/x)",
            crontab.MISSING_NEWLINE,
            "/etc/cron.d/x",
        ),
        (
            "Mar  1 10:00:01 rhel crond[812]: (CRON) too many entries (/var/spool/cron/bob)",
            crontab.TOO_MANY_ENTRIES,
            "/var/spool/cron/bob",
        ),
        (
            "Mar  1 10:00:01 rhel crond[812]: (root) NOT REGULAR (/etc/cron.d/adir)",
            "NOT REGULAR",
            "/etc/cron.d/adir",
        ),
    ],
)
def test_cronie_log_lines(line, kind, path):
    found = cron_logs.parse_line(line)
    assert (found.kind, found.crontab) == (kind, path)


@pytest.mark.parametrize(
    "line",
    [
        "Mar  1 10:00:01 rhel crond[812]: (CRON) ERROR (Only privileged user can disable logging)",
        "Mar  1 10:00:01 rhel crond[812]: (CRON) ERROR (bad value of RANDOM_DELAY)",
        "Mar  1 10:00:01 rhel crond[812]: (bob) FAILED (loading cron table)",
        "Mar  1 10:00:01 rhel crond[812]: (nosuchuser) ERROR (getpwnam() failed - user unknown)",
        "Mar  1 10:00:01 rhel CROND[900]: (root) CMD (run-parts /etc/cron.hourly)",
        "Mar  1 10:00:01 rhel CROND[900]: (CRON) ERROR chdir failed (/srv/app): No such file or directory",
    ],
)
def test_cronie_lines_that_name_no_crontab(line):
    assert cron_logs.parse_line(line) is None


def test_the_red_hat_cron_log_is_read(tmp_path):
    _file(tmp_path, "/var/log/cron", b"Mar  1 10:00:01 rhel crond[812]: (CRON) bad minute (/etc/cron.d/x)\n")
    (found,) = cron_logs.scan_logs(str(tmp_path))
    assert (found.log, found.kind, found.crontab) == ("/var/log/cron", "bad minute", "/etc/cron.d/x")


@pytest.mark.parametrize(
    "text",
    [
        "17 * * * * root true\n" + "\0" * (50 << 20) + "\n17 * * * * root true\n",
        "x" * (5 << 20) + "\n17 * * * * root true\n",
        "A=" + "x" * (5 << 20) + "\n17 * * * * root true\n",
        "#" + "x" * (5 << 20) + "\n17 * * * * root true\n",
        "0" + ",0" * 500_000 + " * * * * root true\n",
    ],
    ids=["50 MB of NULs", "a 5 MB word", "a 5 MB assignment", "a 5 MB comment", "a 1 MB list"],
)
def test_hostile_files_are_read_in_bounded_time(deadline, text):
    with deadline(10):
        entries = parse_text(text, True, dialect=CRONIE)
        first_error(text, False, dialect=CRONIE)
    assert entries[-1].kind == "job"


def test_names_cronie_skips_are_never_renamed_into_use(tmp_path):
    root = red_hat_root(tmp_path)
    _file(root, "/etc/cron.d/#autosave#", b"@daily root true\n")
    reader = cron_files.reader_of(str(root))
    checked = {f.path: f for f in cron_files.audit(str(root))}
    for path in ("/etc/cron.d/#autosave#", "/etc/cron.d/app.conf.rpmnew"):
        assert "ignored by cronie" in checked[path].ignored
        assert crontab_repair.plan(str(root), checked[path], reader, rename_cron_d=True) is None
