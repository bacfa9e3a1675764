"""The real cronie as the oracle of the cronie dialect: cronie 1.7.2's daemon, logging through rsyslog.

One container of localhost/lifeline/cronie:trixie (tools/images/build-images.sh: Debian trixie with
its cronie package in place of cron, no network) gets every line of the corpus
(tests/unit/data/cron/corpus.txt) alone in a file of /etc/cron.d or a user crontab, the cronie lines
of support/cron_corpus.py, and the file cases where cronie differs from Debian's cron: cron.d names
(.rpmnew, .rpmsave, .rpmorig, dots), modes, owners, links, a bad line in the middle of a file, a last
line without its newline, the limits of user crontabs, CRON_TZ, RANDOM_DELAY and MAILFROM, the '-'
that switches a job's log line off. rsyslogd and crond start; once a start-up job planted for the
purpose has run, cronie has read everything. What it logged about each file, read back with
module_utils/cron/logs.py, must be what cron/crontab.py and file_rules.py predict for the cronie
dialect; the start-up jobs must run exactly where they predict, with the environment, command and
standard input parse_line says.

User crontabs lie in /var/spool/cron/USER, the Red Hat layout. Debian builds cronie with its own
spool, /var/spool/cron/crontabs: in the container that name is a link to /var/spool/cron, so cronie
reads the files there (and logs them under the link's name, mapped back here; the link itself is
one more name in the spool, which cronie logs as an orphan).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import partial

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab, file_rules

from support import cron_oracle as oracle
from support.cron_corpus import CRONIE_LINES, USERS, load_corpus
from support.cron_links import audited_link
from support.cron_oracle import DUMP, NUL_FILLED_CRONTAB, Accounts, Planted, dump_job

IMAGE = "localhost/lifeline/cronie:trixie"
SUITE = "cronie"
SPOOL = "/var/spool/cron"
DEBIAN_BUILD_SPOOL = "/var/spool/cron/crontabs"
ROWS = load_corpus()
CORPUS_USER_UID = 3000
CASE_USER_UID = 4000
CRONIE_LINE_USER_UID = 5000


def job(name: str, user: str | None = "root", *, prefix: str = "") -> bytes:
    """A dump job for cronie: its command names the job (cronie reads a command starting with '-' as
    its options, so the Debian lane's "-" will not do), ``prefix`` goes before the time field."""
    lines = dump_job(name, user, command=f"lifeline {name}").split(b"\n")
    lines[2] = prefix.encode() + lines[2]
    return b"\n".join(lines)


def predicted(item: Planted) -> tuple[set[str], bool]:
    """(kinds cronie logs about the file, whether it skips the file by its name) per the cronie dialect."""
    problems = oracle.file_rule_problems(item, cronie=True, directory=os.path.dirname(item.path))
    if problems and "ignored by cronie" in problems[0]:
        return set(), True
    if problems:
        words = (*file_rules.FILE_RULE_WORDS, file_rules.ORPHAN)
        return {next(w for w in words if f"({w})" in problems[0])}, False
    text = item.data.decode("utf-8", "surrogateescape")
    system = item.kind != "user"
    privileged = item.kind == "user" and item.user_uid == 0
    entries = crontab.parse_text(text, system, users=USERS, dialect=crontab.CRONIE, privileged=privileged)
    kinds = {entry.error for entry in entries if entry.kind == "error"}
    failure = crontab.first_error(text, system, users=USERS, dialect=crontab.CRONIE, privileged=privileged)
    if failure is not None:
        kinds.add(failure.error)
    return kinds, False


def refused(item: Planted) -> bool:
    """Whether cronie runs none of the file's jobs: refused by a file rule or over a user limit."""
    return bool(item.expected[SUITE] & {*file_rules.FILE_RULE_WORDS, file_rules.ORPHAN, *LIMITS})


LIMITS = (crontab.TOO_MANY_ENTRIES, crontab.TOO_MANY_ENVS, crontab.TOO_MUCH_GARBAGE)


# ---- the plan -----------------------------------------------------------------------------


def dump_files() -> list[tuple[Planted, str, bool]]:
    """The assignments and @reboot jobs of the corpus and of the cronie lines again, each with a dump
    job to show their effect: (file, line, system)."""
    lines = [(row.line, f"{index:03d}") for index, row in enumerate(ROWS) if row.system]
    lines += [(row.line, f"l{index:03d}") for index, row in enumerate(CRONIE_LINES) if row.system]
    planted = []
    for line, tag in lines:
        data = line.encode("utf-8", "surrogateescape") + b"\n"
        entry = crontab.parse_line(line, True, users=USERS, dialect=crontab.CRONIE)
        if entry.special == "@reboot":
            name = f"j{tag}"
            data = f"SHELL={DUMP}\nLIFELINE_JOB={name}\n".encode() + data
        elif entry.kind == "env":
            name = f"e{tag}"
            data += job(name)
        else:
            continue
        # A HOME that does not exist stops cronie from running the job (checked on its own below).
        runs = not (entry.kind == "env" and entry.name == "HOME" and not entry.value.startswith("/run/"))
        planted.append((Planted(f"/etc/cron.d/{name}", "cron.d", data, job=name if runs else ""), line, True))
    return planted


# A file of /etc/cron.d holding one dump job: cron_d(name, job, **extra).
cron_d = partial(oracle.cron_d_job, job)


def case_files() -> tuple[list[Planted], list[tuple[str, int]]]:
    """cronie's file cases: names, modes, owners, links, bad lines amid good ones, user limits."""
    d = "/etc/cron.d"
    accounts = Accounts(CASE_USER_UID)
    cases = [
        cron_d("lifeline-ready", "ready"),
        # Names: cronie reads dots (Debian does not) and skips a package manager's leftovers.
        cron_d("dotted.name", "f-dotted"),
        cron_d("old.dpkg-old", "f-dpkg-old"),
        cron_d("job.rpmnew", "f-rpmnew"),
        cron_d("job.rpmsave", "f-rpmsave"),
        cron_d("job.rpmorig", "f-rpmorig"),
        cron_d("tilde~", "f-tilde"),
        cron_d("#hash", "f-hash"),
        cron_d(".hidden", "f-hidden"),
        # Owners and modes: mode & 07533 must be 0400.
        cron_d("owner1", "f-owner1", uid=1),
        cron_d("mode664", "f-mode664", mode=0o664),
        cron_d("mode646", "f-mode646", mode=0o646),
        cron_d("mode755", "f-mode755", mode=0o755),
        cron_d("mode4644", "f-mode4644", mode=0o4644),
        cron_d("mode200", "f-mode200", mode=0o200),
        cron_d("mode640", "f-mode640", mode=0o640),
        cron_d("mode444", "f-mode444", mode=0o444),
        cron_d("mode600", "f-mode600", mode=0o600),
        # Links: system crontabs may have hard links, and links are followed whoever owns them.
        cron_d("hardlink1", "f-hardlink", nlink=2),
        Planted(
            f"{d}/hardlink2", "cron.d", job("f-hardlink"), nlink=2, type="hardlink", target=f"{d}/hardlink1"
        ),
        Planted("/etc/lifeline-link-target", "crontab", job("f-link")),
        Planted(
            f"{d}/ownedlink",
            "cron.d",
            job("f-link"),
            type="symlink",
            target="/etc/lifeline-link-target",
            link_uid=1,
            job="f-link",
        ),
        Planted(f"{d}/adir", "cron.d", mode=0o755, type="dir"),
        # Bad lines cost only themselves; a last line without its newline is lost alone.
        Planted(
            f"{d}/middle",
            "cron.d",
            f"SHELL={DUMP}\nLIFELINE_JOB=f-middle\n0 24 * * * root x\n* * * * 9 root y\n@daily\n"
            "@reboot root lifeline f-middle\n".encode(),
            job="f-middle",
        ),
        Planted(f"{d}/nonl", "cron.d", job("f-nonl") + b"@reboot root lifeline again", job="f-nonl"),
        Planted(f"{d}/nonlcomment", "cron.d", job("f-nonlc") + b"# the end", job="f-nonlc"),
        Planted(f"{d}/nouserline", "cron.d", b"0 0 * * *\n" + job("f-nouserline"), job="f-nouserline"),
        # A run of comments longer than cronie's limit: in a system crontab it reads on from its middle.
        Planted(f"{d}/garbage", "cron.d", b"#" + b"x" * 40000 + b"\n" + job("f-garbage"), job="f-garbage"),
        # The variables cronie uses itself.
        Planted(f"{d}/crontz", "cron.d", b"CRON_TZ=Asia/Tokyo\n" + job("f-crontz"), job="f-crontz"),
        Planted(f"{d}/delay", "cron.d", b"RANDOM_DELAY=5\n" + job("f-delay"), job="f-delay"),
        Planted(f"{d}/baddelay", "cron.d", b"RANDOM_DELAY=5000\n" + job("f-baddelay"), job="f-baddelay"),
        Planted(
            f"{d}/mailfrom",
            "cron.d",
            b"MAILFROM=cron@example.com\nMAILTO=\n" + job("f-mailfrom"),
            job="f-mailfrom",
        ),
        # '-' before the time fields: no CMD log line for the job.
        Planted(f"{d}/nolog", "cron.d", job("f-nolog", prefix="-"), job="f-nolog"),
        cron_d("log", "f-log"),
        Planted(
            f"{d}/mailerr",
            "cron.d",
            job("f-mailerr").replace(b"root lifeline", b"root -n lifeline"),
            job="f-mailerr",
        ),
        # A user cronie does not know: the file loads, the job does not run.
        Planted(f"{d}/nosuchuser", "cron.d", job("f-nosuchuser", "nosuchuser")),
    ]
    cases.append(Planted("/etc/crontab", "crontab", NUL_FILLED_CRONTAB))
    ghost = job("f-ghost", None)
    cases.append(Planted(f"{SPOOL}/ghost", "user", ghost, 0o600, known_user=False, job="f-ghost"))
    cases.append(Planted("/etc/lifeline-user-target", "crontab", job("f-usymlink", None)))
    many_entries = job("f-toomany", None) + b"0 0 * * * true\n" * crontab.CRONIE_MAX_USER_ENTRIES
    many_envs = b"".join(b"V%d=1\n" % i for i in range(crontab.CRONIE_MAX_USER_ENVS)) + job(
        "f-toomanyenvs", None
    )
    long_comment = b"#" + b"x" * 40000 + b"\n" + job("f-ugarbage", None)
    for name, mode, owner, data, extra in (
        ("uroot-owned", 0o600, "root", None, {}),
        ("uowned", 0o600, "self", None, {}),
        ("umode644", 0o644, "self", None, {}),
        ("umode640", 0o640, "self", None, {}),
        ("umode664", 0o664, "self", None, {}),
        ("uwrongowner", 0o600, "other", None, {}),
        ("uhardlink", 0o600, "self", None, {"nlink": 2}),
        ("usymlink", 0o644, "self", None, {"type": "symlink", "target": "/etc/lifeline-user-target"}),
        (
            "unolog",
            0o600,
            "self",
            job("f-unolog", None, prefix="-") + b"@reboot lifeline f-unolog\n",
            {},
        ),
        ("umiddle", 0o600, "self", b"0 0 * * *\n" + job("f-umiddle", None), {}),
        ("utoomany", 0o600, "self", many_entries, {}),
        ("utoomanyenvs", 0o600, "self", many_envs, {}),
        ("ugarbage", 0o600, "self", long_comment, {}),
    ):
        content = data if data is not None else job(f"f-{name}", None)
        cases += accounts.user_crontab(SPOOL, name, content, mode, owner, **extra)
    # root's own crontab may switch the log line off.
    cases.append(
        Planted(
            f"{SPOOL}/root",
            "user",
            job("f-rootnolog", None, prefix="-"),
            0o600,
            0,
            user_uid=0,
            job="f-rootnolog",
        )
    )
    return cases, accounts.users


@dataclass
class Run(oracle.Run):
    dumped: list[tuple[Planted, str, bool]]
    lines: list[Planted]

    def logged_as(self, crontab: str) -> str | None:
        """User crontabs under their Red Hat path; none for the link in the spool, an orphan to cronie."""
        if crontab.startswith(DEBIAN_BUILD_SPOOL + "/"):
            crontab = SPOOL + crontab[len(DEBIAN_BUILD_SPOOL) :]
        return None if crontab == DEBIAN_BUILD_SPOOL else crontab

    def messages(self) -> list[str]:
        """crond's messages in /var/log/syslog."""
        text = (self.root / "var" / "log" / "syslog").read_text(encoding="utf-8", errors="replace")
        # CROND: the process that starts a job upper-cases its name (CAPITALIZE_FOR_PS).
        return [m.group(1) for m in re.finditer(r" (?:crond|CROND)\[\d+\]: (.*)", text)]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    oracle.prepare_lane()
    planted, users = case_files()
    # Every corpus line and every cronie line alone in a file.
    corpus, corpus_users = oracle.files_alone(
        [(row.line, row.system) for row in ROWS], SPOOL, CORPUS_USER_UID, "c", "u"
    )
    cronie_lines = [(row.line, row.system) for row in CRONIE_LINES]
    lines, line_users = oracle.files_alone(cronie_lines, SPOOL, CRONIE_LINE_USER_UID, "l", "l")
    dumped = dump_files()
    users += corpus_users + line_users
    everything = [*corpus, *lines, *(item for item, _, _ in dumped), *planted]
    for item in everything:
        item.expected[SUITE], item.ignored = predicted(item)
    wait = sorted({item.job for item in everything if item.job and not item.ignored and not refused(item)})
    spool_link = Planted(DEBIAN_BUILD_SPOOL, "user", type="symlink", target=".")
    # @reboot jobs run once cronie has read every crontab.
    spec = oracle.daemon_spec(users, [spool_link, *everything], ["crond", "-n"], wait, ready_job="ready")
    spec["remove"] = [DEBIAN_BUILD_SPOOL]
    root = tmp_path_factory.mktemp("cronie")
    result = oracle.run_daemon(IMAGE, f"lifeline-oracle-cronie-{os.getpid()}", spec, root)
    return Run(
        root, result["loaded"], result["cron_alive"], result["outputs"], everything, corpus, dumped, lines
    )


# ---- the comparisons ----------------------------------------------------------------------


def test_cronie_read_everything(run):
    assert run.loaded, "cronie never ran the start-up job planted to show it has read every crontab"
    assert run.cron_alive, "cronie died while reading the planted files"


def test_every_corpus_line_as_the_corpus_says(run):
    wrong = oracle.corpus_mismatches(run, ROWS, "cronie", crontab.CRONIE, "cronie", refusal=set())
    assert not wrong, f"{len(wrong)} corpus lines read otherwise by cronie:\n" + "\n".join(wrong)


def test_every_cronie_line_as_written(run):
    logged = run.errors()
    wrong = []
    for row, item in zip(CRONIE_LINES, run.lines, strict=True):
        want = set() if row.cronie in ("job", "env") else {row.cronie}
        if logged.get(item.path, set()) != want:
            wrong.append(
                f"{row}: cronie logged {sorted(logged.get(item.path, set()))}, expected {row.cronie!r}"
            )
    assert not wrong, "\n".join(wrong)


def test_every_planted_file_as_the_cronie_dialect_says(run):
    oracle.assert_files_logged_as_predicted(run, SUITE, "cronie", SPOOL, [*run.corpus, *run.lines])


def test_jobs_run_exactly_where_cronie_reads_them(run):
    wrong = oracle.job_mismatches(
        run.planted, run.outputs, lambda item: not item.ignored and not refused(item)
    )
    assert not wrong, "\n".join(wrong)
    # Where Debian's cron and cronie part ways, the jobs show it.
    for ran in ("f-dotted", "f-dpkg-old", "f-middle", "f-nonl", "f-umode644", "f-link", "f-hardlink"):
        assert ran in run.outputs, ran
    for skipped in ("f-rpmnew", "f-rpmsave", "f-rpmorig", "f-toomany", "f-uhardlink", "f-nosuchuser"):
        assert skipped not in run.outputs, skipped


def test_environment_and_commands_as_parse_line_says(run):
    wrong = []
    for item, line, system in run.dumped:
        entry = crontab.parse_line(line, system, users=USERS, dialect=crontab.CRONIE)
        record = run.outputs.get(item.job)
        if entry.kind == "env" and entry.name == "HOME" and not entry.value.startswith("/run/"):
            # cronie changes into HOME first, and runs nothing when that directory does not exist.
            if (
                record is not None
                or f"(CRON) ERROR chdir failed ({entry.value}): No such file or directory"
                not in run.messages()
            ):
                wrong.append(f"{line!r}: cronie ran a job whose HOME does not exist, or did not say so")
            continue
        mismatch = oracle.dump_mismatch(entry, record, "cronie")
        if mismatch:
            wrong.append(f"{line!r}: {mismatch}")
    assert len(run.dumped) >= 30
    assert not wrong, "\n".join(wrong)


def test_the_variables_cronie_uses(run):
    env = {name: run.outputs[name]["env"] for name in ("f-crontz", "f-delay", "f-baddelay", "f-mailfrom")}
    assert env["f-crontz"]["CRON_TZ"] == "Asia/Tokyo"
    assert env["f-delay"]["RANDOM_DELAY"] == "5"
    assert env["f-mailfrom"]["MAILFROM"] == "cron@example.com" and env["f-mailfrom"]["MAILTO"] == ""
    # A bad RANDOM_DELAY costs nothing but a log line (the job is read and runs).
    assert "(CRON) ERROR (bad value of RANDOM_DELAY)" in run.messages()
    note = crontab.parse_text("RANDOM_DELAY=5000\n@reboot root x\n", True, dialect=crontab.CRONIE)[1].notes
    assert any("bad value of RANDOM_DELAY" in n for n in note)
    # cronie sets these itself, whatever the crontab says.
    for record in env.values():
        assert record["LOGNAME"] == record["USER"] == "root" and record["HOME"] == "/root"


def test_the_dash_switches_the_log_line_off_for_root_only(run):
    messages = run.messages()
    assert "(root) CMD (lifeline f-log)" in messages
    assert not any("lifeline f-nolog" in m for m in messages)
    assert not any("lifeline f-rootnolog" in m for m in messages)
    assert "f-rootnolog" in run.outputs and "f-nolog" in run.outputs
    # A user other than root may not: that line is refused, the next one (the same job) runs.
    assert "(CRON) ERROR (Only privileged user can disable logging)" in messages
    assert run.errors()[f"{SPOOL}/unolog"] == {crontab.BAD_OPTION}
    assert "f-unolog" in run.outputs


def test_a_user_without_an_account_is_refused_when_the_job_is_due(run):
    assert "(nosuchuser) ERROR (getpwnam() failed - user unknown)" in run.messages()
    assert "/etc/cron.d/nosuchuser" not in run.errors()


def test_the_nul_filled_system_crontab(run):
    """Incident 4 on cronie: the NUL block costs the line it stands in; the other lines are read."""
    assert run.errors()["/etc/crontab"] == {crontab.BAD_MINUTE}


def test_log_format_and_every_log_agree(run):
    in_syslog = run.syslog_errors("crond", more_than=50)
    assert all(oracle.rfc3339(e.timestamp) for e in in_syslog)
    # trixie's rsyslog also logs the cron facility to cron.log: the same errors.
    assert run.errors("/var/log/cron.log") == run.errors()


def test_cronie_opens_crontabs_through_links_as_the_audit_says(run, tmp_path):
    """cronie runs the job behind a link in cron.d whoever owns it, and behind a link in its spool:
    the audit says cronie follows both (LinkFacts.cron_follows)."""
    by_path = {item.path: item for item in run.planted}
    for path in ("/etc/cron.d/ownedlink", f"{SPOOL}/usymlink"):
        item = by_path[path]
        link = audited_link(item, by_path[item.target], tmp_path / item.job, cronie=True)
        assert link.cron_follows is (item.job in run.outputs) is True, path
