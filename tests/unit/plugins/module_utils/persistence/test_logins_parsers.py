"""The readers of the logins family on their own: authorized_keys lines against ssh-keygen, git
config files against git, sshd's key file tokens, and hostile roots (garbage, huge files, FIFOs,
links out of the root and in loops, includes of itself): a note, never an exception or a hang."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import authorized_keys, git
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

from support.planted import KEY, Link, plant

pytest_plugins = ("support.planted_roots",)

KEY_TYPE, KEY_BODY = KEY.split()
FAMILY = {"authorized_keys", "ssh_rc", "rhosts", "git"}


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: apt-get install {package} (the test compares with it)")
    return found


# ---- authorized_keys lines ---------------------------------------------------------------------

KEY_LINES = {
    f"{KEY} admin@laptop with spaces": ((), "admin@laptop with spaces"),
    f"{KEY}": ((), ""),
    (
        f'command="echo \\"a, b\\"; id",environment="LD_PRELOAD=/usr/lib/x.so",no-pty,'
        f'from="192.0.2.0/24,!198.51.100.1" {KEY} ops'
    ): (
        (
            ("command", 'echo "a, b"; id'),
            ("environment", "LD_PRELOAD=/usr/lib/x.so"),
            ("no-pty", None),
            ("from", "192.0.2.0/24,!198.51.100.1"),
        ),
        "ops",
    ),
    f'restrict,command="rsync --server -logDtpre.iLsfxC . /srv/backup" {KEY} backup': (
        (("restrict", None), ("command", "rsync --server -logDtpre.iLsfxC . /srv/backup")),
        "backup",
    ),
}
NOT_KEYS = (
    "hello world",
    "ssh-ed25519",
    f'command="never closed {KEY} x',
    "\x00\x01\x02 garbage \xff",
    "A" * 100000,
)


@pytest.mark.parametrize("line", KEY_LINES)
def test_key_lines_split_into_options_type_and_comment(line):
    parsed = authorized_keys.parse_key_line(line)

    assert parsed is not None
    assert (parsed.options, parsed.key_type, parsed.key, parsed.comment) == (
        KEY_LINES[line][0],
        KEY_TYPE,
        KEY_BODY,
        KEY_LINES[line][1],
    )


@pytest.mark.parametrize("line", NOT_KEYS)
def test_lines_that_hold_no_key_are_none(line):
    assert authorized_keys.parse_key_line(line) is None


def test_the_keys_read_are_those_ssh_keygen_reads(tmp_path):
    listed = tmp_path / "authorized_keys"
    listed.write_text("\n".join([*KEY_LINES, *NOT_KEYS[:3]]) + "\n")

    keygen = subprocess.run(
        [_tool("ssh-keygen", "openssh-client"), "-l", "-f", str(listed)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    theirs = [line.split(" ", 2)[2].rsplit(" (", 1)[0] for line in keygen.stdout.splitlines()]
    ours = [p.comment for p in map(authorized_keys.parse_key_line, KEY_LINES) if p]

    assert theirs == ours


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (".ssh/authorized_keys", "/home/alice/.ssh/authorized_keys"),
        ("%h/.ssh/keys_%u", "/home/alice/.ssh/keys_alice"),
        ("/etc/ssh/keys/%U", "/etc/ssh/keys/1000"),
        ("/etc/ssh/100%%/%u", "/etc/ssh/100%/alice"),
        ("/etc/ssh/%x", None),
        ("/etc/ssh/../../tmp/%u", "/tmp/alice"),
    ],
)
def test_key_file_tokens_expand_as_sshd_expands_them(pattern, expected):
    alice = Account("alice", 1000, 1000, "/home/alice", "/bin/bash", complete=True)

    assert authorized_keys.expand(pattern, alice) == expected


@pytest.mark.parametrize(
    ("account", "expected"),
    [
        (Account("root", 0, 0, "/root", "/bin/bash", True), "root-account"),
        (Account("news", 9, 9, "/var/spool/news", "/usr/sbin/nologin ", True), "system-account"),
        (Account("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin", True), "system-account"),
        (Account("svc", 2000, 2000, "/srv/svc", "/bin/false", True), "system-account"),
        (Account("alice", 1000, 1000, "/home/alice", "/bin/bash", True), "user-account"),
    ],
)
def test_accounts_are_classed_by_uid_and_shell(account, expected):
    assert authorized_keys.account_class(account) == expected


# ---- git config --------------------------------------------------------------------------------

GIT_CONFIG = r"""# a comment
[core]
	pager = "less -R; echo a" # a trailing comment
	editor = vim ; another
	sshCommand = ssh  \t-o x=1 \
		-i /k ; c
	fsmonitor
	hooksPath = ~/.hooks
[alias]
	st = status
	up = "!f() { git pull \"$@\"; }; f"
[filter "LFS"]
	clean = git-lfs clean -- %f
[diff.Old]
	textconv = cat
[credential]
	helper = store
	helper = "!echo password=x"
[bogus line
nokey
[user] name = Someone
"""


def test_git_config_entries_are_what_git_reads(tmp_path):
    config = tmp_path / "config"
    config.write_text(GIT_CONFIG.replace("[bogus line\nnokey\n", ""))

    listed = subprocess.run(
        [_tool("git", "git"), "config", "--file", str(config), "--list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    theirs = [
        tuple(line.partition("=")[::2]) if "=" in line else (line, "true")
        for line in listed.stdout.splitlines()
    ]
    ours = [(key, value) for _n, _text, key, value in git.config_entries(config.read_bytes())]

    assert ours == theirs


def test_git_config_garbage_is_skipped_without_an_exception():
    entries = list(git.config_entries(GIT_CONFIG.encode() + b"\0\xff[\n=\n\\\n" + b"x" * 100000))

    assert ("user.name", "Someone") in [(k, v) for _n, _t, k, v in entries]


@pytest.mark.parametrize(
    ("key", "value", "command"),
    [
        ("core.pager", "less -R", "less -R"),
        ("core.fsmonitor", "true", None),
        ("core.fsmonitor", "/usr/local/bin/watch", "/usr/local/bin/watch"),
        ("alias.st", "status", None),
        ("alias.up", "!git pull", "git pull"),
        ("credential.helper", "store", None),
        ("credential.https://example.org.helper", "!echo x", "echo x"),
        ("filter.LFS.clean", "git-lfs clean -- %f", "git-lfs clean -- %f"),
        ("diff.old.textconv", "cat", "cat"),
        ("pager.log", "false", None),
        ("user.name", "Someone", None),
    ],
)
def test_config_keys_that_run_programs(key, value, command):
    assert git.command_of(key, value) == command


# ---- hostile roots -----------------------------------------------------------------------------


def _family_notes(result: persistence.Scan) -> list[dict]:
    return [n for n in result.notes if n["location"] in FAMILY]


def test_fifos_links_out_and_loops_are_notes(base, rules, deadline):
    os.makedirs(base / "root/.ssh")
    os.mkfifo(base / "root/.ssh/authorized_keys")  # a read would block forever
    os.mkfifo(base / "root/.ssh/rc")
    plant(base, "/home/alice/.ssh/authorized_keys", Link("../../../../../../etc/shadow"))
    plant(base, "/home/alice/.rhosts", Link("/home/alice/.rhosts"))  # a loop
    plant(base, "/home/mallory/.gitconfig", Link("../../../../../../../tmp/x"))

    with deadline(60):
        result = persistence.scan(str(base), rules)

    problems = {(n["path"], n["problem"].split(":")[0]) for n in _family_notes(result)}
    assert ("/root/.ssh/authorized_keys", "is a fifo, not a regular file") in problems
    assert ("/root/.ssh/rc", "is a fifo, not a regular file") in problems
    assert {p for p, _ in problems} >= {"/home/alice/.ssh/authorized_keys", "/home/alice/.rhosts"}
    assert {i.kind for i in result.scanner.items} & FAMILY == set()


def test_a_huge_key_file_is_a_note_and_garbage_lines_are_noted_not_keys(base, rules, deadline):
    os.makedirs(base / "root/.ssh")
    with open(base / "root/.ssh/authorized_keys2", "wb") as huge:
        huge.truncate(64 << 20)
    plant(
        base,
        "/home/alice/.ssh/authorized_keys",
        f"garbage\n\0\0\0\n{KEY} alice\n" + "x" * (1 << 20),
        0o600,
        1000,
    )

    with deadline(60):
        result = persistence.scan(str(base), rules)

    assert any(n["path"] == "/root/.ssh/authorized_keys2" for n in _family_notes(result))
    keys = [i for i in result.scanner.items if i.kind == "authorized_keys" and i.line is not None]
    assert [(i.file.path, i.line) for i in keys] == [("/home/alice/.ssh/authorized_keys", 3)]
    assert keys[0].file.notes == ["line 1 is not a key sshd reads", "line 4 is not a key sshd reads"]


def test_an_sshd_config_that_includes_itself_is_read_once(base, rules, deadline):
    plant(base, "/etc/ssh/sshd_config", "Include /etc/ssh/sshd_config\nInclude sshd_config.d/*.conf\n")
    plant(
        base,
        "/etc/ssh/sshd_config.d/a.conf",
        "Include /etc/ssh/sshd_config.d/*.conf\nAuthorizedKeysFile /dev/shm/k\n",
    )

    with deadline(60):
        result = persistence.scan(str(base), rules)

    odd = [f for f in result.findings if f.rule.id == "sshd-authorized-keys-file-odd"]
    assert [(f.item.file.path, f.item.line) for f in odd] == [("/etc/ssh/sshd_config.d/a.conf", 2)]


def test_the_repository_walk_never_follows_links_and_stops_at_its_depth(base, rules, deadline):
    hook = "#!/bin/sh\ndate >>/var/tmp/lifeline-planted-hook\n"
    plant(base, "/srv/a/.git/hooks/post-merge", hook, 0o755)
    plant(base, "/srv/b/c/d/e/.git/hooks/post-merge", hook, 0o755)  # .git 5 levels down: not read
    plant(base, "/srv/f/.git/hooks/post-merge", hook, 0o644)  # not executable: git does not run it
    plant(base, "/srv/g/.git/hooks/pre-push.sample", hook, 0o755)
    plant(base, "/srv/h/.git", "gitdir: /srv/a/.git\n")  # a work tree's .git file
    plant(base, "/srv/loop", Link("/srv"))
    plant(base, "/home/alice/up", Link("/"))
    plant(base, "/srv/site.git/HEAD", "ref: refs/heads/main\n")  # a bare repository
    (base / "srv/site.git/objects").mkdir()
    plant(base, "/srv/site.git/hooks/post-receive", hook, 0o755)

    with deadline(60):
        result = persistence.scan(str(base), rules)

    hooks = {f.item.file.path for f in result.findings if f.rule.id == "git-hook"}
    assert hooks == {"/srv/a/.git/hooks/post-merge", "/srv/site.git/hooks/post-receive"}
    assert _family_notes(result) == []


def test_keys_named_only_in_a_match_block_are_read_too(base, rules):
    plant(
        base,
        "/etc/ssh/sshd_config",
        "AuthorizedKeysFile none\nMatch User alice\n  AuthorizedKeysFile /etc/ssh/keys/%u\n",
    )
    plant(base, "/etc/ssh/keys/alice", f"{KEY} alice@laptop\n")
    plant(base, "/root/.ssh/authorized_keys", f"{KEY} root@nowhere\n")  # "none": sshd never reads it

    result = persistence.scan(str(base), rules)

    keys = {
        (f.rule.id, f.item.file.path, f.item.user)
        for f in result.findings
        if f.rule.id.startswith("authorized")
    }
    assert keys == {("authorized-key-user", "/etc/ssh/keys/alice", "alice")}


def test_socket_exec_lines_are_judged_and_a_drop_in_without_exec_start_is_no_override(base, rules):
    plant(
        base,
        "/etc/systemd/system/probe.socket",
        "[Socket]\nListenStream=/run/probe\nExecStopPre=/usr/local/bin/.probe\n",
    )
    plant(base, "/etc/systemd/system/cron.service.d/limits.conf", "[Service]\nLimitNOFILE=4096\n")
    plant(base, "/etc/systemd/system/cron.service.d/more.conf", "[Service]\nExecStartPost=/usr/bin/true\n")
    plant(base, "/usr/lib/systemd/system/cron.service", "[Service]\nExecStart=/usr/sbin/cron -f\n")

    result = persistence.scan(str(base), rules)

    alarms = {
        (f.rule.id, f.item.file.path, f.item.line) for f in result.findings if f.rule.severity != "info"
    }
    assert alarms == {
        ("exec-hidden-path", "/etc/systemd/system/probe.socket", 3),
        ("unpackaged-startup-runs-suspicious", "/etc/systemd/system/probe.socket", 3),
    }


def test_a_system_account_key_is_high_unless_bound_to_a_packaged_tool(base, rules):
    keys = f'command="/usr/bin/true",restrict {KEY} mirror\n{KEY} news@backup\ncommand="/bin/sh" {KEY} sh\n'
    plant(base, "/var/spool/news/.ssh/authorized_keys", keys, 0o600, 9)

    result = persistence.scan(str(base), rules)

    found = {(f.rule.id, f.item.line) for f in result.findings if f.rule.id.startswith("authorized")}
    assert found == {
        ("authorized-key-forced-command", 1),
        ("authorized-key-system-account", 2),
        ("authorized-key-forced-command", 3),
        ("authorized-key-system-account", 3),
    }


def test_a_walk_over_its_budget_stops_with_a_note(base, rules, monkeypatch):
    for name in range(10):
        (base / f"srv/d{name}/e").mkdir(parents=True)
    monkeypatch.setattr(git, "MAX_WALK_DIRS", 5)

    result = persistence.scan(str(base), rules)

    assert [n["problem"] for n in _family_notes(result)] == [
        "the search for git repositories stopped after 5 directories"
    ]
