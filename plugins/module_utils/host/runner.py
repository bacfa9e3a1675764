# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the rescuer's tools from a module with a parseable locale, failing with the tool's own words."""

from __future__ import annotations

from typing import Callable, List

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError

# (argv) -> stdout; raises ToolError with the tool's own message when it fails.
Runner = Callable[[List[str]], str]


class ToolError(LifelineError):
    """A tool of the rescuer is missing or failed; the message holds its command line and its words."""


def module_runner(module) -> Runner:
    """A Runner built on AnsibleModule.run_command; tools are looked up once, so a missing one says so."""
    paths: dict[str, str] = {}

    def run(argv: list[str]) -> str:
        tool = argv[0]
        if tool not in paths:
            found = module.get_bin_path(tool, required=False, opt_dirs=["/usr/sbin", "/sbin"])
            if not found:
                raise ToolError(
                    f"{tool} is not installed on this rescuer; install it (util-linux, lvm2) and retry"
                )
            paths[tool] = found
        rc, out, err = module.run_command([paths[tool], *argv[1:]], environ_update={"LC_ALL": "C"})
        if rc != 0:
            raise ToolError(f"{' '.join(argv)} failed (exit {rc}): {(err or out).strip()}")
        return out

    return run
