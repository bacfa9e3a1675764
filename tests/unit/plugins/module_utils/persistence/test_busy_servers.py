"""The shipped rules on busy servers: each suite's tree with what a real server runs (nginx, apache2
and its CGI directory, php-fpm, postgresql, docker, NetworkManager, sudo, polkit, cloud-init,
fail2ban, auditd, ...; tools/images/server-packages.txt) installed by apt with their recommends.
Every file there came from a package or from an administrator's first day, so any finding above
"info" is a false alarm. Besides the packages, the administrator's first day: Debian's cloud user
"admin" with a key and cloud-init's sudo grant, a PHP page, a CGI script, a backup service and
timer, root's crontab and a cron.d job (tools/images/server-recipe.sh). The info-level inventory is
printed (pytest -s) for review."""

from __future__ import annotations

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence

from support import rpmroots
from support.persistence_drill import ALARMS, shipped_rules
from support.trees import SUITES, busy_server, debian_tree

# A busy server's inventory is its administrator's own files and what a review should see anyway
# (setuid programs, who holds sudo); more than this would bury a real finding.
MAX_INVENTORY = 50
# The administrator's own startup files: no package installed them, so the inventory lists them.
ADMIN_STARTUP = {"/etc/systemd/system/backup-site.service", "/etc/systemd/system/backup-site.timer"}


@pytest.fixture(scope="module")
def rules():
    return shipped_rules()


def shown(finding: dict) -> str:
    where = finding["path"] + (f":{finding['line']}" if finding["line"] else "")
    rule = f"{finding['severity']:8} {finding['rule']:34} {finding['location']:16}"
    return f"{rule} {where}  {finding['text'][:80]!r}"


@pytest.mark.parametrize("suite", SUITES)
def test_busy_server_gives_no_alarm_and_a_bounded_inventory(suite, rules):
    root = busy_server(suite)
    result = persistence.scan(str(root), rules)
    findings = result.finding_dicts()
    inventory = [f for f in findings if f["severity"] == "info"]
    print(f"\n{suite} busy server: {result.summary()}")
    for finding in inventory:
        print("  " + shown(finding))
    for note in result.notes:
        print(f"  note: {note}")

    false_alarms = [shown(f) for f in findings if f["severity"] in ALARMS]
    assert false_alarms == []
    assert result.package_database is True
    assert len(inventory) <= MAX_INVENTORY
    assert {f["path"] for f in inventory} >= ADMIN_STARTUP
    # It is a busy server indeed: far more to read than the stock tree it was made from.
    stock = persistence.scan(str(debian_tree(suite)), rules)
    assert result.items > stock.items + 100
    kinds = {item.kind for item in result.scanner.items}
    assert {"cron", "cron_script", "systemd_unit", "systemd_timer", "udev", "shell_rc"} <= kinds
    assert "authorized_keys" in kinds  # the administrator's key


@pytest.mark.parametrize("layout", sorted(rpmroots.LAYOUTS))
def test_rpm_roots_give_no_alarm(layout, rules):
    """The RHEL 6, 8 and 9 layouts real rpm installed (support/rpmroots.py): every file came from a
    package, so every source, the package integrity checks against rpm's digests and modes and the
    accounts against setup's list included, must stay silent."""
    result = persistence.scan(str(rpmroots.pristine_root(layout)), rules)

    alarms = [shown(f) for f in result.finding_dicts() if f["severity"] in ALARMS]

    assert result.package_database
    assert alarms == []
