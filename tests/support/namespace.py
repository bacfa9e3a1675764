"""Real root switches in a private mount namespace: nothing the helper mounts reaches the host.

A test asks the fixture ``namespace`` for a scenario; the fixture runs the requesting test file as a
script inside ``unshare --mount --propagation private --fork`` with the scenario's spec as its argument,
and the file's ``__main__`` calls ``helper(SCENARIOS)``: it builds a copy of the bookworm tree (an
overlay on a tmpfs) and a /run, runs the scenario, and prints what it saw as ``report(...)`` lines,
which the fixture returns. Afterwards the host's mount table must be as it was, the scratch directory
empty and no dead-man process left. A test module loads the fixture with
``pytest_plugins = ("support.namespace",)``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import deadman_switch

from support.paths import REPO
from support.runners import tool_runner
from support.trees import TREES, debian_tree

# ---- the test's side ------------------------------------------------------------------------------

HELPER_TIMEOUT = 120
HOST_NS = os.readlink("/proc/self/ns/mnt")  # the helper refuses to run in the namespace of the tests
# Others' work on this machine mounts and unmounts here while a test runs (container storage, network
# namespaces, other tests' scratch directories, the playbook lane's chroot mounts inside the cached
# Debian trees); every other mount of the host must stay as it was.
OTHERS = (
    "/var/lib/containers/",
    "/run/containers/",
    "/run/netns/",
    "/run/user/",
    "/tmp/",
    "/var/tmp/",
    f"{TREES}/",
)


def others_work(point: str) -> bool:
    """Is a mount point one of other work's (OTHERS, the directories themselves included)?"""
    return (point.rstrip("/") + "/").startswith(OTHERS)


def host_table() -> set[tuple]:
    return {
        (m.mount_id, m.parent_id, m.mount_point, m.fstype, m.source, m.options, m.propagation)
        for m in mounts.read_mountinfo()
    }


@pytest.fixture
def namespace(request):
    """Run a scenario of the requesting test file, run as a script (its ``__main__`` calls ``helper``),
    in a private mount namespace; its report.

    The host's mount table must be the same afterwards, the scratch directory empty (everything was
    written inside the namespace's own tmpfs), and no dead-man process of the test may be left.
    """
    work = Path(tempfile.mkdtemp(prefix="lifeline-pivot-", dir="/var/tmp"))
    before = host_table()
    started: list[int] = []
    spaces: list[str] = []

    def run(scenario: str, **options) -> dict:
        spec = {"work": str(work), "tree": str(_tree()), "scenario": scenario, "host": HOST_NS, **options}
        argv = [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--fork",
            "--kill-child",
            sys.executable,
            str(request.path),
            json.dumps(spec),
        ]
        env = {**os.environ, "PYTHONPATH": f"{REPO / '.collections'}:{REPO / 'tests'}", "LC_ALL": "C"}
        try:
            done = subprocess.run(
                argv, capture_output=True, timeout=HELPER_TIMEOUT, cwd="/", env=env, check=False
            )
            out, err, rc = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as exc:
            out, err, rc = exc.stdout or b"", exc.stderr or b"", "timeout"
        text = out.decode("utf-8", "replace")
        started.extend(int(n) for n in re.findall(r"^deadman-pid (\d+)$", text, re.M))
        spaces.extend(re.findall(r"^namespace (\S+)$", text, re.M))
        reports = [line[len("REPORT ") :] for line in text.splitlines() if line.startswith("REPORT ")]
        assert rc == 0 and reports, f"helper {scenario} exit {rc}:\n{text[-3000:]}\n{err.decode()[-5000:]}"
        return json.loads(reports[-1])

    try:
        yield run
    finally:
        for pid in started:
            with contextlib.suppress(OSError):
                if b"deadman.py" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
        alive = in_namespaces(set(spaces))
        leftover = os.listdir(work)
        if not leftover:
            os.rmdir(work)
    assert spaces and not alive, f"processes left in the test's namespaces: {alive}"
    changed = {m for m in before ^ host_table() if not others_work(m[2]) or m[2].startswith(str(work))}
    assert not changed, f"the host's mounts changed: {sorted(changed)}"
    assert not leftover, f"{work} holds {leftover} on the host"


def in_namespaces(spaces: set[str], seconds: float = 5) -> list[int]:
    """Processes still in one of these mount namespaces: none once the namespace is gone."""
    end = time.monotonic() + seconds
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/ns/mnt") in spaces:
                    found.append(int(pid))
        if not found or time.monotonic() > end:
            return found
        time.sleep(0.05)


def _tree() -> Path:
    return debian_tree("bookworm")


# ---- what a switch left, by the mount tables -------------------------------------------------


def table_of(text: str) -> dict[int, mounts.Mount]:
    return {m.mount_id: m for m in mounts.parse_mountinfo(text)}


def shape(text: str) -> set[tuple[int, int, str]]:
    """The mount tree as (id, parent, mount point): equal only when every mount is where it was."""
    return {(m.mount_id, m.parent_id, m.mount_point) for m in mounts.parse_mountinfo(text)}


def assert_switched(before: str, after: str, plan: dict) -> None:
    """/ is the copy, the kernel's trees and every other mount are in place, the old root on /mnt/oldroot."""
    old, new = table_of(before), table_of(after)
    root = mounts.mount_at(new.values(), "/")
    assert (root.mount_id, root.fstype) == (plan["new_root_id"], "overlay")
    assert mounts.mount_at(new.values(), "/mnt/oldroot").mount_id == plan["old_root_id"]
    for point, fstype in (("/proc", "proc"), ("/sys", "sysfs"), ("/dev", "devtmpfs"), ("/run", "tmpfs")):
        here = mounts.mount_at(new.values(), point)
        assert here is not None and here.fstype == fstype, point
        assert here.mount_id == mounts.mount_at(old.values(), point).mount_id, point
    for entry in plan["moved"]:
        was = [m for m in old.values() if m.mount_point == entry["mount_point"]]
        now = [m for m in new.values() if m.mount_point == entry["mount_point"]]
        if entry["action"] == "rebind":
            assert any(m.devno == root.devno for m in now), entry
        else:  # moved or carried: the same mounts, by id, on the same place
            assert {m.mount_id for m in was} <= {m.mount_id for m in now}, entry
    for entry in plan["left"]:
        ids = {m.mount_id for m in old.values() if m.mount_point == entry["mount_point"]}
        assert ids <= {
            m.mount_id for m in new.values() if m.mount_point == "/mnt/oldroot" + entry["mount_point"]
        }


# ---- the helper, run inside the namespace ---------------------------------------------------------


# The tools the helper runs, on the host's root and then on the copy's, as the module's runner runs them.
tool = tool_runner(
    env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
)


def mountinfo() -> str:
    return Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="surrogateescape")


def build(spec: dict) -> str:
    """The copy (an overlay of the Debian tree on a tmpfs) and a /run tmpfs as hosts have; its path."""
    work = spec["work"]
    tool(["mount", "-n", "-t", "tmpfs", "-o", "mode=700", "lifeline-test", work])
    for name in ("upper", "work", "new"):
        os.mkdir(f"{work}/{name}")
    layers = f"lowerdir={spec['tree']},upperdir={work}/upper,workdir={work}/work"
    tool(["mount", "-n", "-t", "overlay", "-o", layers, "overlay", f"{work}/new"])
    tool(["mount", "-n", "-t", "tmpfs", "-o", "mode=755", "run", "/run"])
    return f"{work}/new"


def leave_others_work(spec: dict) -> None:
    """Unmount here what other work on this machine has mounted (OTHERS); it stays mounted on the host.

    The namespace starts as a copy of the host's mounts, and a switch moves each of them to the new
    root and back. Other work ends its mounts when it likes (a container of another lane): it unmounts
    them on the host, which does not reach this namespace, and removes their mount points from the
    host's root, which is the old root here, so the way back would find no mount point to move them to.
    """
    ours = (str(REPO), sys.prefix, sys.base_prefix, spec["tree"], spec["work"])
    while True:
        theirs = [
            m
            for m in mounts.read_mountinfo()
            if others_work(m.mount_point) and not any(mounts.is_under(p, m.mount_point) for p in ours)
        ]
        ids = {m.mount_id for m in theirs}
        tops = [m for m in theirs if m.parent_id not in ids]  # unmounted lazily, they take the rest along
        if not tops:
            return
        tool(["umount", "-n", "--lazy", min(tops, key=lambda m: mounts.depth(m.mount_point)).mount_point])


def report(**fields) -> None:
    print("REPORT " + json.dumps(fields), flush=True)


def wait_for(state_dir: str, statuses: tuple[str, ...], seconds: float) -> dict:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        log = deadman_switch.read_log(state_dir) or {}
        if log.get("status") in statuses:
            return log
        time.sleep(0.1)
    last = deadman_switch.read_log(state_dir)
    raise AssertionError(f"the dead-man switch did not reach {statuses}: {last}")


def helper(scenarios: dict[str, Callable[[dict, str], None]]) -> None:
    """Inside the namespace: refuse to run anywhere else, build the copy, run the scenario the test's
    spec (the script's argument) names."""
    spec = json.loads(sys.argv[1])
    if os.readlink("/proc/self/ns/mnt") == spec["host"]:
        sys.exit("the helper runs only in a mount namespace of its own (unshare --mount)")
    print(f"namespace {os.readlink('/proc/self/ns/mnt')}", flush=True)
    os.chdir("/")
    for point in spec.get("others", []):  # mounts of other work, as if the host had them at the unshare
        tool(["mount", "-n", "-t", "tmpfs", "-o", "mode=755", "other-work", point])
    leave_others_work(spec)
    scenarios[spec["scenario"]](spec, build(spec))
