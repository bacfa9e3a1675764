"""runner.module_runner: tools looked up once, LC_ALL=C, and a failing tool's own words in ToolError."""

from __future__ import annotations

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import ToolError, module_runner


class FakeModule:
    """The two AnsibleModule methods module_runner uses, recording how they were called."""

    def __init__(self, tools: dict[str, str], result: tuple[int, str, str] = (0, "out\n", "")):
        self.tools, self.result = tools, result
        self.lookups: list[tuple[str, bool, list[str]]] = []
        self.commands: list[tuple[list[str], dict]] = []
        self.stdin: list[dict] = []

    def get_bin_path(self, tool, required=False, opt_dirs=None):
        self.lookups.append((tool, required, opt_dirs))
        return self.tools.get(tool)

    def run_command(self, argv, environ_update=None, **stdin):
        self.commands.append((argv, environ_update))
        self.stdin.append(stdin)
        return self.result


def test_runs_the_tool_found_with_a_parseable_locale():
    module = FakeModule({"blkid": "/usr/sbin/blkid"})
    run = module_runner(module)

    assert run(["blkid", "--probe", "/srv/vm.raw"]) == "out\n"
    assert run(["blkid", "--probe", "/srv/other.raw"]) == "out\n"
    assert module.commands == [
        (["/usr/sbin/blkid", "--probe", "/srv/vm.raw"], {"LC_ALL": "C"}),
        (["/usr/sbin/blkid", "--probe", "/srv/other.raw"], {"LC_ALL": "C"}),
    ]
    assert module.lookups == [("blkid", False, ["/usr/sbin", "/sbin"])], "looked up once"


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
    assert module.commands == []


def test_stdin_goes_to_the_tool_as_bytes_and_never_on_its_command_line():
    module = FakeModule({"cryptsetup": "/usr/sbin/cryptsetup"})
    run = module_runner(module)

    run(["cryptsetup", "open", "--key-file=-", "/dev/vdb2", "n"], stdin=b"s3cret")
    run(["cryptsetup", "status", "n"])

    assert module.commands == [
        (["/usr/sbin/cryptsetup", "open", "--key-file=-", "/dev/vdb2", "n"], {"LC_ALL": "C"}),
        (["/usr/sbin/cryptsetup", "status", "n"], {"LC_ALL": "C"}),
    ]
    # binary_data: run_command adds no newline, which would become part of the key.
    assert module.stdin == [{"data": b"s3cret", "binary_data": True}, {}]


@pytest.mark.parametrize(
    ("result", "message"),
    [
        pytest.param(
            (1, "", "losetup: /srv/vm.raw: failed to set up loop device\n"),
            "losetup --find --show /srv/vm.raw failed (exit 1): losetup: /srv/vm.raw: failed to set up",
            id="stderr",
        ),
        pytest.param(
            (2, "only stdout\n", ""), "failed (exit 2): only stdout", id="stdout when stderr is empty"
        ),
    ],
)
def test_a_failing_tool_raises_with_its_own_words(result, message):
    run = module_runner(FakeModule({"losetup": "/usr/sbin/losetup"}, result))

    with pytest.raises(ToolError) as raised:
        run(["losetup", "--find", "--show", "/srv/vm.raw"])

    assert message in str(raised.value)
