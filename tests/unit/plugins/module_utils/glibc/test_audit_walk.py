"""The audit walks each directory once and reads only what it must, yet finds exactly what the audit
that resolved every file component by component found: on real Debian trees, busy servers and
hostile roots."""

from __future__ import annotations

import gc
import os
import shutil
import stat
from dataclasses import asdict
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.glibc import audit, loader
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

from support.trees import SUITES, busy_server, debian_tree

LIBDIR = "usr/lib/x86_64-linux-gnu"


class FreshLoader(loader.RootLoader):
    """Every path resolved afresh, nothing remembered between lookups."""

    def real(self, inside: str) -> str:
        return rootfs.resolve(self.root, inside).inside

    def lexists(self, inside: str) -> bool:
        return rootfs.lexists(self.root, inside)


def resolving_walk(root: str, dirs: tuple[str, ...]):
    """The walk the audit made before: os.walk, each directory's entries looked up one by one."""
    seen: set[tuple[int, int]] = set()
    for top in dirs:
        where = rootfs.resolve(root, top)
        try:
            st = os.stat(where.host)
        except OSError:
            continue
        if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        for dirpath, dirnames, filenames in os.walk(where.host):
            rel = os.path.relpath(dirpath, root)
            inside_dir = "/" if rel == "." else "/" + rel
            kept = []
            for name in dirnames:
                sub = os.path.join(inside_dir, name)
                st = os.lstat(os.path.join(dirpath, name))
                if sub in audit.SKIP_DIRS or (st.st_dev, st.st_ino) in seen:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    yield sub, True
                    continue
                seen.add((st.st_dev, st.st_ino))
                kept.append(name)
            dirnames[:] = kept
            for name in filenames:
                path = os.path.join(dirpath, name)
                yield os.path.join(inside_dir, name), os.path.islink(path)


def resolving_audit(root: str, extra_dirs: tuple[str, ...] = ()) -> audit.Audit:
    """The audit as it was: every walked file resolved inside the root before it is read."""
    rl = FreshLoader(root)
    result = audit.Audit(root=root, config_problems=list(rl.problems))
    for inside, is_link in resolving_walk(root, (*audit.SCAN_DIRS, *extra_dirs)):
        if is_link:
            problem = audit.link_problem(root, inside)
            if problem:
                result.links.append(problem)
            continue
        report = audit.audit_file(rl, inside)
        if report:
            result.files.append(report)
    return result


def outcome(run, root: str, extra_dirs: tuple[str, ...] = ()) -> dict:
    """What an audit found, order aside; or the error it stopped with."""
    try:
        found = run(root, extra_dirs)
    except rootfs.RootError as exc:
        return {"error": str(exc)}
    return {
        "files": {f.path: asdict(f) for f in found.files},
        "links": sorted(found.links),
        "config_problems": found.config_problems,
        "summary": found.summary(),
    }


def assert_same_audit(root: Path, extra_dirs: tuple[str, ...] = ()) -> dict:
    walked = outcome(audit.audit_root, str(root), extra_dirs)
    resolved = outcome(resolving_audit, str(root), extra_dirs)
    assert walked.keys() == resolved.keys()
    if "files" in walked:
        assert walked["files"].keys() == resolved["files"].keys()
        differ = [p for p in walked["files"] if walked["files"][p] != resolved["files"][p]]
        assert differ == [], [(walked["files"][p], resolved["files"][p]) for p in differ[:3]]
    assert walked == resolved
    return walked


@pytest.mark.parametrize("suite", SUITES)
def test_the_same_findings_on_a_debian_tree(suite, deadline):
    with deadline(120):
        found = assert_same_audit(debian_tree(suite))
    assert found["summary"]["elf_files"] > 500


@pytest.mark.parametrize("suite", SUITES)
def test_the_same_findings_on_a_busy_server(suite, deadline):
    with deadline(240):
        found = assert_same_audit(busy_server(suite))
    assert found["summary"]["elf_files"] > 1500


def plant_hostile_entries(root: Path) -> None:
    """What a damaged or hostile root holds under the audited directories."""
    lib, bin_ = root / LIBDIR, root / "usr" / "bin"
    libc = (lib / "libc.so.6").read_bytes()
    os.mkfifo(bin_ / "fifo")
    os.mknod(bin_ / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.symlink("libgone.so.1.0", lib / "libgone.so.1")
    os.symlink("../../../../../../etc/passwd", lib / "libescape.so.1")
    os.symlink("/etc/shadow", lib / "libabsolute.so.1")
    os.symlink("libloop.so.2", lib / "libloop.so.1")
    os.symlink("libloop.so.1", lib / "libloop.so.2")
    os.symlink(".", lib / "self")
    os.symlink("../../..", lib / "up")
    os.symlink("/usr/bin", lib / "bin-again")
    (lib / "libtruncated.so.1").write_bytes(libc[:4096])
    (lib / "libmagic.so.1").write_bytes(b"\x7fELF")
    (lib / "empty").write_bytes(b"")
    os.link(lib / "libc.so.6", bin_ / "libc-hardlink")
    (root / "usr/lib/debug").mkdir()
    (root / "usr/lib/debug/libc.so.6").write_bytes(libc[:100])
    for name in (os.fsdecode(b"bad-\xff-name"), "new\nline", "-dash", " space"):
        shutil.copy2(bin_ / "true", bin_ / name)
    deep = root / "usr/libexec"
    for level in range(120):
        deep = deep / f"d{level}"
    deep.mkdir(parents=True)
    shutil.copy2(bin_ / "true", deep / "true")
    (root / "srv/app").mkdir(parents=True)
    os.symlink("/usr/bin/true", root / "srv/app/tool")
    shutil.copy2(bin_ / "dash", root / "srv/app/sh")


def test_the_same_findings_on_a_hostile_root(small_root, deadline):
    plant_hostile_entries(small_root)
    with deadline(60):
        found = assert_same_audit(small_root, ("/srv/app", "/usr/bin", "/usr/lib/debug", "/nowhere"))

    # The fixture did put what it meant in front of both audits.
    broken = {p: f["problems"] for p, f in found["files"].items() if f["problems"]}
    assert broken["/usr/bin/fifo"] == ["damaged ELF file: not a regular file (a device, FIFO or socket)"]
    assert broken["/usr/bin/null"] == ["damaged ELF file: not a regular file (a device, FIFO or socket)"]
    assert broken[f"/{LIBDIR}/libtruncated.so.1"][0].startswith("damaged ELF file")
    assert "/usr/lib/debug/libc.so.6" in found["files"]  # named explicitly, so audited
    assert "/usr/libexec/" + "/".join(f"d{n}" for n in range(120)) + "/true" in found["files"]
    assert any(p.startswith(f"/{LIBDIR}/libloop.so.1: too many levels") for p in found["links"])
    assert any(p.startswith(f"/{LIBDIR}/libescape.so.1: climbs out of the root") for p in found["links"])


@pytest.mark.parametrize(
    "links",
    [
        pytest.param({"opt": "opt"}, id="a scanned directory that is a link to itself"),
        pytest.param({"opt": "../../../.."}, id="a scanned directory climbing out (resolves to /)"),
        pytest.param({"usr/local": "/usr"}, id="a scanned directory leading to another"),
    ],
)
def test_the_same_findings_when_the_scanned_directories_are_links(small_root, deadline, links):
    for name, target in links.items():
        path = small_root / name
        if path.is_dir() and not path.is_symlink():
            path.rmdir()
        os.symlink(target, path)
    with deadline(60):
        assert_same_audit(small_root)


def count_calls(monkeypatch, module, name: str) -> list[str]:
    """The first arguments of every call of ``module.name`` from now on."""
    calls: list[str] = []
    real = getattr(module, name)

    def counted(path, *args, **kwargs):
        calls.append(os.fsdecode(path) if isinstance(path, (str, bytes)) else str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_a_file_costs_one_look_and_only_regular_files_are_opened(small_root, monkeypatch, deadline):
    """Thousands of data files: one lstat each (before its open, which refuses a device swapped
    in), never a lookup of each of their directories again; a FIFO and a device are never opened."""
    data = small_root / "usr/lib/data"
    for group in range(20):
        (data / str(group)).mkdir(parents=True)
        for number in range(100):
            (data / str(group) / f"file{number}.txt").write_text("not ELF\n")
    os.mkfifo(small_root / "usr/bin/fifo")
    os.mknod(small_root / "usr/bin/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    lstats = count_calls(monkeypatch, os, "lstat")
    opens = count_calls(monkeypatch, os, "open")

    with deadline(60):
        found = audit.audit_root(str(small_root))

    assert found.summary()["elf_files"] == 6  # the four copied, the FIFO and the device
    assert not [p for p in opens if p.endswith(("/usr/bin/fifo", "/usr/bin/null"))]
    assert len([p for p in opens if "/usr/lib/data/" in p]) == 2000
    assert len([p for p in lstats if "/usr/lib/data/" in p]) == 2000
    assert len(lstats) < 2000 + 100, f"{len(lstats)} lstat calls for 2,000 data files and 6 others"


@pytest.mark.parametrize("enabled", [True, False])
def test_the_cycle_collector_is_left_as_it_was(small_root, enabled):
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        audit.audit_root(str(small_root))
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_the_cycle_collector_comes_back_after_an_audit_error(small_root):
    os.symlink("opt", small_root / "opt")
    assert gc.isenabled()
    with pytest.raises(rootfs.RootError):
        audit.audit_root(str(small_root))
    assert gc.isenabled()
