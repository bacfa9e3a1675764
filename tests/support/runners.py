"""Tool runners for the code under test, and the output of the tools that judge it.

module_utils calls every tool through a ``Runner`` (host/runner.py): ``run(argv)`` returns stdout or
raises ToolError with the command and the tool's own words, as ``module_runner`` does with
AnsibleModule.run_command. ``tool_runner`` is that contract over the real tools; ``FakeRunner``
records the calls and answers from a table. ``output`` is for the tools a test asks itself (dpkg-query,
readelf): a failure there fails the test.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, ToolError

# What module_runner gives a tool: LC_ALL=C, and the sbin directories it looks tools up in.
ENV = {**os.environ, "LC_ALL": "C", "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"}


def tool_error(argv: list[str], rc: int, words: str) -> ToolError:
    """The ToolError module_runner raises for a tool that failed."""
    return ToolError(f"{' '.join(argv)} failed (exit {rc}): {words.strip()}")


def tool_runner(
    env: Mapping[str, str] = ENV, extra: Callable[[list[str]], list[str]] | None = None
) -> Runner:
    """A Runner over the real tools (``stdin``: bytes given to the tool as they are). ``extra(argv)``
    gives arguments the command runs with but its ToolError does not name (the LVM tests' device
    filter)."""

    def run(argv: list[str], stdin: bytes | None = None) -> str:
        done = subprocess.run(
            [*argv, *(extra(argv) if extra else [])],
            input=None if stdin is None else stdin.decode("utf-8", "surrogateescape"),
            capture_output=True,
            env=dict(env),
            check=False,
            encoding="utf-8",
            errors="surrogateescape",
        )
        if done.returncode != 0:
            raise tool_error(argv, done.returncode, done.stderr or done.stdout)
        return done.stdout

    return run


run = tool_runner()


def execute(argv: list[str]) -> tuple[int, str, str]:
    """The real tool's exit status, stdout and stderr (rootcopy.Exec: a check whose failure is data)."""
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, check=False)
    return done.returncode, done.stdout, done.stderr


class FakeRunner:
    """Records every argv (and in ``stdin`` what each call gave on standard input, None for none);
    answers from ``replies`` (argv prefix -> stdout, or a ToolError to raise), else from
    ``otherwise`` (a Runner), else with "" ."""

    def __init__(
        self, replies: dict[tuple[str, ...], str | ToolError] | None = None, otherwise: Runner | None = None
    ):
        self.calls: list[list[str]] = []
        self.stdin: list[bytes | None] = []
        self.replies = replies or {}
        self.otherwise = otherwise

    def __call__(self, argv: list[str], stdin: bytes | None = None) -> str:
        self.calls.append(list(argv))
        self.stdin.append(stdin)
        for prefix, reply in self.replies.items():
            if tuple(argv[: len(prefix)]) == prefix:
                if isinstance(reply, ToolError):
                    raise reply
                return reply
        if self.otherwise is None:
            return ""
        return self.otherwise(argv) if stdin is None else self.otherwise(argv, stdin=stdin)


def output(*argv: str | Path, ok: tuple[int, ...] = (0,)) -> str:
    """The stdout of a tool the test runs as its judge, under LC_ALL=C; any exit status not in ``ok``
    fails the test with the tool's stderr."""
    done = subprocess.run([str(a) for a in argv], capture_output=True, env={**os.environ, "LC_ALL": "C"})
    assert done.returncode in ok, f"{argv}: exit {done.returncode}: {done.stderr.decode(errors='replace')}"
    return done.stdout.decode("utf-8", "surrogateescape")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    """A tool the test runs for its own set-up or as a judge, under ``ENV``: its exit status and text."""
    return subprocess.run(list(argv), capture_output=True, text=True, check=check, env=ENV)
