"""Persistence through the services a system trusts (sudo, polkit, D-Bus activation, kernel modules,
the loader's configuration, containers, web roots, Python's startup), planted by the drill role's
services.sh into copies of the real Debian trees: found with the expected rule and severity and
nothing else, quarantined, put back byte for byte by the restore commands, left alone by check mode.
Then the parsers on hostile input."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    quarantine as persistence_quarantine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import (
    containers,
    dbus_services,
    kernel_modules,
    ld_config,
    polkit,
    python_startup,
    sudoers,
    web_shells,
)

from support.paths import PLANTERS
from support.persistence_drill import (
    alarms,
    check_mode,
    copy_tree,
    fingerprint,
    plant,
    quarantine,
    restore,
    scan,
    shipped_rules,
    state_of,
)
from support.trees import SUITES, debian_tree

MECHANISMS = (
    "sudoers_nopasswd",
    "polkit_rule",
    "polkit_pkla",
    "dbus_service",
    "modules_load",
    "modprobe_install",
    "kernel_module_outside",
    "ld_so_conf_dir",
    "unit_ld_preload",
    "environment_ld_preload",
    "docker_restart",
    "static_pod",
    "podman_quadlet",
    "podman_restart",
    "web_shell_php",
    "web_shell_cgi",
    "python_pth",
    "sitecustomize",
    "usercustomize",
)
NEW_KINDS = {
    "sudoers",
    "polkit",
    "dbus_service",
    "kernel_module",
    "ld_config",
    "container",
    "web_shell",
    "python_startup",
}
SUDOERS_D = "/etc/sudoers.d/svc-maintenance"
DBUS_SERVICE = "/usr/share/dbus-1/system-services/org.lifeline.Planted.service"
DOCKER = "/var/lib/docker/containers/5f0c1c3e7d2a4b8e9f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a"
STATIC_POD = "/etc/kubernetes/manifests/lifeline-planted.yaml"
QUADLET = "/etc/containers/systemd/lifeline-planted.container"
PODMAN = (
    "/var/lib/containers/storage/overlay-containers/" + DOCKER.rsplit("/", 1)[1] + "/userdata/config.json"
)
LD_CONF = "/etc/ld.so.conf.d/lifeline-planted.conf"
CONTAINER_ALARMS = (
    ("container-privileged-restarting", "high"),
    ("container-host-root-restarting", "high"),
    ("container-host-pid-restarting", "medium"),
)
# mechanism: the alarms (rule, severity, location kind, path) it must raise; {python} is the tree's
# python3.N. Written from what each planted thing does, not from what the scan says.
EXPECTED = {
    "sudoers_nopasswd": {
        ("sudoers-disables-logging", "medium", "sudoers", SUDOERS_D),
        ("sudoers-keeps-loader-environment", "medium", "sudoers", SUDOERS_D),
        ("exec-temp-dir", "high", "sudoers", SUDOERS_D),
        ("exec-hidden-path", "high", "sudoers", SUDOERS_D),
        ("sudoers-nopasswd-all", "high", "sudoers", SUDOERS_D),
    },
    "polkit_rule": {
        ("polkit-unpackaged-grant", "high", "polkit", "/etc/polkit-1/rules.d/49-lifeline-planted.rules")
    },
    "polkit_pkla": {
        (
            "polkit-unpackaged-grant",
            "high",
            "polkit",
            "/etc/polkit-1/localauthority/50-local.d/lifeline-planted.pkla",
        )
    },
    "dbus_service": {
        ("dbus-service-unpackaged", "medium", "dbus_service", DBUS_SERVICE),
        ("exec-hidden-path", "high", "dbus_service", DBUS_SERVICE),
        ("dbus-service-runs-suspicious", "high", "dbus_service", DBUS_SERVICE),
        (
            "dbus-service-unpackaged",
            "medium",
            "dbus_service",
            "/etc/dbus-1/system.d/org.lifeline.Planted.conf",
        ),
    },
    "modules_load": {
        (
            "kernel-module-unpackaged",
            "critical",
            "kernel_module",
            "/usr/lib/modules/6.1.0-lifeline-amd64/kernel/drivers/misc/lifeline_planted.ko",
        ),
        (
            "kernel-module-loads-unpackaged",
            "critical",
            "kernel_module",
            "/etc/modules-load.d/lifeline-planted.conf",
        ),
    },
    "modprobe_install": {
        ("modprobe-install-runs-unpackaged", "high", "kernel_module", "/etc/modprobe.d/lifeline-planted.conf")
    },
    "kernel_module_outside": {
        (
            "kernel-module-outside-module-tree",
            "high",
            "kernel_module",
            "/usr/local/share/lifeline/lifeline_outside.ko",
        )
    },
    "ld_so_conf_dir": {
        ("ld-config-unpackaged-libraries", "high", "ld_config", LD_CONF),
        ("ld-config-shadows-packaged-library", "critical", "ld_config", LD_CONF),
    },
    "unit_ld_preload": {
        (
            "ld-preload-environment",
            "high",
            "ld_config",
            "/etc/systemd/system/cron.service.d/lifeline-planted.conf",
        )
    },
    "environment_ld_preload": {("ld-preload-environment", "high", "ld_config", "/etc/environment")},
    "docker_restart": {
        (rule, sev, "container", DOCKER + "/hostconfig.json") for rule, sev in CONTAINER_ALARMS
    },
    "static_pod": {(rule, sev, "container", STATIC_POD) for rule, sev in CONTAINER_ALARMS},
    "podman_quadlet": {(rule, sev, "container", QUADLET) for rule, sev in CONTAINER_ALARMS},
    "podman_restart": {(rule, sev, "container", PODMAN) for rule, sev in CONTAINER_ALARMS},
    "web_shell_php": {("web-shell", "critical", "web_shell", "/var/www/html/wp-cache.php")},
    "web_shell_cgi": {("base64-execute", "critical", "web_shell", "/usr/lib/cgi-bin/status.cgi")},
    "python_pth": {
        (
            "python-pth-import",
            "high",
            "python_startup",
            "/usr/local/lib/{python}/dist-packages/zz-lifeline-planted.pth",
        )
    },
    "sitecustomize": {
        (
            "python-customize-module",
            "high",
            "python_startup",
            "/usr/local/lib/{python}/dist-packages/sitecustomize.py",
        )
    },
    "usercustomize": {
        (
            "python-customize-module",
            "high",
            "python_startup",
            "/root/.local/lib/{python}/site-packages/usercustomize.py",
        )
    },
}


def python_of(root: Path) -> str:
    found = sorted(p.name for p in (root / "usr/lib").glob("python3.*") if p.is_dir())
    assert found, f"{root} has no python3.N"
    return found[0]


def expected(root: Path, mechanism: str) -> set[tuple[str, str, str, str]]:
    python = python_of(root)
    return {(r, s, k, p.format(python=python)) for r, s, k, p in EXPECTED[mechanism]}


@pytest.fixture(scope="module", params=SUITES)
def planted(request, tmp_path_factory):
    """A copy of the suite's tree with every mechanism planted, scanned once."""
    root = copy_tree(request.param, tmp_path_factory.mktemp("services"))
    planting = plant(root, "services", MECHANISMS)
    return planting, scan(root)


def test_the_planter_refuses_a_directory_that_is_not_a_root_and_an_unknown_mechanism(tmp_path):
    (tmp_path / "etc").mkdir()
    for args, words in (
        ([str(tmp_path / "nowhere"), "polkit_rule"], "not a root"),
        ([str(tmp_path), "polkit_rule", "no_such_thing"], "nothing was planted"),
    ):
        run = subprocess.run(
            ["sh", str(PLANTERS / "services.sh"), *args], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 2 and words in run.stderr
    assert sorted(os.listdir(tmp_path)) == ["etc"]


def test_every_mechanism_raises_its_alarms_and_nothing_else_alarms(planted):
    planting, result = planted
    found = alarms(result)
    wanted = set().union(*(expected(planting.root, m) for m in MECHANISMS))
    missing = wanted - found
    assert not missing, f"not found: {sorted(missing)}"
    assert found == wanted, f"alarms nobody expected: {sorted(found - wanted)}"
    # Every alarm lies on a path the planter says it planted (the rest of the real tree is quiet).
    assert {path for _rule, _sev, _kind, path in found} <= set(planting.all_paths())
    assert result.notes == []


@pytest.mark.parametrize("suite", SUITES)
def test_the_pristine_tree_gives_no_finding_from_these_sources(suite):
    result = persistence.scan(str(debian_tree(suite)), shipped_rules())
    assert [f.rule.id for f in result.findings if f.item.kind in NEW_KINDS] == []
    # The sources did read the tree: its loader configuration and Debian's own sitecustomize.
    kinds = {item.kind for item in result.scanner.items}
    assert {"ld_config", "python_startup"} <= kinds


def test_check_mode_changes_nothing(planted, capsys, deadline):
    planting, result = planted
    before = fingerprint(planting.root)
    actions = persistence_quarantine.plan(result)
    assert actions and not any(a.applied for a in actions)
    check_mode(planting.root, capsys, deadline(120))
    assert fingerprint(planting.root) == before


def test_quarantine_disarms_and_the_restore_commands_put_everything_back(planted):
    planting, result = planted
    paths = planting.all_paths()
    before = {path: state_of(planting.root, path) for path in paths}

    actions = quarantine(result)

    assert not [a.error for a in actions if a.error]
    manual = {a.path: a.reason for a in actions if a.action == "manual"}
    # Docker's records are the engine's own: never edited, the exact command to run instead.
    container_id = DOCKER.rsplit("/", 1)[1]
    assert set(manual) == {DOCKER + "/hostconfig.json", PODMAN}
    assert (
        f"docker update --restart=no {container_id} && docker stop {container_id}"
        in manual[DOCKER + "/hostconfig.json"]
    )
    assert "podman update --restart=no lifeline-planted && podman stop lifeline-planted" in manual[PODMAN]
    again = scan(planting.root)
    quarantined_rules = {r.id for r in shipped_rules() if r.quarantine}
    left = {a for a in alarms(again) if a[0] in quarantined_rules and a[3] not in manual}
    assert left == set()
    assert {a[3] for a in alarms(again)} <= set(manual)
    # What was commented out is reported as quarantined on the next scan.
    assert {q["path"] for q in again.already_quarantined if q["kind"] == "line"} >= {SUDOERS_D, LD_CONF}

    restore(actions)

    assert {path: state_of(planting.root, path) for path in paths} == before


# ---- parsers on hostile input -------------------------------------------------------------------


def small_root(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True, exist_ok=True)
    for path, data in files.items():
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def items_of(root: Path, source) -> tuple[RootReader, list]:
    reader = RootReader(str(root))
    source.collect(reader)
    return reader, reader.items


@pytest.mark.parametrize(
    ("line", "traits"),
    [
        ("bob ALL=(ALL) NOPASSWD: ALL", {"grants-all-without-password"}),
        ("bob,alice  ALL = (ALL:ALL) NOPASSWD:ALL", {"grants-all-without-password"}),
        ("%ops ALL=(root) SETENV: NOPASSWD: ALL", {"grants-all-without-password"}),
        ("bob ALL=(ALL) NOPASSWD: /usr/bin/apt-get update", set()),
        ("bob ALL=(ALL) ALL", set()),
        ("%sudo ALL=(ALL:ALL) NOPASSWD: ALL", set()),
        ("root ALL=(ALL) NOPASSWD: ALL", set()),
        ("%wheel ALL=(ALL) NOPASSWD: ALL", set()),
        ("Defaults !syslog", {"disables-logging"}),
        ("Defaults:bob !logfile, !log_allowed", {"disables-logging"}),
        ('Defaults env_keep += "LD_PRELOAD LD_LIBRARY_PATH"', {"keeps-loader-environment"}),
        ('Defaults env_keep += "COLORS DISPLAY HOSTNAME LANG LC_ALL"', set()),
        ("Defaults env_file=/etc/sudoenv", {"keeps-loader-environment"}),
        ("Defaults !env_reset", {"keeps-loader-environment"}),
        ("Defaults env_reset, mail_badpass, use_pty", set()),
        ("Defaults setenv", {"keeps-loader-environment"}),
    ],
)
def test_sudoers_lines(tmp_path, line, traits):
    root = small_root(tmp_path, {"/etc/sudoers": f"root ALL=(ALL:ALL) ALL\n{line}\n"})
    _reader, items = items_of(root, sudoers)
    lines = {i.line: i.traits for i in items if i.line}
    assert lines == {1: frozenset(), 2: frozenset(traits)}


def test_sudoers_reads_includes_as_sudo_does_and_survives_loops_and_odd_files(tmp_path, deadline):
    root = small_root(
        tmp_path,
        {
            "/etc/sudoers": "#include /etc/sudoers\n@include extra\n#includedir /etc/sudoers.d\n",
            "/etc/extra": "#include /etc/extra\n@include /etc/sudoers\nbob ALL=(ALL) NOPASSWD: ALL\n",
            "/etc/sudoers.d/ok": "carol ALL=(ALL) NOPASSWD: ALL\n",
            "/etc/sudoers.d/skipped.conf": "dave ALL=(ALL) NOPASSWD: ALL\n",
            "/etc/sudoers.d/backup~": "erin ALL=(ALL) NOPASSWD: ALL\n",
            "/etc/sudoers.d/garbage": os.urandom(1 << 16),
            "/etc/sudoers.d/continued": "frank ALL=(ALL) \\\n  NOPASSWD: ALL\n",
        },
    )
    os.mkfifo(root / "etc/sudoers.d/fifo")
    (root / "etc/sudoers.d/out").symlink_to("/etc/passwd-of-the-rescuer")
    chain = {f"/etc/chain{i}": f"#include /etc/chain{i + 1}\n" for i in range(40)}
    for path, text in chain.items():
        (root / path.lstrip("/")).write_text(text)
    with (root / "etc/sudoers").open("a") as handle:
        handle.write("#include /etc/chain0\n")

    with deadline(10):
        reader, items = items_of(root, sudoers)

    granted = {(i.file.path, i.line) for i in items if "grants-all-without-password" in i.traits}
    assert granted == {
        ("/etc/extra", 3),
        ("/etc/sudoers.d/ok", 1),
        ("/etc/sudoers.d/continued", 1),
        ("/etc/sudoers.d/continued", 2),
    }
    problems = {n["path"]: n["problem"] for n in reader.notes}
    assert problems["/etc/sudoers.d/fifo"] == "is a fifo, not a regular file: not read"
    assert any("levels deep" in p for p in problems.values())


def test_polkit_rules_guarded_by_an_administrator_are_not_grants(tmp_path):
    root = small_root(
        tmp_path,
        {
            "/etc/polkit-1/rules.d/10-admin.rules": (
                'polkit.addRule(function(action, subject) {\n  if (subject.isInGroup("sudo")) {\n'
                "    return polkit.Result.YES;\n  }\n});\n"
            ),
            "/etc/polkit-1/rules.d/20-all.rules": (
                "polkit.addRule(function(action, subject) { return polkit.Result.YES; });\n"
            ),
            "/etc/polkit-1/rules.d/30-garbage.rules": os.urandom(4096),
            "/etc/polkit-1/localauthority/50-local.d/admins.pkla": (
                "[x]\nIdentity=unix-group:sudo\nAction=*\nResultActive=yes\n"
            ),
            "/etc/polkit-1/localauthority/50-local.d/auth.pkla": (
                "[x]\nIdentity=unix-user:*\nAction=*\nResultActive=auth_admin\n"
            ),
        },
    )
    _reader, items = items_of(root, polkit)
    grants = {i.file.path.rsplit("/", 1)[1] for i in items if "grants-yes" in i.traits}
    assert grants == {"20-all.rules"}


def test_dbus_policy_entities_are_never_expanded(tmp_path, deadline):
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE busconfig [\n <!ENTITY a "aaaaaaaaaa">\n'
        + "".join(f' <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(9))
        + ']>\n<busconfig><policy context="default"><allow own="&j;"/></policy></busconfig>\n'
    )
    root = small_root(tmp_path, {"/etc/dbus-1/system.d/bomb.conf": bomb})
    with deadline(5):
        _reader, items = items_of(root, dbus_services)
    assert [(i.command, i.traits) for i in items] == [("own=&j;", frozenset({"grants-everyone"}))]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("deep", "[" * 100000 + "]" * 100000),
        ("garbage", os.urandom(1 << 12)),
        ("list", "[1, 2, 3]"),
        ("nulls", "\0" * 4096),
    ],
)
def test_container_records_that_are_not_json_objects_are_notes_or_nothing(tmp_path, deadline, name, data):
    cid = "a" * 64
    root = small_root(
        tmp_path,
        {
            f"/var/lib/docker/containers/{cid}/hostconfig.json": data,
            f"/var/lib/docker/containers/{cid}/config.v2.json": data,
            "/var/lib/containers/storage/overlay-containers/containers.json": data,
            "/etc/kubernetes/manifests/x.yaml": data,
        },
    )
    with deadline(10):
        reader, items = items_of(root, containers)
    assert all(i.traits <= {"engine-state", "restarts"} for i in items)
    noted = {n["path"] for n in reader.notes}
    if name in ("deep", "garbage", "nulls"):
        assert {
            f"/var/lib/docker/containers/{cid}/hostconfig.json",
            "/var/lib/containers/storage/overlay-containers/containers.json",
        } <= noted
    json.dumps([n["problem"] for n in reader.notes])


def test_a_static_pod_manifest_is_read_as_lines(tmp_path):
    manifest = (
        "spec:\n  hostNetwork: true\n  containers:\n  - name: etcd\n    command:\n    - etcd\n"
        "    - --data-dir=/var/lib/etcd\n    image: registry.k8s.io/etcd\n  volumes:\n  - hostPath:\n"
        "      path: /etc/kubernetes/pki/etcd\n      type: DirectoryOrCreate\n"
    )
    root = small_root(tmp_path, {"/etc/kubernetes/manifests/etcd.yaml": manifest})
    _reader, items = items_of(root, containers)
    assert [(i.traits, i.command) for i in items] == [
        (frozenset({"restarts", "host-network"}), "etcd --data-dir=/var/lib/etcd")
    ]


def test_ld_so_conf_include_loops_and_globs_are_bounded(tmp_path, deadline):
    root = small_root(
        tmp_path,
        {
            "/etc/ld.so.conf": "include /etc/ld.so.conf\ninclude ld.so.conf.d/*.conf\n/opt/a\n",
            "/etc/ld.so.conf.d/one.conf": "include /etc/ld.so.conf.d/*.conf\n/opt/b # comment\n",
            "/etc/ld.so.conf.d/two.conf": "/opt/c:/opt/d\n",
            "/etc/ld.so.conf.d/skip.txt": "/opt/never\n",
        },
    )
    with deadline(5):
        _reader, items = items_of(root, ld_config)
    assert sorted(i.command for i in items) == ["/opt/a", "/opt/b", "/opt/c", "/opt/d"]


def test_environment_files_and_unit_lines_name_what_they_preload(tmp_path):
    root = small_root(
        tmp_path,
        {
            "/etc/environment": 'PATH="/usr/bin"\nLD_PRELOAD="/opt/x.so /opt/y.so"\n',
            "/etc/security/pam_env.conf": "LD_LIBRARY_PATH DEFAULT=/opt/lib\n#LD_PRELOAD DEFAULT=/opt/z.so\n",
        },
    )
    _reader, items = items_of(root, ld_config)
    assert sorted((i.command, i.traits) for i in items) == [
        ("LD_LIBRARY_PATH=/opt/lib", frozenset({"library-path"})),
        ("LD_PRELOAD=/opt/x.so /opt/y.so", frozenset({"preload"})),
    ]


def test_module_files_that_are_not_regular_files_are_never_opened(tmp_path, deadline):
    root = small_root(tmp_path, {"/lib/modules/6.1.0-1-amd64/kernel/real.ko": b"\x7fELF"})
    os.mkfifo(root / "lib/modules/6.1.0-1-amd64/kernel/fifo.ko")
    (root / "opt").mkdir()
    os.mkfifo(root / "opt/waiting.ko")
    (root / "opt/loop.ko").symlink_to("loop.ko")
    (root / "opt/out.ko").symlink_to("/../../../etc/passwd")
    reader = RootReader(str(root))
    reader.package_database = True  # every file unowned, as on a root whose database lists none
    with deadline(5):
        kernel_modules.collect(reader)
    assert sorted((i.file.path, i.traits) for i in reader.items) == [
        ("/lib/modules/6.1.0-1-amd64/kernel/real.ko", frozenset({"unpackaged-module"}))
    ]
    problems = {n["path"]: n["problem"] for n in reader.notes}
    assert problems["/opt/waiting.ko"] == "is a fifo, not a regular file: not read"
    assert "too many levels of symbolic links" in problems["/opt/loop.ko"]


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ("import os; os.system('/tmp/x')", True),
        ("import\tsocket", True),
        ("importlib_stuff", False),
        ("/usr/lib/foo", False),
        ("import _virtualenv", False),
        ("import sys; sys.__plen = len(sys.path)", False),
        (
            "import sys; new = sys.path[sys.__plen:]; del sys.path[sys.__plen:]; p = getattr(sys, "
            "'__egginsert', 0); sys.path[p:p] = new; sys.__egginsert = p + len(new)",
            False,
        ),
        ("import coverage; coverage.process_startup()", False),
        (
            "import os; var = 'SETUPTOOLS_USE_DISTUTILS'; enabled = os.environ.get(var, 'local') == "
            "'local'; enabled and __import__('_distutils_hack').add_shim(); ",
            False,
        ),
        ("import __editable___demo_1_0_finder; __editable___demo_1_0_finder.install('/src/demo')", False),
    ],
)
def test_pth_lines(tmp_path, line, flagged):
    root = small_root(tmp_path, {"/usr/lib/python3.11/site-packages/x.pth": line + "\n" + "x" * (1 << 20)})
    _reader, items = items_of(root, python_startup)
    executed = line.startswith(("import ", "import\t"))
    assert [bool(i.traits) for i in items if i.line] == ([flagged] if executed else [])


WEB_SHELL = next(r for r in shipped_rules() if r.id == "web-shell")


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        ("<?php @eval($_POST['x']); ?>", True),
        ("<?php system($_GET['cmd']); ?>", True),
        ('<?php echo shell_exec($_REQUEST["c"]); ?>', True),
        ("<?php $_GET['f']($_GET['a']); ?>", True),
        ("<?php echo `$_GET[c]`; ?>", True),
        ("<?php eval(gzinflate(base64_decode('aGVsbG8='))); ?>", True),
        ('<% Runtime.getRuntime().exec(request.getParameter("c")); %>', True),
        ('#!/bin/sh\neval "$QUERY_STRING"\n', True),
        ("#!/usr/bin/perl\nsystem($ENV{'QUERY_STRING'});\n", True),
        ("<?php echo htmlspecialchars($_GET['q']); ?>", False),
        ("<?php $data = base64_decode($row['blob']); ?>", False),
        ("<?php exec('/usr/bin/convert in.png out.jpg'); ?>", False),
        ('#!/bin/sh\necho "Content-Type: text/plain"; echo; uptime\n', False),
    ],
)
def test_web_shell_patterns(text, flagged):
    assert any(p.search(text) for p in WEB_SHELL.command) is flagged


def test_a_web_root_is_walked_bounded_and_named_roots_are_read(tmp_path, deadline):
    root = small_root(
        tmp_path,
        {
            "/etc/nginx/sites-enabled/site": "server {\n  root /srv/site/public;\n}\n",
            "/srv/site/public/a/b/c/d/e/f/shell.php": "<?php system($_GET['c']);\n",
            "/var/www/html/index.html": "<html></html>\n",
        },
    )
    os.mkfifo(root / "srv/site/public/pipe.php")
    with deadline(5):
        reader, items = items_of(root, web_shells)
    # Without a package database nothing counts as unowned: the walk finds, the rules decide.
    assert items == [] and reader.package_database is False
    reader = RootReader(str(root))
    reader.package_database = True  # every file unowned, as on a root whose database lists none
    web_shells.collect(reader)
    assert sorted(i.file.path for i in reader.items) == ["/srv/site/public/a/b/c/d/e/f/shell.php"]
    assert any(n["path"] == "/srv/site/public/pipe.php" for n in reader.notes)


def test_the_planted_module_and_library_files_are_not_loadable(planted):
    planting, _result = planted
    for path in planting.all_paths():
        if re.search(r"\.(ko|so(\.[0-9]+)?)$", path):
            data = (planting.root / path.lstrip("/")).read_bytes()
            assert data.startswith(b"\x7fELF") and len(data) < 200  # no ELF header a loader accepts
            assert stat.S_ISREG((planting.root / path.lstrip("/")).lstat().st_mode)
