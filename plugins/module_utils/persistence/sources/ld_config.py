# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: where the loader looks for libraries besides its own directories, and what it is told to
preload. /etc/ld.so.conf and the files it includes (glob patterns, bounded, each file once): each
directory line is an item; the directory and the libraries in it no package owns are what it loads.
Environment=LD_PRELOAD / LD_LIBRARY_PATH lines of systemd units and drop-ins, and those variables in
/etc/environment and /etc/security/pam_env.conf, are items too (/etc/ld.so.preload is ld_preload's).

Traits: "unpackaged-directory" (a directory no package lists that holds libraries no package owns),
"shadows-packaged-library" (such a library has the name of a packaged one in the loader's own
directories: every program linked to it loads the impostor), "preload" (LD_PRELOAD is set),
"library-path" (LD_LIBRARY_PATH is set).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources.systemd_units import (
    unit_settings,
)

LD_SO_CONF = "/etc/ld.so.conf"
ENVIRONMENT_FILES = ("/etc/environment", "/etc/security/pam_env.conf")
# The loader's own directories (multiarch and the plain ones), where packaged libraries live.
SYSTEM_LIBRARY_DIRS = (
    "/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib64",
    "/usr/lib64",
    "/lib",
    "/usr/lib",
)
MAX_INCLUDE_DEPTH = 8
# Libraries looked at in one directory: a directory of more is read this far.
MAX_LIBRARIES = 5000
_LIBRARY = re.compile(r"^lib.*\.so(\.[0-9.]+)?$")
_VARIABLE = re.compile(r"\b(LD_PRELOAD|LD_LIBRARY_PATH|LD_AUDIT)\s*=\s*(\"[^\"]*\"|'[^']*'|\S*)")
_PAM_ENV = re.compile(r"^\s*(LD_PRELOAD|LD_LIBRARY_PATH|LD_AUDIT)\s+(.*)$")


def collect(reader: RootReader) -> None:
    _conf(reader, LD_SO_CONF, 0)
    for facts in list(reader.files.values()):
        if facts.kind == "systemd_unit" and facts.data:
            _unit_environment(reader, facts)
    for path in ENVIRONMENT_FILES:
        facts = reader.file("ld_config", path)
        if facts is not None:
            _environment(reader, facts)


def _conf(reader: RootReader, path: str, depth: int) -> None:
    if depth > MAX_INCLUDE_DEPTH:
        reader.note("ld_config", path, f"included more than {MAX_INCLUDE_DEPTH} levels deep: not read")
        return
    facts = reader.file("ld_config", path)
    if facts is None:
        return  # missing, or already read: an include loop reads each file once
    for number, text in reader.text_lines(facts):
        entry = text.split("#", 1)[0].strip()
        if not entry:
            continue
        if entry.startswith("include") and entry[7:8] in (" ", "\t"):
            for pattern in entry[8:].split():
                for included in _glob(reader, pattern, posixpath.dirname(path)):
                    _conf(reader, included, depth + 1)
        elif entry.startswith("hwcap"):
            continue
        else:
            for directory in re.split(r"[\s:,=]+", entry):
                if directory.startswith("/"):
                    _directory_item(reader, facts, number, text, shell_commands.normal_path(directory))


def _glob(reader: RootReader, pattern: str, base: str) -> list[str]:
    """The files an include pattern names (a pattern in the last component only, as ld.so.conf uses)."""
    if not pattern.startswith("/"):
        pattern = posixpath.join(base, pattern)
    directory, name = posixpath.split(shell_commands.normal_path(pattern))
    if not any(c in name for c in "*?["):
        return [posixpath.join(directory, name)]
    return [
        p
        for p, _is_link in reader.entries("ld_config", directory, once=False)
        if fnmatch.fnmatch(posixpath.basename(p), name)
    ]


def _directory_item(reader: RootReader, facts: FileFacts, number: int, text: str, directory: str) -> None:
    traits: set[str] = set()
    unowned = []
    if reader.kind_of(directory) == "directory" and reader.unowned(directory):
        for path, _is_link in reader.entries("ld_config", directory, once=False)[:MAX_LIBRARIES]:
            if _LIBRARY.match(posixpath.basename(path)) and reader.unowned(path):
                unowned.append(path)
    if unowned:
        traits.add("unpackaged-directory")
        if any(_shadows(reader, path) for path in unowned):
            traits.add("shadows-packaged-library")
    executes = reader.resolved_too([directory, *unowned])
    reader.items.append(
        Item(
            "ld_config",
            facts,
            number,
            text,
            directory,
            "root",
            executes=executes,
            references=executes,
            payload=unowned[0] if unowned else None,
            traits=frozenset(traits),
        )
    )


def _shadows(reader: RootReader, path: str) -> bool:
    name = posixpath.basename(path)
    return any(
        reader.package_of(posixpath.join(d, name)) is not None
        for d in SYSTEM_LIBRARY_DIRS
        if d != posixpath.dirname(path)
    )


def _variable_item(
    reader: RootReader, facts: FileFacts, number: int, text: str, name: str, value: str
) -> None:
    value = value.strip().strip("\"'")
    paths = [shell_commands.normal_path(p) for p in re.split(r"[\s:]+", value) if p.startswith("/")]
    executes = reader.resolved_too(paths)
    trait = "library-path" if name == "LD_LIBRARY_PATH" else "preload"
    reader.items.append(
        Item(
            "ld_config",
            facts,
            number,
            text,
            f"{name}={value}",
            "root",
            executes=executes,
            references=executes,
            payload=reader.payload(executes),
            traits=frozenset({trait}),
        )
    )


def _unit_environment(reader: RootReader, facts: FileFacts) -> None:
    for number, text, key, value in unit_settings(facts.data or b""):
        if key == "Environment":
            for m in _VARIABLE.finditer(value):
                _variable_item(reader, facts, number, text, m.group(1), m.group(2))


def _environment(reader: RootReader, facts: FileFacts) -> None:
    for number, text in reader.text_lines(facts):
        stripped = text.strip()
        if stripped.startswith("#"):
            continue
        pam = _PAM_ENV.match(stripped)
        if pam and facts.path.endswith("pam_env.conf"):
            m = re.search(r"\b(DEFAULT|OVERRIDE)=(\"[^\"]*\"|\S*)", pam.group(2))
            if m:
                _variable_item(reader, facts, number, text, pam.group(1), m.group(2))
            continue
        for m in _VARIABLE.finditer(stripped):
            _variable_item(reader, facts, number, text, m.group(1), m.group(2))
