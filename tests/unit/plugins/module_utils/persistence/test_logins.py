"""Persistence that rides on logins and on the tools people use (ssh keys and sshd's key settings,
~/.ssh/rc, rhosts, git, logout files, KDE session scripts, systemd drop-ins, socket, path and user
units), planted by the drill role's logins.sh into copies of the real Debian trees: found with the
expected rule, nothing else alarmed, quarantined (as ssh-keygen, git and systemctl read the root
afterwards), put back byte for byte, and check mode changes nothing."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    quarantine as persistence_quarantine,
)

from support import persistence_drill as drill
from support.paths import RULES_FILE
from support.trees import SUITES, debian_tree

KEYS = "/root/.ssh/authorized_keys"
USER_KEYS = "/home/lifeline/.ssh/authorized_keys"
NEWS_KEYS = "/var/spool/news/.ssh/authorized_keys"
SSHD_DROP_IN = "/etc/ssh/sshd_config.d/lifeline.conf"
KDE_SCRIPT = "/root/.config/autostart-scripts/update-notifier.sh"
DROP_IN = "/etc/systemd/system/cron.service.d/override.conf"
SOCKET = "/etc/systemd/system/lifeline-helper.socket"
SOCKET_SERVICE = "/etc/systemd/system/lifeline-helper@.service"
PATH_UNIT = "/etc/systemd/system/lifeline-watch.path"
PATH_SERVICE = "/etc/systemd/system/lifeline-watch.service"
USER_UNIT = "/etc/systemd/user/lifeline-agent.service"
PLAIN_UNIT = "/etc/systemd/system/lifeline-inventory.service"


def _hidden_and_started(kind: str, path: str) -> set[tuple[str, str, str, str]]:
    """A startup file no package installed that runs a hidden program."""
    return {
        ("exec-hidden-path", "high", kind, path),
        ("unpackaged-startup-runs-suspicious", "critical", kind, path),
    }


# mechanism: the alarms (rule, severity, location kind, path) it must raise at least.
EXPECTED = {
    "root_key": {("authorized-key-root", "low", "authorized_keys", KEYS)},
    # A person's key looks like any other: listed (info), never an alarm by itself.
    "user_key": {("authorized-key-user", "info", "authorized_keys", USER_KEYS)},
    "system_account_key": {("authorized-key-system-account", "high", "authorized_keys", NEWS_KEYS)},
    "key_environment": {
        ("authorized-key-loader-environment", "high", "authorized_keys", USER_KEYS),
        ("exec-hidden-path", "high", "authorized_keys", USER_KEYS),
    },
    "key_command": {
        ("authorized-key-forced-command", "low", "authorized_keys", KEYS),
        ("exec-hidden-path", "high", "authorized_keys", KEYS),
    },
    "keys_file_odd": {
        ("sshd-authorized-keys-file-odd", "medium", "authorized_keys", SSHD_DROP_IN),
        ("authorized-key-root", "low", "authorized_keys", "/var/tmp/.lifeline-keys/root"),
    },
    "keys_command": {
        ("sshd-authorized-keys-command-unowned", "medium", "authorized_keys", SSHD_DROP_IN),
        ("exec-hidden-path", "high", "authorized_keys", SSHD_DROP_IN),
    },
    "ssh_rc": {
        ("ssh-rc", "medium", "ssh_rc", "/root/.ssh/rc"),
        ("exec-hidden-path", "high", "ssh_rc", "/root/.ssh/rc"),
    },
    "sshrc": {("ssh-rc", "medium", "ssh_rc", "/etc/ssh/sshrc")},
    "rhosts": {
        ("rhosts-wildcard", "critical", "rhosts", "/root/.rhosts"),
        ("rhosts-entry", "medium", "rhosts", "/root/.rhosts"),
    },
    "hosts_equiv": {("rhosts-entry", "medium", "rhosts", "/etc/hosts.equiv")},
    "git_hook": {("git-hook", "medium", "git", "/srv/lifeline-app/.git/hooks/pre-commit")},
    "git_pager": {("exec-hidden-path", "high", "git", "/root/.gitconfig")},
    "git_hooks_path": {
        ("git-hooks-path", "medium", "git", "/root/.gitconfig"),
        ("git-hook", "medium", "git", "/usr/local/share/.lifeline-hooks/post-checkout"),
    },
    "bash_logout": {("exec-hidden-path", "high", "shell_rc", "/root/.bash_logout")},
    "kde_autostart": {
        ("kde-session-script", "medium", "xdg_autostart", KDE_SCRIPT),
        *_hidden_and_started("xdg_autostart", KDE_SCRIPT),
    },
    "systemd_dropin": {
        ("systemd-drop-in-overrides-packaged-exec", "high", "systemd_unit", DROP_IN),
        *_hidden_and_started("systemd_unit", DROP_IN),
    },
    "systemd_socket": {
        ("systemd-enabled-unowned-unit", "info", "systemd_unit", SOCKET),
        *_hidden_and_started("systemd_unit", SOCKET),
        *_hidden_and_started("systemd_unit", SOCKET_SERVICE),
    },
    "systemd_path": {
        ("systemd-enabled-unowned-unit", "info", "systemd_unit", PATH_UNIT),
        *_hidden_and_started("systemd_unit", PATH_UNIT),
        *_hidden_and_started("systemd_unit", PATH_SERVICE),
    },
    "systemd_user_unit": {
        ("systemd-enabled-unowned-unit", "info", "systemd_unit", USER_UNIT),
        *_hidden_and_started("systemd_unit", USER_UNIT),
    },
    # An admin's own enabled service looks the same: listed (info), never an alarm by itself.
    "systemd_unit_plain": {("systemd-enabled-unowned-unit", "info", "systemd_unit", PLAIN_UNIT)},
}
MECHANISMS = tuple(EXPECTED)
# What only this family's sources read, and the rules only it added.
FAMILY_KINDS = {"authorized_keys", "ssh_rc", "rhosts", "git"}
FAMILY_RULES = {
    rule["id"]
    for rule in yaml.safe_load(RULES_FILE.read_text())
    if rule["id"].startswith(("authorized-key", "sshd-", "ssh-rc", "rhosts-", "git-", "kde-", "systemd-"))
}
# The keys each quarantine must leave sshd unable to read (ssh-keygen lists what sshd would).
DISARMED_KEYS = {KEYS: "backup@vault", NEWS_KEYS: "news@backup", USER_KEYS: "lifeline@laptop"}
# The planted units whose payload gives them away (quarantined), and the plain one an admin's own
# service looks like (listed, left enabled).
ENABLED_UNITS = (
    ("lifeline-helper.socket", ()),
    ("lifeline-watch.path", ()),
    ("lifeline-agent.service", ("--global",)),
)
PLAIN = ("lifeline-inventory.service", ())


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install {package} (the test reads the root with it)")
    return found


def _key_comments(path: Path) -> set[str]:
    """The comments of the keys ssh-keygen reads from an authorized_keys file (what sshd accepts)."""
    listed = subprocess.run(
        [_tool("ssh-keygen", "openssh-client"), "-l", "-f", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return {line.split(" ", 2)[2].rsplit(" (", 1)[0] for line in listed.stdout.splitlines()}


def _git_value(config: Path, key: str) -> str:
    read = subprocess.run(
        [_tool("git", "git"), "config", "--file", str(config), "--get-all", key],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return read.stdout.strip()


def _is_enabled(root: Path, unit: str, scope: tuple[str, ...]) -> str:
    asked = subprocess.run(
        [_tool("systemctl", "systemd"), f"--root={root}", *scope, "is-enabled", unit],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return asked.stdout.strip() or asked.stderr.strip()


@pytest.fixture(scope="module", params=SUITES)
def planted(request, tmp_path_factory):
    """One copy of a suite's tree with every mechanism of the family planted, scanned once."""
    root = drill.copy_tree(request.param, tmp_path_factory.mktemp("logins"))
    plants = drill.plant(root, "logins", MECHANISMS)
    return plants, drill.scan(root)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_mechanism_raises_its_alarm(planted, mechanism):
    plants, result = planted

    missing = EXPECTED[mechanism] - drill.findings(result)

    assert not missing
    assert {path for _rule, _severity, _kind, path in EXPECTED[mechanism]} <= set(plants.paths[mechanism])


def test_every_alarm_lies_on_a_planted_path(planted):
    plants, result = planted

    stray = {alarm for alarm in drill.alarms(result) if alarm[3] not in plants.all_paths()}

    assert stray == set()
    assert result.notes == []


@pytest.mark.parametrize("suite", SUITES)
def test_the_pristine_tree_gives_no_alarm_and_no_item_of_the_family(suite):
    result = drill.scan(debian_tree(suite))

    assert [a for a in drill.alarms(result) if a[0] in FAMILY_RULES] == []
    assert {i.kind for i in result.scanner.items} & FAMILY_KINDS == set()


def test_planted_keys_and_settings_are_what_the_tools_themselves_read(planted):
    """The planter did plant what the expectations say (independent of the scan)."""
    plants, _result = planted
    root = plants.root

    assert {"admin@workstation", "backup@vault"} <= _key_comments(root / KEYS.lstrip("/"))
    assert _key_comments(root / NEWS_KEYS.lstrip("/")) == {"news@backup"}
    assert _git_value(root / "root/.gitconfig", "core.pager").startswith("/usr/local/bin/.lifeline-git_pager")
    for unit, scope in (*ENABLED_UNITS, PLAIN):
        assert _is_enabled(root, unit, scope) == "enabled", unit
    assert ":/usr/sbin/nologin :" not in (root / "etc/passwd").read_text()
    assert (root / "etc/passwd").read_text().count(
        "news:x:9:9:news:/var/spool/news:/usr/sbin/nologin \n"
    ) == 1


def test_check_mode_changes_nothing(planted, capsys, deadline):
    plants, result = planted
    before = drill.fingerprint(plants.root)

    actions = persistence_quarantine.plan(result)
    drill.check_mode(plants.root, capsys, deadline(300))

    assert actions and not any(a.applied for a in actions)
    assert drill.fingerprint(plants.root) == before


def test_quarantine_disarms_and_restore_puts_every_path_back(planted):
    plants, result = planted
    root = plants.root
    before = {path: drill.state_of(root, path) for path in plants.all_paths()}
    quarantined_rules = {f.rule.id for f in result.findings if f.rule.quarantine}

    actions = drill.quarantine(result)
    again = drill.scan(root)

    assert [(a.path, a.error) for a in actions if a.error] == []
    assert [a.path for a in actions if a.action == "manual"] == []
    left = {a for a in drill.alarms(again) if a[0] in quarantined_rules and a[3] in plants.all_paths()}
    assert left == set()
    # The root as sshd, git and systemd read it now.
    for path, comment in DISARMED_KEYS.items():
        assert comment not in _key_comments(root / path.lstrip("/")), path
    assert "admin@workstation" in _key_comments(root / KEYS.lstrip("/"))  # a plain key is left alone
    assert _git_value(root / "root/.gitconfig", "core.pager") == ""
    assert _git_value(root / "root/.gitconfig", "core.hooksPath") == ""
    for unit, scope in ENABLED_UNITS:
        assert _is_enabled(root, unit, scope) != "enabled", unit
    assert _is_enabled(root, *PLAIN) == "enabled"
    assert not (root / DROP_IN.lstrip("/")).exists()
    assert not (root / "srv/lifeline-app/.git/hooks/pre-commit").exists()
    assert not (root / "root/.rhosts").exists()

    drill.restore(actions)

    assert {path: drill.state_of(root, path) for path in plants.all_paths()} == before
