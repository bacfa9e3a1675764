# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the rescuer's tools from a module with a parseable locale and a time limit, failing with the
tool's own words."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Callable

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError

# run(argv) -> stdout; raises ToolError with the tool's own message when it fails. A caller with
# secret input passes it as ``run(argv, stdin=b"...")`` (never in argv); every other call has one
# argument, so a Runner that takes argv alone serves them.
Runner = Callable[..., str]
# What to install for a tool that is missing, when it is not util-linux's or lvm2's.
PACKAGES = {
    "cryptsetup": "cryptsetup-bin on Debian and Ubuntu, cryptsetup on Red Hat and SUSE",
    # An image that is not raw (host/images); a raw image, a device or a directory needs neither.
    "qemu-img": "qemu-utils on Debian and Ubuntu, qemu-img on Red Hat and SUSE",
    "qemu-storage-daemon": "qemu-system-common on Debian and Ubuntu",
}
# Seconds a tool may run. The tools run here (mount, losetup, partx, lvm, blkid, cryptsetup,
# journalctl, qemu-img) answer in seconds; five minutes leaves room for a slow or failing disk that
# retries its reads, and still ends a run that hangs on a looping input instead of holding it forever.
DEFAULT_TIME_LIMIT = 300
# The option of every module that runs tools (doc fragment lifeline.rescue.command_timeout).
TIME_LIMIT_OPTION = {"command_timeout": {"type": "int", "default": DEFAULT_TIME_LIMIT}}
# What the message of a tool that ran out of time tells the user to raise.
TIME_LIMIT_VARIABLE = "lifeline_command_timeout"
# Seconds given to a killed tool's pipes to close (a descendant that left the process group can
# hold them open; its output is not waited for).
DRAIN_AFTER_KILL = 5


class ToolError(LifelineError):
    """A tool of the rescuer is missing or failed; the message holds its command line and its words."""


class ToolMissing(ToolError):
    """A tool is not installed on the rescuer; the message says which package has it."""


class ToolTimeout(ToolError):
    """A tool ran longer than its time limit and was killed with every process it started."""


def time_limit_message(argv: list[str], limit: float) -> str:
    """What to say about a tool that was stopped at its time limit."""
    return (
        f"{' '.join(argv)} was still running after {limit:g} seconds (the time limit) and was killed "
        f"with every process it started; if the disk is merely slow, raise {TIME_LIMIT_VARIABLE} "
        "(seconds) and run again, otherwise find out why it hangs (a loop in its input, a device that "
        "does not answer)"
    )


def run_limited(
    command: list[str], limit: float, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> tuple[int, bytes, bytes]:
    """Run ``command`` in a session of its own for at most ``limit`` seconds: (exit status, stdout,
    stderr). When the time is up its whole process group is killed (the children it started in the
    background too) and reaped, and ToolTimeout is raised. Without ``stdin`` its input is an empty
    pipe: no path is opened to start it (during a root switch /dev/null may not be there yet)."""
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(stdin, timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        raise ToolTimeout(time_limit_message(command, limit)) from None
    except BaseException:
        _kill_group(process)  # interrupted: leave nothing running
        raise
    return process.returncode, out, err


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the process group the tool leads, reap the tool and close its pipes."""
    with contextlib.suppress(ProcessLookupError):  # the group is empty already
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=DRAIN_AFTER_KILL)
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    process.wait()


def module_runner(module, time_limit: float = DEFAULT_TIME_LIMIT) -> Runner:
    """A Runner for a module's tools: looked up once (a missing one says which package has it), run
    with LC_ALL=C and for at most ``time_limit`` seconds each."""
    if time_limit <= 0:
        raise ToolError(f"{TIME_LIMIT_VARIABLE}={time_limit:g}: give a time limit of 1 second or more")
    paths: dict[str, str] = {}
    env = dict(os.environ, LC_ALL="C")

    def run(argv: list[str], stdin: bytes | None = None) -> str:
        tool = argv[0]
        if tool not in paths:
            found = module.get_bin_path(tool, required=False, opt_dirs=["/usr/sbin", "/sbin"])
            if not found:
                package = PACKAGES.get(tool, "util-linux, lvm2")
                raise ToolMissing(
                    f"{tool} is not installed on this rescuer; install it ({package}) and retry"
                )
            paths[tool] = found
        try:
            # stdin goes as the bytes given: a key must not gain a newline.
            rc, out, err = run_limited([paths[tool], *argv[1:]], time_limit, stdin, env)
        except ToolTimeout:
            raise ToolTimeout(time_limit_message(argv, time_limit)) from None
        except OSError as exc:
            raise ToolError(f"{' '.join(argv)} could not start: {exc.strerror or exc}") from None
        text = out.decode("utf-8", "surrogateescape")
        if rc != 0:
            words = err.decode("utf-8", "surrogateescape") or text
            raise ToolError(f"{' '.join(argv)} failed (exit {rc}): {words.strip()}")
        return text

    return run
