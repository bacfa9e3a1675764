# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the files login and interactive shells read (/etc/profile, profile.d, bash.bashrc, zsh's,
and each home's); every line that is not a comment is a command."""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

SHELL_FILES = (
    "/etc/profile",
    "/etc/bash.bashrc",
    "/etc/bashrc",
    "/etc/zsh/zshenv",
    "/etc/zsh/zprofile",
    "/etc/zsh/zshrc",
    "/etc/zsh/zlogin",
    # Run when a login shell exits.
    "/etc/bash.bash_logout",
    "/etc/zsh/zlogout",
)
HOME_SHELL_FILES = (".bashrc", ".profile", ".bash_profile", ".bash_login", ".zshrc")
HOME_SHELL_FILES += (".bash_logout", ".zlogout")  # run when a login shell exits


def collect(reader: RootReader) -> None:
    for path in SHELL_FILES:
        _shell_file(reader, path)
    for path, _is_link in reader.entries("shell_rc", "/etc/profile.d"):
        _shell_file(reader, path)
    for account in reader.homes():
        for name in HOME_SHELL_FILES:
            _shell_file(reader, posixpath.join(account.home, name), account)


def _shell_file(reader: RootReader, path: str, account: Account | None = None) -> None:
    facts = reader.file("shell_rc", path, account)
    if facts is not None:
        reader.file_item(facts)
        reader.command_lines(facts)
