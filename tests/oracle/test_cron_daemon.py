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
import shutil
import stat
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab, file_rules
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import logs as cron_logs

from support.cron_corpus import USERS, load_corpus
from support.cron_oracle import (
    DUMP,
    DUMP_PROGRAM,
    OUT,
    Planted,
    dump_job,
    remove_leftovers,
    run_daemon,
)
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
    name = os.path.basename(item.path)
    mode = (stat.S_IFDIR if item.type == "dir" else stat.S_IFREG) | item.mode
    problems = file_rules.check_file_rules(
        name,
        mode,
        item.uid,
        item.data,
        item.kind,
        nlink=item.nlink,
        user_uid=item.user_uid,
        link_uid=item.link_uid,
        known_user=item.known_user,
    )
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

CORPUS_USER_UID = 3000
CASE_USER_UID = 4000


def corpus_files() -> list[Planted]:
    """Every corpus line alone in a file; accepted assignments and @reboot jobs also dumped."""
    planted = []
    for index, row in enumerate(ROWS):
        data = row.line.encode("utf-8", "surrogateescape") + b"\n"
        if row.system:
            planted.append(Planted(f"/etc/cron.d/c{index:03d}", "cron.d", data))
        else:
            uid = CORPUS_USER_UID + index
            planted.append(Planted(f"/var/spool/cron/crontabs/u{index:03d}", "user", data, 0o600, uid))
    return planted


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


def case_files() -> tuple[list[Planted], list[tuple[str, int]]]:
    """The file-rule cases: cron.d names, owners, modes, links, a directory, newlines, lengths."""
    d = "/etc/cron.d"
    spool = "/var/spool/cron/crontabs"
    users: list[tuple[str, int]] = []

    def user(name: str) -> int:
        uid = CASE_USER_UID + len(users)
        users.append((name, uid))
        return uid

    cases = [
        Planted(f"{d}/dotted.name", "cron.d", dump_job("f-dotted"), job="f-dotted"),
        Planted(f"{d}/tilde~name", "cron.d", dump_job("f-tilde"), job="f-tilde"),
        Planted(f"{d}/.hidden", "cron.d", dump_job("f-hidden"), job="f-hidden"),
        Planted(f"{d}/owner1", "cron.d", dump_job("f-owner1"), uid=1, job="f-owner1"),
        Planted(f"{d}/gwrite", "cron.d", dump_job("f-gwrite"), mode=0o664, job="f-gwrite"),
        Planted(f"{d}/owrite", "cron.d", dump_job("f-owrite"), mode=0o646, job="f-owrite"),
        Planted(f"{d}/mode755", "cron.d", dump_job("f-mode755"), mode=0o755, job="f-mode755"),
        Planted(f"{d}/hardlink1", "cron.d", dump_job("f-hardlink"), nlink=2, job="f-hardlink"),
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
    # Debian's /etc/crontab with NUL blocks written into it, as in incident 4.
    system = (
        b"SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n\n"
        b"17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
        + b"\0" * 4096
        + b"\n25 6\t* * *\troot\ttest -x /usr/sbin/anacron || "
        + b"{ cd / && run-parts --report /etc/cron.daily; }\n"
        + b"47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts "
        + b"\0" * 512
        + b"--report /etc/cron.weekly; }\n"
    )
    cases.append(Planted("/etc/crontab", "crontab", system))
    ghost = f"SHELL={DUMP}\nLIFELINE_JOB=f-ghost\n@reboot -\n".encode()
    cases.append(Planted(f"{spool}/ghost", "user", ghost, 0o600, known_user=False, job="f-ghost"))
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
        uid = user(name)
        job = f"f-{name}"
        data = f"SHELL={DUMP}\nLIFELINE_JOB={job}\n@reboot -\n".encode()
        owner_uid = {"root": 0, "self": uid, "other": CASE_USER_UID + 1000}[owner]
        item = Planted(f"{spool}/{name}", "user", data, mode, owner_uid, user_uid=uid, job=job, **extra)
        if item.type == "symlink":
            item.link_uid, item.uid = uid, 0  # the link is the user's, its target root's
        cases.append(item)
        if name == "uhardlink":
            cases.append(
                Planted(f"/root/{name}-second-link", "user", data, type="hardlink", target=item.path)
            )
    return cases, users


@dataclass
class Run:
    suite: str
    root: Path  # a directory holding the container's /var/log
    loaded: bool
    cron_alive: bool
    outputs: dict[str, dict[str, object]]
    planted: list[Planted]
    dumped: list[tuple[Planted, int]]
    corpus: list[Planted]

    def errors(self, log: str = "/var/log/syslog") -> dict[str, set[str]]:
        """Logged kinds per crontab, from one log."""
        found: dict[str, set[str]] = defaultdict(set)
        for error in cron_logs.scan_logs(str(self.root)):
            if error.log == log:
                found[error.crontab].add(error.kind)
        return found


def _read_by_cron(path: str) -> bool:
    return path == "/etc/crontab" or path.startswith(("/etc/cron.d/", "/var/spool/cron/crontabs/"))


def _run_suite(suite: str, root: Path) -> Run:
    image = IMAGE.format(suite=suite)
    planted, users = case_files()
    corpus = corpus_files()
    dumped = dump_files()
    users = users + [(f"u{i:03d}", CORPUS_USER_UID + i) for i, row in enumerate(ROWS) if not row.system]
    everything = [*corpus, *(item for item, _ in dumped), *planted]
    for item in everything:
        expected, ignored = predicted(item, suite)
        item.expected[suite], item.ignored = expected, ignored
    wait = sorted(
        {item.job for item in everything if item.job and not item.expected[suite] and not item.ignored}
    )
    dump = Planted(DUMP, "crontab", DUMP_PROGRAM, 0o755)
    spec = {
        "out": OUT,
        "users": users,
        "files": [dump.spec(), *(item.spec() for item in everything)],
        "daemon": ["cron", "-f"],
        "ready_log": "@reboot jobs",  # cron logs that it runs them once it has read everything
        "wait": wait,
        "timeout": 60,
        "grace": 1.0,
    }
    result = run_daemon(image, f"lifeline-oracle-cron-{suite}-{os.getpid()}", spec, root)
    return Run(
        suite, root, result["loaded"], result["cron_alive"], result["outputs"], everything, dumped, corpus
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: the oracle lane runs the real cron in containers (make apt)")
    remove_leftovers()
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
    run = runs[suite]
    logged = run.errors()
    wrong = []
    for index, row in enumerate(ROWS):
        path = f"/etc/cron.d/c{index:03d}" if row.system else f"/var/spool/cron/crontabs/u{index:03d}"
        verdict = row.cron[DIALECT_NAME[suite]]
        want = set() if verdict in ("job", "env", "comment", "blank") else {verdict, cron_logs.SYNTAX_ERROR}
        entry = crontab.parse_line(row.line, row.system, users=USERS, dialect=DIALECT[suite])
        assert (entry.error or entry.kind) == verdict, f"parse_line disagrees with the corpus on {row}"
        if logged.get(path, set()) != want:
            wrong.append(f"{row}: cron logged {sorted(logged.get(path, set()))}, the corpus says {verdict!r}")
    assert not wrong, f"{len(wrong)} corpus lines read otherwise by cron on {suite}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("suite", SUITES)
def test_every_planted_file_as_crontab_py_says(runs, suite):
    run = runs[suite]
    logged = run.errors()
    wrong = []
    for item in run.planted:
        if item in run.corpus or not _read_by_cron(item.path):
            continue  # the corpus files are compared above, against the corpus itself
        got = logged.get(item.path, set())
        if got != item.expected[suite]:
            wrong.append(
                f"{item.path}: cron logged {sorted(got)}, crontab.py predicts {sorted(item.expected[suite])}"
            )
    unplanned = set(logged) - {item.path for item in run.planted}
    assert not unplanned, f"cron on {suite} logged errors about files nobody planted: {sorted(unplanned)}"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("suite", SUITES)
def test_jobs_run_exactly_where_cron_accepts_the_file(runs, suite):
    run = runs[suite]
    wrong = []
    for item in run.planted:
        if not item.job or item.type == "hardlink":
            continue
        ran = item.job in run.outputs
        should = not item.expected[suite] and not item.ignored
        if item.path == "/etc/lifeline-link-target" or item.path.endswith("/ownedlink"):
            # Three files run the same job "f-link": the target itself is no crontab; alink runs it.
            continue
        if ran != should:
            wrong.append(f"{item.path}: job {item.job} {'ran' if ran else 'did not run'}")
    assert ("f-link" in run.outputs) is True, "the job behind the root-owned symlink in cron.d did not run"
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("suite", SUITES)
def test_environment_and_commands_as_parse_line_says(runs, suite):
    run = runs[suite]
    wrong = []
    for item, index in run.dumped:
        row = ROWS[index]
        entry = crontab.parse_line(row.line, True, users=USERS, dialect=DIALECT[suite])
        record = run.outputs.get(item.job)
        if entry.kind == "error":
            if record is not None:
                wrong.append(f"{row}: cron ran the job of a file parse_line refuses")
            continue
        if record is None:
            wrong.append(f"{row}: cron did not run the dump job")
        elif entry.kind == "env":
            value = record["env"].get(entry.name)
            if entry.name not in ("SHELL", "LIFELINE_JOB") and value != entry.value:
                wrong.append(f"{row}: cron set {entry.name!r} to {value!r}, parse_line says {entry.value!r}")
        elif (record["argv"], record["stdin"]) != (["-c", entry.shell_command], entry.stdin or ""):
            wrong.append(
                f"{row}: the job got {record['argv']!r} and stdin {record['stdin']!r}, parse_line says "
                f"{entry.shell_command!r} and {entry.stdin!r}"
            )
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
    errors = cron_logs.scan_logs(str(run.root))
    in_syslog = [e for e in errors if e.log == "/var/log/syslog"]
    assert len(in_syslog) > 100
    assert all(e.program == "cron" and e.pid > 0 for e in in_syslog)
    if suite == "bullseye":  # rsyslog's traditional format; bookworm and trixie write RFC 3339
        assert all(e.timestamp[:3].isalpha() and len(e.timestamp) == 15 for e in in_syslog)
    else:
        assert all(e.timestamp[4] == "-" and e.timestamp[10] == "T" for e in in_syslog)
        # bookworm and trixie also log cron's facility to cron.log: the same errors.
        assert run.errors("/var/log/cron.log") == run.errors()
