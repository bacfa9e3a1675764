#!/usr/bin/python
# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Audit every ELF file of a root the way its own loader would resolve it; read-only."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: glibc_audit
short_description: Find the programs and libraries of a Linux root that its own loader cannot load
version_added: "0.1.0"
description:
  - Reads every ELF file under the usual program and library directories of a Linux root (C(/bin),
    C(/lib), C(/usr/lib), C(/usr/libexec), C(/opt), ..., plus O(paths)) and resolves each one's
    interpreter and libraries the way the target's own glibc loader would, with the target's
    C(ld.so.conf), entirely inside the root; nothing of the rescuer is consulted.
  - Reports libraries that are not found, symbol versions a library does not define (the offline
    form of C(version `GLIBC_2.34' not found)), missing or foreign interpreters, damaged ELF files,
    and symbolic links that dangle or climb out of the root.
  - The root is the target's root mounted on a rescuer (RV(lifeline.rescue.rescue_attach#module:root)),
    or C(/) to audit the running system itself.
  - Reads only; it never changes anything.
options:
  paths:
    description:
      - More directories to audit besides the usual ones, as paths inside the root (C(/srv/app)
        means C(<root>/srv/app)). One that is not a directory inside the root gives a warning.
    type: list
    elements: path
    default: []
  max_broken:
    description:
      - At most this many broken files, and this many bad links, are returned in detail, so that a
        root where everything is broken gives a result of reasonable size. RV(summary) still
        counts them all, and RV(truncated) tells that some were left out.
    type: int
    default: 200
  fail_on_broken:
    description:
      - Fail when any file is broken or any link is bad, with a message naming how many and the
        first few with their first problem. When false, the findings are only reported.
    type: bool
    default: false
extends_documentation_fragment:
  - lifeline.rescue.attributes
  - lifeline.rescue.target_root
  - lifeline.rescue.attributes.read_only
notes:
  - Run it as root on a rescuer, so that every file of the target can be read.
seealso:
  - module: lifeline.rescue.rescue_attach
author:
  - lifeline project (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Audit the attached target's programs and libraries
  lifeline.rescue.glibc_audit:
    root: "{{ attached.root }}"
  register: audit

- name: Stop when anything cannot be loaded, auditing an application directory as well
  lifeline.rescue.glibc_audit:
    root: /mnt/lifeline
    paths: [/srv/app/bin]
    fail_on_broken: true

- name: Audit the running system, at most 20 broken files in detail
  lifeline.rescue.glibc_audit:
    root: /
    max_broken: 20
"""

RETURN = r"""
root:
  description: The root audited (its real path on the rescuer).
  returned: always
  type: str
  sample: /mnt/lifeline
summary:
  description:
    - Counts over the whole audit, never truncated; C(missing_libraries) counts each library a file
      needs and that is not found.
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: dict
  sample: {elf_files: 1873, broken_files: 2, missing_libraries: 2, bad_links: 0}
broken:
  description:
    - The broken files, sorted by path, at most O(max_broken) of them. C(libraries) maps each library
      the file needs to where the loader would find it inside the root (null when not found).
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: list
  elements: dict
  sample:
    - path: /usr/bin/true
      kind: executable
      interpreter: /lib64/ld-linux-x86-64.so.2
      libraries: {libc.so.6: null}
      problems: ["libc.so.6: not found"]
links:
  description: Links that dangle or climb out of the root, one sentence each, at most O(max_broken).
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: list
  elements: str
  sample: ["/usr/lib/libfoo.so.1: dangling link (/usr/lib/libfoo.so.1 -> libfoo.so.1.2)"]
config_problems:
  description: Problems reading the target's loader configuration (C(ld.so.conf) and its includes).
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: list
  elements: str
  sample: ["/etc/ld.so.conf.d/app.conf: cannot be read"]
healthy:
  description: True when no file is broken and no link is bad.
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: bool
  sample: false
glibc_problems:
  description:
    - The problems that are the glibc's own, one C(FILE - PROBLEM) line each, a member of the glibc
      family not found, a GLIBC_ symbol version missing, an interpreter missing or wrong. Empty when
      the glibc serves every program. Cut to O(max_broken) items.
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: list
  elements: str
  sample: ["/usr/bin/true: libc.so.6: not found"]
seconds:
  description: The audit's wall time in seconds.
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: float
  sample: 2.417
truncated:
  description: True when RV(broken) or RV(links) leave some out (see O(max_broken)).
  returned: when the audit ran, also when O(fail_on_broken) fails
  type: bool
  sample: false
"""

import os
import posixpath
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.lifeline.rescue.plugins.module_utils.errors import FAILURES
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import audit
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import diagnosis as glibc
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

SHOWN_IN_MESSAGE = 5  # findings (broken files, then bad links) named in the message of fail_on_broken


def argument_spec() -> dict:
    return {
        "root": {"type": "path", "required": True},
        "paths": {"type": "list", "elements": "path", "default": []},
        "max_broken": {"type": "int", "default": 200},
        "fail_on_broken": {"type": "bool", "default": False},
    }


def inside_paths(paths: list[str]) -> tuple[str, ...]:
    """The extra directories as absolute paths inside the root (``srv/app`` is ``/srv/app``)."""
    return tuple(posixpath.normpath("/" + path) for path in paths)


def missing_dirs(root: str, dirs: tuple[str, ...]) -> list[str]:
    """The directories of ``dirs`` that are not directories inside the root (the audit skips them)."""
    missing = []
    for inside in dirs:
        try:
            if os.path.isdir(rootfs.resolve(root, inside).host):
                continue
        except rootfs.RootError:
            pass
        missing.append(inside)
    return missing


def report(found: audit.Audit, max_broken: int, seconds: float) -> dict:
    """The result keys of an audit, its details cut to ``max_broken`` items."""
    whole = found.as_dict()
    broken = sorted(whole["broken"], key=lambda f: f["path"])
    glibc_problems = [
        f"{f['path']}: {p}" for f in broken for p in f["problems"] if glibc.glibc_problem(f["path"], p)
    ]
    summary = whole["summary"]
    return {
        "summary": summary,
        "broken": broken[:max_broken],
        "links": whole["links"][:max_broken],
        "config_problems": whole["config_problems"],
        "healthy": not summary["broken_files"] and not summary["bad_links"],
        "glibc_problems": glibc_problems[:max_broken],
        "seconds": round(seconds, 3),
        "truncated": len(broken) > max_broken or len(whole["links"]) > max_broken,
    }


def failure_message(found: audit.Audit) -> str:
    """For fail_on_broken: how many, then the first few broken files (first problem each) and bad links."""
    summary = found.summary()
    counts = [f"{summary['broken_files']} of {summary['elf_files']} ELF files broken"]
    if summary["bad_links"]:
        counts.append(f"{summary['bad_links']} bad links")
    findings = [f"{f.path}: {f.problems[0]}" for f in sorted(found.broken, key=lambda f: f.path)]
    findings += found.links
    first = findings[:SHOWN_IN_MESSAGE]
    more = f" (and {len(findings) - len(first)} more)" if len(findings) > len(first) else ""
    return f"{' and '.join(counts)} under {found.root}: {'; '.join(first)}{more}"


def run_module() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    root = os.path.realpath(params["root"])
    result = {"changed": False, "root": root}
    if not os.path.isdir(root):
        what = "is not a directory" if os.path.exists(root) else "does not exist"
        module.fail_json(
            msg=f"root={params['root']} {what}: give the directory where the target's root is mounted "
            "(or / for the running system)",
            **result,
        )
    if params["max_broken"] < 0:
        module.fail_json(msg=f"max_broken={params['max_broken']}: give 0 or more", **result)
    extra = inside_paths(params["paths"])
    for inside in missing_dirs(root, extra):
        module.warn(f"paths: {inside} is not a directory inside {root}; it was not audited")
    start = time.monotonic()
    try:
        found = audit.audit_root(root, extra)
    except FAILURES as exc:
        module.fail_json(
            msg=f"auditing {root} failed: {exc}; check that root is the target's mounted root and that "
            "this user can read all of it (run the audit as root)",
            **result,
        )
    result.update(report(found, params["max_broken"], time.monotonic() - start))
    if params["fail_on_broken"] and not result["healthy"]:
        module.fail_json(msg=failure_message(found), **result)
    module.exit_json(**result)


def main() -> None:
    run_module()


if __name__ == "__main__":
    main()
