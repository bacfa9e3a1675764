# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Arm, confirm and disarm the dead-man switch of a root switch, from the module's side.

Arming writes the program (deadman.py, read now, while this module's own files can still be read:
after pivot_root they lie below the root just left) and its configuration into the state directory,
starts it in a session of its own, and waits for its first word in the log. Every arming has a token
of its own, and only a log with that token is taken as its answer: a switch disarmed a moment ago
may still be writing its last line.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import signal
import sys
import time
from collections.abc import Sequence

from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import deadman
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate.pivot import (
    MAKE_PRIVATE,
    Record,
    SwitchError,
    read_json,
    undo_operations,
    write_file,
)

SCRIPT = "deadman.py"
CONFIG = "deadman-config.json"
LOG = "deadman.json"  # the dead-man switch's status and every step it took, rewritten atomically
CONFIRMATION = "confirmed"
# The program as it is shipped: its own source, read while this collection's files are reachable.
PROGRAM = inspect.getsource(deadman)

# The dead-man switch polls for the confirmation this often; arm(), confirm() and disarm() wait this
# long for it to answer.
POLL = 0.2
START_TIMEOUT = 10.0
COMMAND_TIMEOUT = 120  # seconds one restart command may take when the dead-man switch fires

# The dead-man switch's statuses once it is done; before that it is waiting, switching back or restarting.
# "crashed" has the traceback under "error".
FINAL = ("confirmed", "disarmed", "switched back", "switch back failed", "crashed")


def _stamp(when: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def _alive(log: dict) -> bool:
    """Is the dead-man process of this log still running (and not a reused pid)?"""
    try:
        with open(f"/proc/{int(log['pid'])}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
    except (OSError, KeyError, TypeError, ValueError):
        return False
    return os.fsencode(log.get("script", "")) in argv


def _detach(argv: list[str]) -> None:
    """Start ``argv`` as a daemon: its own session, reparented to init, no descriptor of ours.

    It must outlive this module and the connection behind it: a session leader of a session with
    no terminal, holding no pipe the connection waits on.
    """
    child = os.fork()
    if child == 0:
        try:
            os.setsid()
            if os.fork() == 0:
                null = os.open(os.devnull, os.O_RDWR)
                for fd in (0, 1, 2):
                    os.dup2(null, fd)
                os.closerange(3, 65536)
                os.execv(argv[0], argv)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def read_log(state_dir: str) -> dict | None:
    """The dead-man switch's log in ``state_dir``; None when none was armed there."""
    return read_json(os.path.join(state_dir, LOG))


def arm(
    state_dir: str,
    timeout: int,
    confirm_path: str,
    on_timeout_commands: Sequence[str],
    record: Record,
    python: str | None = None,
) -> dict:
    """Start the dead-man switch for a completed switch; its log once it runs.

    Unless ``confirm_path`` appears within ``timeout`` seconds it switches back to the old root and
    runs ``on_timeout_commands`` with /bin/sh, recording every step in the log. ``state_dir`` must
    be on a filesystem that moves with the switch (a tmpfs such as /run): the same path on both roots.
    """
    if timeout <= 0:
        raise SwitchError(f"confirm timeout {timeout}: give 1 second or more")
    python = python or sys.executable
    if not os.path.isfile(python):
        raise SwitchError(f"{python} is not on the new root: the dead-man switch cannot run there")
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    log_path, script = os.path.join(state_dir, LOG), os.path.join(state_dir, SCRIPT)
    current = read_log(state_dir)
    if current and current.get("status") not in FINAL and _alive(current):
        raise SwitchError(
            f"a dead-man switch is armed already (pid {current['pid']}, {log_path}): confirm it or roll back"
        )
    if current and not _gone(current, START_TIMEOUT):
        raise SwitchError(
            f"the last dead-man switch (pid {current['pid']}, {current.get('status')}) has not ended after "
            f"{START_TIMEOUT:.0f} s: check it (ps -p {current['pid']}) before arming another"
        )
    # A confirmation left from an earlier switch must not confirm this one.
    for stale in (confirm_path, log_path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(stale)
    armed = time.time()
    config = {
        "token": os.urandom(8).hex(),
        "armed": _stamp(armed),
        "deadline": _stamp(armed + timeout),
        "timeout": timeout,
        "confirm_path": confirm_path,
        "script": script,
        "log": log_path,
        "undo": undo_operations(record),
        "make_private": MAKE_PRIVATE,
        "restart": list(on_timeout_commands),
        "poll": POLL,
        "command_timeout": COMMAND_TIMEOUT,
    }
    config_path = os.path.join(state_dir, CONFIG)
    write_file(config_path, json.dumps(config, indent=1))
    write_file(script, PROGRAM, 0o700)
    _detach([python, script, config_path])
    end = time.monotonic() + START_TIMEOUT
    while time.monotonic() < end:
        log = read_log(state_dir)
        if log is not None and log.get("token") == config["token"]:
            return log
        time.sleep(0.05)
    raise SwitchError(f"the dead-man switch ({python} {script}) did not start within {START_TIMEOUT:.0f} s")


def _gone(log: dict, seconds: float) -> bool:
    """Has the dead-man process of this log ended (waiting up to ``seconds`` for it to)?"""
    end = time.monotonic() + seconds
    while _alive(log):
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)
    return True


def _await(state_dir: str, leaving: str, seconds: float) -> dict:
    """The log once its status is no longer ``leaving`` (or as it is after ``seconds``)."""
    end = time.monotonic() + seconds
    log = read_log(state_dir) or {}
    while log.get("status") == leaving and time.monotonic() < end:
        time.sleep(0.05)
        log = read_log(state_dir) or {}
    return log


def _too_late(log: dict, log_path: str) -> str:
    """Why a dead-man switch that no longer waits cannot be confirmed, and what to do."""
    status = log.get("status")
    if status == "disarmed":
        return f"the dead-man switch was disarmed at {log.get('finished', '?')} ({log_path})"
    if status == "crashed":
        last = (log.get("error") or "").strip().splitlines()[-1:] or ["?"]
        return (
            f"the dead-man switch crashed ({last[0]}; see {log_path}): check which root / is "
            "(findmnt /) before going on"
        )
    if status == "switch back failed":
        return (
            f"the dead-man switch fired at {log.get('fired', '?')} and could not switch back; it stopped "
            f"where {log_path} says, with the commands left under 'left'"
        )
    return (
        f"the dead-man switch fired at {log.get('fired', '?')} and is {status}: the host went back to "
        f"its old root (see {log_path})"
    )


def confirm(state_dir: str, wait: float = START_TIMEOUT) -> tuple[bool, dict]:
    """Confirm the new root: (changed, log). The dead-man switch exits and the switch stays.

    SwitchError when there is nothing to confirm, or when it is too late (it fired, it is gone).
    """
    log_path = os.path.join(state_dir, LOG)
    log = read_log(state_dir)
    if log is None:
        raise SwitchError(f"no dead-man switch was armed in {state_dir} ({log_path} is missing)")
    status = log.get("status")
    if status == "confirmed":
        return False, log
    if status != "waiting":
        raise SwitchError(_too_late(log, log_path))
    if not _alive(log):
        raise SwitchError(
            f"the dead-man switch (pid {log.get('pid')}) is gone without a word in {log_path}: "
            "check which root / is (findmnt /) before going on"
        )
    with open(log["confirm_path"], "w", encoding="utf-8") as handle:
        handle.write(_stamp(time.time()) + "\n")
    log = _await(state_dir, "waiting", wait)
    if log.get("status") != "confirmed":
        raise SwitchError(_too_late(log, log_path))
    return True, log


def disarm(state_dir: str, wait: float = START_TIMEOUT) -> dict | None:
    """Stop a waiting dead-man switch (before a switch back by hand); its log, None when none."""
    log = read_log(state_dir)
    if log is None or log.get("status") != "waiting" or not _alive(log):
        return log
    with contextlib.suppress(ProcessLookupError):  # it ended between the look and the signal
        os.kill(int(log["pid"]), signal.SIGTERM)
    log = _await(state_dir, "waiting", wait)
    # It has answered; it must also have ended, or its last write could land on the next arming's log.
    _gone(log, wait)
    return log
