"""The real cron as the oracle of the cron grammar: Debian's cron daemon, logging through rsyslog.

One container per suite (bullseye, bookworm, trixie; the local images of tools/images/build-images.sh,
no network) gets every line of the corpus (tests/unit/data/cron/corpus.txt, support/cron_corpus.py)
alone in a file of /etc/cron.d (or a user crontab), the file-rule cases (names, owners, modes, links,
a directory, a missing last newline, 10,000 lines) and an /etc/crontab full of NUL blocks like
incident 4's. rsyslogd and cron start; once cron logged that it runs the @reboot jobs it has read
everything. What it logged about each file, read back with module_utils/cron/logs.py, must be what
cron/crontab.py predicts: parse_line, first_error and check_file_rules.

Accepted files also run an @reboot job whose $SHELL is a small dump program: the environment cron
built from the assignment lines and the command and standard input it gave the job must be what
parse_line says (values, quotes, %, backslashes).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab, file_rules
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import logs as cron_logs

from support import cron_oracle as oracle
from support.cron_corpus import USERS, load_corpus
from support.cron_links import audited_link
from support.cron_oracle import DUMP, NUL_FILLED_CRONTAB, Accounts, Planted, dump_job
from support.trees import SUITES

IMAGE = "localhost/lifeline/debian:{suite}"
DIALECT = {"bullseye": crontab.CLASSIC, "bookworm": crontab.CLASSIC, "trixie": crontab.TRIXIE}
DIALECT_NAME = {"bullseye": "classic", "bookworm": "classic", "trixie": "trixie"}
ROWS = load_corpus()


def logged_kinds_of(entry: crontab.Entry | None) -> set[str]:
    """What cron logs about a file whose first refused line is ``entry``."""
    if entry is None:
        return set()
    if entry.error in (crontab.MISSING_NEWLINE, crontab.TOO_MANY_LINES):
        return {entry.error}
    return {entry.error, cron_logs.SYNTAX_ERROR}


def predicted(item: Planted, suite: str) -> tuple[set[str], bool]:
    """(kinds cron logs about the file, whether it skips the file by its name) per crontab.py."""
    problems = oracle.file_rule_problems(item)
    if problems and "ignored by Debian cron" in problems[0]:
        return set(), True
    if problems:
        words = (*file_rules.FILE_RULE_WORDS, file_rules.CANT_OPEN, file_rules.ORPHAN)
        word = next((w for w in words if f"({w})" in problems[0]), "")
        return ({word} if word else {crontab.MISSING_NEWLINE}), False
    text = item.data.decode("utf-8", "surrogateescape")
    entry = crontab.first_error(text, item.kind != "user", users=USERS, dialect=DIALECT[suite])
    return logged_kinds_of(entry), False


# ---- the plan -----------------------------------------------------------------------------

SPOOL = "/var/spool/cron/crontabs"
CORPUS_USER_UID = 3000
CASE_USER_UID = 4000


def dump_files() -> list[tuple[Planted, int]]:
    """The corpus's assignments and @reboot jobs again, each with a dump job to show their effect."""
    planted = []
    for index, row in enumerate(ROWS):
        if not row.system:
            continue
        data = row.line.encode("utf-8", "surrogateescape") + b"\n"
        if row.line.startswith("@reboot"):
            job = f"j{index:03d}"
            data = f"SHELL={DUMP}\nLIFELINE_JOB={job}\n".encode() + data
        elif "env" in row.cron.values():
            job = f"e{index:03d}"
            data += dump_job(job)
        else:
            continue
        planted.append((Planted(f"/etc/cron.d/{job}", "cron.d", data, job=job), index))
    return planted


# A file of /etc/cron.d holding one dump job: cron_d(name, job, **extra).
cron_d = partial(oracle.cron_d_job, dump_job)


def case_files() -> tuple[list[Planted], list[tuple[str, int]]]:
    """The file-rule cases: cron.d names, owners, modes, links, a directory, newlines, lengths."""
    d = "/etc/cron.d"
    accounts = Accounts(CASE_USER_UID)
    cases = [
        cron_d("dotted.name", "f-dotted"),
        cron_d("tilde~name", "f-tilde"),
        cron_d(".hidden", "f-hidden"),
        cron_d("owner1", "f-owner1", uid=1),
        cron_d("gwrite", "f-gwrite", mode=0o664),
        cron_d("owrite", "f-owrite", mode=0o646),
        cron_d("mode755", "f-mode755", mode=0o755),
        cron_d("hardlink1", "f-hardlink", nlink=2),
        Planted(
            f"{d}/hardlink2",
            "cron.d",
            dump_job("f-hardlink"),
            nlink=2,
            type="hardlink",
            target=f"{d}/hardlink1",
        ),
        Planted(f"{d}/nonl", "cron.d", dump_job("f-nonl").rstrip(b"\n"), job="f-nonl"),
        Planted(f"{d}/nonlcomment", "cron.d", dump_job("f-nonlc") + b"# the end", job="f-nonlc"),
        Planted(f"{d}/nonlblank", "cron.d", dump_job("f-nonlb") + b"   ", job="f-nonlb"),
        Planted(f"{d}/adir", "cron.d", mode=0o755, type="dir"),
        Planted("/etc/lifeline-link-target", "crontab", dump_job("f-link"), job="f-link"),
        Planted(
            f"{d}/alink",
            "cron.d",
            dump_job("f-link"),
            type="symlink",
            target="/etc/lifeline-link-target",
            link_uid=0,
        ),
        Planted(
            f"{d}/ownedlink",
            "cron.d",
            dump_job("f-link"),
            type="symlink",
            target="/etc/lifeline-link-target",
            link_uid=1,
        ),
        Planted(f"{d}/lines10003", "cron.d", b"#\n" * 10002 + b"* * * * * root true\n"),
        Planted(f"{d}/lines10004", "cron.d", b"#\n" * 10003 + b"* * * * * root true\n"),
        Planted(f"{d}/nouser", "cron.d", b"0 0 * * *\n17 * * * * root true\n"),
        Planted(f"{d}/nouserend", "cron.d", b"0 0 * * *\n#end\n"),
        Planted(
            f"{d}/laterbad",
            "cron.d",
            b"SHELL=/bin/sh\n17 * * * * root true\n0 24 * * * root x\n* * * * 9 root y\n",
        ),
        Planted(f"{d}/nulsplit", "cron.d", b"17 * * * * root run-pa\0\0\0rts --report /etc/cron.hourly\n"),
        Planted(f"{d}/nulend", "cron.d", b"17 * * * * root true\0\n"),
    ]
    cases.append(Planted("/etc/crontab", "crontab", NUL_FILLED_CRONTAB))
    ghost = f"SHELL={DUMP}\nLIFELINE_JOB=f-ghost\n@reboot -\n".encode()
    cases.append(Planted(f"{SPOOL}/ghost", "user", ghost, 0o600, known_user=False, job="f-ghost"))
    target = Planted("/etc/lifeline-user-target", "crontab", b"@reboot -\n")
    cases.append(target)
    for name, mode, owner, extra in (
        ("urootowned", 0o600, "root", {}),
        ("uowned", 0o600, "self", {}),
        ("uwrongowner", 0o600, "other", {}),
        ("umode644", 0o644, "self", {}),
        ("umode400", 0o400, "self", {}),
        ("uhardlink", 0o600, "self", {"nlink": 2}),
        ("usymlink", 0o600, "self", {"type": "symlink", "target": target.path}),
    ):
        data = f"SHELL={DUMP}\nLIFELINE_JOB=f-{name}\n@reboot -\n".encode()
        cases += accounts.user_crontab(SPOOL, name, data, mode, owner, **extra)
    return cases, accounts.users


@dataclass
class Run(oracle.Run):
    suite: str
    dumped: list[tuple[Planted, int]]


def _run_suite(suite: str, root: Path) -> Run:
    image = IMAGE.format(suite=suite)
    planted, users = case_files()
    # Every corpus line alone in a file.
    corpus, corpus_users = oracle.files_alone(
        [(row.line, row.system) for row in ROWS], SPOOL, CORPUS_USER_UID, "c", "u"
    )
    dumped = dump_files()
    users += corpus_users
    everything = [*corpus, *(item for item, _ in dumped), *planted]
    for item in everything:
        expected, ignored = predicted(item, suite)
        item.expected[suite], item.ignored = expected, ignored
    wait = sorted(
        {item.job for item in everything if item.job and not item.expected[suite] and not item.ignored}
    )
    # cron logs that it runs the @reboot jobs once it has read everything.
    spec = oracle.daemon_spec(users, everything, ["cron", "-f"], wait, ready_log="@reboot jobs")
    result = oracle.run_daemon(image, f"lifeline-oracle-cron-{suite}-{os.getpid()}", spec, root)
    return Run(
        root, result["loaded"], result["cron_alive"], result["outputs"], everything, corpus, suite, dumped
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    oracle.prepare_lane()
    with ThreadPoolExecutor(len(SUITES)) as pool:
        futures = {suite: pool.submit(_run_suite, suite, tmp_path_factory.mktemp(suite)) for suite in SUITES}
        return {suite: future.result() for suite, future in futures.items()}


# ---- the comparisons ----------------------------------------------------------------------


@pytest.mark.parametrize("suite", SUITES)
def test_cron_read_everything(runs, suite):
    run = runs[suite]
    assert run.loaded, f"cron on {suite} never logged that it runs the @reboot jobs"
    assert run.cron_alive, f"cron on {suite} died while reading the planted files"


@pytest.mark.parametrize("suite", SUITES)
def test_every_corpus_line_as_the_corpus_says(runs, suite):
    refusal = {cron_logs.SYNTAX_ERROR}
    wrong = oracle.corpus_mismatches(runs[suite], ROWS, DIALECT_NAME[suite], DIALECT[suite], "cron", refusal)
    assert not wrong, f"{len(wrong)} corpus lines read otherwise by cron on {suite}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("suite", SUITES)
def test_every_planted_file_as_crontab_py_says(runs, suite):
    run = runs[suite]
    # The corpus files are compared above, against the corpus itself.
    oracle.assert_files_logged_as_predicted(run, suite, f"cron on {suite}", SPOOL, run.corpus)


@pytest.mark.parametrize("suite", SUITES)
def test_jobs_run_exactly_where_cron_accepts_the_file(runs, suite):
    run = runs[suite]
    # Three files run the same job "f-link": the target itself is no crontab; alink runs it.
    planted = [
        item
        for item in run.planted
        if not (item.path == "/etc/lifeline-link-target" or item.path.endswith("/ownedlink"))
    ]
    wrong = oracle.job_mismatches(
        planted, run.outputs, lambda item: not item.expected[suite] and not item.ignored
    )
    assert ("f-link" in run.outputs) is True, "the job behind the root-owned symlink in cron.d did not run"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("suite", SUITES)
def test_environment_and_commands_as_parse_line_says(runs, suite):
    run = runs[suite]
    wrong = []
    for item, index in run.dumped:
        row = ROWS[index]
        entry = crontab.parse_line(row.line, True, users=USERS, dialect=DIALECT[suite])
        mismatch = oracle.dump_mismatch(entry, run.outputs.get(item.job), "cron")
        if mismatch:
            wrong.append(f"{row}: {mismatch}")
    assert len(run.dumped) >= 30
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("suite", SUITES)
def test_the_nul_filled_system_crontab(runs, suite):
    """Incident 4: cron refuses the whole /etc/crontab at the first NUL block and says so."""
    logged = runs[suite].errors()
    assert logged["/etc/crontab"] == {crontab.BAD_MINUTE, cron_logs.SYNTAX_ERROR}


@pytest.mark.parametrize("suite", SUITES)
def test_log_format_and_every_log_agree(runs, suite):
    run = runs[suite]
    in_syslog = run.syslog_errors("cron", more_than=100)
    if suite == "bullseye":  # rsyslog's traditional format; bookworm and trixie write RFC 3339
        assert all(e.timestamp[:3].isalpha() and len(e.timestamp) == 15 for e in in_syslog)
    else:
        assert all(oracle.rfc3339(e.timestamp) for e in in_syslog)
        # bookworm and trixie also log cron's facility to cron.log: the same errors.
        assert run.errors("/var/log/cron.log") == run.errors()


@pytest.mark.parametrize("suite", SUITES)
def test_cron_opens_crontabs_through_links_as_the_audit_says(runs, suite, tmp_path):
    """Debian's cron runs the job behind a root-owned link in cron.d and never opens a user crontab
    through a link (CAN'T OPEN): the audit says the same (LinkFacts.cron_follows)."""
    run = runs[suite]
    by_path = {item.path: item for item in run.planted}
    for path, job, follows in (
        ("/etc/cron.d/alink", "f-link", True),
        (f"{SPOOL}/usymlink", "f-usymlink", False),
    ):
        item = by_path[path]
        link = audited_link(item, by_path[item.target], tmp_path / os.path.basename(path), cronie=False)
        assert link.cron_follows is follows, path
        assert (job in run.outputs) is follows, f"cron on {suite} did otherwise for {path}"
    assert "CAN'T OPEN" in run.errors().get(f"{SPOOL}/usymlink", set())
