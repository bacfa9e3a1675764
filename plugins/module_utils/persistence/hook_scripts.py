# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Directories of scripts a system component runs as root by itself (pam_motd's run-parts, ifupdown,
update-grub, update-initramfs, NetworkManager's dispatcher): which entries it really runs, and each
such script as the file item and command lines of the scan.

A file the component skips (a name run-parts rejects, such as the ``.dpkg-old`` copies upgrades
leave behind, or a script without its executable bit where one is needed) starts nothing: it is no
item, so it can never be an alarm.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, binary

# run-parts without options: letters, digits, '_' and '-' only.
_RUN_PARTS = re.compile(r"[A-Za-z0-9_-]+")
# run-parts --lsbsysinit: the LANANA, LSB hierarchical and traditional names (lower case only), but
# no dpkg leftovers.
_LSB_SYSINIT = (
    re.compile(r"[a-z0-9]+"),
    re.compile(r"_?([a-z0-9_.]+-)+[a-z0-9]+"),
    re.compile(r"[a-z0-9][a-z0-9-]*"),
)
_LSB_EXCLUDED = re.compile(r"[a-z0-9-].*dpkg-(old|dist|new|tmp)")
_PACKAGE_LEFTOVER = re.compile(r"\.(dpkg-[a-z]+|ucf-[a-z]+|rpm(save|new|orig)|dpkg|swp|bak|orig)$|~$")


def run_parts_name(name: str) -> bool:
    return bool(_RUN_PARTS.fullmatch(name))


def lsb_sysinit_name(name: str) -> bool:
    if _LSB_EXCLUDED.fullmatch(name):
        return False
    return any(p.fullmatch(name) for p in _LSB_SYSINIT)


def not_hidden_or_leftover(name: str) -> bool:
    """Components that run every executable they find but skip hidden files and package leftovers."""
    return not name.startswith(".") and not _PACKAGE_LEFTOVER.search(name) and "README" not in name


def scripts(
    reader: RootReader,
    kind: str,
    directory: str,
    *,
    name_ok: Callable[[str], bool],
    executable: bool = True,
    recursive: bool = False,
    lines: bool = True,
) -> list[FileFacts]:
    """Each script of ``directory`` the component runs (a name it accepts, executable when it must
    be): the file is an item that runs and, with ``lines``, each line of a text script a command run
    as root (not for scripts that run inside an initramfs, whose /tmp is its own)."""
    found = []
    for path, _is_link in reader.entries(kind, directory, recursive=recursive):
        name = path.rsplit("/", 1)[-1]
        if not name_ok(name) or reader.kind_of(path) == "directory":
            continue
        facts = reader.file(kind, path)
        if facts is None:
            continue
        if executable and not facts.st.st_mode & 0o111:
            continue
        if lines:
            runs_script(reader, facts)
        else:
            reader.file_item(facts, runs=True)
        found.append(facts)
    return found


def runs_script(reader: RootReader, facts: FileFacts) -> None:
    """A script a component runs as root: the file item and, for text, each command line."""
    reader.file_item(facts, runs=True)
    if facts.data is not None and not binary(facts.data):
        reader.command_lines(facts, user="root")
