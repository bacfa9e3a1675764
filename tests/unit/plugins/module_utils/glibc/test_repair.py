"""The glibc repair (module_utils/glibc/repair.py) on copies of the real Debian trees broken the way the
incidents broke them (roles/drill/files/glibc.sh) and in ways no fixture planted; proven independently:
the root's own programs run in a chroot and the restored files have the pristine tree's md5sum."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import diagnosis as glibc
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import repair as glibc_repair
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc.diagnosis import GlibcError
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc.repair import DISABLED, Action
from ansible_collections.lifeline.rescue.plugins.module_utils.target import safewrite

from support.faults import elf32, plant_glibc
from support.roots import tmpfs
from support.trees import DEBS, deb_of, listing
from support.trees import debian_tree as tree

LIBDIR = "usr/lib/x86_64-linux-gnu"
BACKUPS = "/var/backups/lifeline"
OLD = "/opt/glibc-2.31/lib"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"

OWN = ("relink", "the root's own file")
COPY = ("restore", "renamed-away copy")
CACHE = ("restore", "package cache")
PACKAGE = ("restore", "package file")


def dpkg_version(root: Path) -> str:
    return subprocess.run(
        ["dpkg-query", f"--admindir={root}/var/lib/dpkg", "-W", "-f", "${Version}", "libc6"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# ---- copies of the trees, put back to pristine before each test ------------------------------------


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def resync(src: str, dst: str) -> None:
    """Make the copy ``dst`` equal to ``src`` again: entries whose type, size, mtime, mode, owner, link
    target or device differ are copied anew, entries ``src`` lacks are removed. Device nodes are made,
    never read."""
    with os.scandir(src) as entries:
        want = {e.name: e for e in entries}
    with os.scandir(dst) as entries:
        have = {e.name: e for e in entries}
    for name in have.keys() - want.keys():
        _remove(have[name].path)
    for name, entry in want.items():
        s = entry.stat(follow_symlinks=False)
        target = os.path.join(dst, name)
        if name in have:
            d = have[name].stat(follow_symlinks=False)
            owner = (s.st_mode, s.st_uid, s.st_gid) == (d.st_mode, d.st_uid, d.st_gid)
            if stat.S_IFMT(s.st_mode) == stat.S_IFMT(d.st_mode):
                if stat.S_ISDIR(s.st_mode):
                    resync(entry.path, target)
                    if not owner:
                        os.chown(target, s.st_uid, s.st_gid)
                        os.chmod(target, stat.S_IMODE(s.st_mode))
                    continue
                if stat.S_ISLNK(s.st_mode):
                    if owner and os.readlink(entry.path) == os.readlink(target):
                        continue
                elif stat.S_ISREG(s.st_mode):
                    if owner and (s.st_size, s.st_mtime_ns) == (d.st_size, d.st_mtime_ns):
                        continue
                elif owner and s.st_rdev == d.st_rdev:
                    continue
            _remove(target)
        if stat.S_ISDIR(s.st_mode):
            subprocess.run(["cp", "-a", entry.path, target], check=True)
        elif stat.S_ISLNK(s.st_mode):
            os.symlink(os.readlink(entry.path), target)
            os.lchown(target, s.st_uid, s.st_gid)
        elif stat.S_ISREG(s.st_mode):
            shutil.copy2(entry.path, target, follow_symlinks=False)
            os.chown(target, s.st_uid, s.st_gid)
        else:
            os.mknod(target, s.st_mode, s.st_rdev)
            os.chown(target, s.st_uid, s.st_gid)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Iterator[Path]:
    """A tmpfs under this module's tmp dir for the copies of the trees (on this machine's disk a copy
    takes seconds when both workers copy at once, in memory half a second); unmounted afterwards."""
    with tmpfs(tmp_path_factory.mktemp("trees"), "4g") as where:
        yield where


@pytest.fixture
def fresh(scratch) -> Callable[[str], Path]:
    """fresh(suite): this worker's copy of the suite's tree, equal to the tree (copied once, then put
    back with resync, which costs a tenth of a copy)."""

    def get(suite: str) -> Path:
        root = scratch / suite
        if root.exists():
            resync(str(tree(suite)), str(root))
        else:
            subprocess.run(["cp", "-a", str(tree(suite)), str(root)], check=True)
        return root

    return get


# ---- helpers ----------------------------------------------------------------------------------


def chroot(root: Path, *argv: str) -> tuple[int, str]:
    done = subprocess.run(
        [CHROOT, str(root), *argv],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    return done.returncode, done.stderr


PROGRAMS = {"ls": ("/bin/ls", "/"), "python3": ("/usr/bin/python3", "-c", "import math")}


def assert_programs_run(root: Path) -> None:
    for name, argv in PROGRAMS.items():
        rc, err = chroot(root, *argv)
        assert (rc, err) == (0, ""), f"{name} in {root}: {err}"


def md5_inside(root: Path, paths: list[str]) -> dict[str, str]:
    """md5sum of each path as the root's own md5sum sees it in a chroot (links followed by the kernel)."""
    done = subprocess.run(
        [CHROOT, str(root), "/usr/bin/md5sum", "--", *paths], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    return {line.split("  ", 1)[1]: line.split("  ", 1)[0] for line in done.stdout.splitlines()}


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def kinds(diagnosis: glibc.Diagnosis) -> dict[str, str]:
    return {os.path.basename(f.path): f.problem for f in diagnosis.findings}


def sources(actions: list[Action]) -> dict[str, tuple[str, str]]:
    return {os.path.basename(a.path): (a.action, a.source) for a in actions}


def assert_backed_up(root: Path, actions: list[Action]) -> None:
    """Whatever an action replaced is under /var/backups/lifeline, as it was."""
    for action in actions:
        if action.before == "missing":
            assert action.backup == "", action
            continue
        assert action.backup.startswith(BACKUPS + "/"), action
        assert action.backup.endswith(action.path), action
        saved = root / action.backup[1:]
        if action.before.startswith("link -> "):
            assert os.readlink(saved) == action.before.removeprefix("link -> "), action
        elif action.before.startswith("file, md5 "):
            assert not saved.is_symlink() and md5_of(saved) == action.before.split()[-1], action


def assert_repaired(root: Path, suite: str, diagnosis: glibc.Diagnosis, actions: list[Action]) -> None:
    """The independent proof: programs run, every member found broken and every restored file has the
    pristine tree's md5sum; then the diagnosis is clean, a second plan is empty and every replaced
    thing was backed up."""
    assert_programs_run(root)
    broken = {f.path for f in diagnosis.findings if f.problem != "config"}
    members = sorted(broken | {a.path for a in actions if a.action == "restore"})
    if members:
        assert md5_inside(root, members) == md5_inside(tree(suite), members)
    again = glibc.diagnose(str(root))
    assert again.findings == []
    assert glibc_repair.plan(str(root), again, "") == []
    assert_backed_up(root, actions)


# ---- every fault of roles/drill/files/glibc.sh on every suite -------------------------------

LOADER = r"error while loading shared libraries: "
# What each program says before the repair (None: it still runs); the missing loader is the kernel's.
BEFORE = {
    "libc_renamed": {
        "ls": LOADER + r"libc\.so\.6: cannot open",
        "python3": LOADER + r"libc\.so\.6: cannot open",
    },
    "libc_foreign": {
        "ls": r"version `GLIBC_2\.\d+' not found",
        "python3": r"version `GLIBC_2\.\d+' not found",
    },
    "loader_link_removed": {
        "ls": r"failed to run command '/bin/ls': No such file or directory",
        "python3": r"failed to run command '/usr/bin/python3': No such file or directory",
    },
    "lib64_link_removed": {
        "ls": r"failed to run command '/bin/ls': No such file or directory",
        "python3": r"failed to run command '/usr/bin/python3': No such file or directory",
    },
    "libm_deleted": {"ls": None, "python3": LOADER + r"libm\.so\.6: cannot open shared object file"},
    "glibc_deleted": {
        "ls": LOADER + r"libc\.so\.6: cannot open shared object file",
        "python3": LOADER + r"lib(m|pthread)\.so\.\d: cannot open shared object file",
    },
}

BULLSEYE_DELETED = ("libc", "libm", "libpthread", "libdl", "librt", "libresolv")
SONAMES = ("libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "libresolv.so.2")

# (suite, fault) for every fault the script plants: (findings by name, the action and source of
# each, whether only a package file mends it)
FIXTURE_CASES = {
    ("bullseye", "libc_renamed"): ({"libc.so.6": "missing"}, {"libc.so.6": OWN}, False),
    ("bookworm", "libc_renamed"): ({"libc.so.6": "missing"}, {"libc.so.6": COPY}, False),
    ("trixie", "libc_renamed"): ({"libc.so.6": "missing"}, {"libc.so.6": COPY}, False),
    ("bullseye", "libc_foreign"): ({"libc.so.6": "foreign"}, {"libc.so.6": OWN}, False),
    ("bookworm", "libc_foreign"): ({"libc.so.6": "foreign"}, {"libc.so.6": PACKAGE}, True),
    ("trixie", "libc_foreign"): ({"libc.so.6": "foreign"}, {"libc.so.6": PACKAGE}, True),
    **{
        (suite, "loader_link_removed"): (
            {"ld-linux-x86-64.so.2": "missing"},
            {"ld-linux-x86-64.so.2": OWN},
            False,
        )
        for suite in ("bullseye", "bookworm", "trixie")
    },
    **{
        (suite, "lib64_link_removed"): (
            {"ld-linux-x86-64.so.2": "missing"},
            {"lib64": ("relink", "the merged /usr layout")},
            False,
        )
        for suite in ("bullseye", "bookworm", "trixie")
    },
    ("bullseye", "libm_deleted"): (
        {"libm-2.31.so": "missing", "libm.so.6": "missing"},
        {"libm-2.31.so": CACHE, "libm.so.6": OWN},
        False,
    ),
    ("bookworm", "libm_deleted"): ({"libm.so.6": "missing"}, {"libm.so.6": CACHE}, False),
    ("trixie", "libm_deleted"): ({"libm.so.6": "missing"}, {"libm.so.6": CACHE}, False),
    ("bullseye", "glibc_deleted"): (
        {**{f"{n}-2.31.so": "missing" for n in BULLSEYE_DELETED}, **{n: "missing" for n in SONAMES}},
        {**{f"{n}-2.31.so": PACKAGE for n in BULLSEYE_DELETED}, **{n: OWN for n in SONAMES}},
        True,
    ),
    ("bookworm", "glibc_deleted"): ({n: "missing" for n in SONAMES}, {n: PACKAGE for n in SONAMES}, True),
    ("trixie", "glibc_deleted"): ({n: "missing" for n in SONAMES}, {n: PACKAGE for n in SONAMES}, True),
}


def fault_args(suite: str, fault: str) -> list[Path]:
    if fault == "libc_foreign":
        other = "bookworm" if suite == "bullseye" else "bullseye"
        return [(tree(other) / LIBDIR / "libc.so.6").resolve()]
    if fault == "libm_deleted":
        return [deb_of(suite, "libc6")]
    return []


def assert_needs_the_package_file(root: Path, diagnosis: glibc.Diagnosis, suite: str) -> None:
    with pytest.raises(GlibcError) as refused:
        glibc_repair.plan(str(root), diagnosis, "")
    message = str(refused.value)
    assert message.startswith("no good copy found for: ")
    for finding in diagnosis.findings:
        assert finding.path in message
    assert "give the package file of the target's glibc as glibc_restore_source" in message
    assert f"(libc6 {dpkg_version(tree(suite))} amd64)" in message


@pytest.mark.parametrize(("suite", "fault"), FIXTURE_CASES, ids=[f"{s}-{f}" for s, f in FIXTURE_CASES])
def test_every_fault_of_the_fixture_script(fresh, deadline, suite, fault):
    findings, planned, needs_package = FIXTURE_CASES[suite, fault]
    root = fresh(suite)
    plant_glibc(root, fault, *fault_args(suite, fault))
    for name, argv in PROGRAMS.items():
        rc, err = chroot(root, *argv)
        expected = BEFORE[fault][name]
        if expected is None:
            assert (rc, err) == (0, ""), err
        else:
            assert rc != 0 and re.search(expected, err.replace("\u2018", "'").replace("\u2019", "'")), (
                name,
                rc,
                err,
            )

    with deadline(60):
        diagnosis = glibc.diagnose(str(root))
        assert kinds(diagnosis) == findings
        source = deb_of(suite, "libc6") if needs_package else ""
        if needs_package:
            assert_needs_the_package_file(root, diagnosis, suite)
        actions = glibc_repair.plan(str(root), diagnosis, str(source))
        assert sources(actions) == planned
        glibc_repair.apply(str(root), actions, BACKUPS)

    assert_repaired(root, suite, diagnosis, actions)
    for action in actions:
        if action.action == "restore":
            assert action.after == f"file, md5 {action.digest} (matches the package's record)"


# ---- faults no fixture plants: a new user's broken systems -------------------------------------------


def libc_link(target: str) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        libc = root / LIBDIR / "libc.so.6"
        if libc.is_symlink() or libc.exists():
            libc.unlink()
        os.symlink(target.format(root=root), libc)

    return make


def loop(root: Path) -> None:
    libc_link("a")(root)
    os.symlink("libc.so.6", root / LIBDIR / "a")


def rewrite_libc(change: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    """Replace the file libc.so.6 leads to with changed bytes (a new file: the tree is never touched)."""

    def make(root: Path) -> None:
        real = Path(os.path.realpath(root / LIBDIR / "libc.so.6"))
        assert real.is_relative_to(root)
        data = change(real.read_bytes())
        real.unlink()
        real.write_bytes(data)

    return make


def renamed(name: str, suffix: str, change: Callable[[bytes], bytes] | None = None) -> Callable[[Path], None]:
    def make(root: Path) -> None:
        member = root / LIBDIR / name
        data = member.read_bytes()
        os.rename(member, member.with_name(name + suffix))
        if change is not None:
            copy = member.with_name(name + suffix)
            copy.unlink()
            copy.write_bytes(change(data))

    return make


def host_only(root: Path) -> None:
    """libc.so.6 -> an absolute path that exists on the rescuer only (a good glibc 2.41 there)."""
    host = root.parent / "host-only"
    host.mkdir(exist_ok=True)
    shutil.copy2(tree("trixie") / LIBDIR / "libc.so.6", host / "libc.so.6")
    libc_link(str(host / "libc.so.6"))(root)


def flip_last_byte(data: bytes) -> bytes:
    return data[:-1] + bytes([data[-1] ^ 0xFF])


# name: (suite, make the fault, findings by name, action and source of each, needs the package file)
NEW_FAULTS = {
    "bullseye dangling libc link": (
        "bullseye",
        libc_link("libc-2.30.so"),
        {"libc.so.6": "dangling"},
        {"libc.so.6": OWN},
        False,
    ),
    "bookworm dangling libc link": (
        "bookworm",
        libc_link("libc-2.30.so"),
        {"libc.so.6": "dangling"},
        {"libc.so.6": PACKAGE},
        True,
    ),
    "bullseye libc link out of the root": (
        "bullseye",
        libc_link("../../../../../../etc/passwd"),
        {"libc.so.6": "escapes"},
        {"libc.so.6": OWN},
        False,
    ),
    "bookworm libc link out of the root": (
        "bookworm",
        libc_link("../../../../../../etc/passwd"),
        {"libc.so.6": "escapes"},
        {"libc.so.6": PACKAGE},
        True,
    ),
    "trixie absolute libc link to a host-only file": (
        "trixie",
        host_only,
        {"libc.so.6": "dangling"},
        {"libc.so.6": PACKAGE},
        True,
    ),
    "bookworm absolute libc link to the rescuer's libc path": (
        "bookworm",
        libc_link(f"/{LIBDIR}/libc.so.6"),
        {"libc.so.6": "dangling"},
        {"libc.so.6": PACKAGE},
        True,
    ),
    "bullseye libc link loop": ("bullseye", loop, {"libc.so.6": "dangling"}, {"libc.so.6": OWN}, False),
    "bookworm libc link loop": ("bookworm", loop, {"libc.so.6": "dangling"}, {"libc.so.6": PACKAGE}, True),
    "bookworm libc truncated to 100 bytes": (
        "bookworm",
        rewrite_libc(lambda data: data[:100]),
        {"libc.so.6": "damaged"},
        {"libc.so.6": PACKAGE},
        True,
    ),
    # The link is rewritten as it was, after the file it leads to is restored (a no-op relink).
    "bullseye libc truncated to 100 bytes": (
        "bullseye",
        rewrite_libc(lambda data: data[:100]),
        {"libc-2.31.so": "damaged", "libc.so.6": "damaged"},
        {"libc-2.31.so": PACKAGE, "libc.so.6": OWN},
        True,
    ),
    "trixie 32-bit libc": (
        "trixie",
        rewrite_libc(elf32),
        {"libc.so.6": "wrong_arch"},
        {"libc.so.6": PACKAGE},
        True,
    ),
    "bookworm libm.so.6.orig": (
        "bookworm",
        renamed("libm.so.6", ".orig"),
        {"libm.so.6": "missing"},
        {"libm.so.6": COPY},
        False,
    ),
    # bullseye's libm.so.6 is a link: the root's own libm-2.31.so comes before the renamed-away link.
    "bullseye libm.so.6.orig": (
        "bullseye",
        renamed("libm.so.6", ".orig"),
        {"libm.so.6": "missing"},
        {"libm.so.6": OWN},
        False,
    ),
    "bookworm libc.so.6.bak whose md5 differs": (
        "bookworm",
        renamed("libc.so.6", ".bak", flip_last_byte),
        {"libc.so.6": "missing"},
        {"libc.so.6": PACKAGE},
        True,
    ),
}


@pytest.mark.parametrize("case", NEW_FAULTS)
def test_a_fault_no_fixture_plants(fresh, deadline, case):
    suite, make, findings, planned, needs_package = NEW_FAULTS[case]
    root = fresh(suite)
    make(root)
    rc, err = chroot(root, "/bin/ls", "/")
    if "libm" in case:
        assert (rc, err) == (0, "")
    else:
        assert rc != 0 and f"/bin/ls: {LOADER}" in err, err

    with deadline(60):
        diagnosis = glibc.diagnose(str(root))
        assert kinds(diagnosis) == findings
        assert all(not f.renamed_away or f.renamed_away[0].endswith(".orig") for f in diagnosis.findings)
        source = deb_of(suite, "libc6") if needs_package else ""
        if needs_package:
            assert_needs_the_package_file(root, diagnosis, suite)
        actions = glibc_repair.plan(str(root), diagnosis, str(source))
        assert sources(actions) == planned
        glibc_repair.apply(str(root), actions, BACKUPS)

    assert_repaired(root, suite, diagnosis, actions)


def test_loader_configuration_is_commented_out_and_nothing_else_changes(fresh):
    """ld.so.preload, an ld.so.conf.d line and LD_LIBRARY_PATH in /etc/environment naming a glibc 2.31
    copied under /opt: each offending line gets the marker, every other byte stays."""
    root = fresh("bookworm")
    (root / OLD[1:]).mkdir(parents=True)
    shutil.copy2(tree("bullseye") / LIBDIR / "libc-2.31.so", root / OLD[1:] / "libc.so.6")
    files = {
        "etc/ld.so.preload": f"{OLD}/libc.so.6\n".encode(),
        # CRLF, a tab, a byte that is no UTF-8 and no newline at the end: all kept as they were.
        "etc/ld.so.conf.d/zz-old.conf": b"# the old glibc\r\n/usr/local/lib\t# tab\n"
        + OLD.encode()
        + b"\n\xff\n/srv",
        "etc/environment": (root / "etc/environment").read_bytes()
        + f'LD_LIBRARY_PATH="{OLD}"\nLANG=C\n'.encode(),
    }
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    os.chmod(root / "etc/ld.so.preload", 0o640)
    rc, err = chroot(root, "/bin/ls", "/")
    assert rc != 0 and f"{OLD}/libc.so.6: version `GLIBC_2.3" in err, err

    diagnosis = glibc.diagnose(str(root))
    assert [(f.path, f.problem) for f in diagnosis.findings] == [
        ("/etc/ld.so.conf.d/zz-old.conf", "config"),
        ("/etc/ld.so.preload", "config"),
        ("/etc/environment", "config"),
    ]
    actions = glibc_repair.plan(str(root), diagnosis, "")
    environment_line = (
        (root / "etc/environment").read_bytes().split(b"\n").index(f'LD_LIBRARY_PATH="{OLD}"'.encode())
    )
    assert [(a.action, a.line) for a in actions] == [
        ("disable", 3),
        ("disable", 1),
        ("disable", environment_line + 1),
    ]
    glibc_repair.apply(str(root), actions, BACKUPS)

    marker = DISABLED.encode()
    assert (root / "etc/ld.so.preload").read_bytes() == marker + files["etc/ld.so.preload"]
    assert (root / "etc/ld.so.conf.d/zz-old.conf").read_bytes() == files[
        "etc/ld.so.conf.d/zz-old.conf"
    ].replace(f"\n{OLD}\n".encode(), b"\n" + marker + f"{OLD}\n".encode())
    assert (root / "etc/environment").read_bytes() == files["etc/environment"].replace(
        b"LD_LIBRARY_PATH=", marker + b"LD_LIBRARY_PATH="
    )
    assert stat.S_IMODE((root / "etc/ld.so.preload").stat().st_mode) == 0o640
    for action in actions:
        assert (root / action.backup[1:]).read_bytes() == files[action.path[1:]], action
    assert_repaired(root, "bookworm", diagnosis, actions)


@pytest.mark.parametrize("separator", ["\f", "\r", "\v", "\x1c", "\u2028"], ids=repr)
def test_the_line_commented_out_is_the_line_the_finding_names(fresh, separator):
    """The readers number lines as Python does (a form feed, a lone CR... end a line too): the line
    commented out must be that same line, never its neighbour."""
    root = fresh("bookworm")
    (root / OLD[1:]).mkdir(parents=True)
    shutil.copy2(tree("bullseye") / LIBDIR / "libc-2.31.so", root / OLD[1:] / "libc.so.6")
    original = f"# old{separator}glibc\n{OLD}\n/usr/local/lib\n".encode()
    (root / "etc/ld.so.conf.d/zz-old.conf").write_bytes(original)
    diagnosis = glibc.diagnose(str(root))
    assert [(f.problem, f.line) for f in diagnosis.findings] == [("config", 3)]
    actions = glibc_repair.plan(str(root), diagnosis, "")
    glibc_repair.apply(str(root), actions, BACKUPS)
    assert (root / "etc/ld.so.conf.d/zz-old.conf").read_bytes() == original.replace(
        f"\n{OLD}".encode(), f"\n{DISABLED}{OLD}".encode()
    )
    assert glibc.diagnose(str(root)).findings == []


# ---- apply on small roots: backups, verification -------------------------------------------------


def small_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    return root


def test_two_lines_of_one_file_disabled_keep_the_original_in_the_backup(tmp_path):
    root = small_root(tmp_path)
    original = b"LD_LIBRARY_PATH=/opt/a\nLANG=C\nLD_LIBRARY_PATH=/opt/b\n"
    (root / "etc/environment").write_bytes(original)
    actions = [Action("/etc/environment", "disable", "", "a", "", line=n) for n in (1, 3)]
    glibc_repair.apply(str(root), actions, BACKUPS)
    marker = DISABLED.encode()
    assert (root / "etc/environment").read_bytes() == marker + original.replace(
        b"\nLD_", b"\n" + marker + b"LD_"
    )
    assert (root / actions[0].backup[1:]).read_bytes() == original
    assert actions[1].backup in ("", actions[0].backup)


def test_a_linked_configuration_file_is_backed_up_with_its_content(tmp_path):
    """/etc/ld.so.conf.d/old.conf -> /srv/conf/old.conf: the file changes, the link stays, and the
    backup holds the text as it was (not a link to the changed file)."""
    root = small_root(tmp_path)
    (root / "etc/ld.so.conf.d").mkdir()
    (root / "srv/conf").mkdir(parents=True)
    original = b"/opt/old/lib\n/srv/lib\n"
    (root / "srv/conf/old.conf").write_bytes(original)
    os.symlink("/srv/conf/old.conf", root / "etc/ld.so.conf.d/old.conf")
    action = Action("/etc/ld.so.conf.d/old.conf", "disable", "", "x", "", line=1)
    glibc_repair.apply(str(root), [action], BACKUPS)
    assert os.readlink(root / "etc/ld.so.conf.d/old.conf") == "/srv/conf/old.conf"
    assert (root / "srv/conf/old.conf").read_bytes() == DISABLED.encode() + original
    saved = root / action.backup[1:]
    assert not saved.is_symlink() and saved.read_bytes() == original


def test_a_restored_file_with_the_wrong_md5_is_never_installed(fresh):
    root = fresh("bookworm")
    plant_glibc(root, "libm_deleted", deb_of("bookworm", "libc6"))
    diagnosis = glibc.diagnose(str(root))
    actions = glibc_repair.plan(str(root), diagnosis, "")
    assert sources(actions) == {"libm.so.6": CACHE}
    recorded = actions[0].digest
    actions[0].digest = "0" * 32
    with pytest.raises(
        GlibcError, match=f"with md5 {recorded}, but the package recorded 0{{32}}: not installed"
    ):
        glibc_repair.apply(str(root), actions, BACKUPS)
    assert not os.path.lexists(root / LIBDIR / "libm.so.6")


# ---- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suite", "other"), [("bookworm", "bullseye"), ("bookworm", "trixie"), ("trixie", "bullseye")]
)
def test_a_package_file_of_another_version_is_refused(fresh, suite, other):
    root = fresh(suite)
    plant_glibc(root, "glibc_deleted")
    diagnosis = glibc.diagnose(str(root))
    deb = deb_of(other, "libc6")
    with pytest.raises(GlibcError) as refused:
        glibc_repair.plan(str(root), diagnosis, str(deb))
    assert str(refused.value) == (
        f"glibc_restore_source {deb} is libc6 {dpkg_version(tree(other))} amd64, "
        f"the target has libc6 {dpkg_version(tree(suite))} amd64: give the package of the target's own glibc"
    )


def test_the_cache_holding_another_version_is_passed_over(fresh):
    root = fresh("bookworm")
    plant_glibc(root, "libm_deleted", deb_of("bullseye", "libc6"))
    diagnosis = glibc.diagnose(str(root))
    with pytest.raises(
        GlibcError, match=r"no good copy found for: /lib/x86_64-linux-gnu/libm\.so\.6 is missing"
    ):
        glibc_repair.plan(str(root), diagnosis, "")
    actions = glibc_repair.plan(str(root), diagnosis, str(deb_of("bookworm", "libc6").parent))
    assert sources(actions) == {"libm.so.6": PACKAGE}


@pytest.mark.parametrize(
    ("make", "message"),
    [
        ("text", r"glibc_restore_source: {source} is neither a Debian package nor an rpm package"),
        ("missing", r"glibc_restore_source {source} does not exist on the host running the repair"),
        ("empty dir", r"glibc_restore_source {source} is a directory without libc6\*\.deb or glibc-\*\.rpm"),
        ("other package", r"glibc_restore_source {source} is libc-bin .*, not a glibc package \(libc6 or "),
    ],
)
def test_a_source_that_is_no_glibc_package_is_refused(fresh, tmp_path, make, message):
    root = fresh("bookworm")
    plant_glibc(root, "glibc_deleted")
    diagnosis = glibc.diagnose(str(root))
    source = tmp_path / "source"
    if make == "text":
        source.write_text("not a package\n")
    elif make == "empty dir":
        source.mkdir()
    elif make == "other package":
        source = sorted((DEBS / "bookworm").glob("libc-bin_*.deb"))[-1]
    with pytest.raises(GlibcError, match=message.format(source=re.escape(str(source)))):
        glibc_repair.plan(str(root), diagnosis, str(source))


@pytest.mark.parametrize("suite", ["bullseye", "bookworm"])
def test_a_root_without_a_package_database_is_repaired_by_names(fresh, deadline, suite):
    root = fresh(suite)
    upstream = re.fullmatch(r"(?:\d+:)?(.+)-[^-]+", dpkg_version(root)).group(1)
    shutil.rmtree(root / "var/lib/dpkg/info")
    (root / "var/lib/dpkg/status").unlink()
    plant_glibc(root, "libc_renamed")
    with deadline(60):
        diagnosis = glibc.diagnose(str(root))
        assert (diagnosis.identity.package, diagnosis.identity.version) == ("", upstream)
        assert kinds(diagnosis) == {"libc.so.6": "missing"}
        assert diagnosis.findings[0].renamed_away == [f"/{LIBDIR}/libc.so.6.bak"]
        actions = glibc_repair.plan(str(root), diagnosis, "")
        glibc_repair.apply(str(root), actions, BACKUPS)
    if suite == "bullseye":
        # The copy renamed away is the soname link itself: the link goes back, leading where it led.
        assert sources(actions) == {"libc.so.6": OWN}
        assert actions[0].after == "link -> libc-2.31.so"
    else:
        assert sources(actions) == {"libc.so.6": COPY}
        assert actions[0].origin == f"/{LIBDIR}/libc.so.6.bak"
    assert_repaired(root, suite, diagnosis, actions)


@pytest.fixture
def read_only(tmp_path) -> Iterator[Callable[..., Path]]:
    """read_only(root, rel): rel of root bind-mounted read-only onto itself (unmounted afterwards)."""
    mounted: list[Path] = []

    def mount(root: Path, rel: str = "") -> Path:
        where = root / rel if rel else tmp_path / "ro"
        where.mkdir(exist_ok=True)
        source = root / rel if rel else root
        subprocess.run(["mount", "--bind", str(source), str(where)], check=True)
        mounted.append(where)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(where)], check=True)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=True)


def test_a_read_only_target_is_refused_and_left_unchanged(fresh, read_only):
    root = fresh("bookworm")
    plant_glibc(root, "libc_renamed")
    target = read_only(root)
    before = listing(target)
    diagnosis = glibc.diagnose(str(target))
    actions = glibc_repair.plan(str(target), diagnosis, "")
    with pytest.raises((safewrite.WriteError, GlibcError)) as refused:
        glibc_repair.apply(str(target), actions, BACKUPS)
    assert "read-only" in str(refused.value) and "remount" in str(refused.value), refused.value
    assert listing(target) == before


def test_a_read_only_part_of_the_target_stops_the_repair_before_any_change(fresh, read_only):
    """libc.so.6 renamed away and ld.so.preload naming a missing file; /etc is read-only: the lib dir
    must not be repaired half-way while the configuration cannot be."""
    root = fresh("bookworm")
    plant_glibc(root, "libc_renamed")
    (root / "etc/ld.so.preload").write_text("/usr/lib/libgone.so\n")
    read_only(root, "etc")
    before = listing(root)
    diagnosis = glibc.diagnose(str(root))
    actions = glibc_repair.plan(str(root), diagnosis, "")
    assert [a.action for a in actions] == ["restore", "disable"]
    with pytest.raises(safewrite.WriteError, match="read-only filesystem: remount it read-write"):
        glibc_repair.apply(str(root), actions, BACKUPS)
    assert listing(root) == before


def test_loops_in_loader_configuration_do_not_stop_the_diagnosis(fresh):
    """A looping ld.so.conf directory, LD_LIBRARY_PATH entry or preload entry: the loader skips the
    first two; the preload entry is a finding. Nothing raises."""
    root = fresh("bookworm")
    (root / "opt/a").symlink_to("/opt/b")
    (root / "opt/b").symlink_to("/opt/a")
    (root / "etc/ld.so.conf.d/loop.conf").write_text("/opt/a\n")
    (root / "etc/environment").write_text("LD_LIBRARY_PATH=/opt/a/lib\n")
    (root / "etc/ld.so.preload").write_text("/opt/a/libx.so\n")

    found = glibc.diagnose(str(root)).findings

    assert [(f.path, f.problem, f.line) for f in found] == [("/etc/ld.so.preload", "config", 1)]
    assert "link loop" in found[0].detail


def test_one_line_naming_two_foreign_directories_is_disabled_once(fresh):
    root = fresh("bookworm")
    foreign = (tree("bullseye") / "lib/x86_64-linux-gnu/libc.so.6").resolve()
    for name in ("one", "two"):
        (root / f"opt/{name}").mkdir()
        shutil.copy2(foreign, root / f"opt/{name}/libc.so.6")
    (root / "etc/environment").write_text("LD_LIBRARY_PATH=/opt/one:/opt/two\n")
    diagnosis = glibc.diagnose(str(root))
    assert len(diagnosis.findings) == 2

    actions = glibc_repair.plan(str(root), diagnosis)

    assert [(a.path, a.action, a.line) for a in actions] == [("/etc/environment", "disable", 1)]


@pytest.mark.parametrize("fault", ["libc_foreign", "loader_link_removed"])
def test_without_a_database_a_soname_link_goes_back_to_the_versioned_file_beside_it(fresh, deadline, fault):
    """bullseye keeps the versioned layout (libc.so.6 -> libc-2.31.so), as RHEL 6 to 8 do: with the
    database gone, the link that now leads to a foreign glibc (or is gone) is pointed back at the
    file of the system's release beside it."""
    root = fresh("bullseye")
    shutil.rmtree(root / "var/lib/dpkg/info")
    (root / "var/lib/dpkg/status").unlink()
    plant_glibc(root, fault, *fault_args("bullseye", fault))
    with deadline(60):
        diagnosis = glibc.diagnose(str(root))
        assert diagnosis.identity.package == "" and diagnosis.identity.version == "2.31"
        actions = glibc_repair.plan(str(root), diagnosis, "")
        glibc_repair.apply(str(root), actions, BACKUPS)
    relinked = [a for a in actions if a.action == "relink"]
    assert relinked and all(a.source in ("the root's own file", "the root's file") for a in relinked), actions
    assert {a.after for a in relinked} <= {
        "link -> libc-2.31.so",
        "link -> ld-2.31.so",
        "link -> /lib/x86_64-linux-gnu/ld-2.31.so",
    }
    assert_repaired(root, "bullseye", diagnosis, actions)
