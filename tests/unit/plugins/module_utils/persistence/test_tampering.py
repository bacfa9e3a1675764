"""Packaged files replaced and privileges planted (setuid bits, capabilities) by the drill role's
tampering planter into copies of the three Debian trees: found with the expected rules, nothing else
flagged, disarmed by the quarantine, put back byte for byte by its restore commands, and nothing
changed in check mode. The integrity answers are compared with real dpkg's own `dpkg --verify`, run
in a chroot of the copy."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.packages import installed, integrity
from ansible_collections.lifeline.rescue.plugins.module_utils.packages.dpkg import database as dpkgdb
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import (
    quarantine as persistence_quarantine,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import scan as persistence
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.sources import (
    package_files,
    privileged_files,
)

from support.persistence_drill import (
    Planted,
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
from support.planted_rhel import RHEL7_LINKS, RHEL7_PACKAGES, build_packages, rhel_root, rpm_files
from support.rpmbuild import rpm_of_copy
from support.trees import SUITES, deb_of, debian_tree

MECHANISMS = (
    "suid_find",
    "suid_shell_copy",
    "suid_python",
    "cap_setuid_python",
    "binary_wrapper",
    "unowned_in_bin",
    "pam_unix_replaced",
)
FAMILY = {"package_file", "privileged_file"}
# The .debs put into the copy's apt cache: they record the modes of find and python (planted setuid)
# and of su, passwd, mount and the shadow tools (setuid or setgid as shipped: never an alarm).
CACHED_DEBS = ("findutils", "util-linux", "passwd", "login", "mount")
# A configuration file an admin edits (a conffile of the passwd/login packages): never a finding.
CHANGED_CONFFILE = "/etc/login.defs"
# Packages whose every recorded file is compared with dpkg --verify's verdict.
SAMPLED_PACKAGES = ("coreutils", "findutils", "libpam-modules", "util-linux", "bash", "passwd", "login")
CAP_SETUID_EP = "0100000280000000000000000000000000000000"


@dataclass
class Tampered:
    suite: str
    planted: Planted
    result: persistence.Scan
    states: dict[str, tuple]


def python_minimal(root: Path) -> str:
    """The name of the package holding the root's python3 interpreter (python3.11-minimal)."""
    return f"{os.readlink(root / 'usr/bin/python3')}-minimal"


@pytest.fixture(scope="module", params=SUITES)
def tampered(request, tmp_path_factory) -> Tampered:
    suite = request.param
    root = copy_tree(suite, tmp_path_factory.mktemp(f"tampering-{suite}"))
    archives = root / "var/cache/apt/archives"
    for name in (*CACHED_DEBS, python_minimal(root)):
        shutil.copy2(deb_of(suite, name), archives)
    with (root / CHANGED_CONFFILE.lstrip("/")).open("a") as conffile:
        conffile.write("# an admin's change\nUMASK 027\n")
    planted = plant(root, "tampering", MECHANISMS)
    states = {path: state_of(root, path) for path in planted.all_paths()}
    return Tampered(suite, planted, scan(root), states)


def expected_alarms(planted: Planted) -> dict[str, set[tuple[str, str, str, str]]]:
    """What each mechanism must raise, from the planter's own record of the paths it touched."""
    paths = planted.paths
    python = paths["suid_python"][0]
    who, aside = paths["binary_wrapper"]
    return {
        "suid_find": {
            ("setuid-shell-escape", "critical", "privileged_file", paths["suid_find"][0]),
            ("privileged-mode-changed", "high", "privileged_file", paths["suid_find"][0]),
        },
        "suid_shell_copy": {("privileged-file-unowned", "critical", "privileged_file", "/var/tmp/.x")},
        "suid_python": {
            ("setuid-shell-escape", "critical", "privileged_file", python),
            ("privileged-mode-changed", "high", "privileged_file", python),
        },
        "cap_setuid_python": {
            ("capability-setuid-shell-escape", "critical", "privileged_file", paths["cap_setuid_python"][0])
        },
        "binary_wrapper": {
            ("packaged-file-replaced", "critical", "package_file", who),
            ("packaged-original-moved-aside", "medium", "package_file", aside),
        },
        "unowned_in_bin": {
            ("unowned-file-in-packaged-dir", "high", "package_file", paths["unowned_in_bin"][0])
        },
        "pam_unix_replaced": {
            ("packaged-file-replaced", "critical", "package_file", paths["pam_unix_replaced"][0])
        },
    }


# ---- found, and nothing else ----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_mechanism_raises_its_alarms(tampered, mechanism):
    found = alarms(tampered.result)
    missing = expected_alarms(tampered.planted)[mechanism] - found
    assert not missing, f"{tampered.suite}: {mechanism} not found as {missing}; alarms: {sorted(found)}"


def test_every_alarm_lies_on_a_planted_path(tampered):
    planted = set(tampered.planted.all_paths())
    stray = {a for a in alarms(tampered.result) if a[3] not in planted}
    assert stray == set(), f"{tampered.suite}: alarms on paths nothing planted"
    # The admin's edit of a configuration file and the stock setuid programs whose .deb is at hand
    # (su, passwd, mount, chsh, ...) gave nothing.
    assert not [f for f in tampered.result.findings if f.item.file.path == CHANGED_CONFFILE]


def test_a_replaced_file_names_its_package_digests_and_the_moved_original(tampered):
    who, aside = tampered.planted.paths["binary_wrapper"]
    finding = next(
        f
        for f in tampered.result.findings
        if f.rule.id == "packaged-file-replaced" and f.item.file.path == who
    )
    assert "of coreutils: md5 recorded " in finding.item.text
    assert finding.item.references == (aside,)
    report = tampered.result.evidence.finding_dict(finding)
    assert report["file"]["package"] == "coreutils"


@pytest.mark.parametrize("suite", SUITES)
def test_the_stock_tree_gives_no_alarm_from_these_sources(suite):
    result = scan(debian_tree(suite))
    family = [f for f in result.findings if f.item.kind in FAMILY]
    assert family == []
    privileged = {i.file.path for i in result.scanner.items if i.kind == "privileged_file"}
    # What the trees ship setuid or setgid, found (and judged harmless) by the walk.
    assert {"/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/crontab"} <= privileged
    assert not [i for i in result.scanner.items if i.kind == "package_file"]


# ---- the integrity answers against dpkg --verify --------------------------------------------------


def dpkg_verify(root: Path) -> dict[str, str]:
    """dpkg --verify run by the root's own dpkg in a chroot: {path: its flags and conffile mark}."""
    done = subprocess.run(
        ["chroot", str(root), "dpkg", "--verify"], capture_output=True, text=True, timeout=300, check=False
    )
    if done.stderr.strip():
        pytest.fail(f"dpkg --verify in a chroot of {root} said: {done.stderr}")
    found = {}
    for line in done.stdout.splitlines():
        flags, _sep, rest = line.partition(" ")
        mark, _sep, path = rest.strip().rpartition(" ")
        found[path] = f"{flags} {mark}".strip()
    return found


def test_integrity_agrees_with_dpkg_verify(tampered):
    root = tampered.planted.root
    verified = dpkg_verify(root)
    checker = integrity.Integrity(str(root), installed.database_of(str(root)))
    content_changed = {p for p, flags in verified.items() if flags[2] == "5"}
    # dpkg names a file as its package lists it (/lib/x on bookworm, /usr/lib/x on trixie).
    listed = {
        checker.verdict(p).listed for p in ("/usr/bin/who", tampered.planted.paths["pam_unix_replaced"][0])
    }
    assert listed <= content_changed
    assert verified[CHANGED_CONFFILE].endswith(" c")
    database = dpkgdb.DpkgDatabase(str(root))
    sample = set(content_changed)
    for name in SAMPLED_PACKAGES:
        for package in database.find(name):
            sample.update(f.path for f in database.files(package) if f.digest)
    assert len(sample) > 300
    disagreements = []
    for path in sorted(sample):
        verdict = checker.verdict(path)
        if path in content_changed:
            expected = (integrity.CONFFILE,) if verified[path].endswith(" c") else (integrity.MISMATCH,)
        else:
            expected = (integrity.MATCH,)
        if verdict.status not in expected:
            disagreements.append((path, verified.get(path), verdict.status))
    assert disagreements == []
    assert checker.verdict(CHANGED_CONFFILE).status == integrity.CONFFILE
    assert checker.verdict("/var/tmp/.x").status == integrity.UNOWNED


# ---- check mode, quarantine and restore ------------------------------------------------------------


def test_check_mode_plans_and_changes_nothing(tampered, capsys, deadline):
    root = tampered.planted.root
    before = fingerprint(root)
    actions = persistence_quarantine.plan(tampered.result)
    assert {"chmod", "uncap", "manual", "move"} <= {a.action for a in actions}
    checked = check_mode(root, capsys, deadline(120))
    planned = {(a["action"], a["path"]) for a in checked["actions"]}
    python = tampered.planted.paths["suid_python"][0]
    assert {("chmod", python), ("uncap", python), ("chmod", "/var/tmp/.x")} <= planned
    assert not any(a["applied"] for a in checked["actions"])
    assert fingerprint(root) == before


def test_quarantine_disarms_and_restore_puts_everything_back(tampered):
    root = tampered.planted.root
    actions = quarantine(tampered.result)
    assert [a.error for a in actions if a.error] == []
    by_path = {}
    for action in actions:
        by_path.setdefault(action.path, []).append(action)
    # Every replaced packaged file is a manual step with the exact reinstall command.
    who, aside = tampered.planted.paths["binary_wrapper"]
    pam = tampered.planted.paths["pam_unix_replaced"][0]
    (who_step,) = by_path[who]
    assert who_step.action == "manual"
    assert "apt-get install --reinstall coreutils" in who_step.reason
    assert f"mv -- {aside} {who}" in who_step.reason
    (pam_step,) = by_path[pam]
    assert (pam_step.action, "apt-get install --reinstall libpam-modules" in pam_step.reason) == (
        "manual",
        True,
    )
    python = tampered.planted.paths["suid_python"][0]
    chmod = next(a for a in by_path[python] if a.action == "chmod")
    uncap = next(a for a in by_path[python] if a.action == "uncap")
    assert (chmod.before, chmod.after) == (f"{tampered.states[python][0] & 0o7777:04o}", "0755")
    assert uncap.before == CAP_SETUID_EP and CAP_SETUID_EP in uncap.restore

    host_python = root / python.lstrip("/")
    assert not host_python.stat().st_mode & stat.S_ISUID
    with pytest.raises(OSError):
        os.getxattr(host_python, "security.capability")
    again = scan(root)
    quarantined_rules = {r.id for r in shipped_rules() if r.quarantine}
    manual = {a.path for a in actions if a.action == "manual"}
    left = {a for a in alarms(again) if a[2] in FAMILY and a[0] in quarantined_rules and a[3] not in manual}
    assert left == set()
    assert not rootfs_exists(root, tampered.planted.paths["unowned_in_bin"][0])
    held = {(h["path"], h["present"]) for h in again.already_quarantined}
    assert {(python, True), ("/var/tmp/.x", True)} <= held

    restore(actions)
    assert {p: state_of(root, p) for p in tampered.states} == tampered.states


def rootfs_exists(root: Path, path: str) -> bool:
    return os.path.lexists(root / path.lstrip("/"))


# ---- parsers and walks on hostile input -------------------------------------------------------------


def capability(
    version: int, *sets: tuple[int, int], effective: bool = True, rootid: int | None = None
) -> bytes:
    value = struct.pack("<I", version << 24 | int(effective))
    for permitted, inheritable in sets:
        value += struct.pack("<II", permitted, inheritable)
    return value + (struct.pack("<I", rootid) if rootid is not None else b"")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (bytes.fromhex(CAP_SETUID_EP), (["cap_setuid"], True)),
        (
            capability(2, (1 << 21 | 1 << 1, 0), (0, 0), effective=False),
            (["cap_dac_override", "cap_sys_admin"], False),
        ),
        (
            capability(3, (1 << 13, 0), (1 << 8, 0), rootid=1000),
            (["cap_net_raw", "cap_checkpoint_restore"], True),
        ),
        (capability(1, (0, 1 << 6)), (["cap_setgid"], True)),
        (capability(2, (0, 0), (1 << 13, 0)), (["cap_45"], True)),
        (b"", None),
        (b"\x01\x00\x00\x02\x80", None),  # cut short
        (capability(9, (1, 0), (0, 0)), None),  # no revision the kernel knows
        (os.urandom(3), None),
    ],
    ids=[
        "v2-setuid",
        "v2-not-effective",
        "v3-high-bits",
        "v1",
        "unknown-bit",
        "empty",
        "short",
        "revision",
        "junk",
    ],
)
def test_capability_values(value, expected):
    assert privileged_files.capability_names(value) == expected


def test_admin_files_of_dpkg_on_garbage(tmp_path):
    admin = tmp_path / "var/lib/dpkg"
    admin.mkdir(parents=True)
    (admin / "status").write_bytes(
        b"Package: demo\nStatus: install ok installed\nVersion: 1\nConffiles:\n /etc/demo.conf "
        + b"0" * 32
        + b"\n /etc/old.conf "
        + b"1" * 32
        + b" obsolete\n /etc/new.conf newconffile\n garbage line\n\x00\xff\xfe\n\n"
        + os.urandom(4096).replace(b"\n\n", b"")
    )
    (admin / "diversions").write_bytes(b"/usr/bin/a\n/usr/bin/a.distrib\n:\n/usr/bin/b\n/usr/bin/b.real\n")
    (admin / "statoverride").write_bytes(
        b"root shadow 2755 /usr/bin/x\nroot root 99z9 /usr/bin/y\nshort line\n\xff"
    )
    assert dpkgdb.conffiles(str(tmp_path)) == {"/etc/demo.conf": ("0" * 32, "demo")}
    assert dpkgdb.diversions(str(tmp_path)) == {"/usr/bin/a": ("/usr/bin/a.distrib", ":")}
    assert dpkgdb.statoverrides(str(tmp_path)) == {"/usr/bin/x": ("root", "shadow", 0o2755)}


def test_the_walk_follows_no_link_and_opens_no_special_file(tmp_path, deadline):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    bin_dir = root / "usr/bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "tool").write_bytes(b"#!/bin/sh\n")
    os.chmod(bin_dir / "tool", 0o4755)
    os.mkfifo(bin_dir / "fifo")
    os.chmod(bin_dir / "fifo", 0o4777)
    os.symlink("/usr/bin", bin_dir / "loop")  # a directory loop through a link
    os.symlink("/", root / "opt")  # the root itself as a tree
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "su").write_bytes(b"x")
    os.chmod(outside / "su", 0o4755)
    os.symlink(str(outside), root / "srv")  # a link out of the root
    held = root / "var/lib/lifeline/quarantine/x"
    held.mkdir(parents=True)
    (held / "held").write_bytes(b"x")
    os.chmod(held / "held", 0o4755)
    reader = RootReader(str(root))
    with deadline(30):
        privileged_files.collect(reader)
        package_files.collect(reader)
    assert [(i.file.path, sorted(i.traits)) for i in reader.items] == [("/usr/bin/tool", ["setuid"])]


# ---- an RPM root: rpm's recorded digests and modes, against rpm -V -------------------------------


@pytest.fixture(scope="module")
def rhel7_rpms(tmp_path_factory) -> list[Path]:
    return build_packages(tmp_path_factory.mktemp("tampering-rhel7-rpms"), RHEL7_PACKAGES, "7")


def test_an_rpm_root_by_its_recorded_digests_and_modes(tmp_path, rhel7_rpms):
    root = rhel_root(tmp_path / "rhel7", rhel7_rpms, RHEL7_LINKS, "CentOS Linux release 7.9.2009 (Core)")
    assert [f for f in scan(root).findings if f.item.kind in FAMILY] == []

    os.chmod(root / "usr/sbin/ifup", 0o4755)  # packaged 0755
    os.chmod(root / "usr/bin/bash", 0o4755)  # a setuid shell
    (root / "usr/bin/touch").write_bytes(b"\x7fELF\x02\x01\x01\0 a trojan")
    planted_program = root / "usr/sbin/.sshd"
    planted_program.write_bytes(b"\x7fELF\x02\x01\x01\0")
    planted_program.chmod(0o755)

    result = scan(root)
    assert alarms(result) == {
        ("privileged-mode-changed", "high", "privileged_file", "/usr/sbin/ifup"),
        ("privileged-mode-changed", "high", "privileged_file", "/usr/bin/bash"),
        ("setuid-shell-escape", "critical", "privileged_file", "/usr/bin/bash"),
        ("packaged-file-replaced", "critical", "package_file", "/usr/bin/touch"),
        ("unowned-file-in-packaged-dir", "high", "package_file", "/usr/sbin/.sshd"),
    }
    step = next(a for a in persistence_quarantine.plan(result) if a.path == "/usr/bin/touch")
    assert step.action == "manual" and "dnf reinstall coreutils" in step.reason

    # Real rpm's own verification of the same files: "5" a digest, "M" a mode that differs.
    done = rpm_of_copy(root, "-Va", scratch=tmp_path / "scratch")
    verified = {line[13:]: line[:9] for line in done.stdout.splitlines() if len(line) > 13}
    checker = integrity.Integrity(str(root), installed.database_of(str(root)))
    for path in rpm_files(root):
        verdict = checker.verdict(path)
        if verdict.status in (integrity.MATCH, integrity.MISMATCH):
            assert (verdict.status == integrity.MISMATCH) == ("5" in verified.get(path, "")), path
            assert verdict.algorithm == "sha256"
    changed_modes = {p for p, flags in verified.items() if flags[1] == "M"}
    assert changed_modes == {"/usr/sbin/ifup", "/usr/bin/bash"}


# ---- the integrity answers on a small hand-made dpkg root --------------------------------------------


SHIPPED_SETTING = b"setting=1\n"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
def demo_root(tmp_path) -> Path:
    """A root whose dpkg database lists one package, demo, with every kind of answer among its files."""
    root = tmp_path / "demo"
    original, local = b"#!/bin/sh\necho demo\n", b"#!/bin/sh\necho local\n"
    listed = ["/usr/bin/demo", "/usr/bin/ps", "/usr/bin/linked", "/usr/bin/fifo", "/usr/bin/gone"]
    listed += ["/usr/bin/tool", "/usr/bin/escape", "/usr/bin/loop", "/etc/demo.conf"]
    admin = root / "var/lib/dpkg"
    (admin / "info").mkdir(parents=True)
    (root / "usr/bin").mkdir(parents=True)
    (root / "etc").mkdir()
    (admin / "status").write_text(
        "Package: demo\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\n"
        f"Conffiles:\n /etc/demo.conf {md5(SHIPPED_SETTING)}\n\n"
    )
    (admin / "info/demo.list").write_text("/.\n/usr\n/usr/bin\n" + "\n".join(listed) + "\n")
    (admin / "info/demo.md5sums").write_text(
        "".join(f"{md5(original)}  {p.lstrip('/')}\n" for p in listed if p != "/etc/demo.conf")
    )
    (admin / "diversions").write_text("/usr/bin/tool\n/usr/bin/tool.distrib\n:\n")
    for name, data in (("demo", original), ("ps", local), ("tool", local), ("tool.distrib", original)):
        (root / "usr/bin" / name).write_bytes(data)
    (root / "usr/bin/demo.dpkg-new").write_bytes(local)
    (root / "etc/demo.conf").write_text("setting=2\n")
    (root / "usr/local/bin").mkdir(parents=True)
    (root / "usr/local/bin/impostor").write_bytes(local)
    os.symlink("../local/bin/impostor", root / "usr/bin/linked")
    os.mkfifo(root / "usr/bin/fifo")
    os.symlink("../../../../../etc/shadow", root / "usr/bin/escape")
    os.symlink("loop", root / "usr/bin/loop")
    return root


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/usr/bin/demo", integrity.MATCH),
        ("/usr/bin/ps", integrity.MISMATCH),
        ("/usr/bin/linked", integrity.MISMATCH),  # shipped as a file, now a link to no package's
        ("/usr/bin/fifo", integrity.MISMATCH),  # never opened
        ("/usr/bin/gone", integrity.MISSING),
        ("/usr/bin/tool", integrity.DIVERTED),  # the admin's own, by dpkg-divert --local
        ("/usr/bin/tool.distrib", integrity.MATCH),  # the package's, where the diversion put it
        ("/usr/bin/escape", integrity.UNREADABLE),
        ("/usr/bin/loop", integrity.UNREADABLE),
        ("/etc/demo.conf", integrity.CONFFILE),
        ("/usr/bin/demo.dpkg-new", integrity.UNOWNED),
        ("/usr/bin", integrity.NOT_RECORDED),
    ],
)
def test_integrity_answers(demo_root, path, status, deadline):
    checker = integrity.Integrity(str(demo_root), installed.database_of(str(demo_root)))
    with deadline(10):
        verdict = checker.verdict(path)
    assert verdict.status == status, verdict


def test_hashing_ahead_on_threads_gives_the_same_answers(demo_root, deadline, monkeypatch):
    paths = ["/usr/bin/demo", "/usr/bin/ps", "/usr/bin/linked", "/usr/bin/fifo", "/usr/bin/gone"]
    paths += ["/usr/bin/tool", "/usr/bin/tool.distrib", "/usr/bin/escape", "/usr/bin/loop", "/etc/demo.conf"]
    (demo_root / "usr/bin/demo").chmod(0)  # root reads it anyway; an unreadable one is answered alike
    inline = integrity.Integrity(str(demo_root), installed.database_of(str(demo_root)))
    ahead = integrity.Integrity(str(demo_root), installed.database_of(str(demo_root)))
    hashed_here = []
    monkeypatch.setattr(integrity.digests, "digest_of", _recording(integrity.digests.digest_of, hashed_here))

    needed = {str(demo_root / p) for p in ("usr/bin/demo", "usr/bin/ps", "etc/demo.conf")}
    with deadline(30):
        ahead.hash_soon(paths)
        # The threads take the work at once; a busy machine may make them wait (verdict would then
        # hash what has not started yet itself, once: see below).
        waited = time.monotonic()
        while not needed <= {path for path, _thread in hashed_here} and time.monotonic() - waited < 20:
            time.sleep(0.01)
        answers_ahead = [ahead.verdict(p) for p in paths]
        ahead.close()
        hashed_ahead = list(hashed_here)
        answers_inline = [inline.verdict(p) for p in paths]

    assert answers_ahead == answers_inline
    hashed = [path for path, _thread in hashed_ahead]
    assert len(hashed) == len(set(hashed)), "a file hashed twice"
    assert needed <= {path for path, thread in hashed_ahead if thread.startswith("lifeline-hash")}


def test_hashing_not_started_yet_is_done_by_the_caller_once(demo_root, monkeypatch):
    ahead = integrity.Integrity(str(demo_root), installed.database_of(str(demo_root)))
    hashed_here = []
    monkeypatch.setattr(integrity.digests, "digest_of", _recording(integrity.digests.digest_of, hashed_here))
    release = threading.Event()
    busy = integrity.ThreadPoolExecutor(1)
    busy.submit(release.wait)  # the only worker is busy: nothing asked ahead can start
    ahead._pool = busy

    ahead.hash_soon(["/usr/bin/ps"])
    verdict = ahead.verdict("/usr/bin/ps")
    release.set()
    ahead.close()

    assert verdict.status == integrity.MISMATCH
    assert hashed_here == [(str(demo_root / "usr/bin/ps"), threading.current_thread().name)]


def _recording(function, calls: list):
    def recorded(path, *args):
        calls.append((path, threading.current_thread().name))
        return function(path, *args)

    return recorded


def test_the_walk_forked_ahead_finds_what_a_walk_here_finds(demo_root, deadline):
    for name, mode in (("usr/bin/demo", 0o4755), ("usr/local/bin/impostor", 0o2755)):
        os.chmod(demo_root / name, mode)
    (demo_root / "home/user").mkdir(parents=True)
    os.symlink("../..", demo_root / "home/user/loop")
    reader = RootReader(str(demo_root))

    with deadline(30):
        privileged_files.begin(reader)
        assert privileged_files.KIND in reader.started
        ahead = privileged_files._walked(reader)
        here = privileged_files.walk(RootReader(str(demo_root)))

    assert [(p, st.st_mode, cap) for p, st, cap in ahead] == [(p, st.st_mode, cap) for p, st, cap in here]
    assert {p for p, _st, _cap in ahead} == {"/usr/bin/demo", "/usr/local/bin/impostor"}
    assert reader.started == {}


def test_a_forked_walk_past_its_time_is_noted_and_stopped(demo_root, deadline, monkeypatch):
    monkeypatch.setattr(privileged_files, "WALK_TIMEOUT", 0.5)
    monkeypatch.setattr(privileged_files, "walk", lambda reader: time.sleep(60))
    reader = RootReader(str(demo_root))

    with deadline(30):
        privileged_files.begin(reader)
        assert privileged_files._walked(reader) == []

    assert [n["problem"] for n in reader.notes if n["location"] == privileged_files.KIND] == [
        "the walk for setuid, setgid and capable files took more than 0.5 s: none is listed"
    ]


def test_what_a_stock_system_keeps_beside_its_packages_is_no_finding(demo_root, deadline):
    """A diversion's target, a dpkg-new an interrupted run left, a container image's setuid su."""
    layer = demo_root / "var/lib/docker/overlay2/0123/diff/usr/bin"
    layer.mkdir(parents=True)
    (layer / "su").write_bytes(b"\x7fELF")
    os.chmod(layer / "su", 0o4755)
    (demo_root / "usr/bin/planted").write_bytes(b"#!/bin/sh\n")
    reader = RootReader(str(demo_root))
    with deadline(30):
        privileged_files.collect(reader)
        package_files.collect(reader)
    assert {(i.file.path, tuple(sorted(i.traits))) for i in reader.items} == {
        ("/usr/bin/planted", ("unowned-in-packaged-dir",)),
        ("/usr/bin/ps", ("checksum-mismatch",)),
    }
    assert reader.notes == []


def build_demo_deb(where: Path) -> Path:
    """demo 1.0-1 as dpkg-deb builds it, shipping /usr/bin/demo with mode 0755."""
    stage = where / "stage"
    (stage / "DEBIAN").mkdir(parents=True)
    (stage / "usr/bin").mkdir(parents=True)
    (stage / "DEBIAN/control").write_text(
        "Package: demo\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: nobody <nobody@example.org>\n"
        "Description: the tampering tests' package\n"
    )
    (stage / "usr/bin/demo").write_bytes(b"#!/bin/sh\necho demo\n")
    os.chmod(stage / "usr/bin/demo", 0o755)
    deb = where / "demo_1.0-1_amd64.deb"
    done = subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(stage), str(deb)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"dpkg-deb could not build the test package (run `make apt`): {done.stderr}")
    return deb


@pytest.mark.parametrize(
    ("postinst", "statoverride", "changed"),
    [
        ("", "", True),
        ("#!/bin/sh\nchmod u+s /usr/bin/demo\n", "", False),  # the package sets the bit itself
        ("#!/bin/sh\n/usr/bin/demo --setup\nchmod 0700 /var/lib/demo\n", "", True),  # names it, elsewhere
        ("", "root root 4755 /usr/bin/demo\n", False),  # an admin's recorded override
        ("", "root root 2755 /usr/bin/demo\n", True),  # an override of another mode
    ],
    ids=["no-script", "postinst-chmod", "postinst-runs-it", "statoverride", "statoverride-other-mode"],
)
def test_a_setuid_bit_the_cached_deb_lacks(demo_root, tmp_path, postinst, statoverride, changed):
    archives = demo_root / "var/cache/apt/archives"
    archives.mkdir(parents=True)
    shutil.copy2(build_demo_deb(tmp_path), archives)
    os.chmod(demo_root / "usr/bin/demo", 0o4755)
    if postinst:
        (demo_root / "var/lib/dpkg/info/demo.postinst").write_text(postinst)
    if statoverride:
        (demo_root / "var/lib/dpkg/statoverride").write_text(statoverride)
    reader = RootReader(str(demo_root))
    privileged_files.collect(reader)
    (item,) = [i for i in reader.items if i.file.path == "/usr/bin/demo"]
    assert ("mode-changed" in item.traits) == changed
    assert reader.integrity().shipped_mode("/usr/bin/demo") == (None if postinst and not changed else 0o755)
