# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: what the boot loader makes the kernel start instead of, or besides, the system's init.

GRUB's defaults (/etc/default/grub, /etc/default/grub.d/*.cfg: ``GRUB_CMDLINE_LINUX*``) and the
kernel lines of the generated configurations (/boot/grub/grub.cfg, /boot/grub2/grub.cfg, the EFI
partition's, and the boot loader specification's /boot/loader/entries/*.conf) are read for the
parameters that run code: ``init=`` and ``rdinit=`` (the first program), ``systemd.run=`` (a command
at boot) and ``LD_PRELOAD=`` (which the kernel hands to init's environment). Such a line is an item
with the trait ``kernel-init``; in a generated file also ``generated`` (it is rewritten from the
defaults, so it is fixed by regenerating it). The scripts of /etc/grub.d that update-grub runs as
root are file items.
"""

from __future__ import annotations

import re
import shlex

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import hook_scripts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

KIND = "boot_loader"
GRUB_DEFAULTS = "/etc/default/grub"
GRUB_DEFAULTS_DIR = "/etc/default/grub.d"
GRUB_SCRIPTS_DIR = "/etc/grub.d"
GENERATED = ("/boot/grub/grub.cfg", "/boot/grub2/grub.cfg")
EFI_DIR = "/boot/efi/EFI"
ENTRIES_DIR = "/boot/loader/entries"
_CMDLINE = re.compile(r"\s*(?:export\s+)?(GRUB_CMDLINE_LINUX\w*)=(.*)")
_KERNEL_LINE = re.compile(r"\s*(?:linux|linuxefi|linux16|kernel)\s+\S+(.*)")
_OPTIONS_LINE = re.compile(r"\s*options\s+(.*)")
MAX_SHELL_VALUE = 64 << 10
_CODE_PARAMS = ("init", "rdinit", "systemd.run", "LD_PRELOAD")


def collect(reader: RootReader) -> None:
    _defaults(reader, GRUB_DEFAULTS)
    for path, _is_link in reader.entries(KIND, GRUB_DEFAULTS_DIR):
        if path.endswith(".cfg"):
            _defaults(reader, path)
    hook_scripts.scripts(reader, KIND, GRUB_SCRIPTS_DIR, name_ok=hook_scripts.not_hidden_or_leftover)
    for path in GENERATED:
        _generated(reader, path, _KERNEL_LINE)
    for path, _is_link in reader.entries(KIND, EFI_DIR, recursive=True):
        if path.endswith("/grub.cfg"):
            _generated(reader, path, _KERNEL_LINE)
    for path, _is_link in reader.entries(KIND, ENTRIES_DIR):
        if path.endswith(".conf"):
            _generated(reader, path, _OPTIONS_LINE)


def code_parameters(command_line: str) -> list[tuple[str, str]]:
    """(name, value) of each kernel parameter that makes the boot run a program or library."""
    found = []
    for word in command_line.split():
        name, sep, value = word.strip("\"'").partition("=")
        if sep and name in _CODE_PARAMS and value:
            found.append((name, value.strip("\"'")))
    return found


def shell_value(text: str) -> tuple[str, bool]:
    """The value of a shell assignment, and whether it is whole on its line (quotes closed). A kernel
    takes a few kilobytes of command line: a longer value is split as it stands, not unquoted."""
    if len(text) > MAX_SHELL_VALUE:
        return text, False
    try:
        return " ".join(shlex.split(text, comments=True)), True
    except ValueError:
        return text, False


def _item(reader: RootReader, facts: FileFacts, number: int, text: str, params: list, traits: set) -> None:
    programs = [value for _name, value in params]
    executes = reader.resolved_too([p for p in programs if p.startswith("/")])
    reader.items.append(
        Item(
            KIND,
            facts,
            number,
            text,
            " ".join(f"{name}={value}" for name, value in params),
            "root",
            executes=executes,
            references=executes,
            payload=reader.payload(executes),
            traits=frozenset({"kernel-init", *traits}),
        )
    )


def _defaults(reader: RootReader, path: str) -> None:
    facts = reader.file(KIND, path)
    if facts is None or facts.data is None:
        return
    for number, text in reader.text_lines(facts):
        assignment = _CMDLINE.match(text)
        if assignment is None:
            continue
        value, whole = shell_value(assignment.group(2))
        params = code_parameters(value)
        if params:
            traits = {"config-line"} if whole and not text.rstrip().endswith("\\") else set()
            _item(reader, facts, number, text, params, traits)


def _generated(reader: RootReader, path: str, kernel_line: re.Pattern[str]) -> None:
    facts = reader.file(KIND, path)
    if facts is None or facts.data is None:
        return
    for number, text in reader.text_lines(facts):
        line = kernel_line.match(text)
        params = code_parameters(line.group(1)) if line else []
        if params:
            _item(reader, facts, number, text, params, {"generated"})
