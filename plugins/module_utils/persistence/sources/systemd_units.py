# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: systemd's system and user units, their drop-ins and timers, in every unit directory and
in each home's. Every Exec*= line of a unit is an item; a timer is one item with its schedule and
what its service runs; the links that enable a unit are kept in ``unit_links``."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader, lines
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

SYSTEM_UNIT_DIRS = (
    "/etc/systemd/system",
    "/run/systemd/system",
    "/run/systemd/transient",
    "/run/systemd/generator.early",
    "/run/systemd/generator",
    "/run/systemd/generator.late",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
)
USER_UNIT_DIRS = (
    "/etc/systemd/user",
    "/run/systemd/user",
    "/usr/local/lib/systemd/user",
    "/usr/lib/systemd/user",
    "/lib/systemd/user",
)
HOME_UNIT_DIRS = (".config/systemd/user", ".local/share/systemd/user")
_UNIT_SUFFIX = re.compile(r"\.(?:service|socket|timer|path|mount|automount|swap|target|slice|scope|device)$")
_EXEC_KEYS = frozenset(
    {"ExecStart", "ExecStartPre", "ExecStartPost", "ExecReload", "ExecStop", "ExecStopPost", "ExecCondition"}
    | {"ExecStopPre"}  # a socket unit's own
)
# Where a unit an administrator (or an intruder) adds lies; units there are enabled by links in
# *.wants/ and *.requires/ directories beside them.
LOCAL_UNIT_DIRS = ("/etc/systemd/system", "/etc/systemd/user")


def collect(reader: RootReader) -> None:
    places: list[tuple[str, Account | None]] = [(d, None) for d in (*SYSTEM_UNIT_DIRS, *USER_UNIT_DIRS)]
    places += [(posixpath.join(a.home, d), a) for a in reader.homes() for d in HOME_UNIT_DIRS]
    unit_dirs = {r for r in (reader.resolved_path(d) for d, _account in places) if r}
    services: dict[tuple[str, str], list[Item]] = {}
    timers: list[tuple[FileFacts, str]] = []
    triggers: list[tuple[Item, str]] = []
    for directory, account in places:
        scope = account.name if account else ("user" if "/user" in directory else "system")
        for path, is_link in reader.entries("systemd_unit", directory, recursive=True):
            facts = _unit_file(reader, path, is_link, account, unit_dirs)
            if facts is None:
                continue
            if facts.kind == "systemd_timer":
                timers.append((facts, scope))
                continue
            first = len(reader.items)
            items = _unit(reader, facts)
            if not _drop_in(path):
                services.setdefault((scope, posixpath.basename(path)), items)
                if path.endswith((".socket", ".path")):
                    triggers.append((reader.items[first], scope))
    # Timers last: a timer's item carries what its service runs, wherever that service lies.
    for facts, scope in timers:
        _timer(reader, facts, services.get((scope, _timer_unit(facts)), []))
    # A socket or path unit starts its service as a timer does: its file item carries what that runs.
    for item, scope in triggers:
        _runs_what_it_triggers(reader, item, services.get((scope, _triggered_unit(item.file)), []))
    _mark_overriding_drop_ins(reader, unit_dirs)
    _mark_enabled_local_units(reader)


def _drop_in(path: str) -> bool:
    return posixpath.dirname(path).endswith(".d") and path.endswith(".conf")


def _unit_file(
    reader: RootReader, path: str, is_link: bool, account: Account | None, unit_dirs: set[str]
) -> FileFacts | None:
    """The unit or drop-in at ``path``, read; None for another file, a masked unit, or a link whose
    unit is read where it lies. A link is recorded in ``unit_links`` whatever it is."""
    name = posixpath.basename(path)
    if not (_UNIT_SUFFIX.search(name) or _drop_in(path)):
        return None
    if is_link:
        target = reader.resolved_path(path)
        if target is None or target == "/dev/null":
            return None  # a loop is noted when read; /dev/null masks the unit
        reader.unit_links.append((path, target))
        if posixpath.dirname(target) in unit_dirs:
            return None  # an enablement link or alias: the unit is read where it lies
    kind = "systemd_timer" if name.endswith(".timer") else "systemd_unit"
    return reader.file(kind, path, account)


def unit_settings(data: bytes) -> Iterator[tuple[int, str, str, str]]:
    """(line, text, key, value) of a unit file's settings, continuation lines joined."""
    pending: tuple[int, str] | None = None
    for number, text in lines(data):
        if pending:
            number, text = pending[0], pending[1] + " " + text
            pending = None
        stripped = text.strip()
        if stripped[:1] in ("#", ";", "["):
            continue
        if stripped.endswith("\\"):
            pending = (number, text.rstrip()[:-1])
            continue
        key, sep, value = stripped.partition("=")
        if sep:
            yield number, text, key.strip(), value.strip()


def _unit(reader: RootReader, facts: FileFacts) -> list[Item]:
    reader.file_item(facts)
    settings = list(unit_settings(facts.data or b""))
    user = next((v for _line, _text, k, v in settings if k == "User"), "")
    if not user:
        user = facts.account.name if facts.account else "root"
    items = []
    for number, text, key, value in settings:
        if key in _EXEC_KEYS and value:
            # Prefixes @ - : + ! | change how systemd runs the command, not which one.
            items.append(reader.command_item(facts, number, text, value.lstrip("@-:+!|"), user=user))
    return items


def _timer_unit(facts: FileFacts) -> str:
    unit = next((v for _line, _text, k, v in unit_settings(facts.data or b"") if k == "Unit"), "")
    return unit or re.sub(r"\.timer$", ".service", posixpath.basename(facts.path))


def _timer(reader: RootReader, facts: FileFacts, service: list[Item]) -> None:
    """A timer is one item: its schedule, and what its service runs."""
    intervals = []
    for _line, _text, key, value in unit_settings(facts.data or b""):
        if key == "OnCalendar":
            intervals.append(shell_commands.calendar_minutes(value))
        elif key in ("OnUnitActiveSec", "OnUnitInactiveSec"):
            intervals.append(shell_commands.timespan_minutes(value))
    known = [i for i in intervals if i is not None]
    executes = tuple(dict.fromkeys(p for i in service for p in i.executes))
    reader.items.append(
        Item(
            "systemd_timer",
            facts,
            user=service[0].user if service else "",
            command="; ".join(i.command for i in service),
            interval=min(known) if known else None,
            executes=executes,
            references=tuple(dict.fromkeys(p for i in service for p in i.references)),
            payload=reader.payload(executes),
        )
    )


def _triggered_unit(facts: FileFacts) -> str:
    """The service a socket (Service=, or NAME@.service with Accept=yes) or a path unit (Unit=)
    starts; NAME.service by default."""
    settings = {k: v for _line, _text, k, v in unit_settings(facts.data or b"")}
    name = posixpath.basename(facts.path).rsplit(".", 1)[0]
    if facts.path.endswith(".path"):
        return settings.get("Unit") or f"{name}.service"
    if settings.get("Accept", "").lower() in ("yes", "true", "on", "1"):
        return f"{name}@.service"
    return settings.get("Service") or f"{name}.service"


def _runs_what_it_triggers(reader: RootReader, item: Item, service: list[Item]) -> None:
    executes = tuple(dict.fromkeys(p for i in service for p in i.executes))
    item.executes = tuple(dict.fromkeys([*item.executes, *executes]))
    item.references = tuple(dict.fromkeys([*item.references, *(p for i in service for p in i.references)]))
    item.command = item.command or "; ".join(i.command for i in service)
    item.payload = reader.payload(item.executes)


def _mark_overriding_drop_ins(reader: RootReader, unit_dirs: set[str]) -> None:
    """A drop-in no package installed that sets ExecStart= of a unit a package installed replaces
    what that unit runs: trait "overrides-packaged-exec" on the drop-in's file item."""
    for item in reader.items:
        if item.kind != "systemd_unit" or item.line is not None or not _drop_in(item.file.path):
            continue
        if not reader.unowned(item.file.path):
            continue
        settings = unit_settings(item.file.data or b"")
        if not any(key == "ExecStart" for _line, _text, key, _value in settings):
            continue
        unit = posixpath.basename(posixpath.dirname(item.file.path))[: -len(".d")]
        if any(reader.package_of(posixpath.join(d, unit)) for d in sorted(unit_dirs)):
            item.traits = item.traits | {"overrides-packaged-exec"}


def _mark_enabled_local_units(reader: RootReader) -> None:
    """Every item of a unit in /etc/systemd/{system,user} that a *.wants or *.requires link enables:
    trait "enabled-unit" (rules add whether a package owns the unit and what it runs)."""
    enabled = {
        target
        for link, target in reader.unit_links
        if posixpath.basename(posixpath.dirname(link)).endswith((".wants", ".requires"))
    }
    for item in reader.items:
        if item.kind not in ("systemd_unit", "systemd_timer") or _drop_in(item.file.path):
            continue
        if posixpath.dirname(item.file.path) in LOCAL_UNIT_DIRS and item.file.resolved in enabled:
            item.traits = item.traits | {"enabled-unit"}
