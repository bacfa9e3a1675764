"""runner.module_runner: tools looked up once, LC_ALL=C, a failing tool's own words in ToolError, and a
time limit that kills a tool with everything it started."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    ToolError,
    ToolTimeout,
    module_runner,
)


class FakeModule:
    """AnsibleModule.get_bin_path, the one method module_runner uses, over a table of real paths."""

    def __init__(self, tools: dict[str, str]):
        self.tools = tools
        self.lookups: list[tuple[str, bool, list[str]]] = []

    def get_bin_path(self, tool, required=False, opt_dirs=None):
        self.lookups.append((tool, required, opt_dirs))
        return self.tools.get(tool)


def real(*tools: str) -> dict[str, str]:
    found = {tool: shutil.which(tool) for tool in tools}
    missing = [tool for tool, path in found.items() if not path]
    if missing:
        pytest.fail(f"{missing} not installed: run `make setup` (coreutils, procps)")
    return found


def alive(pid: int) -> bool:
    """Is ``pid`` a process that has not ended (a zombie has ended), read from /proc?"""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_runs_the_tool_found_with_a_parseable_locale(monkeypatch):
    monkeypatch.setenv("LC_ALL", "de_DE.UTF-8")
    module = FakeModule(real("env"))
    run = module_runner(module)

    assert "LC_ALL=C\n" in run(["env"])
    assert "LC_ALL=C\n" in run(["env"])
    assert module.lookups == [("env", False, ["/usr/sbin", "/sbin"])], "looked up once"


@pytest.mark.parametrize(
    ("tool", "package"),
    [
        ("partx", "util-linux, lvm2"),
        ("cryptsetup", "cryptsetup-bin on Debian and Ubuntu, cryptsetup on Red Hat"),
        ("qemu-img", "qemu-utils on Debian and Ubuntu"),
        ("qemu-storage-daemon", "qemu-system-common on Debian and Ubuntu"),
    ],
)
def test_a_missing_tool_says_what_to_install(tool, package):
    module = FakeModule({})

    with pytest.raises(ToolError, match=f"{tool} is not installed on this rescuer; install it") as raised:
        module_runner(module)([tool, "--show", "/dev/vdb"])
    assert package in str(raised.value)


def test_stdin_goes_to_the_tool_as_bytes_and_never_on_its_command_line():
    run = module_runner(FakeModule(real("cat", "sh")))

    # No newline added: it would become part of a key.
    assert run(["cat"], stdin=b"s3cret") == "s3cret"
    # Without stdin the tool reads an empty input, never the module's own stdin.
    assert run(["cat"]) == ""
    assert run(["sh", "-c", 'printf "%s" "$*"', "sh", "open", "--key-file=-"]) == "open --key-file=-"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        pytest.param(
            "echo 'losetup: /srv/vm.raw: failed to set up loop device' >&2; exit 1",
            "failed (exit 1): losetup: /srv/vm.raw: failed to set up loop device",
            id="stderr",
        ),
        pytest.param(
            "echo only stdout; exit 2", "failed (exit 2): only stdout", id="stdout when stderr is empty"
        ),
    ],
)
def test_a_failing_tool_raises_with_its_own_words(script, message):
    run = module_runner(FakeModule(real("sh")))

    with pytest.raises(ToolError) as raised:
        run(["sh", "-c", script])

    assert str(raised.value) == f"sh -c {script} {message}"


def test_a_tool_that_outlives_its_limit_is_killed_with_its_children(tmp_path):
    run = module_runner(FakeModule(real("sh", "sleep")), time_limit=1)
    pids = tmp_path / "pids"
    # The shell starts a child in the background (it would keep the pipes open) and one in the
    # foreground; each writes its pid down, and all three must be gone once the limit fires.
    script = (
        f"echo $$ > {pids}; sleep 600 & echo $! >> {pids}; "
        f"sh -c 'echo $$ >> {pids}; exec sleep 600'; echo never"
    )

    started = time.monotonic()
    with pytest.raises(ToolTimeout) as raised:
        run(["sh", "-c", script])
    took = time.monotonic() - started

    assert took < 10, f"the limit of 1 s ended the run only after {took:.1f} s"
    message = str(raised.value)
    assert message.startswith(f"sh -c {script} was still running after 1 seconds (the time limit)")
    assert "raise lifeline_command_timeout (seconds) and run again" in message
    started_pids = [int(line) for line in pids.read_text().split()]
    assert len(started_pids) == 3, "the shell, its background sleep and its foreground sleep"
    assert [pid for pid in started_pids if alive(pid)] == [], "a process the tool started survived"


def test_a_tool_within_its_limit_is_left_alone():
    run = module_runner(FakeModule(real("sh")), time_limit=5)

    assert run(["sh", "-c", "sleep 0.2; echo done"]) == "done\n"


def test_a_limit_below_one_second_is_refused():
    with pytest.raises(ToolError, match="lifeline_command_timeout=0: give a time limit of 1 second or more"):
        module_runner(FakeModule({}), time_limit=0)


def test_a_tool_starts_where_no_dev_null_is_found_and_reads_an_empty_input(monkeypatch, tmp_path):
    """During a root switch the new root's /dev is not mounted yet: starting a tool opens no path."""
    monkeypatch.setattr("os.devnull", str(tmp_path / "no-such-dev" / "null"))
    run = module_runner(FakeModule(real("sh")), time_limit=5)

    assert run(["sh", "-c", "cat; echo read"]) == "read\n"
