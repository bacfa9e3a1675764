"""cron/files.py: which crontabs of a root cron reads, and what it makes of each; on Debian's own
stock crontabs (three real trees) and on Debian and Red Hat spool layouts."""

from __future__ import annotations

import os

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import files as cron_files
from ansible_collections.lifeline.rescue.plugins.module_utils.target import report_text

from support.trees import SUITES, debian_tree


@pytest.mark.parametrize("suite", SUITES)
def test_debian_stock_crontabs_are_healthy(suite):
    checked = cron_files.audit(str(debian_tree(suite)))
    paths = [f.path for f in checked]
    assert paths[0] == "/etc/crontab" and "/etc/cron.d/e2scrub_all" in paths
    assert [f.path for f in checked if not f.healthy] == []
    assert sum(f.jobs for f in checked) >= 4  # Debian's hourly/daily/weekly/monthly lines at least


def test_locations_cover_debian_and_red_hat_spools_in_a_fixed_order(tmp_path):
    root = tmp_path
    for directory in ("etc/cron.d", "var/spool/cron/crontabs", "var/spool/cron/atjobs"):
        (root / directory).mkdir(parents=True)
    for path in (
        "etc/crontab",
        "etc/anacrontab",
        "etc/cron.d/b",
        "etc/cron.d/a.dpkg-old",
        "var/spool/cron/crontabs/alice",
        "var/spool/cron/bob",
    ):
        (root / path).write_text("")
    (root / "etc/cron.d/dir").mkdir()
    assert cron_files.locations(str(root)) == [
        ("/etc/crontab", "crontab", ""),
        ("/etc/anacrontab", "anacrontab", ""),
        ("/etc/cron.d/a.dpkg-old", "cron.d", ""),
        ("/etc/cron.d/b", "cron.d", ""),
        ("/etc/cron.d/dir", "cron.d", ""),
        ("/var/spool/cron/crontabs/alice", "user", "alice"),
        ("/var/spool/cron/bob", "user", "bob"),
    ]


def test_check_reports_bytes_rules_and_refused_lines_with_their_numbers(tmp_path):
    (tmp_path / "etc").mkdir()
    path = tmp_path / "etc/crontab"
    path.write_bytes(b"SHELL=/bin/sh\n17 * * * * root true\n\0\0\0\0* * * * * root x\n0 0 * * * nobody y")
    os.chmod(path, 0o664)
    (checked,) = cron_files.audit(str(tmp_path))
    assert [(b.kind, b.line, b.offset, b.length) for b in checked.bytes] == [("nul", 3, 35, 4)]
    assert [(f.line, f.error) for f in checked.lines] == [
        (3, "bad minute"),
        (4, "missing newline before EOF"),
    ]
    assert checked.lines[0].text == "\\x00\\x00\\x00\\x00* * * * * root x"
    assert any("INSECURE MODE" in r for r in checked.rules)
    assert any("Missing newline before EOF" in r for r in checked.rules)
    assert checked.jobs == 1 and not checked.healthy


def test_a_user_unknown_to_the_root_is_a_bad_username(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    (tmp_path / "etc/crontab").write_text("* * * * * root true\n* * * * * ghost true\n")
    (checked,) = cron_files.audit(str(tmp_path))
    assert [(f.line, f.error) for f in checked.lines] == [(2, "bad username")]


def test_shown_cuts_long_lines_before_escaping_them():
    assert report_text.shown("a\tb\x1b") == "a\tb\\x1b"
    long = report_text.shown("\0" * (10 << 20))
    assert long.startswith("\\x00" * 10) and long.endswith(f"... ({10 << 20} characters)")
    assert len(long) < 1000


def test_a_crontab_longer_than_cron_reads_is_a_file_problem(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/crontab").write_bytes(b"* * * * * root true\n" * 10_010)
    (checked,) = cron_files.audit(str(tmp_path))
    assert any("crontab must not be longer than 10000 lines" in rule for rule in checked.rules)
    assert not checked.healthy
    (tmp_path / "etc/crontab").write_bytes(b"# comment\n" * 20_000 + b"* * * * * root true\n")
    (checked,) = cron_files.audit(str(tmp_path))
    # cron counts from the first job or assignment past its limit; this one is there too.
    assert [r for r in checked.rules if "10000 lines" in r]
