# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: PAM's stacks (/etc/pam.d/*, /etc/pam.conf), read by every login, su, sudo and ssh.

Each module line is an item run as root: ``executes`` is the module file (named by an absolute path
or looked up in the security directories), with the trait ``pam-module``. A ``pam_exec.so`` line
also runs the program after its options (``pam-exec``; ``expose-authtok`` when the typed password
is handed to it on its standard input). An ``auth`` line whose ``pam_permit.so`` lets a login
through by itself (control ``sufficient``, or ``success=done``/``ok`` in brackets) has
``auth-permit``. Lines that are one physical line have ``config-line``: commenting them out leaves
every other line as it was.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

KIND = "pam"
PAM_DIRS = ("/etc/pam.d", "/usr/lib/pam.d")
PAM_CONF = "/etc/pam.conf"
SECURITY_DIRS = (
    "/lib/x86_64-linux-gnu/security",
    "/usr/lib/x86_64-linux-gnu/security",
    "/lib/aarch64-linux-gnu/security",
    "/usr/lib/aarch64-linux-gnu/security",
    "/lib64/security",
    "/usr/lib64/security",
    "/lib/security",
    "/usr/lib/security",
)
TYPES = ("auth", "account", "password", "session")
# pam_exec's options; the first argument that is none of them starts the command.
_EXEC_OPTIONS = re.compile(r"(debug|expose_authtok|quiet|quiet_log|seteuid|stdout|type=\S*|log=\S*)")
_PERMITS_ALONE = re.compile(r"\bsuccess=(done|ok)\b|\bdefault=(done|ok)\b")
# A word, or a [...] group with blanks (\] inside is a literal bracket).
_WORD = re.compile(r"\[(?:[^\]\\]|\\.)*\]?|\S+")


def collect(reader: RootReader) -> None:
    for directory in PAM_DIRS:
        for path, _is_link in reader.entries(KIND, directory):
            if reader.kind_of(path) != "directory":
                _pam_file(reader, path, service_field=False)
    # libpam reads /etc/pam.conf only on a system without /etc/pam.d.
    if reader.kind_of(PAM_DIRS[0]) != "directory":
        _pam_file(reader, PAM_CONF, service_field=True)


def logical_lines(lines: list[tuple[int, str]]) -> list[tuple[int, str, bool]]:
    """(first line number, text without its comment, one physical line) of each line of a PAM file:
    a backslash at the end of a line continues it, '#' starts a comment."""
    found = []
    pending: list[str] = []
    first = 0
    for number, text in lines:
        if not pending:
            first = number
        body = text.rstrip("\r")
        continued = body.endswith("\\")
        pending.append(body[:-1] if continued else body)
        if continued:
            continue
        joined = " ".join(pending).split("#", 1)[0].strip()
        if joined:
            found.append((first, joined, len(pending) == 1))
        pending = []
    if pending:
        joined = " ".join(pending).split("#", 1)[0].strip()
        if joined:
            found.append((first, joined, False))
    return found


def parse_line(text: str, service_field: bool = False) -> tuple[str, str, str, list[str]] | None:
    """(type, control, module, arguments) of a module line; None for @include and other lines."""
    words = _WORD.findall(text)
    if service_field:
        words = words[1:]
    if len(words) < 3:
        return None
    kind = words[0].lstrip("-").lower()
    if kind not in TYPES:
        return None
    return kind, words[1], words[2], words[3:]


def _pam_file(reader: RootReader, path: str, *, service_field: bool) -> None:
    facts = reader.file(KIND, path)
    if facts is None or facts.data is None:
        return
    lines = list(reader.text_lines(facts))
    shown = dict(lines)
    for number, text, single in logical_lines(lines):
        parsed = parse_line(text, service_field)
        if parsed is None:
            continue
        kind, control, module, arguments = parsed
        module_path = _module_file(reader, module)
        if module_path is None:
            continue  # a module PAM cannot load starts nothing ("-" lines allow that)
        traits = {"pam-module"}
        if single:
            traits.add("config-line")
        executes = reader.resolved_too([module_path])
        item = Item(
            KIND,
            facts,
            number,
            shown.get(number, text),
            text,
            "root",
            executes=executes,
            references=executes,
            payload=reader.payload(executes),
            traits=frozenset(traits),
        )
        reader.items.append(item)
        name = posixpath.basename(module)
        if name == "pam_permit.so" and kind == "auth" and _permits_alone(control):
            item.traits = item.traits | {"auth-permit"}
        if name == "pam_exec.so":
            _exec_item(reader, facts, number, shown.get(number, text), arguments, traits)


def _permits_alone(control: str) -> bool:
    return control.lower() == "sufficient" or bool(_PERMITS_ALONE.search(control.lower()))


def _exec_item(
    reader: RootReader, facts: FileFacts, number: int, text: str, arguments: list[str], traits: set[str]
) -> None:
    options = []
    for index, argument in enumerate(arguments):
        if not _EXEC_OPTIONS.fullmatch(argument):
            command = " ".join(arguments[index:])
            break
        options.append(argument)
    else:
        return
    item = reader.command_item(facts, number, text, command, user="root")
    extra = {"pam-exec"} | ({"expose-authtok"} if "expose_authtok" in options else set())
    item.traits = frozenset((traits - {"pam-module"}) | extra)


def _module_file(reader: RootReader, module: str) -> str | None:
    """The module file PAM loads: an absolute path as given, a name from the first security
    directory that has it; None when there is none."""
    if module.startswith("/"):
        return module if reader.kind_of(module) == "file" else None
    for directory in SECURITY_DIRS:
        candidate = f"{directory}/{module}"
        if reader.kind_of(candidate) == "file":
            return candidate
    return None
