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

    def get_bin_path(self, tool, required=False, opt_dirs=None):
        self.lookups.append((tool, required, opt_dirs))
        return self.tools.get(tool)

    def run_command(self, argv, environ_update=None):
        self.commands.append((argv, environ_update))
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


def test_a_missing_tool_says_what_to_install():
    module = FakeModule({})

    with pytest.raises(ToolError, match="partx is not installed on this rescuer; install it"):
        module_runner(module)(["partx", "--show", "/dev/vdb"])
    assert module.commands == []


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
