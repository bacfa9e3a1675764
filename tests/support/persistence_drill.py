"""Persistence planted the way intrusions plant it, by the drill role's planters, into copies of the
real Debian trees; scanned, quarantined and put back by each action's own restore command.

A planter is ``roles/drill/files/<family>.sh ROOT MECHANISM...``; with ``PLANT_RECORD=DIR`` it
appends "MECHANISM PATH" to ``DIR/planted`` for every path (inside the root) it created or changed,
so the checks here know what was planted without asking the code under test.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    quarantine as persistence_quarantine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    rules as persistence_rules,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.modules import persistence_scan

from support.modules import run_module
from support.paths import PLANTERS, RULES_FILE
from support.trees import debian_tree

# Severities that count as alarms: "info" is the inventory a report lists for review.
ALARMS = ("low", "medium", "high", "critical")


@dataclass
class Planted:
    """A root and, for each mechanism planted into it, the paths the planter created or changed."""

    root: Path
    paths: dict[str, list[str]]

    def all_paths(self) -> list[str]:
        return sorted({p for paths in self.paths.values() for p in paths})


def shipped_rules() -> list[persistence_rules.Rule]:
    return persistence_rules.load_rules(yaml.safe_load(RULES_FILE.read_text()))


def copy_tree(suite: str, where: Path) -> Path:
    """A disposable copy of a suite's tree (owners, modes, links and capabilities kept)."""
    root = where / suite
    if root.exists():
        shutil.rmtree(root)
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["cp", "-a", str(debian_tree(suite)), str(root)], check=True, timeout=600)
    return root


def plant(root: Path, family: str, mechanisms: list[str] | tuple[str, ...]) -> Planted:
    """Run the planter ``family`` on ``root`` for ``mechanisms``; what it says it planted."""
    record = root.parent / f"{root.name}.{family}.record"
    shutil.rmtree(record, ignore_errors=True)
    record.mkdir(parents=True)
    subprocess.run(
        ["sh", str(PLANTERS / f"{family}.sh"), str(root), *mechanisms],
        check=True,
        timeout=120,
        env={**os.environ, "PLANT_RECORD": str(record)},
    )
    paths: dict[str, list[str]] = {m: [] for m in mechanisms}
    listed = record / "planted"
    for line in listed.read_text().splitlines() if listed.exists() else ():
        mechanism, _, path = line.partition(" ")
        paths.setdefault(mechanism, []).append(path)
    missing = [m for m, p in paths.items() if not p]
    assert not missing, f"the planter {family}.sh recorded nothing for {missing}"
    return Planted(root, paths)


def scan(root: Path) -> persistence.Scan:
    return persistence.scan(str(root), shipped_rules())


def findings(result: persistence.Scan) -> set[tuple[str, str, str, str]]:
    """(rule, severity, location kind, path) of every finding, the "info" inventory included."""
    return {(f.rule.id, f.rule.severity, f.item.kind, f.item.file.path) for f in result.findings}


def alarms(result: persistence.Scan) -> set[tuple[str, str, str, str]]:
    """(rule, severity, location kind, path) of every finding above "info"."""
    return {finding for finding in findings(result) if finding[1] in ALARMS}


def state_of(root: Path, path: str) -> tuple:
    """What lies at ``path`` inside ``root``, byte for byte: type and mode, owner, the content or the
    link's text, and the file capability (an xattr cp and mv keep)."""
    host = root / path.lstrip("/")
    try:
        st = host.lstat()
    except FileNotFoundError:
        return ("missing",)
    if host.is_symlink():
        content: bytes | str = os.readlink(host)
    elif host.is_dir():
        content = "\n".join(sorted(os.listdir(host)))
    else:
        content = hashlib.sha256(host.read_bytes()).hexdigest()
    try:
        capability = os.getxattr(host, "security.capability", follow_symlinks=False)
    except OSError:
        capability = b""
    return (st.st_mode, st.st_uid, st.st_gid, content, capability)


def fingerprint(root: Path) -> str:
    """Every entry of the root with its type, mode, owner, size and modification time: a check-mode
    run that changes any of them changes this."""
    digest = hashlib.sha256()
    for top, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names + dirs):
            st = os.lstat(os.path.join(top, name))
            digest.update(
                f"{top}/{name} {st.st_mode} {st.st_uid} {st.st_gid} {st.st_size} {st.st_mtime_ns}\n".encode()
            )
    return digest.hexdigest()


def quarantine(result: persistence.Scan, backups: str = "/var/backups/lifeline") -> list:
    """Plan and carry out the quarantine of ``result``; every action that was not done is returned
    with the others (its error or its manual reason tells why)."""
    actions = persistence_quarantine.plan(result)
    persistence_quarantine.apply(result, actions, backups)
    return actions


def restore(actions: list) -> None:
    """Put back what the quarantine did, newest first, with the commands the actions carry (as a
    responder would paste them on the rescuer)."""
    for action in reversed(actions):
        if action.applied and action.restore_host:
            subprocess.run(["sh", "-ec", action.restore_host], check=True, timeout=60)


def check_mode(root: Path, capsys, within) -> dict:
    """The persistence_scan module on ``root`` in check mode with a quarantine asked for, the way
    `--check --diff` runs it (``within``: the test's deadline): it plans (changed) and applies
    nothing, and the root's fingerprint is what it was. Its result, for the family's own checks."""
    before = fingerprint(root)
    rc, checked = run_module(
        persistence_scan,
        capsys,
        within,
        root=str(root),
        rules=yaml.safe_load(RULES_FILE.read_text()),
        quarantine=True,
        _ansible_check_mode=True,
        _ansible_diff=True,
    )
    assert (rc, checked["changed"]) == (0, True), checked.get("msg")
    assert checked["actions"] and not any(a["applied"] for a in checked["actions"])
    assert fingerprint(root) == before
    return checked
