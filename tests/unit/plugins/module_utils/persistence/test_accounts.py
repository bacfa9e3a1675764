"""The accounts source on the real Debian trees: every account of a stock tree is one its packages
define (zero alarms); the accounts planter's mechanisms, planted by the root's own shadow-utils in a
chroot, are each flagged by the rule meant for them; the quarantine locks them (the root's own
`passwd -S` says L, the shell is nologin) and each lock's restore command puts the files back byte
for byte; check mode changes nothing. Plus the parsers on hostile input."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import account_definitions
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    quarantine as persistence_quarantine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import accounts as source
from ansible_collections.lifeline.rescue.plugins.module_utils.target import accounts

from support import persistence_drill as drill
from support import rpmbuild
from support.planted import plant
from support.trees import SUITES, debian_tree

MECHANISMS = ("system_account_shell", "uid0_account", "empty_password", "new_user", "root_password_changed")
# (rule, severity) each mechanism must raise on the account it planted.
EXPECTED = {
    "system_account_shell": (
        "games",
        {("system-account-login-shell-changed", "high"), ("system-account-with-keys", "high")},
    ),
    "uid0_account": ("toor", {("extra-uid-0-account", "critical"), ("extra-gid-0-account", "high")}),
    "empty_password": ("deploy", {("empty-password-login", "critical")}),
    "new_user": ("support", {("person-added-without-home", "medium")}),
    "root_password_changed": ("root", {("root-password-changed", "medium")}),
}
ACCOUNT_FILES = ("/etc/passwd", "/etc/shadow")


def passwd_status(root: Path, name: str) -> str:
    """The password status the root's own passwd gives: L (locked), P (usable), NP (none)."""
    done = subprocess.run(
        ["chroot", str(root), "passwd", "-S", name], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout.split()[1]


def account_alarms(result) -> set[tuple[str, str, str]]:
    return {
        (f.item.user, f.rule.id, f.rule.severity)
        for f in result.findings
        if f.item.kind == "account" and f.rule.severity in drill.ALARMS
    }


@pytest.fixture(scope="module", params=SUITES)
def planted(request, tmp_path_factory):
    root = drill.copy_tree(request.param, tmp_path_factory.mktemp(f"accounts-{request.param}"))
    found = drill.plant(root, "accounts", MECHANISMS)
    return found, drill.scan(root)


@pytest.mark.parametrize("suite", SUITES)
def test_every_account_of_a_stock_tree_is_defined_by_a_package(suite):
    root = debian_tree(suite)
    found = persistence.scan(str(root), drill.shipped_rules())
    definitions, problems = account_definitions.defined_accounts(str(root), found.scanner.package_of)
    names = [a.name for a in accounts.parse_passwd((root / "etc/passwd").read_text())]

    assert problems == []
    assert names and [n for n in names if n not in definitions] == []
    # Independently: each is in base-passwd's master file or named by an adduser call of a script.
    master = (root / "usr/share/base-passwd/passwd.master").read_text()
    calls = [
        line
        for script in (root / "var/lib/dpkg/info").glob("*.*inst")
        for line in script.read_text(errors="replace").replace("\\\n", " ").splitlines()
        if "adduser" in line
    ]
    for name in names:
        in_master = any(line.startswith(name + ":") for line in master.splitlines())
        in_script = any(name in line.split() for line in calls)
        assert in_master or in_script, name
    assert [f for f in found.findings if f.item.kind == "account"] == []
    assert len([i for i in found.scanner.items if i.kind == "account"]) == len(names)


def test_each_mechanism_raises_its_rule(planted):
    _, result = planted
    alarms = account_alarms(result)
    for mechanism, (user, rules) in EXPECTED.items():
        assert {(user, rule, severity) for rule, severity in rules} <= alarms, mechanism
    expected = {(user, rule, sev) for user, rules in EXPECTED.values() for rule, sev in rules}
    assert alarms == expected
    # The people are listed, as info.
    listed = {f.item.user for f in result.findings if f.rule.id == "human-account"}
    assert listed == {"deploy", "support"}


def test_every_alarm_lies_on_a_planted_path(planted):
    found, result = planted
    assert {path for *_, path in drill.alarms(result)} <= set(found.all_paths())


def test_the_evidence_says_when_and_why(planted):
    _, result = planted
    notes = {f.item.user: f.item.file.notes for f in result.findings if f.item.kind == "account"}
    assert any(n.startswith("/etc/shadow: password last changed ") for n in notes["support"])
    assert any("absent from /etc/passwd-" in n for n in notes["support"])
    assert "defined by no package" in notes["toor"]
    assert any("'/usr/sbin/nologin '" in n for n in notes["games"])


def test_quarantine_locks_and_restore_puts_every_planted_path_back(planted, tmp_path):
    found, _ = planted
    root = drill.copy_tree(found.root.name, tmp_path)
    drill.plant(root, "accounts", MECHANISMS)
    result = drill.scan(root)
    before = {path: drill.state_of(root, path) for path in found.all_paths()}
    assert [passwd_status(root, n) for n in ("toor", "deploy", "support")] == ["P", "NP", "P"]

    actions = drill.quarantine(result)

    assert [a.error for a in actions if a.error] == []
    # No report carries a password hash: the restore commands name the shadow lines by digest.
    hashes = [line.split(":")[1] for line in (root / "etc/shadow-").read_text().splitlines()]
    hashes += [line.split(":")[1] for line in (root / "etc/shadow").read_text().splitlines()]
    for action in actions:
        shown = str(action.as_dict())
        assert [h for h in hashes if h.startswith("$") and h in shown] == [], action.path
    locked = {a.record["lines"][-1][1].split(":")[0] for a in actions if a.action == "lock"}
    assert locked == {"games", "toor", "deploy", "support"}
    manual = [a for a in actions if a.action == "manual"]
    assert [(a.rules, a.line) for a in manual] == [(["root-password-changed"], 1)]
    assert "passwd root" in manual[0].reason
    # The root's own passwd and passwd file say each is locked and has no shell to log in with.
    for name in sorted(locked):
        assert passwd_status(root, name) == "L", name
    shells = {a.name: a.shell for a in accounts.parse_passwd((root / "etc/passwd").read_text())}
    assert {shells[n] for n in locked} == {"/usr/sbin/nologin"}
    # Nothing deleted: every account is still there.
    assert locked <= set(shells)
    again = drill.scan(root)
    quarantined = {f.rule.id for f in result.findings if f.rule.quarantine}
    left = {(user, rule) for user, rule, _ in account_alarms(again) if rule in quarantined}
    assert left == {("root", "root-password-changed")}
    # Still listed (info) where the account is still suspicious: a second uid 0, people added or
    # changed since /etc/passwd-; games, locked, is one its package defines with nologin again.
    assert {f.item.user for f in again.findings if f.rule.id == "locked-account"} == {
        "toor",
        "deploy",
        "support",
    }

    drill.restore(actions)

    assert {path: drill.state_of(root, path) for path in found.all_paths()} == before
    assert account_alarms(drill.scan(root)) == account_alarms(result)


def test_a_restore_refuses_when_the_file_changed_since_the_lock(planted, tmp_path):
    found, _ = planted
    root = drill.copy_tree(found.root.name, tmp_path)
    drill.plant(root, "accounts", ["uid0_account"])
    actions = drill.quarantine(drill.scan(root))
    lock = next(a for a in actions if a.action == "lock")
    subprocess.run(["chroot", str(root), "usermod", "-c", "changed", "toor"], check=True, timeout=30)
    shadow = (root / "etc/shadow").read_bytes()

    done = subprocess.run(["sh", "-ec", lock.restore_host], capture_output=True, text=True, timeout=60)

    assert done.returncode != 0 and "changed since" in done.stderr
    # passwd is put back first and refused: the password stays locked too.
    assert (root / "etc/shadow").read_bytes() == shadow
    assert passwd_status(root, "toor") == "L"
    assert b"toor:x:0:0:changed:" in (root / "etc/passwd").read_bytes()


def test_check_mode_changes_nothing(planted, capsys, deadline):
    found, result = planted
    fingerprint = drill.fingerprint(found.root)
    assert {"lock", "manual"} <= {a.action for a in persistence_quarantine.plan(result)}

    checked = drill.check_mode(found.root, capsys, deadline(120))

    assert "toor:x:0:0::/root:/usr/sbin/nologin" in checked["diff"]["after"]
    assert drill.fingerprint(found.root) == fingerprint


# ---- hostile input -----------------------------------------------------------------------------


def _small_root(tmp_path: Path, passwd: bytes) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_bytes(passwd)
    return root


@pytest.mark.parametrize(
    "passwd",
    [
        random.Random(16).randbytes(1 << 16),
        b"root:x:0:0:root:/root:/bin/bash\n" + b"a" * (4 << 20) + b"\n",
        b"root:x:0:0:root:/root:/bin/bash\n" + b"x:" * 100000 + b"\n",
        b"\0\0\0root:x:0:0:root:/root:/bin/bash\0\n:::::::\n",
    ],
    ids=["garbage", "a-4-mb-line", "many-fields", "nul-bytes"],
)
def test_garbage_passwd_is_read_without_a_crash(tmp_path, passwd, deadline):
    root = _small_root(tmp_path, passwd)
    with deadline(20):
        result = persistence.scan(str(root), drill.shipped_rules())
    assert {f.rule.id for f in result.findings if f.item.kind == "account"} <= {"human-account"}


def test_a_50_mb_passwd_is_a_note_and_links_out_fifos_and_loops_are_notes(tmp_path, deadline):
    root = _small_root(tmp_path, b"root:x:0:0:root:/root:/bin/bash\n")
    with open(root / "etc/shadow", "wb") as big:
        big.truncate(50 << 20)
    (root / "etc/passwd-").symlink_to("/etc/passwd")  # absolute: resolved inside the root
    os.mkfifo(root / "etc/shadow-")
    (root / "etc/login.defs").symlink_to("login.defs")  # a loop
    with deadline(20):
        result = persistence.scan(str(root), drill.shipped_rules())
    problems = {n["path"]: n["problem"] for n in result.notes if n["location"] == "account"}
    assert set(problems) == {"/etc/shadow", "/etc/shadow-", "/etc/login.defs"}
    assert [f for f in result.findings if f.item.kind == "account"] == []


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (
            "adduser --system --home /var/lib/x --shell /bin/bash --group pgsql\n",
            {"pgsql": "/bin/bash"},
        ),
        (
            "if ! getent passwd _x; then\n  adduser --system --quiet \\\n    _x\nfi\n",
            {"_x": "/usr/sbin/nologin"},
        ),
        ("useradd -r -s /bin/false svc\n", {"svc": "/bin/false"}),
        ("echo no accounts here: mallory\n", {}),
    ],
)
def test_maintainer_scripts_define_the_accounts_they_create(script, expected):
    found = dict(account_definitions.script_accounts(script))
    assert {name: found.get(name) for name in expected} == expected
    if not expected:
        assert found == {}


def test_login_shells():
    assert [
        source.is_login_shell(s) for s in ("/bin/bash", "", "/usr/sbin/nologin ", "/usr/sbin/nologin")
    ] == [
        True,
        True,
        True,
        False,
    ]


# ---- an RPM root: setup's list of static accounts and a %pre scriptlet in the rpm database ----------

UIDGID = (
    "NAME UID GID HOME SHELL PACKAGES\nroot 0 0 /root /bin/bash setup\nbin 1 1 /bin /sbin/nologin setup\n"
)
SVCD_SPEC = """\
Name: svcd
Version: 1.0
Release: 1
Summary: a daemon that makes its account in %pre
License: Various
BuildArch: noarch
AutoReqProv: no

%description
A daemon.

%pre
getent passwd svcd >/dev/null || useradd -r -d /var/lib/svcd -s /sbin/nologin svcd

%files
"""
RPM_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "bin:x:1:1:bin:/bin:/sbin/nologin\n"
    "svcd:x:990:990::/var/lib/svcd:/bin/bash\n"  # its %pre gives it nologin
    "intruder:x:991:991::/var/lib/intruder:/sbin/nologin\n"  # no package makes it
)


def test_on_an_rpm_root_setup_and_scriptlets_define_the_accounts(tmp_path):
    spec = rpmbuild.build_spec(SVCD_SPEC, tmp_path / "build", name="svcd")
    root = tmp_path / "root"
    plant(root, "/usr/share/doc/setup/uidgid", UIDGID)
    plant(root, "/etc/passwd", RPM_PASSWD)
    plant(root, "/sbin/nologin", "#!/bin/sh\nexit 1\n", 0o755)
    rpmbuild.install(root, spec)
    # Independently: real rpm keeps the scriptlet that makes svcd.
    scripts = rpmbuild.rpm_of_copy(root, "-q", "--scripts", "svcd", scratch=tmp_path / "scratch")
    assert "useradd -r -d /var/lib/svcd -s /sbin/nologin svcd" in scripts.stdout

    result = persistence.scan(str(root), drill.shipped_rules())

    assert account_alarms(result) == {
        ("svcd", "system-account-login-shell-changed", "high"),
        ("intruder", "system-account-no-package-defines", "high"),
    }
    notes = {f.item.user: f.item.file.notes for f in result.findings}
    assert "defined by svcd (%pre scriptlet)" in notes["svcd"]


@pytest.mark.parametrize(
    ("passwd", "shadow", "expected"),
    [
        # An empty field in /etc/passwd needs no password, whatever /etc/shadow says.
        ("eve::1000:1000::/home/eve:/bin/sh\n", "eve:$6$x$y:20000::::::\n", {"empty-password-login"}),
        ("eve:x:1000:1000::/home/eve:/bin/sh\n", "eve::20000::::::\n", {"empty-password-login"}),
        # "x" without a shadow entry matches no password; a locked one neither.
        ("eve:x:1000:1000::/home/eve:/bin/sh\n", "", set()),
        ("eve:x:1000:1000::/home/eve:/bin/sh\n", "eve:!:20000::::::\n", set()),
        # No login shell: an empty password opens no session.
        ("eve:x:1000:1000::/home/eve:/usr/sbin/nologin\n", "eve::20000::::::\n", set()),
        # A second uid 0 that is locked and has no shell is listed, not an alarm.
        ("root:x:0:0::/root:/bin/sh\nr00t:x:0:0::/root:/usr/sbin/nologin\n", "r00t:!*:1::::::\n", set()),
    ],
)
def test_passwords_and_shells(tmp_path, passwd, shadow, expected):
    root = _small_root(tmp_path, passwd.encode())
    (root / "etc/shadow").write_text(shadow)
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "home/eve").mkdir(parents=True)
    result = persistence.scan(str(root), drill.shipped_rules())
    assert {rule for _, rule, _ in account_alarms(result)} == expected


def test_an_unlock_never_overwrites_a_password_set_since_the_lock(planted, tmp_path):
    found, _ = planted
    root = drill.copy_tree(found.root.name, tmp_path)
    drill.plant(root, "accounts", ["uid0_account"])
    actions = drill.quarantine(drill.scan(root))
    lock = next(a for a in actions if a.action == "lock")
    subprocess.run(
        ["chroot", str(root), "chpasswd", "-e"],
        input="toor:!$6$other$hash\n",
        text=True,
        check=True,
        timeout=30,
    )
    shadow = (root / "etc/shadow").read_bytes()

    done = subprocess.run(["sh", "-ec", lock.restore_host], capture_output=True, text=True, timeout=60)

    assert done.returncode != 0 and "/etc/shadow: the locked line is not there" in done.stderr
    assert (root / "etc/shadow").read_bytes() == shadow


def test_a_member_of_root_s_group_in_etc_group_is_an_alarm(tmp_path):
    root = _small_root(tmp_path, b"root:x:0:0::/root:/bin/sh\neve:x:1000:1000::/home/eve:/bin/sh\n")
    (root / "home/eve").mkdir(parents=True)
    (root / "etc/shadow").write_text("eve:!:20000::::::\n")
    (root / "etc/group").write_text("root:x:0:root,eve\neve:x:1000:\n")
    result = persistence.scan(str(root), drill.shipped_rules())
    assert account_alarms(result) == {("eve", "extra-gid-0-account", "high")}
