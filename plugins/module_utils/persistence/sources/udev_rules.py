# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: udev rules; each RUN, PROGRAM or IMPORT{program} of a rule is an item run as root."""

from __future__ import annotations

import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

UDEV_DIRS = (
    "/etc/udev/rules.d",
    "/run/udev/rules.d",
    "/usr/local/lib/udev/rules.d",
    "/usr/lib/udev/rules.d",
    "/lib/udev/rules.d",
)
# udev looks a program named without a path up in its own directories, not in PATH.
UDEV_PATH = ("/usr/lib/udev", "/lib/udev")
_UDEV_PROGRAM = re.compile(r"""\b(RUN|PROGRAM|IMPORT)(\{([^}]*)\})?\s*(?:\+=|:=|==|=)\s*"([^"]*)\"""")


def collect(reader: RootReader) -> None:
    for directory in UDEV_DIRS:
        for path, _is_link in reader.entries("udev", directory):
            if not path.endswith(".rules"):
                continue
            facts = reader.file("udev", path)
            if facts is None:
                continue
            reader.file_item(facts)
            for number, text in reader.text_lines(facts):
                if text.lstrip().startswith("#"):
                    continue
                for m in _UDEV_PROGRAM.finditer(text):
                    option = m.group(3) or ""
                    if m.group(1) == "IMPORT" and option != "program":
                        continue
                    if option == "builtin":
                        continue
                    reader.command_item(facts, number, text, m.group(4), user="root", search=UDEV_PATH)
