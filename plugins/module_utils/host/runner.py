# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the rescuer's tools from a module with a parseable locale, failing with the tool's own words."""

from __future__ import annotations

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


class ToolError(LifelineError):
    """A tool of the rescuer is missing or failed; the message holds its command line and its words."""


class ToolMissing(ToolError):
    """A tool is not installed on the rescuer; the message says which package has it."""


def module_runner(module) -> Runner:
    """A Runner built on AnsibleModule.run_command; tools are looked up once, so a missing one says so."""
    paths: dict[str, str] = {}

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
        command = [paths[tool], *argv[1:]]
        if stdin is None:
            rc, out, err = module.run_command(command, environ_update={"LC_ALL": "C"})
        else:
            # binary_data: the bytes as given, without the newline run_command would add.
            rc, out, err = module.run_command(
                command, environ_update={"LC_ALL": "C"}, data=stdin, binary_data=True
            )
        if rc != 0:
            raise ToolError(f"{' '.join(argv)} failed (exit {rc}): {(err or out).strip()}")
        return out

    return run
