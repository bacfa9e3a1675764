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
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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
