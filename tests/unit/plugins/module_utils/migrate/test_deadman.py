"""The dead-man switch as a program of its own (migrate/deadman.py) and its arming, confirming and
disarming (migrate/deadman_switch.py), run for real as separate processes; no root switch happens
here (tests/unit/plugins/module_utils/migrate/test_pivot.py and the root_switch module's tests switch
for real in a private mount namespace). Every configuration here makes the way back harmless
(``make_private`` is ``true``), so nothing of the host changes even if a test fails part way."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import deadman, deadman_switch, pivot

DEADMAN_FILE = Path(deadman.__file__)
# A root and its copy, as mountinfo lists them: the plan of a switch that is never carried out here.
MOUNTS = "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 8:17 / /mnt/new rw - ext4 /dev/sdb1 rw\n"


def harmless_config(state: Path, timeout: float, **changes) -> dict:
    config = {
        "token": "t0",
        "armed": "2026-01-01T00:00:00Z",
        "deadline": "2026-01-01T00:00:05Z",
        "timeout": timeout,
        "confirm_path": str(state / 'it\'s "confirmed"'),
        "script": str(state / deadman_switch.SCRIPT),
        "log": str(state / deadman_switch.LOG),
        "undo": [],
        "make_private": ["true"],
        "restart": [],
        "poll": 0.05,
        "command_timeout": 10,
    }
    config.update(changes)
    return config


def start(state: Path, config: dict) -> subprocess.Popen:
    """The program as root_switch ships it: the file in the state directory, its config beside it."""
    (state / deadman_switch.SCRIPT).write_text(deadman_switch.PROGRAM)
    (state / deadman_switch.CONFIG).write_text(json.dumps(config))
    return subprocess.Popen(
        [sys.executable, str(state / deadman_switch.SCRIPT), str(state / deadman_switch.CONFIG)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def log_when(state: Path, statuses: tuple[str, ...], seconds: float = 20) -> dict:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with_log = deadman_switch.read_log(str(state))
        if with_log and with_log.get("status") in statuses:
            return with_log
        time.sleep(0.02)
    raise AssertionError(f"no status in {statuses} after {seconds} s: {deadman_switch.read_log(str(state))}")


def test_the_shipped_program_is_this_file_and_needs_only_the_standard_library():
    assert DEADMAN_FILE.read_text() == deadman_switch.PROGRAM
    tree = ast.parse(deadman_switch.PROGRAM)
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= sys.stdlib_module_names | {"__future__"}
    assert "ansible" not in deadman_switch.PROGRAM


def test_importing_it_starts_nothing(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", f"import runpy; runpy.run_path({str(DEADMAN_FILE)!r}, run_name='imported')"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "" and list(tmp_path.iterdir()) == []


def test_without_its_config_it_says_how_to_run_it():
    done = subprocess.run([sys.executable, str(DEADMAN_FILE)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "usage:" in done.stderr


def test_a_confirmation_with_any_quotes_in_its_path_is_seen(tmp_path):
    config = harmless_config(tmp_path, timeout=30)
    process = start(tmp_path, config)
    try:
        assert log_when(tmp_path, ("waiting",))["token"] == "t0"
        Path(config["confirm_path"]).write_text("yes\n")
        log = log_when(tmp_path, deadman_switch.FINAL)
    finally:
        process.kill()
    assert log["status"] == "confirmed" and log["steps"] == [] and log["restarts"] == []


def test_unconfirmed_it_goes_back_and_restarts_in_order(tmp_path):
    marks = tmp_path / "marks"
    config = harmless_config(
        tmp_path,
        timeout=0.5,
        undo=[{"argv": ["sh", "-c", f"echo back >> {marks}"]}, {"remove": str(tmp_path / "gone")}],
        restart=[f"echo first >> {marks}", f"echo second >> {marks}"],
    )
    (tmp_path / "gone").mkdir()
    process = start(tmp_path, config)
    assert process.wait(timeout=30) == 0, process.stderr.read()
    log = deadman_switch.read_log(str(tmp_path))
    assert log["status"] == "switched back" and "fired" in log
    assert marks.read_text() == "back\nfirst\nsecond\n" and not (tmp_path / "gone").exists()


def test_a_failing_step_stops_the_way_back_and_names_what_is_left(tmp_path):
    config = harmless_config(tmp_path, timeout=0.2, undo=[{"argv": ["false"]}, {"argv": ["true"]}])
    process = start(tmp_path, config)
    assert process.wait(timeout=30) == 0
    log = deadman_switch.read_log(str(tmp_path))
    assert log["status"] == "switch back failed" and log["left"] == ["false", "true"]


def test_sigterm_disarms_it_while_it_waits(tmp_path):
    process = start(tmp_path, harmless_config(tmp_path, timeout=30))
    log_when(tmp_path, ("waiting",))
    process.terminate()
    assert process.wait(timeout=30) == 0
    assert deadman_switch.read_log(str(tmp_path))["status"] == "disarmed"


def stand_in_for_an_old_switch(state: Path, seconds: float) -> subprocess.Popen:
    """A dead-man process of an earlier arming that has answered "disarmed" but not yet ended, and
    writes its log once more before it does, as a process slowed down by a busy machine may."""
    code = f"""
import json, os, sys, time
log = {{"status": "disarmed", "pid": os.getpid(), "token": "old", "script": sys.argv[1]}}
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    with open({str(state / deadman_switch.LOG)!r} + ".tmp", "w") as handle:
        json.dump(log, handle)
    os.replace({str(state / deadman_switch.LOG)!r} + ".tmp", {str(state / deadman_switch.LOG)!r})
    time.sleep(0.02)
"""
    # Its command line names the state directory's deadman.py, as a real one's does.
    process = subprocess.Popen([sys.executable, "-c", code, str(state / deadman_switch.SCRIPT)])
    end = time.monotonic() + 10
    while deadman_switch.read_log(str(state)) is None and time.monotonic() < end:
        time.sleep(0.01)
    return process


def test_arming_waits_for_the_last_switch_to_end_and_trusts_only_its_own_log(tmp_path):
    """The flake once seen: a switch armed right after a disarm read the old process's late
    "disarmed" as its own answer. Now arm() waits for the old process to end, and only a log with
    the new arming's token counts."""
    old = stand_in_for_an_old_switch(tmp_path, seconds=1.5)
    record = pivot.Record(pivot.plan_switch(MOUNTS, "/mnt/new"), [], [])
    started = time.monotonic()
    try:
        log = deadman_switch.arm(str(tmp_path), 60, str(tmp_path / "confirmed"), [], record, sys.executable)
        assert old.poll() is not None, "arm() started while the old switch was still running"
        assert time.monotonic() - started >= 1.0
        assert log["status"] == "waiting" and log["token"] != "old" and log["pid"] != old.pid
        changed, confirmed = deadman_switch.confirm(str(tmp_path))
        assert changed and confirmed["status"] == "confirmed"
    finally:
        old.kill()
        deadman_switch.disarm(str(tmp_path))


def running(pid: int) -> bool:
    """Does ``pid`` still run the dead-man program? (An ended one may linger as a zombie, with no
    command line, until init reaps it.)"""
    try:
        return b"deadman.py" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def test_disarm_returns_once_the_process_has_ended(tmp_path):
    record = pivot.Record(pivot.plan_switch(MOUNTS, "/mnt/new"), [], [])
    log = deadman_switch.arm(str(tmp_path), 60, str(tmp_path / "confirmed"), [], record, sys.executable)
    after = deadman_switch.disarm(str(tmp_path))
    assert after["status"] == "disarmed" and not running(log["pid"])
