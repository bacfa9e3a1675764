# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the scripts KDE Plasma runs for a user's session besides the .desktop autostart entries:
~/.config/autostart-scripts/* (run at login), ~/.config/plasma-workspace/env/*.sh (sourced before
the session starts) and ~/.config/plasma-workspace/shutdown/*.sh (run at logout).

They are startup items of the desktop session, as ~/.config/autostart is: location kind
xdg_autostart, so a flagged script is moved whole (it is a file a user or an intruder dropped, not a
shared start file whose other lines must keep working). Each is a file item with the trait
"kde-session-script", and each of its lines a command.
"""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, binary

KIND = "xdg_autostart"
# (directory below the home, the ending of the names Plasma runs there; "" for every file)
SESSION_DIRS = (
    (".config/autostart-scripts", ""),
    (".config/plasma-workspace/env", ".sh"),
    (".config/plasma-workspace/shutdown", ".sh"),
)


def collect(reader: RootReader) -> None:
    for account in reader.homes():
        for directory, ending in SESSION_DIRS:
            for path, _is_link in reader.entries(KIND, posixpath.join(account.home, directory)):
                if not path.endswith(ending) or path.endswith(".desktop"):
                    continue  # a .desktop file there is read by Plasma like an autostart entry
                facts = reader.file(KIND, path, account)
                if facts is None:
                    continue
                # Not as a program it runs: every one lies below ~/.config, which is no hidden payload.
                reader.file_item(facts)
                reader.items[-1].traits = frozenset({"kde-session-script"})
                if facts.data is not None and not binary(facts.data):
                    reader.command_lines(facts, user=account.name)
