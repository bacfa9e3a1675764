# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: the host-based trust files that let a remote user log in without a password (rlogin,
rsh and sshd's HostbasedAuthentication): ~/.rhosts and ~/.shosts of each home, /etc/hosts.equiv and
/etc/ssh/shosts.equiv. Each entry ("host [user]") is an item whose command is the entry itself."""

from __future__ import annotations

import posixpath

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

KIND = "rhosts"
SYSTEM_FILES = ("/etc/hosts.equiv", "/etc/ssh/shosts.equiv")
HOME_FILES = (".rhosts", ".shosts")


def collect(reader: RootReader) -> None:
    places = [(path, None) for path in SYSTEM_FILES]
    places += [(posixpath.join(a.home, name), a) for a in reader.homes() for name in HOME_FILES]
    for path, account in places:
        facts = reader.file(KIND, path, account)
        if facts is None:
            continue
        reader.file_item(facts)
        user = account.name if account else ""
        for number, text in reader.text_lines(facts):
            entry = " ".join(text.split())
            if entry and not entry.startswith("#"):
                traits = {"trust-entry"}
                if "+" in entry.split()[:2]:
                    traits.add("any-host-or-user")  # "+" alone trusts every host, or every user
                reader.items.append(Item(KIND, facts, number, text, entry, user, traits=frozenset(traits)))
