# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Persistence rules as data: which items of which locations count as findings, checked and compiled.

Rules are a YAML list users extend (the crontab_repair role ships one). Every entry is validated and
every problem named at once; a later rule with the id of an earlier one replaces it, and
``enabled: false`` drops it. A rule fires on an item when all the conditions it gives hold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import shell_commands

SEVERITIES = ("info", "low", "medium", "high", "critical")
LOCATIONS = (
    "cron",  # /etc/crontab, /etc/cron.d/*, the user crontabs of the spool
    "cron_script",  # /etc/cron.{hourly,daily,weekly,monthly,yearly}/*
    "anacron",  # /etc/anacrontab
    "at",  # queued at jobs
    "systemd_unit",  # system and user units and their drop-ins
    "systemd_timer",
    "systemd_generator",  # generators and the shutdown/sleep hooks: programs systemd runs itself
    "rc_local",
    "init_script",  # /etc/init.d, /etc/rc.d/init.d
    "rc_link",  # an entry of a runlevel directory (rc?.d/S*, K*) that leads anywhere but init.d
    "upstart_job",  # /etc/init/*.conf and *.override, Upstart's session jobs
    "udev",
    "shell_rc",  # /etc/profile, profile.d, bash.bashrc, users' shell start files
    "ld_preload",
    "xdg_autostart",
    "authorized_keys",
    "indicator_path",  # a file or directory at a known indicator path
    # Programs system components run as root besides init and cron.
    "motd",  # /etc/update-motd.d scripts, run at every ssh login
    "package_hook",  # apt and dpkg hooks (apt.conf.d, dpkg.cfg.d), yum and dnf plugins
    "pam",  # /etc/pam.d lines: pam_exec, modules no package installed
    "boot_loader",  # GRUB's defaults (init=, kernel command line) and /etc/grub.d scripts
    "initramfs_hook",  # initramfs-tools hooks and scripts, dracut modules
    "network_hook",  # NetworkManager dispatcher scripts, ifupdown's if-*.d
    "sudoers",  # /etc/sudoers and sudoers.d
    "polkit",  # polkit rules and local authority files
    "dbus_service",  # D-Bus activation services
    "kernel_module",  # modules loaded at boot, modprobe install lines, .ko files outside /lib/modules
    "ld_config",  # ld.so.conf and ld.so.conf.d: the directories the loader searches
    "container",  # containers restarted by their engine, Kubernetes static pods
    "web_shell",  # scripts in the web server's document and CGI directories
    "python_startup",  # .pth files, sitecustomize and usercustomize
    "ssh_rc",  # ~/.ssh/rc, /etc/ssh/sshrc: run at every ssh login
    "rhosts",  # .rhosts, .shosts, hosts.equiv, shosts.equiv: logins without a password
    "git",  # git hooks and the config keys that run programs (core.pager, core.hooksPath, ...)
    # What a package installed, changed; and who may log in.
    "package_file",  # a packaged file whose content no longer matches its package's checksum
    "privileged_file",  # setuid or setgid files, files with capabilities
    "account",  # /etc/passwd, /etc/shadow and /etc/group entries
)
SCOPES = ("any", "file", "line")

_RULE_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_RULE_KEYS = ("id", "description", "severity", "locations", "scope", "quarantine", "enabled", "match")
_MATCH_KEYS = (
    "command",
    "executes",
    "references",
    "indicator_paths",
    "every_minutes",
    "payload_unowned",
    "location_unowned",
    "foreign_owner",
    "rules",
    "traits",
)


class PersistenceError(LifelineError):
    """Rules, a root or a quarantine step cannot be used; the message says what and where."""


@dataclass(frozen=True)
class Rule:
    """One rule: every condition given must hold for an item of one of ``locations`` to be a finding."""

    id: str
    description: str
    severity: str
    locations: frozenset[str]
    scope: str = "any"
    quarantine: bool = True
    command: tuple[re.Pattern[str], ...] = ()
    executes: tuple[re.Pattern[str], ...] = ()
    references: tuple[re.Pattern[str], ...] = ()
    indicator_paths: tuple[str, ...] = ()
    every_minutes: int | None = None
    payload_unowned: bool = False
    location_unowned: bool = False
    foreign_owner: bool = False
    rules: tuple[str, ...] = ()
    traits: tuple[str, ...] = ()


def load_rules(raw: object) -> list[Rule]:
    """Validate rules given as data (the YAML list) and compile them.

    A later rule with the id of an earlier one replaces it, and ``enabled: false`` drops it, so a
    user's list appended to the shipped one adjusts or switches off a shipped rule.
    Raises PersistenceError naming every problem found.
    """
    if not isinstance(raw, list):
        raise PersistenceError(f"rules must be a list of mappings, not {type(raw).__name__}")
    errors: list[str] = []
    chosen: dict[str, Rule | None] = {}
    for index, entry in enumerate(raw, start=1):
        parsed = _parse_rule(entry, index, errors)
        if parsed is not None:
            rule_id, rule = parsed
            chosen[rule_id] = rule
    rules = [rule for rule in chosen.values() if rule is not None]
    known = {rule.id: rule for rule in rules}
    for rule in rules:
        for other in rule.rules:
            if other not in known:
                errors.append(f"rule {rule.id}: match.rules names {other!r}, which is not an enabled rule")
            elif known[other].rules:
                errors.append(f"rule {rule.id}: match.rules names {other!r}, which itself depends on rules")
    if errors:
        raise PersistenceError("invalid persistence rules: " + "; ".join(errors))
    return rules


def _parse_rule(entry: object, index: int, errors: list[str]) -> tuple[str, Rule | None] | None:
    """(id, rule) for one entry, rule None when it is disabled; None (and errors) when it is invalid."""
    where = f"rule {index}"
    if not isinstance(entry, dict):
        errors.append(f"{where}: must be a mapping, not {type(entry).__name__}")
        return None
    before = len(errors)
    rule_id = entry.get("id")
    if isinstance(rule_id, str) and _RULE_ID.fullmatch(rule_id):
        where = f"rule {index} ({rule_id})"
    else:
        errors.append(f"{where}: id must be lowercase letters, digits, '.', '_' or '-' (got {rule_id!r})")
    unknown = sorted(set(entry) - set(_RULE_KEYS))
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_RULE_KEYS)}")
    if not _flag(entry, "enabled", where, errors, default=True):
        # Switching a rule off needs its id only.
        return None if len(errors) > before or not isinstance(rule_id, str) else (rule_id, None)
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        errors.append(f"{where}: description must be a non-empty string")
    severity = entry.get("severity")
    if severity not in SEVERITIES:
        errors.append(f"{where}: severity must be one of {', '.join(SEVERITIES)} (got {severity!r})")
    scope = entry.get("scope", "any")
    if scope not in SCOPES:
        errors.append(f"{where}: scope must be one of {', '.join(SCOPES)} (got {scope!r})")
    locations = frozenset(LOCATIONS)
    if "locations" in entry:
        names = _strings(entry["locations"], "locations", where, errors)
        bad = sorted(set(names) - set(LOCATIONS))
        if bad:
            errors.append(
                f"{where}: unknown location kind(s) {', '.join(bad)}; known: {', '.join(LOCATIONS)}"
            )
        locations = frozenset(names)
    quarantine = _flag(entry, "quarantine", where, errors, default=True)
    match = entry.get("match", {})
    if not isinstance(match, dict):
        errors.append(f"{where}: match must be a mapping, not {type(match).__name__}")
        match = {}
    conditions = _parse_match(match, where, errors)
    if not match and "locations" not in entry:
        errors.append(f"{where}: no match conditions and no locations: it would flag every item")
    if len(errors) > before or not isinstance(rule_id, str):
        return None
    return rule_id, Rule(
        id=rule_id,
        description=" ".join(str(description).split()),
        severity=str(severity),
        locations=locations,
        scope=str(scope),
        quarantine=quarantine,
        **conditions,
    )


def _parse_match(match: dict, where: str, errors: list[str]) -> dict:
    unknown = sorted(set(match) - set(_MATCH_KEYS))
    if unknown:
        errors.append(f"{where}: unknown match key(s) {', '.join(unknown)}; known: {', '.join(_MATCH_KEYS)}")
    found: dict = {}
    for key in ("command", "executes", "references"):
        if key in match:
            found[key] = tuple(
                _pattern(p, key, where, errors) for p in _strings(match[key], key, where, errors)
            )
    if "indicator_paths" in match:
        paths = _strings(match["indicator_paths"], "indicator_paths", where, errors)
        for path in paths:
            if not (path.startswith("/") or path.startswith("~/")):
                errors.append(f"{where}: indicator path {path!r} must be absolute or start with ~/")
        found["indicator_paths"] = tuple(
            shell_commands.normal_path(p) if p.startswith("/") else p for p in paths
        )
    if "every_minutes" in match:
        minutes = match["every_minutes"]
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
            errors.append(f"{where}: every_minutes must be a whole number of minutes, at least 1")
        else:
            found["every_minutes"] = minutes
    for key in ("payload_unowned", "location_unowned", "foreign_owner"):
        if key in match:
            found[key] = _flag(match, key, where, errors, default=False)
    for key in ("rules", "traits"):
        if key in match:
            found[key] = tuple(_strings(match[key], key, where, errors))
    return found


def _strings(value: object, key: str, where: str, errors: list[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return list(value)
    errors.append(f"{where}: {key} must be a string or a non-empty list of strings")
    return []


def _pattern(text: str, key: str, where: str, errors: list[str]) -> re.Pattern[str]:
    try:
        return re.compile(text)
    except re.error as exc:
        errors.append(f"{where}: {key} pattern {text!r} is not a valid regular expression: {exc}")
        return re.compile(r"(?!)")


def _flag(mapping: dict, key: str, where: str, errors: list[str], *, default: bool) -> bool:
    value = mapping.get(key, default)
    if not isinstance(value, bool):
        errors.append(f"{where}: {key} must be true or false (got {value!r})")
        return default
    return value
