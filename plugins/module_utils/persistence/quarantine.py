# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quarantine what a scan found: plan the steps, then carry them out; nothing is ever deleted.

A flagged line of a crontab-like or shell file is commented out in place behind a marker (after a
backup); a flagged startup file no package owns, the unowned program a line runs, and the links that
enable a moved unit or init script are moved into a quarantine directory inside the root with a JSON
record beside each (quarantine_records). A file a package owns, a device or a whole top-level
directory is never moved: its step is "manual" and says what to do instead (a replaced packaged
program: the reinstall command, and where its original lies). A flagged setuid, setgid or capable
file stays where it is and loses the privilege: "chmod" takes the setuid and setgid bits away and
"uncap" the ``security.capability`` attribute, each with the old value in its record and a restore
command that puts exactly that back.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import posixpath
import shlex
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import model, shell_commands
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    records as quarantine_records,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.rules import Rule
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import (
    containers,
    package_files,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources.init_scripts import RC_DIRS
from ansible_collections.lifeline.rescue.plugins.module_utils.target import (
    accounts,
    report_text,
    rootfs,
    safewrite,
)

# Kinds whose flagged lines are commented out in place; files of the other kinds are moved whole
# (an Upstart job or its override, an init script with its runlevel links, an rc?.d entry, a unit).
LINE_KINDS = frozenset(
    {"cron", "anacron", "rc_local", "shell_rc", "ld_preload", "authorized_keys", "git", "sudoers"}
    | {"ld_config", "kernel_module", "package_hook", "pam", "boot_loader", "initramfs_hook"}
)
# Kinds of LINE_KINDS whose files can be flagged whole too (a git hook beside git config lines, a
# module file beside modules-load lines): such a file moves, and its flagged lines go with it.
FILE_TOO_KINDS = frozenset({"git", "kernel_module"})
# Kinds of LINE_KINDS of which only the lines a source marks CONFIG_LINE are commented out (an apt
# hook, a PAM line, a GRUB default, a dracut.conf line: the rest of the file still parses); a flagged
# statement over several lines is left to be edited by hand, and scripts and plugins no package owns
# are moved whole.
CONFIG_LINE = "config-line"
CONFIG_LINE_KINDS = frozenset({"package_hook", "pam", "boot_loader", "initramfs_hook"})
# A line of a file the system generates from others (grub.cfg from /etc/default/grub) is not edited.
GENERATED = "generated"
# (where, what to do) once files these kinds are built into were quarantined.
_REBUILDS = {
    "initramfs_hook": (
        "/boot/initrd.img",
        "the initramfs images still hold the quarantined hooks: rebuild them in a chroot of the "
        "target or after its boot (update-initramfs -u -k all; dracut --regenerate-all --force)",
    ),
    "boot_loader": (
        "/boot/grub/grub.cfg",
        "the boot loader's configuration is generated from the quarantined files: regenerate it "
        "(update-grub; grub2-mkconfig -o /boot/grub2/grub.cfg)",
    ),
}
PRIVILEGE_BITS = stat.S_ISUID | stat.S_ISGID
# Kinds whose flagged items are accounts: locked (password and shell), never deleted.
LOCK_KINDS = frozenset({"account"})
# The account files a lock changes, the shadow file first: a login needs the password.
SHADOW, PASSWD = "/etc/shadow", "/etc/passwd"
# Where the root's nologin may be; the first that exists is the locked account's shell.
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false", "/usr/bin/false")


@dataclass
class Action:
    """One quarantine step: ``action`` is "comment" (a line, in place), "move" (a file into the
    quarantine directory), "chmod" (setuid and setgid bits taken off), "uncap" (the capability
    attribute taken off), "lock" (an account: its password locked and its shell set to nologin,
    ``record["lines"]`` the (file, original line, locked line) it changes) or "manual" (not done:
    ``reason`` says why and what to do)."""

    action: str
    path: str
    rules: list[str]
    reason: str
    line: int | None = None
    last_line: int | None = None
    before: str = ""
    after: str = ""
    destination: str = ""
    metadata: str = ""
    backup: str = ""
    restore: str = ""
    restore_host: str = ""
    applied: bool = False
    error: str = ""
    facts: model.FileFacts | None = None
    record: dict = field(default_factory=dict)
    snapshot: tuple[int, int, int, int] | None = None

    def as_dict(self) -> dict:
        return {
            "action": self.action,
            "path": self.path,
            "line": self.line,
            "rules": self.rules,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
            "destination": self.destination,
            "metadata": self.metadata,
            "backup": self.backup,
            "restore": self.restore,
            "restore_host": self.restore_host,
            "applied": self.applied,
            "error": self.error,
        }


def _snapshot(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)


def plan(
    result: model.Scan,
    quarantine_dir: str = quarantine_records.DEFAULT_QUARANTINE_DIR,
    stamp: str | None = None,
) -> list[Action]:
    """The quarantine of every finding whose rule allows it: comments first, then moves."""
    return _Planner(result, quarantine_dir, stamp or safewrite.run_stamp()).actions()


class _Planner:
    def __init__(self, result: model.Scan, quarantine_dir: str, stamp: str) -> None:
        self.scan = result
        self.reader = result.scanner
        self.evidence = result.evidence
        self.root = result.root
        self.base = shell_commands.normal_path(posixpath.join(quarantine_dir, stamp))
        self.comments: dict[tuple[str, int], Action] = {}
        self.moves: dict[str, Action] = {}
        self.rc_links: list[tuple[str, str]] | None = None

    def actions(self) -> list[Action]:
        flagged: dict[int, tuple[model.Item, list[Rule]]] = {}
        scripts: dict[int, list[str]] = {}
        for finding in self.scan.findings:
            if finding.rule.quarantine:
                flagged.setdefault(id(finding.item), (finding.item, []))[1].append(finding.rule)
                known = scripts.setdefault(id(finding.item), [])
                known += [p for p in finding.payload_files if p not in known]
        whole_files = self._cron_d_files_all_flagged(flagged.values())
        whole_files |= {
            item.file.path
            for item, _rules in flagged.values()
            if item.kind in FILE_TOO_KINDS and item.line is None
        }
        for item, rules in flagged.values():
            ids = [r.id for r in rules]
            if item.kind in LOCK_KINDS:
                self._lock(item, ids)
                continue
            if item.kind == "container" and "engine-state" in item.traits:
                self._manual(item.file.path, ids, containers.manual_steps(item))
            elif item.kind in CONFIG_LINE_KINDS:
                self._config_item(item, ids, rules)
            elif item.kind == "privileged_file":
                self._unprivilege(item, ids, rules)
            elif item.kind == "package_file" and "checksum-mismatch" in item.traits:
                self._manual(item.file.path, ids, package_files.repair_steps(self.reader, item))
            elif item.kind in LINE_KINDS and item.file.path not in whole_files:
                if item.line is None:
                    self._manual(item.file.path, ids, "the whole file matched a rule: review it by hand")
                else:
                    self._comment(item, ids)
            else:
                self._move(item.file.path, ids, rules, f"{item.kind.replace('_', ' ')} that matched a rule")
                self._links_of(item, ids, rules)
            if self._payload_movable(item):
                self._move(
                    item.payload, ids, rules, f"the program {item.file.path} runs, owned by no package"
                )
            for script in scripts.get(id(item), []):
                if self._script_movable(script) and item.kind != "boot_loader":
                    self._move(
                        script,
                        ids,
                        rules,
                        f"a script {item.file.path} runs, owned by no package, that matched a rule",
                    )
        self._inside_moved_directories()
        self._rebuilds()
        return [*self.comments.values(), *self.moves.values()]

    def _config_item(self, item: model.Item, ids: list[str], rules: list[Rule]) -> None:
        """A configuration line is commented out, a generated one left to be regenerated, a script
        or plugin (or a line that cannot be commented alone) moved with its file."""
        if GENERATED in item.traits:
            self._manual(
                item.file.path,
                ids,
                f"generated by the boot loader's tools: fix the source of line {item.line} "
                "(/etc/default/grub, /etc/default/grub.d, /etc/grub.d), then regenerate it "
                "(update-grub; grub2-mkconfig -o /boot/grub2/grub.cfg; for /boot/loader/entries "
                "grubby --update-kernel=ALL --remove-args=...); it was not edited",
                line=item.line,
            )
        elif item.line is not None and CONFIG_LINE in item.traits:
            self._comment(item, ids)
        elif item.line is not None and item.traits:
            # Moving a PAM stack or GRUB's defaults away would lock everyone out or change the boot.
            self._manual(
                item.file.path,
                ids,
                f"the flagged statement of line {item.line} runs over several lines: commenting one "
                "line out would break the file; edit it by hand",
                line=item.line,
            )
        else:
            self._move(item.file.path, ids, rules, f"{item.kind.replace('_', ' ')} that matched a rule")

    def _rebuilds(self) -> None:
        """What is built from the quarantined files keeps them until it is rebuilt: say how."""
        rules: dict[str, list[str]] = {}
        for action in [*self.comments.values(), *self.moves.values()]:
            if action.action == "manual":
                continue
            kind = action.facts.kind if action.facts is not None else self._kind_of(action.path)
            if kind in _REBUILDS:
                rules.setdefault(kind, [])
                rules[kind] += [r for r in action.rules if r not in rules[kind]]
        for kind, ids in rules.items():
            self._manual(_REBUILDS[kind][0], ids, _REBUILDS[kind][1])

    def _kind_of(self, path: str) -> str:
        facts = self.reader.files.get(path)
        return facts.kind if facts is not None else ""

    def _inside_moved_directories(self) -> None:
        """A file inside a directory that moves goes with it, not on its own."""
        directories = [a.path for a in self.moves.values() if a.record.get("type") == "directory"]
        for key, action in list(self.moves.items()):
            if action.action == "move" and any(action.path.startswith(d + "/") for d in directories):
                del self.moves[key]

    def _payload_movable(self, item: model.Item) -> bool:
        """A payload is moved when no package owns it, the line names it by its absolute path, and it
        is not a shell, interpreter or wrapper (a locally built python3 is not the malware)."""
        payload = item.payload
        if not payload or payload == item.file.path or not self.reader.unowned(payload):
            return False
        if item.kind == "boot_loader":
            return False  # a kernel whose init= is gone panics: the boot entry goes first, by hand
        return not shell_commands.is_runner(posixpath.basename(payload)) and payload in item.command

    def _script_movable(self, path: str) -> bool:
        """A script whose lines made a rule fire is moved when no package owns it and it is not a
        shell, interpreter or wrapper."""
        return (
            self.reader.kind_of(path) == "file"
            and self.reader.unowned(path)
            and not shell_commands.is_runner(posixpath.basename(path))
        )

    def _cron_d_files_all_flagged(self, flagged: Iterable[tuple[model.Item, list[Rule]]]) -> set[str]:
        """cron.d files no package owns whose every job is flagged: moved whole, not commented."""
        jobs: dict[str, int] = {}
        for item, _rules in flagged:
            if item.kind == "cron" and item.line is not None and item.file.path.startswith("/etc/cron.d/"):
                jobs[item.file.path] = jobs.get(item.file.path, 0) + 1
        return {
            path
            for path, count in jobs.items()
            if count == self.reader.files[path].jobs and self.reader.unowned(path)
        }

    def _manual(self, path: str, ids: list[str], reason: str, line: int | None = None) -> None:
        key = f"manual:{path}:{line}"
        if key not in self.moves:
            self.moves[key] = Action("manual", path, ids, reason, line=line)

    def _lock(self, item: model.Item, ids: list[str]) -> None:
        """Lock the account of an item: '!' before its password, the root's nologin as its shell."""
        name = item.user
        key = f"lock:{name}"
        if key in self.moves:
            known = self.moves[key]
            known.rules += [i for i in ids if i not in known.rules]
            return
        if name == "root":
            self._manual(
                PASSWD,
                ids,
                "root is never locked: set a new root password (chroot into the root and run passwd root), "
                f"then find who changed it; {SHADOW}- holds the hash before the last change",
                item.line,
            )
            return
        try:
            lines = self._locked_lines(item)
        except (rootfs.RootError, ValueError) as exc:
            self._manual(
                PASSWD, ids, f"account {name} cannot be locked safely ({exc}): lock it by hand", item.line
            )
            return
        passwd_line = next(line for line in lines if line[0] == PASSWD)
        restore = _undo_lock(lines, lambda path: path)
        restore_host = _undo_lock(lines, lambda path: rootfs.join(self.root, path))
        self.moves[key] = Action(
            "lock",
            PASSWD,
            list(ids),
            f"account {name} locked (password and shell); nothing deleted",
            line=item.line,
            before=report_text.shown(passwd_line[1], model.SHOWN),
            after=report_text.shown(passwd_line[2], model.SHOWN),
            restore=restore,
            restore_host=restore_host,
            record={"lines": lines},
        )

    def _locked_lines(self, item: model.Item) -> list[tuple[str, str, str]]:
        """(file, original line, locked line) for the account's shadow and passwd lines, read now."""
        nologin = next((p for p in NOLOGIN_SHELLS if self.reader.kind_of(p) == "file"), None)
        if nologin is None:
            raise ValueError(f"the root has none of {', '.join(NOLOGIN_SHELLS)}")
        passwd = _line_of(self.root, PASSWD, item.user, item.line)
        fields = passwd.split(":")
        if len(fields) != 7:
            raise ValueError(f"its {PASSWD} line does not have seven fields")
        shadow = _line_of(self.root, SHADOW, item.user) if fields[1] == "x" else None
        lines = []
        if shadow is not None:
            shadow_fields = shadow.split(":")
            if not shadow_fields[1].startswith("!"):
                shadow_fields[1] = "!" + shadow_fields[1]
                lines.append((SHADOW, shadow, ":".join(shadow_fields)))
        else:
            fields[1] = _locked_password(fields[1])
        fields[6] = nologin
        lines.append((PASSWD, passwd, ":".join(fields)))
        return lines

    def _comment(self, item: model.Item, ids: list[str]) -> None:
        key = (item.file.resolved, item.line or 0)
        if key in self.comments:
            known = self.comments[key]
            known.rules += [i for i in ids if i not in known.rules]
            known.after = quarantine_records.marker(known.rules) + known.before
            return
        if item.file.data is None:
            return
        before = report_text.shown(item.text, model.SHOWN)
        # A setting continued over several lines (its text holds them all) is commented on each:
        # a marker on the first alone would leave the rest as lines of their own, which the
        # program reading the file then runs or refuses (git: "bad config line").
        first = item.line or 0
        last = first + item.text.count("\n")
        self.comments[key] = Action(
            "comment",
            item.file.path,
            list(ids),
            f"{item.kind.replace('_', ' ')} line that matched a rule",
            line=item.line,
            last_line=last,
            before=before,
            after=quarantine_records.marker(ids) + before,
            restore=quarantine_records.uncomment_command(item.file.resolved, first, last),
            restore_host=quarantine_records.uncomment_command(
                rootfs.join(self.root, item.file.resolved), first, last
            ),
            facts=item.file,
        )

    def _move(self, path: str, ids: list[str], rules: list[Rule], reason: str) -> None:
        if path in self.moves:
            known = self.moves[path]
            known.rules += [i for i in ids if i not in known.rules]
            known.record["rules"] += [
                _rule_record(r) for r in rules if r.id not in {x["id"] for x in known.record["rules"]}
            ]
            return
        package = self.reader.package_of(path)
        if package:
            self._manual(
                path,
                ids,
                f"owned by package {package}: reinstall it ({_reinstall(self.reader.package_manager)} "
                f"{package.split(', ')[0]}) or edit the file; it was not moved",
            )
            return
        if not self.reader.package_database:
            self._manual(
                path,
                ids,
                "the package database could not be read, so the file may belong to a "
                "package: not moved; check it and move it by hand",
            )
            return
        try:
            host = safewrite.host_path(self.root, path)
            st = os.lstat(host)
        except (safewrite.WriteError, rootfs.RootError, OSError) as exc:
            self._manual(path, ids, f"cannot be moved: {exc}")
            return
        facts = self.evidence.stat_facts(st)
        kind = facts["type"]
        if kind not in ("file", "symlink", "directory"):
            self._manual(path, ids, f"a {kind} is never moved; remove it by hand if it is not needed")
            return
        if kind == "directory" and self._too_big_to_move(path, host, st):
            self._manual(
                path,
                ids,
                "a top-level directory, a mount point or one holding the quarantine is never "
                "moved: review what it holds and move that by hand",
            )
            return
        destination = self.base + shell_commands.normal_path(path)
        evidence = dict(self.evidence.of(path)) if kind != "symlink" else {}
        record = {
            "original_path": path,
            "quarantined_path": destination,
            "quarantined_at": "",
            **facts,
            "link_target": os.readlink(host) if kind == "symlink" else "",
            "mtime_ns": st.st_mtime_ns,
            "sha256": evidence.get("sha256"),
            "package": None,
            "reason": reason,
            "rules": [_rule_record(r) for r in rules],
        }
        restore = quarantine_records.restore_command(path, destination, st, kind)
        restore_host = quarantine_records.restore_command(
            rootfs.join(self.root, path), rootfs.join(self.root, destination), st, kind
        )
        record.update(restore=restore, restore_host=restore_host)
        shown_type = f"{kind}, {record['mode']} {record['owner']}"
        if record["sha256"]:
            shown_type += f", sha256 {record['sha256']}"
        self.moves[path] = Action(
            "move",
            path,
            list(ids),
            reason,
            before=f"{path} ({shown_type})",
            after=destination,
            destination=destination,
            metadata=destination + quarantine_records.METADATA_SUFFIX,
            restore=restore,
            restore_host=restore_host,
            record=record,
            snapshot=_snapshot(st),
        )

    def _unprivilege(self, item: model.Item, ids: list[str], rules: list[Rule]) -> None:
        """A "chmod" of the setuid and setgid bits and an "uncap" of the capability the file has."""
        path = item.file.path
        try:
            host = safewrite.host_path(self.root, path)
            st = os.lstat(host)
        except (safewrite.WriteError, rootfs.RootError, OSError) as exc:
            self._manual(path, ids, f"cannot be changed: {exc}")
            return
        if not stat.S_ISREG(st.st_mode):
            self._manual(path, ids, f"no longer a regular file ({st.st_mode:o}): look at it by hand")
            return
        mode = stat.S_IMODE(st.st_mode)
        if mode & PRIVILEGE_BITS:
            self._privilege_action(
                "chmod", path, host, st, ids, rules, f"{mode:04o}", f"{mode & ~PRIVILEGE_BITS:04o}"
            )
        try:
            value = os.getxattr(host, quarantine_records.CAPABILITY_XATTR, follow_symlinks=False)
        except OSError:
            value = b""
        if value:
            self._privilege_action("uncap", path, host, st, ids, rules, value.hex(), "")

    def _privilege_action(
        self,
        action: str,
        path: str,
        host: str,
        st: os.stat_result,
        ids: list[str],
        rules: list[Rule],
        before: str,
        after: str,
    ) -> None:
        key = f"{action}:{path}"
        if key in self.moves:
            known = self.moves[key]
            known.rules += [i for i in ids if i not in known.rules]
            return
        metadata = (
            self.base + shell_commands.normal_path(path) + f".{action}" + quarantine_records.METADATA_SUFFIX
        )
        restore = quarantine_records.unprivilege_restore(action, path, before)
        restore_host = quarantine_records.unprivilege_restore(action, rootfs.join(self.root, path), before)
        what = "setuid and setgid bits" if action == "chmod" else "capabilities"
        self.moves[key] = Action(
            action,
            path,
            list(ids),
            f"privileged file that matched a rule: its {what} are taken away, the file stays",
            before=before,
            after=after,
            metadata=metadata,
            restore=restore,
            restore_host=restore_host,
            record={
                "original_path": path,
                "quarantined_path": path,
                "quarantined_at": "",
                "action": action,
                **self.evidence.stat_facts(st),
                "before": before,
                "after": after,
                "restore": restore,
                "restore_host": restore_host,
                "reason": f"its {what} were taken away",
                "rules": [_rule_record(r) for r in rules],
            },
            snapshot=(st.st_ino, st.st_size, st.st_mtime_ns, 0),
        )

    def _rc_links(self) -> list[tuple[str, str]]:
        """(link, where it leads) in the /etc/rc?.d directories, read once."""
        if self.rc_links is None:
            self.rc_links = []
            for directory in RC_DIRS:
                for link, is_link in self.reader.entries("init_script", directory, once=False):
                    target = self.reader.resolved_path(link) if is_link else None
                    if target:
                        self.rc_links.append((link, target))
        return self.rc_links

    def _too_big_to_move(self, path: str, host: str, st: os.stat_result) -> bool:
        """An indicator rule naming /tmp or /var must not move the whole of it."""
        if path.count("/") < 2 or self.base.startswith(path.rstrip("/") + "/"):
            return True
        return os.lstat(os.path.dirname(host)).st_dev != st.st_dev

    def _links_of(self, item: model.Item, ids: list[str], rules: list[Rule]) -> None:
        """The links that enable a moved unit or init script go with it (*.wants, rc?.d)."""
        target = item.file.resolved
        links = [link for link, to in self.reader.unit_links if to == target and link != item.file.path]
        if item.kind == "init_script":
            links += [link for link, to in self._rc_links() if to == target]
        for link in links:
            self._move(link, ids, rules, f"a link that enables {item.file.path}")


def _undo_lock(lines: list[tuple[str, str, str]], where: Callable[[str], str]) -> str:
    """The commands that undo a lock, passwd first (the shell), then shadow (the password, its
    lines named by digests only)."""
    commands = []
    for path, original, locked in reversed(lines):
        if path == SHADOW:
            commands.append(quarantine_records.unlock_command(where(path), locked, original))
        else:
            commands.append(quarantine_records.put_line_back_command(where(path), locked, original))
    return " && ".join(commands)


def _locked_password(password: str) -> str:
    """A password field no login matches, which unlocking (dropping the first '!') gives back."""
    return password if password.startswith("!") else "!" + password


def _line_of(root: str, path: str, name: str, number: int | None = None) -> str:
    """The line of account ``name`` in an account file of the root (line ``number`` when given), as
    the file holds it (bytes that are not UTF-8 kept as surrogates); ValueError when it is not
    there exactly once."""
    data = rootfs.read_bytes(root, path, accounts.MAX_DATABASE) or b""
    lines = [os.fsdecode(line) for line in data.split(b"\n")]
    if number is not None:
        if number > len(lines) or not lines[number - 1].startswith(name + ":"):
            raise ValueError(f"line {number} of {path} is no longer the one of {name}")
        candidate = lines[number - 1]
    else:
        matching = [line for line in lines if line.startswith(name + ":")]
        if len(matching) != 1:
            raise ValueError(f"{path} has {len(matching)} lines for {name}")
        candidate = matching[0]
    if lines.count(candidate) != 1:
        raise ValueError(f"{path} holds its line more than once")
    return candidate


def _reinstall(manager: str) -> str:
    """The command that puts a package's files back, for the package manager of the root."""
    return (
        "yum reinstall (dnf reinstall, zypper install -f)"
        if manager == "rpm"
        else "apt-get install --reinstall"
    )


def _rule_record(rule: Rule) -> dict:
    return {"id": rule.id, "description": rule.description, "severity": rule.severity}


def apply(result: model.Scan, actions: list[Action], backup_dir: str, stamp: str | None = None) -> None:
    """Carry out the planned actions; each failure is kept in its action's ``error`` (the others still
    run), nothing is deleted: a comment keeps the line, a move keeps the file."""
    stamp = stamp or safewrite.run_stamp()
    root = result.root
    run_dir: list[str] = []
    by_file: dict[str, list[Action]] = {}
    for action in actions:
        if action.action == "comment":
            by_file.setdefault(action.facts.resolved, []).append(action)
    for group in by_file.values():
        try:
            if not run_dir:
                run_dir.append(safewrite.backup_dir_for(root, backup_dir, stamp))
            _comment_lines(root, group, run_dir[0])
        except (safewrite.WriteError, rootfs.RootError, OSError) as exc:
            for action in group:
                action.error = str(exc)
    for action in actions:
        if action.action in ("move", "chmod", "uncap"):
            try:
                (_move_file if action.action == "move" else _unprivilege_file)(root, action)
            except (safewrite.WriteError, rootfs.RootError, OSError) as exc:
                action.error = str(exc)
        elif action.action == "lock":
            try:
                if not run_dir:
                    run_dir.append(safewrite.backup_dir_for(root, backup_dir, stamp))
                _lock_account(root, action, run_dir[0])
            except (safewrite.WriteError, rootfs.RootError, OSError, ValueError) as exc:
                action.error = str(exc)


def _lock_account(root: str, action: Action, run_dir: str) -> None:
    """Write each locked line in place of its original (the files backed up first); when a later
    file fails, the earlier ones get their original lines back."""
    done: list[tuple[str, bytes, bytes]] = []
    try:
        for path, original, locked in action.record["lines"]:
            host = safewrite.host_path(root, path)
            current = rootfs.read_bytes(root, path, accounts.MAX_DATABASE) or b""
            lines = current.split(b"\n")
            if lines.count(os.fsencode(original)) != 1:
                raise ValueError(f"{path} changed since the scan: the line of the account is not there once")
            lines[lines.index(os.fsencode(original))] = os.fsencode(locked)
            changed = b"\n".join(lines)
            st = os.lstat(host)
            action.backup = action.backup or safewrite.backup(root, path, run_dir)
            safewrite.replace_if_unchanged(host, current, changed, st.st_mode, st.st_uid, st.st_gid)
            done.append((host, changed, current))
    except BaseException:
        for host, changed, current in reversed(done):
            st = os.lstat(host)
            safewrite.replace_if_unchanged(host, changed, current, st.st_mode, st.st_uid, st.st_gid)
        raise
    action.applied = True


def _comment_lines(root: str, group: list[Action], run_dir: str) -> None:
    facts = group[0].facts
    expected = facts.data or b""
    lines = expected.split(b"\n")
    for action in group:
        marker = quarantine_records.marker(action.rules).encode()
        for number in range(action.line, (action.last_line or action.line) + 1):
            lines[number - 1] = marker + lines[number - 1]
    host = safewrite.host_path(root, facts.resolved)
    st = os.lstat(host)
    backup = safewrite.backup(root, facts.resolved, run_dir)
    safewrite.replace_if_unchanged(host, expected, b"\n".join(lines), st.st_mode, st.st_uid, st.st_gid)
    for action in group:
        action.applied, action.backup = True, backup


def _move_file(root: str, action: Action) -> None:
    source = safewrite.host_path(root, action.path)
    st = os.lstat(source)
    if _snapshot(st) != action.snapshot:
        raise safewrite.WriteError(f"{action.path} changed since it was scanned; not moved: run again")
    parent = rootfs.resolve(root, posixpath.dirname(action.destination))
    if parent.escaped:
        raise safewrite.WriteError(f"the quarantine directory {action.destination} leads out of {root}")
    os.makedirs(parent.host, mode=0o700, exist_ok=True)
    destination = os.path.join(parent.host, posixpath.basename(action.destination))
    metadata = destination + quarantine_records.METADATA_SUFFIX
    if os.path.lexists(destination) or os.path.lexists(metadata):
        raise safewrite.WriteError(f"{action.destination} already exists in the quarantine; not moved")
    record = {**action.record, "quarantined_at": report_text.iso(time.time())}
    data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    safewrite.write_file(metadata, data, 0o600, os.getuid(), os.getgid())
    try:
        try:
            os.rename(source, destination)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _move_across(source, destination, st, action)
    except BaseException:
        os.unlink(metadata)  # our own record of a move that did not happen
        raise
    for directory in sorted({os.path.dirname(source), os.path.dirname(destination)}):
        safewrite.sync_dir(directory)
    action.applied = True


def _unprivilege_file(root: str, action: Action) -> None:
    """Take the setuid and setgid bits or the capability off a file, its record written first."""
    host = safewrite.host_path(root, action.path)
    st = os.lstat(host)
    if not stat.S_ISREG(st.st_mode) or (st.st_ino, st.st_size, st.st_mtime_ns, 0) != action.snapshot:
        raise safewrite.WriteError(f"{action.path} changed since it was scanned; not changed: run again")
    if action.action == "chmod":
        current = f"{stat.S_IMODE(st.st_mode):04o}"
    else:
        try:
            current = os.getxattr(host, quarantine_records.CAPABILITY_XATTR, follow_symlinks=False).hex()
        except OSError:
            current = ""
    if current != action.before:
        raise safewrite.WriteError(
            f"{action.path} changed since it was scanned ({current}); not changed: run again"
        )
    parent = rootfs.resolve(root, posixpath.dirname(action.metadata))
    if parent.escaped:
        raise safewrite.WriteError(f"the quarantine directory {action.metadata} leads out of {root}")
    os.makedirs(parent.host, mode=0o700, exist_ok=True)
    metadata = os.path.join(parent.host, posixpath.basename(action.metadata))
    if os.path.lexists(metadata):
        raise safewrite.WriteError(f"{action.metadata} already exists in the quarantine; not changed")
    record = {**action.record, "quarantined_at": report_text.iso(time.time())}
    data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    safewrite.write_file(metadata, data, 0o600, os.getuid(), os.getgid())
    try:
        if action.action == "chmod":
            # Linux has no lchmod: the file is opened without following a link, then changed.
            fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            try:
                if os.fstat(fd).st_ino != st.st_ino:
                    raise safewrite.WriteError(f"{action.path} was replaced while it was changed")
                os.fchmod(fd, int(action.after, 8))
            finally:
                os.close(fd)
        else:
            os.removexattr(host, quarantine_records.CAPABILITY_XATTR, follow_symlinks=False)
    except BaseException:
        os.unlink(metadata)  # our own record of a change that did not happen
        raise
    action.applied = True


def _move_across(source: str, destination: str, st: os.stat_result, action: Action) -> None:
    """rename(2) across filesystems (/tmp or /dev/shm on tmpfs): copy, verify, then unlink the source."""
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), destination)
        os.lchown(destination, st.st_uid, st.st_gid)
    elif stat.S_ISREG(st.st_mode):
        digest = hashlib.sha256()
        src = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            dst = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                while chunk := os.read(src, 1 << 20):
                    digest.update(chunk)
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(dst, view) :]
                os.fchown(dst, st.st_uid, st.st_gid)
                os.fchmod(dst, stat.S_IMODE(st.st_mode))
                os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                os.fsync(dst)
            finally:
                os.close(dst)
        finally:
            os.close(src)
        expected = action.record.get("sha256")
        if expected and digest.hexdigest() != expected:
            os.unlink(destination)  # our partial copy; the original stays
            raise safewrite.WriteError(f"{action.path} changed while it was copied into the quarantine")
    else:
        raise safewrite.WriteError(
            f"{action.path} is a directory on another filesystem than the quarantine directory: "
            f"move it by hand (mv -- {shlex.quote(source)} {shlex.quote(destination)})"
        )
    os.unlink(source)
