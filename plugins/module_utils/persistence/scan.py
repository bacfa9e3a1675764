# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find what makes a root run code by itself besides what its packages installed.

Every place a Linux system starts programs from unasked (cron and anacron, at jobs, systemd units,
timers and generators, rc.local, init scripts and their runlevel links, Upstart jobs, udev rules,
login shells' files, the loader's preload list, desktop autostart, ssh forced commands) is read
as data inside the root: nothing of the root runs, no link leads out of it, every read is bounded.
Each line or file that starts something is an item, with what it runs and how often; the rules
(persistence_rules) decide which items are findings, and each finding carries the evidence of its
file and of the program it runs.

The pieces: ``model`` (the data), ``reader`` (the root as the sources read it), ``sources/`` (one
module per kind of location, each with ``collect(reader)``, run in the order of ``SOURCES``),
``evaluate`` (the rules on the items) and ``evidence`` (what a report shows of a file).
"""

from __future__ import annotations

import time

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    records as quarantine_records,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.evaluate import evaluate
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.evidence import (
    Evidence,
    quarantined_files,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import Scan
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.rules import Rule
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import (
    accounts,
    anacron,
    at_jobs,
    authorized_keys,
    boot_loader,
    containers,
    cron_scripts,
    crontabs,
    dbus_services,
    git,
    indicator_paths,
    init_scripts,
    initramfs_hooks,
    kde_session,
    kernel_modules,
    ld_config,
    ld_preload,
    motd,
    network_hooks,
    package_files,
    package_hooks,
    pam,
    polkit,
    privileged_files,
    python_startup,
    rc_local,
    rhosts,
    shell_files,
    ssh_rc,
    sudoers,
    systemd_generators,
    systemd_units,
    udev_rules,
    upstart_jobs,
    web_shells,
    xdg_autostart,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

# The order findings are reported in, and the order that decides which location a file shared by
# two belongs to (each file is read once, by the first): systemd units before rc.local (whose unit
# says when it runs), rc.local before the init scripts (Red Hat's rc?.d/S99local leads to it),
# indicator paths last, as what no other source read.
SOURCES = (
    crontabs,
    anacron,
    cron_scripts,
    at_jobs,
    systemd_units,
    systemd_generators,
    rc_local,
    init_scripts,
    upstart_jobs,
    udev_rules,
    shell_files,
    ld_preload,
    xdg_autostart,
    authorized_keys,
    ssh_rc,
    rhosts,
    git,
    kde_session,
    sudoers,
    polkit,
    dbus_services,
    kernel_modules,
    ld_config,  # after systemd_units: it reads the Environment= of the units they read
    containers,
    web_shells,
    python_startup,
    motd,
    package_hooks,
    pam,
    boot_loader,
    initramfs_hooks,
    network_hooks,
    indicator_paths,
    accounts,
    # After every source whose programs they check: privileged files, then package integrity.
    privileged_files,
    package_files,
)


def scan(
    root: str, rules: list[Rule], quarantine_dir: str = quarantine_records.DEFAULT_QUARANTINE_DIR
) -> Scan:
    """Read every persistence location of ``root``, apply ``rules`` (persistence_rules.load_rules) and
    list what earlier runs quarantined under ``quarantine_dir``."""
    started = time.monotonic()
    # The scan only reads: the directories it resolves stay as they were.
    with rootfs.remembered_lookups():
        reader = RootReader(root, tuple(path for rule in rules for path in rule.indicator_paths))
        try:
            # Work that needs nothing from the other sources starts first, on other processors.
            for source in SOURCES:
                if hasattr(source, "begin"):
                    source.begin(reader)
            for source in SOURCES:
                collected = len(reader.items)
                source.collect(reader)
                package_files.hash_soon(reader, reader.items[collected:])
            reader.follow_payloads()
        finally:
            reader.close()
        findings = evaluate(reader, rules)
        held = quarantined_files(reader, quarantine_dir)
    return Scan(
        root=reader.root,
        findings=findings,
        notes=reader.notes,
        already_quarantined=reader.marked_lines + held,
        files=len(reader.files),
        items=len(reader.items),
        package_database=reader.package_database,
        seconds=time.monotonic() - started,
        scanner=reader,
        evidence=Evidence(reader),
    )
