#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the jobs and startup items a root runs besides its packages, and quarantine them on request."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: persistence_scan
short_description: Find and quarantine malicious jobs and startup items of a Linux root
version_added: "0.1.0"
description:
  - Reads every place a Linux system starts programs from by itself, inside O(root) and without
    running anything of it, cron (C(/etc/crontab), C(/etc/cron.d), the user crontabs of Debian and
    Red Hat, the C(/etc/cron.hourly) to C(cron.yearly) scripts), C(/etc/anacrontab), at jobs,
    systemd units, drop-ins, timers, generators and shutdown hooks (system and user), C(/etc/rc.local)
    and C(/etc/rc.d/rc.local), C(/etc/init.d) and C(/etc/rc.d/init.d) with the runlevel links of
    C(rc?.d), Upstart jobs and overrides (C(/etc/init)), udev rules, C(/etc/profile),
    C(/etc/profile.d), C(/etc/bash.bashrc) and the users' shell start files, C(/etc/ld.so.preload),
    xdg autostart entries and C(authorized_keys).
  - Logins and the tools people use, too, every key of the files sshd reads (its C(AuthorizedKeysFile)
    with C(%h), C(%u), C(%U) expanded) with its options and the account it opens,
    C(AuthorizedKeysCommand), C(~/.ssh/rc) and C(/etc/ssh/sshrc), C(.rhosts), C(.shosts),
    C(hosts.equiv) and C(shosts.equiv), git hooks and the git config keys that run programs, logout
    files, KDE Plasma session scripts, and systemd socket and path units with what their service runs.
  - Also the services a system trusts, C(/etc/sudoers) and what it includes, polkit rules and
    C(.pkla) files, D-Bus activation services and bus policies, kernel modules (C(modules-load.d),
    C(modprobe.d) install lines, module files outside the module trees or no package installed),
    C(ld.so.conf) and C(LD_PRELOAD) in units and environment files, containers restarted by docker,
    podman (and quadlets) or kubelet (static pods), scripts in the web roots, and Python's C(.pth)
    files and C(sitecustomize)/C(usercustomize) modules. A container is never changed in its
    engine's state; its action is manual, with the command that stops it restarting.
  - And what system components run as root by themselves, the MOTD scripts of
    C(/etc/update-motd.d), apt hooks (C(DPkg::Post-Invoke), C(APT::Update::Pre-Invoke), ...) read
    with apt's syntax, dpkg's C(post-invoke), yum and dnf plugins, PAM lines (C(pam_exec), modules
    no package installed, C(pam_permit) as C(sufficient)), C(init=) and C(rdinit=) in GRUB's
    defaults and C(grub.cfg), C(/etc/grub.d) scripts, initramfs-tools hooks and scripts, dracut
    modules and C(dracut.conf), and NetworkManager, ifupdown, ppp and dhclient hooks. A flagged
    hook, PAM or GRUB line is commented out; a generated C(grub.cfg) and the initramfs to rebuild
    are manual actions.
  - Links are followed only inside the root, sizes are bounded, and a file that is a directory,
    FIFO, device, link loop or unreadable is reported as a note, never read.
  - What an item runs is judged too, not only its name. The text script a job, unit, udev rule,
    autostart entry or at job runs is read (up to 1 MB, never a binary) and its lines are matched by
    the same rules, through wrappers that exec or source another script, at most four scripts
    deep; a script a package owns is judged only when its content contradicts the package's
    recorded checksum.
  - Rules decide what is a finding (the crontab_repair role ships them in
    C(files/persistence_rules.yml) and lets users add their own). Each finding carries the evidence
    of its file and of the program it runs, path, owner, mode, times, sha256 and the owning
    package read offline from the root's package database.
  - With O(quarantine), a flagged job line of a crontab-like or shell file is commented out in
    place with the marker C(#lifeline-quarantine(rule-id)), after a backup under O(backup_dir);
    a flagged startup file no package owns (unit, timer, generator, init script, runlevel entry,
    Upstart job or override, udev rule, autostart entry, at job, the program a job runs) is moved
    under O(quarantine_dir) with a C(.lifeline.json) record beside it, and the links that enable a
    unit or start an init script move with it. Files a package
    owns are never moved (the action says what to do instead). Nothing is ever deleted.
  - Packaged files are checked against the digests their package database recorded (dpkg's md5sums
    and conffiles, rpm's file digests), the programs startup items run, setuid, setgid and capable
    files, and the system programs trojans replace (ls, ps, ss, su, sshd, pam_unix.so, ...). A
    replaced one is a manual action with the reinstall command and, when a wrapper moved the original
    aside, where it is. A file no package installed in C(/usr/bin), C(/usr/sbin) or a PAM module
    directory is moved. A flagged setuid, setgid or capable file keeps its place and loses the
    privilege (action chmod or uncap), the old mode or capability in its record and restore command.
  - A flagged account is locked, never deleted, its password in C(/etc/shadow) prefixed with C(!)
    and its shell set to the root's nologin; root is never locked.
options:
  rules:
    description:
      - The persistence rules, a list of mappings as in the crontab_repair role's
        C(files/persistence_rules.yml); invalid rules fail the module with every problem named.
    type: list
    elements: dict
    required: true
  quarantine:
    description: Comment out flagged job lines and move flagged startup files into O(quarantine_dir).
    type: bool
    default: false
  quarantine_dir:
    description:
      - Where quarantined files go, as a path inside the root; each run uses a subdirectory named
        by its UTC time, holding the files under their original paths.
    type: str
    default: /var/lib/lifeline/quarantine
  hold:
    description:
      - Paths of files cron was not reading before this run (it ignored them for an error that a
        repair has just fixed). Without O(quarantine), the lines in them that a rule of severity
        high or critical flags are still commented out with the quarantine marker, so that the
        repair does not switch on a malicious job that was not running. Nothing is moved.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - lifeline.rescue.attributes
  - lifeline.rescue.target_root
  - lifeline.rescue.target_root.backup
attributes:
  check_mode:
    support: full
    details: Scans and plans the quarantine; changes nothing.
  diff_mode:
    support: full
    details: Each line to be commented out and each file to be moved, before and after.
seealso:
  - module: lifeline.rescue.glibc_audit
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Report the persistence of a root mounted on a rescue system
  lifeline.rescue.persistence_scan:
    root: /mnt/sysimage
    rules: "{{ lookup('ansible.builtin.file', 'persistence_rules.yml') | from_yaml }}"
  register: persistence

- name: Quarantine what the rules flag on the live host
  lifeline.rescue.persistence_scan:
    root: /
    rules: "{{ lookup('ansible.builtin.file', 'persistence_rules.yml') | from_yaml }}"
    quarantine: true
"""

RETURN = r"""
findings:
  description:
    - One entry for each rule that fired on an item (a line, or a whole file when line is null).
    - file and payload are evidence dicts with path, resolved, links, type, owner (user:group),
      uid, gid, mode, size, mtime, ctime (ISO 8601 UTC), sha256, package (null when no package
      owns it) and problem; payload is the program the item runs, null when it names none.
    - enabled_by lists the links (C(*.wants), C(*.requires)) that switch a unit on at boot.
    - quarantine is the rule's own flag, whether a quarantine acts on the finding (false is listed
      for review only).
  returned: always
  type: list
  elements: dict
  sample:
    - rule: exec-hidden-path
      description: Runs a program from a hidden path (a path component starting with a dot)
      severity: high
      quarantine: true
      location: cron
      path: /etc/crontab
      line: 23
      text: "*/3 * * * * root /usr/bin/.sysupdate"
      command: /usr/bin/.sysupdate
      user: root
      matched: ["runs: /usr/bin/.sysupdate"]
      notes: []
      enabled_by: []
      file: {path: /etc/crontab, type: file, owner: "root:root", mode: "0644", package: cron}
      payload: {path: /usr/bin/.sysupdate, type: file, owner: "root:root", mode: "0755", package: null}
actions:
  description:
    - The quarantine, one entry a line, file or account; action is comment, move, chmod (setuid and
      setgid bits taken off; before and after are the modes), uncap (the security.capability
      attribute taken off; before is its value in hex), lock (an account whose password is locked and
      shell set to nologin, never deleted) or manual (not done, the reason says why and what to do).
      restore is the command that puts it back on the target (or in a chroot), restore_host the
      same with the paths this run saw. Empty unless quarantine.
  returned: always
  type: list
  elements: dict
  sample:
    - action: move
      path: /etc/systemd/system/sysupdate.service
      line: null
      rules: [exec-hidden-path]
      reason: systemd unit that matched a rule
      before: "/etc/systemd/system/sysupdate.service (file, 0644 root:root, sha256 3b1c...)"
      after: /var/lib/lifeline/quarantine/20250101T120000Z/etc/systemd/system/sysupdate.service
      destination: /var/lib/lifeline/quarantine/20250101T120000Z/etc/systemd/system/sysupdate.service
      metadata: "/var/lib/lifeline/quarantine/20250101T120000Z/etc/systemd/system/\
        sysupdate.service.lifeline.json"
      backup: ""
      restore: "test ! -e /etc/systemd/system/sysupdate.service && ... && mv -- /var/lib/lifeline/... && ..."
      restore_host: "test ! -e /mnt/sysimage/etc/systemd/system/sysupdate.service && ..."
      applied: true
      error: ""
summary:
  description: Counts of the findings by severity, location kind and rule, and of what was read.
  returned: always
  type: dict
  sample:
    findings: 3
    by_severity: {info: 0, low: 0, medium: 1, high: 2, critical: 0}
    by_location: {cron: 2, rc_local: 1}
    by_rule: {exec-hidden-path: 2, frequent-unpackaged-job: 1}
    files: 52
    items: 340
    notes: 0
    already_quarantined: 0
    package_database: true
    seconds: 0.09
already_quarantined:
  description:
    - What earlier runs quarantined, lines still commented out (kind line) and files recorded in
      the quarantine directory (kind file, present says whether the file is still there).
  returned: always
  type: list
  elements: dict
  sample:
    - kind: line
      path: /etc/crontab
      line: 23
      rules: [exec-hidden-path]
      text: "#lifeline-quarantine(exec-hidden-path) */3 * * * * root /usr/bin/.sysupdate"
      quarantined_path: null
      quarantined_at: null
      present: true
      restore: "sed -i '23s/^#lifeline-quarantine([^)]*) //' /etc/crontab"
timeline:
  description:
    - Every startup file the scan read and every flagged file and unowned payload, ordered by
      change time (ctime, then path), with its mtime; how responders find the rest of an intrusion.
    - Each entry has path, kind (the location kind, or payload for a program an item runs),
      ctime and mtime (ISO 8601 UTC), rules (the ids of the rules that fired on it, for a payload
      on what runs it), flagged (one of them has a severity above info) and near_flagged (not
      flagged, but its ctime or mtime lies within an hour of a flagged entry's ctime or mtime).
    - At most 500 entries, the flagged and near ones first, then the most recently changed;
      total counts every file and omitted those left out. A root copied with C(cp -a) has every
      ctime at the copy's time, so only the mtimes tell then.
  returned: always
  type: dict
  sample:
    entries:
      - path: /usr/local/bin/keyring-sync
        kind: payload
        ctime: "2026-12-01T03:14:07Z"
        mtime: "2026-12-01T03:14:07Z"
        rules: [reverse-shell, unpackaged-startup-runs-suspicious]
        flagged: true
        near_flagged: false
      - path: /etc/xdg/autostart/keyring-sync.desktop
        kind: xdg_autostart
        ctime: "2026-12-01T03:14:09Z"
        mtime: "2026-12-01T03:14:09Z"
        rules: [reverse-shell, unpackaged-startup-runs-suspicious, unpackaged-startup-item]
        flagged: true
        near_flagged: false
    total: 812
    omitted: 312
notes:
  description: Files at persistence locations that could not be read, and why (location, path, problem).
  returned: always
  type: list
  elements: dict
  sample:
    - location: cron
      path: /etc/cron.d/loop
      problem: "/etc/cron.d/loop: too many levels of symbolic links inside /mnt/sysimage (a link loop)"
"""

import dataclasses
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import quarantine, timeline
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    records as quarantine_records,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    rules as persistence_rules,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Scan
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs, safewrite

HOLD_SEVERITIES = ("high", "critical")


def argument_spec() -> dict:
    return {
        "root": {"type": "path", "required": True},
        "rules": {"type": "list", "elements": "dict", "required": True},
        "quarantine": {"type": "bool", "default": False},
        "quarantine_dir": {"type": "str", "default": quarantine_records.DEFAULT_QUARANTINE_DIR},
        "backup_dir": {"type": "str", "default": "/var/backups/lifeline"},
        "hold": {"type": "list", "elements": "str", "default": []},
    }


def diff_of(actions: list[quarantine.Action]) -> dict:
    def where(action: quarantine.Action) -> str:
        return f"{action.path}:{action.line}" if action.line else action.path

    changing = [a for a in actions if a.action != "manual"]
    return {
        "before_header": "persistence items before the quarantine",
        "after_header": "persistence items after the quarantine",
        "before": "".join(f"{where(a)}: {a.before}\n" for a in changing),
        "after": "".join(f"{where(a)}: {_after(a)}\n" for a in changing),
    }


def _after(action: quarantine.Action) -> str:
    if action.action == "move":
        return "moved to " + action.after
    return action.after


def held(found: Scan, paths: list[str]) -> Scan:
    """The findings to keep inactive without a quarantine: lines of high or critical severity in
    the files cron was not reading before this run (the repair would otherwise switch them on)."""
    keep = [
        f
        for f in found.findings
        if f.item.file.path in paths and f.item.line is not None and f.rule.severity in HOLD_SEVERITIES
    ]
    return dataclasses.replace(found, findings=keep)


def scan_and_quarantine(module: AnsibleModule, root: str, result: dict) -> None:
    """Scan, then plan and (unless checking) apply the quarantine, filling ``result``; raises FAILURES."""
    params = module.params
    rules = persistence_rules.load_rules(params["rules"])
    found = persistence.scan(root, rules, params["quarantine_dir"])
    result.update(
        findings=found.finding_dicts(),
        summary=found.summary(),
        already_quarantined=found.already_quarantined,
        notes=found.notes,
        timeline=timeline.of_scan(found),
    )
    if params["quarantine"]:
        planned = found
    elif params["hold"]:
        planned = held(found, params["hold"])
    else:
        return
    stamp = safewrite.run_stamp()
    actions = quarantine.plan(planned, params["quarantine_dir"], stamp)
    if not params["quarantine"]:
        # Holding comments lines out; it never moves a file the user did not ask to quarantine.
        actions = [a for a in actions if a.action == "comment"]
    result["actions"] = [a.as_dict() for a in actions]
    result["changed"] = any(a.action != "manual" for a in actions)
    if module._diff:
        result["diff"] = diff_of(actions)
    if module.check_mode:
        return
    quarantine.apply(found, actions, params["backup_dir"], stamp)
    result["actions"] = [a.as_dict() for a in actions]
    result["changed"] = any(a.applied for a in actions)
    failed = [a for a in actions if a.error]
    if failed:
        raise persistence_rules.PersistenceError(
            "the quarantine could not do everything: " + "; ".join(f"{a.path}: {a.error}" for a in failed)
        )


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    root = os.path.realpath(module.params["root"])
    result: dict = {
        "changed": False,
        "findings": [],
        "actions": [],
        "summary": {},
        "already_quarantined": [],
        "notes": [],
        "timeline": {"entries": [], "total": 0, "omitted": 0},
    }
    if refusal := rootfs.not_a_linux_root("root", module.params["root"], root):
        module.fail_json(msg=refusal, **result)
    try:
        scan_and_quarantine(module, root, result)
    except FAILURES as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
