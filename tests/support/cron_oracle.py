"""The oracle lane's machinery: a real cron daemon in a local container judges planted crontabs.

A run starts one container of a local image (tools/images/build-images.sh, no network), plants
the files of a spec, starts rsyslogd and the daemon, waits until the daemon has read everything
(a log line it writes once it has, or a start-up job that runs only after it has) and the awaited
start-up jobs ran, and hands back what was logged and what the jobs saw. Used for Debian's cron
(test_cron_daemon.py) and for cronie (test_cronie_daemon.py).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import crontab, file_rules
from ansible_collections.lifeline.rescue.plugins.module_utils.cron import logs as cron_logs

from support.cron_corpus import USERS
from support.paths import REPO

os.environ.setdefault("CONTAINERS_CONF", str(REPO / "tools" / "setup" / "containers.conf"))
LABEL = "lifeline.oracle=cron"
DUMP = "/usr/local/bin/lifeline-dump"
OUT = "/run/lifeline"

# Runs inside the container with its own python3: plants the files, starts rsyslogd and the daemon,
# waits until the daemon has read everything and the expected start-up jobs ran, prints what it saw.
INNER = r"""
import json, os, shutil, subprocess, sys, time
spec = json.load(sys.stdin)
os.makedirs(spec["out"], exist_ok=True)
os.chmod(spec["out"], 0o1777)
# Accounts with shadow entries: without one, PAM refuses to run the user's jobs.
with open("/etc/passwd", "a") as passwd, open("/etc/shadow", "a") as shadow, open("/etc/group", "a") as group:
    for name, uid in spec["users"]:
        passwd.write(f"{name}:x:{uid}:{uid}::{spec['out']}:/bin/sh\n")
        shadow.write(f"{name}:*:19000:0:99999:7:::\n")
        group.write(f"{name}:x:{uid}:\n")
for path in spec.get("remove", []):
    shutil.rmtree(path)
for item in spec["files"]:
    path, kind = item["path"], item["type"]
    if kind == "dir":
        os.mkdir(path)
    elif kind == "symlink":
        os.symlink(item["target"], path)
    elif kind == "hardlink":
        os.link(item["target"], path)
    else:
        with open(path, "wb") as handle:
            handle.write(bytes.fromhex(item["hex"]))
    if kind != "hardlink":  # a second name of an inode keeps the inode's owner
        os.lchown(path, item["uid"], 0)
    if kind in ("dir", "file"):  # after chown, which clears set-id bits
        os.chmod(path, item["mode"])
subprocess.run(["rsyslogd"], check=True)
deadline = time.monotonic() + 10
while not os.path.exists("/dev/log") and time.monotonic() < deadline:
    time.sleep(0.05)
quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
daemon = subprocess.Popen(spec["daemon"], **quiet)
deadline = time.monotonic() + spec["timeout"]
def syslog():
    try:
        with open("/var/log/syslog", "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return b""
def done(name):
    return os.path.exists(os.path.join(spec["out"], name + ".done"))
def read_all():
    if spec["ready_log"]:
        return spec["ready_log"].encode() in syslog()
    return done(spec["ready_job"])
while not read_all() and time.monotonic() < deadline:
    time.sleep(0.1)
loaded = read_all()
while not all(done(name) for name in spec["wait"]) and time.monotonic() < deadline:
    time.sleep(0.1)
time.sleep(spec["grace"])  # jobs that should not run have had their chance too
logs = {}
for name in os.listdir("/var/log"):
    if name.startswith(("syslog", "cron")):
        with open(os.path.join("/var/log", name), "rb") as handle:
            logs[name] = handle.read().hex()
outputs = {}
for name in os.listdir(spec["out"]):
    if not name.endswith(".done"):
        with open(os.path.join(spec["out"], name), "rb") as handle:
            outputs[name] = json.loads(handle.read())
print(json.dumps({"loaded": loaded, "logs": logs, "outputs": outputs, "cron_alive": daemon.poll() is None}))
"""

# $SHELL of the dump jobs: records argv, stdin and environment as cron handed them over.
DUMP_PROGRAM = b"""#!/usr/bin/python3
import json, os, sys
name = os.environ.get("LIFELINE_JOB", "unnamed")
decode = lambda b: b.decode("utf-8", "surrogateescape")
record = {"argv": sys.argv[1:], "stdin": decode(sys.stdin.buffer.read()),
          "env": {decode(k): decode(v) for k, v in os.environb.items()}}
with open(f"/run/lifeline/{name}", "w") as handle:
    json.dump(record, handle)
open(f"/run/lifeline/{name}.done", "w").close()
"""


@dataclass
class Planted:
    """One file planted in the containers and what the cron grammar says the daemon makes of it."""

    path: str
    kind: str  # "crontab", "cron.d" or "user"
    data: bytes = b""
    mode: int = 0o644
    uid: int = 0
    type: str = "file"  # file, dir, symlink, hardlink
    target: str = ""
    nlink: int = 1
    link_uid: int | None = None
    user_uid: int | None = None
    known_user: bool = True
    job: str = ""  # the dump job it holds, when it holds one
    expected: dict[str, set[str]] = field(default_factory=dict)  # suite -> logged kinds
    ignored: bool = False  # cron skips it by its name: logs nothing, runs nothing

    def spec(self) -> dict[str, object]:
        return {
            "path": self.path,
            "type": self.type,
            "hex": self.data.hex(),
            "mode": self.mode,
            "uid": self.link_uid if self.link_uid is not None else self.uid,
            "target": self.target,
        }


def dump_job(name: str, user: str | None = "root", command: str = "-") -> bytes:
    """Lines that make cron run the dump program at start-up as job ``name``."""
    run = f"@reboot {user} {command}" if user else f"@reboot {command}"
    return f"SHELL={DUMP}\nLIFELINE_JOB={name}\n{run}\n".encode()


# Debian's /etc/crontab with NUL blocks written into it, as in incident 4.
NUL_FILLED_CRONTAB = (
    b"SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/sbin:/bin:/usr/sbin:/usr/bin\n\n"
    b"17 *\t* * *\troot\tcd / && run-parts --report /etc/cron.hourly\n"
    + b"\0" * 4096
    + b"\n25 6\t* * *\troot\ttest -x /usr/sbin/anacron || "
    + b"{ cd / && run-parts --report /etc/cron.daily; }\n"
    + b"47 6\t* * 7\troot\ttest -x /usr/sbin/anacron || { cd / && run-parts "
    + b"\0" * 512
    + b"--report /etc/cron.weekly; }\n"
)


def cron_d_job(make: Callable[[str], bytes], name: str, job: str, **extra) -> Planted:
    """/etc/cron.d/``name`` holding the dump job ``job`` as ``make`` writes it (the lane's own maker)."""
    return Planted(f"/etc/cron.d/{name}", "cron.d", make(job), job=job, **extra)


def files_alone(
    lines: Sequence[tuple[str, bool]], spool: str, first_uid: int, system_tag: str, user_tag: str
) -> tuple[list[Planted], list[tuple[str, int]]]:
    """Each (line, system) alone in a file: /etc/cron.d/<system_tag>NNN, or the crontab
    ``spool``/<user_tag>NNN of its own account (uid ``first_uid`` + NNN). Returns the files, in the
    order of ``lines``, and the accounts."""
    planted, accounts = [], []
    for index, (line, system) in enumerate(lines):
        data = line.encode("utf-8", "surrogateescape") + b"\n"
        if system:
            planted.append(Planted(f"/etc/cron.d/{system_tag}{index:03d}", "cron.d", data))
        else:
            name, uid = f"{user_tag}{index:03d}", first_uid + index
            planted.append(Planted(f"{spool}/{name}", "user", data, 0o600, uid, user_uid=uid))
            accounts.append((name, uid))
    return planted, accounts


class Accounts:
    """The accounts the file cases plant, one uid each from ``first_uid``."""

    def __init__(self, first_uid: int) -> None:
        self.first_uid = first_uid
        self.users: list[tuple[str, int]] = []

    def add(self, name: str) -> int:
        uid = self.first_uid + len(self.users)
        self.users.append((name, uid))
        return uid

    def user_crontab(
        self, spool: str, name: str, data: bytes, mode: int, owner: str, **extra
    ) -> list[Planted]:
        """The crontab of a new account ``name`` running the dump job f-``name``, owned by "root",
        "self" or "other"; a symlink is the user's and its target root's, a hard link has its second
        name in /root."""
        uid = self.add(name)
        owner_uid = {"root": 0, "self": uid, "other": self.first_uid + 1000}[owner]
        item = Planted(
            f"{spool}/{name}", "user", data, mode, owner_uid, user_uid=uid, job=f"f-{name}", **extra
        )
        if item.type == "symlink":
            item.link_uid, item.uid = uid, 0
        if item.nlink == 1:
            return [item]
        return [item, Planted(f"/root/{name}-second-link", "user", data, type="hardlink", target=item.path)]


def file_rule_problems(item: Planted, **dialect) -> list[str]:
    """What file_rules.check_file_rules says about ``item`` as planted."""
    mode = (stat.S_IFDIR if item.type == "dir" else stat.S_IFREG) | item.mode
    return file_rules.check_file_rules(
        os.path.basename(item.path),
        mode,
        item.uid,
        item.data,
        item.kind,
        nlink=item.nlink,
        user_uid=item.user_uid,
        link_uid=item.link_uid,
        known_user=item.known_user,
        **dialect,
    )


def read_by_cron(path: str, spool: str) -> bool:
    return path == "/etc/crontab" or path.startswith(("/etc/cron.d/", f"{spool}/"))


def daemon_spec(
    users: list[tuple[str, int]], files: list[Planted], daemon: list[str], wait: list[str], **ready
) -> dict[str, object]:
    """What INNER runs: the dump program and ``files`` planted, ``daemon`` started, read everything
    once ``ready`` (ready_log: its log line, or ready_job: its start-up job), the ``wait`` jobs awaited."""
    dump = Planted(DUMP, "crontab", DUMP_PROGRAM, 0o755)
    return {
        "out": OUT,
        "users": users,
        "files": [dump.spec(), *(item.spec() for item in files)],
        "daemon": daemon,
        "ready_log": "",
        "wait": wait,
        "timeout": 60,
        "grace": 1.0,
        **ready,
    }


@dataclass
class Run:
    """What one daemon made of the planted files."""

    root: Path  # a directory holding the container's /var/log
    loaded: bool
    cron_alive: bool
    outputs: dict[str, dict[str, object]]
    planted: list[Planted]
    corpus: list[Planted]  # the corpus lines' files, in the corpus's order

    def logged_as(self, crontab: str) -> str | None:
        """The planted path a logged crontab name stands for (None: no planted file)."""
        return crontab

    def errors(self, log: str = "/var/log/syslog") -> dict[str, set[str]]:
        """Logged kinds per crontab, from one log."""
        found: dict[str, set[str]] = defaultdict(set)
        for error in cron_logs.scan_logs(str(self.root)):
            path = self.logged_as(error.crontab)
            if error.log == log and path is not None:
                found[path].add(error.kind)
        return found

    def syslog_errors(self, program: str, more_than: int) -> list[cron_logs.LoggedError]:
        """The errors in /var/log/syslog, more than ``more_than`` of them, each logged by ``program``."""
        in_syslog = [e for e in cron_logs.scan_logs(str(self.root)) if e.log == "/var/log/syslog"]
        assert len(in_syslog) > more_than
        assert all(e.program == program and e.pid > 0 for e in in_syslog)
        return in_syslog


def rfc3339(timestamp: str) -> bool:
    return timestamp[4] == "-" and timestamp[10] == "T"


def prepare_lane() -> None:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: the oracle lane runs the real cron in containers (make apt)")
    remove_leftovers()


# ---- what the comparisons share ----------------------------------------------------------------


def corpus_mismatches(
    run: Run, rows: Sequence, column: str, dialect: object, daemon: str, refusal: set[str]
) -> list[str]:
    """The corpus lines the daemon read otherwise than the corpus's ``column`` says: a refused line
    logs its verdict and ``refusal``, others nothing. parse_line must agree with the corpus."""
    logged = run.errors()
    wrong = []
    for row, item in zip(rows, run.corpus, strict=True):
        verdict = row.cron[column]
        want = set() if verdict in ("job", "env", "comment", "blank") else {verdict, *refusal}
        entry = crontab.parse_line(row.line, row.system, users=USERS, dialect=dialect)
        assert (entry.error or entry.kind) == verdict, f"parse_line disagrees with the corpus on {row}"
        if logged.get(item.path, set()) != want:
            wrong.append(
                f"{row}: {daemon} logged {sorted(logged.get(item.path, set()))}, the corpus says {verdict!r}"
            )
    return wrong


def assert_files_logged_as_predicted(
    run: Run, suite: str, daemon: str, spool: str, compared_elsewhere: list[Planted]
) -> None:
    """Each planted file the daemon reads logged what was predicted for ``suite``, and no other file
    logged anything."""
    logged = run.errors()
    wrong = []
    for item in run.planted:
        if item in compared_elsewhere or not read_by_cron(item.path, spool):
            continue
        got = logged.get(item.path, set())
        if got != item.expected[suite]:
            wrong.append(
                f"{item.path}: {daemon} logged {sorted(got)}, predicted {sorted(item.expected[suite])}"
            )
    unplanned = set(logged) - {item.path for item in run.planted}
    assert not unplanned, f"{daemon} logged errors about files nobody planted: {sorted(unplanned)}"
    assert not wrong, "\n".join(wrong)


def job_mismatches(
    planted: list[Planted], outputs: dict[str, object], should_run: Callable[[Planted], bool]
) -> list[str]:
    """The planted files whose dump job ran where it should not, or did not where it should."""
    wrong = []
    for item in planted:
        if not item.job or item.type == "hardlink":
            continue
        ran = item.job in outputs
        if ran != should_run(item):
            wrong.append(f"{item.path}: job {item.job} {'ran' if ran else 'did not run'}")
    return wrong


def dump_mismatch(entry: crontab.Entry, record: dict | None, daemon: str) -> str:
    """How the dump job beside ``entry`` differs from what parse_line says of it ("" where it does not)."""
    if entry.kind == "error":
        return f"{daemon} ran the job of a file parse_line refuses" if record is not None else ""
    if record is None:
        return f"{daemon} did not run the dump job"
    if entry.kind == "env":
        value = record["env"].get(entry.name)
        if entry.name not in ("SHELL", "LIFELINE_JOB") and value != entry.value:
            return f"{daemon} set {entry.name!r} to {value!r}, parse_line says {entry.value!r}"
        return ""
    if (record["argv"], record["stdin"]) != (["-c", entry.shell_command], entry.stdin or ""):
        return (
            f"the job got {record['argv']!r} and stdin {record['stdin']!r}, parse_line says "
            f"{entry.shell_command!r} and {entry.stdin!r}"
        )
    return ""


def podman(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], input=input, capture_output=True, text=True, timeout=timeout)


def remove_leftovers() -> None:
    """Containers of this lane left by a run that was killed (their creator pid is gone)."""
    listed = podman("ps", "-a", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    for name in listed.stdout.split():
        pid = name.rsplit("-", 1)[-1]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            podman("rm", "-f", "-t", "0", name)


def run_daemon(image: str, name: str, spec: dict[str, object], root: Path) -> dict[str, object]:
    """Run the spec in a container of ``image``; its logs land in ``root``/var/log.

    Returns the container's verdict: "loaded", "cron_alive" and the dump jobs' "outputs".
    """
    if podman("image", "exists", image).returncode != 0:
        pytest.fail(f"{image} is missing: the oracle lane needs the local images (run `make images`)")
    # --rm and a bounded sleep: even a killed test run leaves no container for long.
    started = podman(
        "run", "-d", "--rm", "--name", name, "--label", LABEL, "--network", "none", image, "sleep", "600"
    )
    if started.returncode != 0:
        pytest.fail(f"podman could not start {image}: {started.stderr.strip()}")
    try:
        ran = podman("exec", "-i", name, "python3", "-c", INNER, input=json.dumps(spec), timeout=180)
    finally:
        removed = podman("rm", "-f", "-t", "0", name)
    if removed.returncode != 0:
        pytest.fail(f"could not remove container {name}: {removed.stderr.strip()}")
    if ran.returncode != 0:
        pytest.fail(f"the {image} container failed to run cron: {ran.stderr.strip()[-2000:]}")
    result = json.loads(ran.stdout)
    (root / "var" / "log").mkdir(parents=True)
    for log, data in result["logs"].items():
        (root / "var" / "log" / log).write_bytes(bytes.fromhex(data))
    return result
