"""Hooks that system components run as root (MOTD scripts, apt and dpkg hooks, yum and dnf plugins,
PAM, the boot loader, the initramfs, network hooks), planted by the drill role's hooks.sh into copies
of the three Debian trees: found, quarantined, put back byte for byte; check mode changes nothing.

apt itself (apt-config run in a chroot of the copy) proves that the planted hooks are what apt reads,
that the quarantined apt files still parse and no longer hold them, and that the apt syntax reader
agrees with apt on nested blocks, comments, escapes and syntax errors. The root's own su, run in a
chroot, proves the planted PAM backdoor lets nobody become root without a password, that the
quarantine shuts it while PAM still reads every stack, and that the restore brings it back.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    apt_config,
    hook_scripts,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    quarantine as persistence_quarantine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import (
    boot_loader,
    package_hooks,
    pam,
)

from support import persistence_drill as drill
from support.trees import SUITES, debian_tree

CHROOT = "/usr/sbin/chroot"
HOOK_KINDS = {"motd", "package_hook", "pam", "boot_loader", "initramfs_hook", "network_hook"}
SECURITY = "/usr/lib/x86_64-linux-gnu/security"
# mechanism -> the alarms (rule, severity, location kind, path) it must raise.
EXPECTED = {
    "motd": {("motd-script-unpackaged", "medium", "motd", "/etc/update-motd.d/137-python-upgrades")},
    "apt_hook": {
        ("package-hook-in-unpackaged-file", "high", "package_hook", "/etc/apt/apt.conf.d/01python-upgrades")
    },
    "apt_hook_block": {
        ("package-hook-in-unpackaged-file", "high", "package_hook", "/etc/apt/apt.conf.d/99dpkg-refresh"),
        ("package-hook-runs-unpackaged", "high", "package_hook", "/etc/apt/apt.conf.d/99dpkg-refresh"),
    },
    "dpkg_hook": {
        ("package-hook-in-unpackaged-file", "high", "package_hook", "/etc/dpkg/dpkg.cfg.d/lifeline-log")
    },
    "yum_plugin": {
        ("package-manager-plugin-unpackaged", "high", "package_hook", "/usr/lib/yum-plugins/yumcon.py")
    },
    "dnf_plugin": {("package-manager-plugin-unpackaged", "high", "package_hook", "DNF_PLUGIN")},
    "pam_exec": {
        ("pam-exec-unpackaged", "high", "pam", "/etc/pam.d/common-auth"),
        ("pam-exec-expose-authtok", "high", "pam", "/etc/pam.d/common-auth"),
    },
    "pam_module": {("pam-module-unpackaged", "critical", "pam", "/etc/pam.d/common-auth")},
    "pam_permit": {("pam-auth-permit", "critical", "pam", "/etc/pam.d/su")},
    "grub_init": {
        ("kernel-init-unpackaged", "critical", "boot_loader", "/etc/default/grub.d/99-lifeline.cfg"),
        ("kernel-init-unpackaged", "critical", "boot_loader", "/boot/grub/grub.cfg"),
    },
    "grub_script": {("grub-script-unpackaged", "high", "boot_loader", "/etc/grub.d/07_lifeline")},
    "initramfs_hook": {
        ("initramfs-hook-unpackaged", "high", "initramfs_hook", "/etc/initramfs-tools/hooks/lifeline"),
        (
            "initramfs-hook-unpackaged",
            "high",
            "initramfs_hook",
            "/etc/initramfs-tools/scripts/init-bottom/lifeline",
        ),
    },
    "dracut_module": {
        (
            "initramfs-hook-unpackaged",
            "high",
            "initramfs_hook",
            "/usr/lib/dracut/modules.d/99lifeline/module-setup.sh",
        ),
        (
            "initramfs-hook-unpackaged",
            "high",
            "initramfs_hook",
            "/usr/lib/dracut/modules.d/99lifeline/lifeline-hook.sh",
        ),
        (
            "initramfs-config-installs-unpackaged",
            "high",
            "initramfs_hook",
            "/etc/dracut.conf.d/99-lifeline.conf",
        ),
    },
    "nm_dispatcher": {
        ("network-hook-unpackaged", "medium", "network_hook", "/etc/NetworkManager/dispatcher.d/99-lifeline")
    },
    "ifupdown_hook": {("network-hook-unpackaged", "medium", "network_hook", "/etc/network/if-up.d/lifeline")},
    "dhclient_hook": {
        ("network-hook-unpackaged", "medium", "network_hook", "/etc/dhcp/dhclient-exit-hooks.d/lifeline")
    },
}
MECHANISMS = tuple(EXPECTED)
# The lines the quarantine comments out (the other planted files are moved whole).
COMMENTED = {
    "/etc/apt/apt.conf.d/01python-upgrades",
    "/etc/apt/apt.conf.d/99dpkg-refresh",
    "/etc/dpkg/dpkg.cfg.d/lifeline-log",
    "/etc/pam.d/common-auth",
    "/etc/pam.d/su",
    "/etc/default/grub.d/99-lifeline.cfg",
    "/etc/dracut.conf.d/99-lifeline.conf",
}


@pytest.fixture(scope="module", params=SUITES)
def planted(request, tmp_path_factory) -> tuple[drill.Planted, persistence.Scan]:
    """A copy of the suite's tree with every mechanism of hooks.sh planted, scanned once."""
    root = drill.copy_tree(request.param, tmp_path_factory.mktemp("hooks"))
    planted = drill.plant(root, "hooks", MECHANISMS)
    return planted, drill.scan(root)


def expected_alarms(planted: drill.Planted, mechanism: str) -> set[tuple[str, str, str, str]]:
    dnf_plugin = next(p for p in planted.paths["dnf_plugin"] if p.endswith("/dnfcon.py"))
    return {(r, s, k, dnf_plugin if p == "DNF_PLUGIN" else p) for r, s, k, p in EXPECTED[mechanism]}


def apt_dump(root: Path, *options: str) -> subprocess.CompletedProcess:
    """apt-config of the root itself, run in a chroot of it."""
    return subprocess.run(
        [CHROOT, str(root), "apt-config", *options, "dump"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )


def su(root: Path, *, as_nobody: bool, to: str) -> subprocess.CompletedProcess:
    """The root's own su, in a chroot of it, with no terminal to type a password on: it gets through
    only when PAM lets it without one (root's pam_rootok, or a planted pam_permit)."""
    userspec = ["--userspec=65534:65534"] if as_nobody else []
    return subprocess.run(
        [CHROOT, *userspec, str(root), "/bin/su", "-s", "/bin/sh", "-c", "id -u", to],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )


def dumped_hooks(output: str) -> dict[str, list[str]]:
    """hook -> its commands in apt's order, from apt-config dump ('KEY "VALUE";' lines)."""
    found: dict[str, list[str]] = {}
    for line in output.splitlines():
        entry = re.fullmatch(r'(\S+) "(.*)";', line)
        if entry:
            hook = apt_config.hook_of(entry.group(1))
            if hook and entry.group(2):
                found.setdefault(hook, []).append(entry.group(2))
    return found


# ---- found, and only where planted ------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_mechanism_is_found_with_its_rule_and_severity(planted, mechanism):
    where, result = planted
    missing = expected_alarms(where, mechanism) - drill.alarms(result)
    assert not missing, f"{mechanism}: not found {missing}"


def test_every_alarm_lies_on_a_planted_path(planted):
    where, result = planted
    planted_paths = set(where.all_paths())
    stray = {a for a in drill.alarms(result) if a[3] not in planted_paths}
    assert stray == set()
    assert result.notes == []


def test_apt_itself_reads_the_planted_hooks(planted):
    where, _result = planted
    dumped = apt_dump(where.root)
    assert dumped.returncode == 0, dumped.stderr
    hooks = dumped_hooks(dumped.stdout)
    assert any("lifeline-planted-apt_hook" in c for c in hooks["APT::Update::Pre-Invoke"])
    assert hooks["DPkg::Post-Invoke"] == ["/usr/local/sbin/dpkg-refresh || true"]


@pytest.mark.parametrize("suite", SUITES)
def test_the_pristine_tree_gives_no_alarm_from_the_hook_sources(suite):
    result = drill.scan(debian_tree(suite))
    hook_findings = [f for f in result.findings if f.item.kind in HOOK_KINDS]
    assert hook_findings == []
    kinds = {item.kind for item in result.scanner.items}
    # The sources did read the tree: its PAM stacks, apt's debconf hook, its MOTD script.
    assert {"pam", "package_hook", "motd", "initramfs_hook"} <= kinds
    debconf = [i for i in result.scanner.items if i.kind == "package_hook"]
    assert [i.command for i in debconf] == ["/usr/sbin/dpkg-preconfigure --apt || true"]


# ---- check mode, quarantine, restore ----------------------------------------------------------


def test_check_mode_plans_and_changes_nothing(planted, capsys, deadline):
    where, result = planted
    before = drill.fingerprint(where.root)
    actions = persistence_quarantine.plan(result)
    assert {a.action for a in actions} == {"comment", "move", "manual"}
    assert drill.fingerprint(where.root) == before
    drill.check_mode(where.root, capsys, deadline(120))


def test_quarantine_disarms_and_restore_puts_every_path_back(planted):
    where, result = planted
    paths = where.all_paths()
    before = {p: drill.state_of(where.root, p) for p in paths}
    pam_before = {
        p: (where.root / p.lstrip("/")).read_bytes() for p in ("/etc/pam.d/common-auth", "/etc/pam.d/su")
    }
    # The planted PAM backdoor works: nobody becomes root without a password.
    assert su(where.root, as_nobody=True, to="root").stdout == "0\n"
    actions = drill.quarantine(result)
    try:
        assert [a.error for a in actions if a.error] == []
        done = {(a.action, a.path) for a in actions}
        assert {p for kind, p in done if kind == "comment"} == COMMENTED
        manual = {a.path: a.reason for a in actions if a.action == "manual"}
        assert "update-grub" in manual["/boot/grub/grub.cfg"]
        assert "update-initramfs -u" in manual["/boot/initrd.img"]
        moved = {p for kind, p in done if kind == "move"}
        assert "/usr/local/sbin/dpkg-refresh" in moved  # the hook's unpackaged payload
        assert "/grub-lifeline.sh" not in moved  # the kernel would panic before grub.cfg is regenerated

        rescanned = drill.scan(where.root)
        quarantining = {r.id for r in drill.shipped_rules() if r.quarantine}
        left = {
            a
            for a in drill.alarms(rescanned)
            if a[0] in quarantining and a[2] in HOOK_KINDS and a[3] != "/boot/grub/grub.cfg"
        }
        assert left == set()

        # apt still reads its whole configuration, without the planted hooks but with debconf's.
        dumped = apt_dump(where.root)
        assert dumped.returncode == 0, dumped.stderr
        hooks = dumped_hooks(dumped.stdout)
        assert "APT::Update::Pre-Invoke" not in hooks
        assert "DPkg::Post-Invoke" not in hooks
        assert hooks["DPkg::Pre-Install-Pkgs"] == ["/usr/sbin/dpkg-preconfigure --apt || true"]
        # PAM files: the planted line commented, every other line byte for byte.
        for path, old in pam_before.items():
            new = (where.root / path.lstrip("/")).read_bytes().split(b"\n")
            assert len(new) == len(old.split(b"\n"))
            changed = [(o, n) for o, n in zip(old.split(b"\n"), new, strict=True) if o != n]
            assert changed
            assert all(n.startswith(b"#lifeline-quarantine(") and n.endswith(o) for o, n in changed)
        # PAM still reads every stack su uses (root gets through), and the backdoor is shut.
        assert su(where.root, as_nobody=False, to="nobody").returncode == 0
        refused = su(where.root, as_nobody=True, to="root")
        assert (refused.returncode, refused.stdout) != (0, "0\n")
        assert not (where.root / "var/tmp/lifeline-planted-pam_exec").exists()
        # dpkg still reads its configuration (an unknown option would stop it).
        dpkg = subprocess.run(
            [CHROOT, str(where.root), "dpkg", "--print-architecture"], capture_output=True, timeout=60
        )
        assert dpkg.returncode == 0, dpkg.stderr
    finally:
        drill.restore(actions)
    assert {p: drill.state_of(where.root, p) for p in paths} == before
    assert drill.alarms(drill.scan(where.root)) == drill.alarms(result)
    assert su(where.root, as_nobody=True, to="root").stdout == "0\n"


# ---- apt's syntax, as apt reads it ------------------------------------------------------------

APT_CASES = {
    "one line": 'DPkg::Post-Invoke {"/bin/true";};\n',
    "nested blocks": 'DPkg {\n  Post-Invoke {\n    "a";\n    "b c";\n  };\n};\n',
    "colon path append": 'DPkg::Post-Invoke:: "x";\nDPkg::Post-Invoke:: "y";\n',
    "escaped tag": 'DPkg::Post%2dInvoke:: "escaped";\n',
    "case of tags": 'dpkg::post-invoke { "lower"; };\n',
    "comments": '// DPkg::Post-Invoke {"no1";};\n# DPkg::Post-Invoke {"no2";};\n'
    '/* DPkg::Post-Invoke {"no3";};\n DPkg::Post-Invoke {"no4";}; */\n'
    'DPkg::Post-Invoke {"yes // # /* in quotes";};\n',
    "comment after value": 'APT::Update::Pre-Invoke {"u1";}; // trailing\n'
    'APT::Update::Pre-Invoke {"u2";}; # trailing\n',
    "statement over lines": 'APT::Update::Pre-Invoke\n{\n"multi"\n;\n}\n;\n',
    "adjacent strings": 'DPkg::Post-Invoke { "a" "b"; };\n',
    "clear": 'DPkg::Post-Invoke {"gone";};\n#clear DPkg::Post-Invoke;\nDPkg::Post-Invoke {"kept";};\n',
    "unquoted value": "DPkg::Post-Invoke:: /bin/true;\n",
    "proxy detect": 'Acquire::http::Proxy-Auto-Detect "/usr/local/bin/proxy";\n',
    "syntax error": 'DPkg::Post-Invoke {"a" junk;};\n',
    "unclosed block": 'DPkg { Post-Invoke { "a";\n',
}


def our_hooks(text: str) -> tuple[dict[str, list[str]], bool]:
    settings, problem = apt_config.parse(text)
    found: dict[str, list[str]] = {}
    for setting in settings:
        if setting.directive == "clear":
            for hook in [h for h in found if h.lower().startswith(setting.value.lower())]:
                del found[hook]
            continue
        hook = apt_config.hook_of(setting.key)
        if hook and setting.value:
            found.setdefault(hook, []).append(setting.value)
    return found, problem is not None


@pytest.fixture(scope="module")
def apt_root(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """A copy of bookworm to run apt-config in, and the hooks it has without any case."""
    root = drill.copy_tree("bookworm", tmp_path_factory.mktemp("apt"))
    dumped = apt_dump(root)
    assert dumped.returncode == 0, dumped.stderr
    return root, dumped_hooks(dumped.stdout)


@pytest.mark.parametrize("case", APT_CASES)
def test_the_apt_syntax_reader_agrees_with_apt(apt_root, case):
    root, baseline = apt_root
    text = APT_CASES[case]
    (root / "tmp/case.conf").write_text(text)
    dumped = apt_dump(root, "-c", "/tmp/case.conf")
    ours, refused = our_hooks(text)
    assert refused == (dumped.returncode != 0), dumped.stderr
    if not refused:
        # apt reads the case after the tree's own configuration (debconf's hook, dpkg's path).
        theirs = {}
        for hook, commands in dumped_hooks(dumped.stdout).items():
            own = baseline.get(hook, [])
            assert commands[: len(own)] == own
            if commands[len(own) :]:
                theirs[hook] = commands[len(own) :]
        assert ours == theirs


@pytest.mark.parametrize(
    ("text", "whole"),
    [
        ('DPkg::Post-Invoke {"a";};', [True]),
        ('DPkg::Post-Invoke {\n"a";\n};', [True]),
        ('DPkg::Post-Invoke {"a";\n};', [False]),
        ('DPkg::Post-Invoke::\n"a";', [False]),
        ('/* x\n*/ DPkg::Post-Invoke {"a";};', [False]),
    ],
)
def test_a_hook_line_is_commentable_only_when_it_holds_whole_statements(text, whole):
    settings, problem = apt_config.parse(text)
    assert problem is None
    assert [s.whole_line for s in settings] == whole


def test_hostile_apt_text_is_read_in_linear_time(deadline):
    for text in (
        '"' * (4 << 20),
        "{" * (1 << 20),
        "a::" * (1 << 20) + ' "x";',
        "/*" * (1 << 20),
        '//"' * (1 << 20),
        "x\n" * (1 << 20),  # one statement over a million lines
        ('DPkg::Post-Invoke {"' + "x" * 5000 + '";};\n') * 500,
    ):
        with deadline(10):
            apt_config.parse(text)


# ---- the other readers on their own -----------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        (
            "auth [success=1 default=ignore] pam_unix.so nullok",
            ("auth", "[success=1 default=ignore]", "pam_unix.so"),
        ),
        ("-session optional pam_systemd.so", ("session", "optional", "pam_systemd.so")),
        ("@include common-auth", None),
        ("auth", None),
        ("sshd auth required pam_env.so", None),
    ],
)
def test_pam_lines(line, parsed):
    result = pam.parse_line(line)
    assert (result[:3] if result else None) == parsed


def test_pam_continuation_lines_are_one_line_not_commentable_alone():
    lines = [
        (1, "auth optional pam_exec.so \\"),
        (2, "   /usr/local/bin/x"),
        (3, "# auth x"),
        (4, "account required pam_unix.so # c"),
    ]
    assert pam.logical_lines(lines) == [
        (1, "auth optional pam_exec.so     /usr/local/bin/x", False),
        (4, "account required pam_unix.so", True),
    ]


@pytest.mark.parametrize(
    ("command_line", "found"),
    [
        ("quiet splash", []),
        ("ro init=/grub-x.sh", [("init", "/grub-x.sh")]),
        (
            '"rdinit=/x" systemd.run=/y LD_PRELOAD=/z.so',
            [("rdinit", "/x"), ("systemd.run", "/y"), ("LD_PRELOAD", "/z.so")],
        ),
        ("noinit=1 init=", []),
    ],
)
def test_kernel_parameters_that_run_code(command_line, found):
    assert boot_loader.code_parameters(command_line) == found


@pytest.mark.parametrize(
    ("name", "lsb", "plain"),
    [
        ("10-uname", True, True),
        ("137-python-upgrades", True, True),
        ("50-motd-news.dpkg-old", False, False),
        ("91-release-upgrade~", False, False),
        ("x.sh", False, False),
        ("README", False, True),
        ("Foo_Bar", False, True),
        ("a.b-c", True, False),
    ],
)
def test_run_parts_names(name, lsb, plain):
    assert hook_scripts.lsb_sysinit_name(name) is lsb
    assert hook_scripts.run_parts_name(name) is plain


RUN_PARTS_NAMES = (
    "10-uname",
    "137-python-upgrades",
    "50-motd-news.dpkg-old",
    "91-release-upgrade~",
    "x.sh",
    "a.b-c",
    "Foo_Bar",
    "README",
    ".hidden",
)


def test_run_parts_names_are_those_the_roots_run_parts_runs(apt_root):
    root, _baseline = apt_root
    directory = root / "tmp/run-parts-names"
    directory.mkdir()
    for name in RUN_PARTS_NAMES:
        (directory / name).write_text("#!/bin/sh\n")
    for option, ours in (
        ("--lsbsysinit", hook_scripts.lsb_sysinit_name),
        (None, hook_scripts.run_parts_name),
    ):
        listed = subprocess.run(
            [CHROOT, str(root), "run-parts", *([option] if option else []), "--list", "/tmp/run-parts-names"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        theirs = {line.rsplit("/", 1)[-1] for line in listed.stdout.splitlines()}
        assert theirs == {n for n in RUN_PARTS_NAMES if ours(n)}, option


CONFIG_NAMES = ("71local", "99x.conf", "99x.bak", "x.dpkg-old", ".hidden", "a b", "Z_z-1", "x~")


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_which_configuration_files_apt_and_dpkg_read_as_they_do(apt_root, name):
    """A file apt or dpkg cannot parse makes it fail: it fails exactly when the source reads it."""
    root, _baseline = apt_root
    apt_file = root / "etc/apt/apt.conf.d" / name
    dpkg_file = root / "etc/dpkg/dpkg.cfg.d" / name
    assert not apt_file.exists() and not dpkg_file.exists()  # the tree's own files stay as they are
    apt_file.write_text('broken "x" junk;\n')
    try:
        assert package_hooks.apt_reads(name) is (apt_dump(root).returncode != 0)
    finally:
        apt_file.unlink()
    dpkg_file.write_text("no-such-dpkg-option\n")
    try:
        dpkg = subprocess.run(
            [CHROOT, str(root), "dpkg", "--print-architecture"], capture_output=True, timeout=60, check=False
        )
        assert hook_scripts.run_parts_name(name) is (dpkg.returncode != 0)
    finally:
        dpkg_file.unlink()


def test_hostile_hook_files_are_notes_never_errors(tmp_path, deadline):
    root = tmp_path / "root"
    for directory in (
        "etc/apt/apt.conf.d",
        "etc/update-motd.d",
        "etc/pam.d",
        "etc/default/grub.d",
        "etc/grub.d",
    ):
        (root / directory).mkdir(parents=True)
    os.mkfifo(root / "etc/apt/apt.conf.d/50fifo")
    os.mkfifo(root / "etc/update-motd.d/50-fifo")
    (root / "etc/apt/apt.conf.d/60out").symlink_to("/../../../../etc/shadow")
    (root / "etc/apt/apt.conf.d/70loop").symlink_to("70loop")
    (root / "etc/pam.d/huge").write_bytes(b"auth [" + b"x " * (8 << 20))
    (root / "etc/apt/apt.conf.d/80garbage").write_bytes(os.urandom(1 << 20))
    (root / "etc/apt/apt.conf.d/90include").write_text('#include "/etc/apt/apt.conf.d/90include";\n')
    (root / "etc/default/grub").write_text('GRUB_CMDLINE_LINUX="init=/x\n')
    (root / "etc/default/grub.d/huge.cfg").write_text('GRUB_CMDLINE_LINUX="' + "'a " * (4 << 20) + "\n")
    grub_script = root / "etc/grub.d/10_binary"
    grub_script.write_bytes(b"\x7fELF" + os.urandom(4096))
    grub_script.chmod(0o755)
    with deadline(60):
        result = drill.scan(root)
    problems = {n["path"]: n["problem"] for n in result.notes}
    assert "fifo" in problems["/etc/apt/apt.conf.d/50fifo"]
    assert "fifo" in problems["/etc/update-motd.d/50-fifo"]
    assert "/etc/apt/apt.conf.d/70loop" in problems
    assert "/etc/apt/apt.conf.d/80garbage" in problems  # apt refuses it: a syntax error
    # Without a package database nothing is unowned, so nothing is an alarm.
    assert drill.alarms(result) == set()


@pytest.mark.parametrize("with_pam_d", [False, True])
def test_pam_conf_is_read_only_without_pam_d(tmp_path, with_pam_d):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/pam.conf").write_text("# service type control module\nsshd auth sufficient pam_permit.so\n")
    (root / SECURITY.lstrip("/")).mkdir(parents=True)
    (root / SECURITY.lstrip("/") / "pam_permit.so").write_bytes(b"\x7fELF")
    if with_pam_d:
        (root / "etc/pam.d").mkdir()
    found = drill.alarms(drill.scan(root))
    expected = {("pam-auth-permit", "critical", "pam", "/etc/pam.conf")}
    assert found == (set() if with_pam_d else expected)


def test_a_pam_statement_over_several_lines_is_left_to_the_hand_never_moved(tmp_path):
    root = tmp_path / "root"
    (root / "etc/pam.d").mkdir(parents=True)
    (root / "etc/pam.d/su").write_text("auth sufficient pam_permit.so\n")
    (root / "etc/pam.d/login").write_text("auth sufficient \\\n    pam_permit.so\n")
    (root / SECURITY.lstrip("/")).mkdir(parents=True)
    (root / SECURITY.lstrip("/") / "pam_permit.so").write_bytes(b"\x7fELF")
    actions = persistence_quarantine.plan(drill.scan(root))
    assert {(a.action, a.path, a.line) for a in actions} == {
        ("comment", "/etc/pam.d/su", 1),
        ("manual", "/etc/pam.d/login", 1),
    }
