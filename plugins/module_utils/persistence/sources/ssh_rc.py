# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the scripts sshd runs at every login before the user's shell or command: ~/.ssh/rc of each
home, else /etc/ssh/sshrc. Stock systems ship neither; each is a file item, each of its lines a
command."""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, binary

KIND = "ssh_rc"
SYSTEM_RC = "/etc/ssh/sshrc"


def collect(reader: RootReader) -> None:
    places = [(SYSTEM_RC, None)] + [(posixpath.join(a.home, ".ssh/rc"), a) for a in reader.homes()]
    for path, account in places:
        facts = reader.file(KIND, path, account)
        if facts is None:
            continue
        # Not as a program it runs: sshd hands it to /bin/sh, and its home's .ssh is no hidden payload.
        reader.file_item(facts)
        if facts.data is not None and not binary(facts.data):
            reader.command_lines(facts, user=account.name if account else "")
