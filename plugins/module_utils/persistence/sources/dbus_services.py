# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: D-Bus activation. A .service file of the system or session bus names a program the bus
daemon starts on the first message to its name (Exec=, run as User= or, on the system bus, root):
the file is an item and its Exec= line a command item. A system.d/session.d policy file that lets
everyone own a name or call a service's methods ("grants-everyone") is how a planted service gets
its name on the system bus; it is an item too.

Policy files are XML read as text with patterns: no entity is ever expanded (an XML bomb is just
text here), and nothing the bus daemon would not read as a policy element is looked at.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader

SERVICE_DIRS = (
    ("/usr/share/dbus-1/system-services", True),
    ("/usr/local/share/dbus-1/system-services", True),
    ("/lib/dbus-1/system-services", True),
    ("/usr/lib/dbus-1/system-services", True),
    ("/etc/dbus-1/system-services", True),
    ("/usr/share/dbus-1/services", False),
    ("/usr/local/share/dbus-1/services", False),
    ("/etc/dbus-1/services", False),
)
HOME_SERVICE_DIR = ".local/share/dbus-1/services"
POLICY_DIRS = (
    "/usr/share/dbus-1/system.d",
    "/etc/dbus-1/system.d",
    "/usr/share/dbus-1/session.d",
    "/etc/dbus-1/session.d",
    "/usr/local/share/dbus-1/system.d",
)
_POLICY = re.compile(r"<policy\b([^>]*)>(.*?)</policy\s*>", re.S | re.I)
_EVERYONE = re.compile(r"""\bcontext\s*=\s*["']default["']|\buser\s*=\s*["']\*["']""")
_GRANT = re.compile(r"""<allow\b[^>]*\b(own|own_prefix|send_destination)\s*=\s*["']([^"']*)["']""", re.I)


def collect(reader: RootReader) -> None:
    places = [(d, system, None) for d, system in SERVICE_DIRS]
    places += [(posixpath.join(a.home, HOME_SERVICE_DIR), False, a) for a in reader.homes()]
    for directory, system, account in places:
        for path, _is_link in reader.entries("dbus_service", directory):
            if path.endswith(".service"):
                _service(reader, path, system, account)
    for directory in POLICY_DIRS:
        for path, _is_link in reader.entries("dbus_service", directory):
            if path.endswith(".conf"):
                _policy(reader, path)


def _service(reader: RootReader, path: str, system: bool, account) -> None:
    facts = reader.file("dbus_service", path, account)
    if facts is None:
        return
    settings = {}
    for number, text in reader.text_lines(facts):
        key, sep, value = text.partition("=")
        if sep and not text.lstrip().startswith(("#", "[")):
            settings.setdefault(key.strip(), (number, text, value.strip()))
    user = settings.get("User", (0, "", ""))[2] or ("root" if system else (account.name if account else ""))
    reader.file_item(facts)
    if "Exec" in settings and settings["Exec"][2]:
        number, text, value = settings["Exec"]
        reader.command_item(facts, number, text, value, user=user)


def _policy(reader: RootReader, path: str) -> None:
    facts = reader.file("dbus_service", path)
    if facts is None:
        return
    text = (facts.data or b"").decode("utf-8", "replace")
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    grants = [
        f"{m.group(1)}={m.group(2)}"
        for policy in _POLICY.finditer(text)
        if _EVERYONE.search(policy.group(1))
        for m in _GRANT.finditer(policy.group(2))
        if m.group(1).lower() != "send_destination" or m.group(2) not in ("org.freedesktop.DBus",)
    ]
    own = [g for g in grants if g.startswith("own")]
    traits = frozenset({"grants-everyone"}) if own else frozenset()
    shown = ", ".join(grants)
    reader.items.append(Item("dbus_service", facts, text=shown, command=shown, user="root", traits=traits))
