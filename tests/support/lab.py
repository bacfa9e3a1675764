"""Loop devices and mounts a test makes and always undoes (the ``lab`` fixture: a test module loads it
with ``pytest_plugins = ("support.lab",)``), and what tools other than the code under test say about
a device: its UUID, its size, its filesystem's size, its bytes' hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from support.runners import sh

MIB = 1 << 20


def sha256(path: str | Path, limit: int | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        digest.update(handle.read(limit) if limit else handle.read())
    return digest.hexdigest()


def uuid_of(device: str) -> str:
    return sh("blkid", "--probe", "--match-tag", "UUID", "--output", "value", device).stdout.strip()


def size_of(device: str) -> int:
    return int(sh("blockdev", "--getsize64", device).stdout)


def ext_size(device: str) -> int:
    fields = dict(
        line.split(":", 1) for line in sh("dumpe2fs", "-h", device).stdout.splitlines() if ":" in line
    )
    return int(fields["Block count"]) * int(fields["Block size"])


def xfs_size(device: str) -> int:
    out = sh("xfs_db", "-r", "-c", "sb 0", "-c", "print blocksize dblocks", device).stdout
    fields = dict(line.split(" = ") for line in out.splitlines())
    return int(fields["blocksize"]) * int(fields["dblocks"])


class Lab:
    """Loop devices and mounts under one directory of /var/tmp, all undone by cleanup()."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lifeline-rootcopy-", dir="/var/tmp"))
        self.loops: list[str] = []
        self.mounted: list[Path] = []

    def device(self, name: str, mib: int, fstype: str | None = None) -> str:
        image = self.root / f"{name}.img"
        with open(image, "wb") as handle:
            handle.truncate(mib * MIB)
        device = sh("losetup", "--find", "--show", str(image)).stdout.strip()
        assert device.startswith("/dev/loop"), device
        self.loops.append(device)
        if fstype:
            sh(f"mkfs.{fstype}", "-q", *(["-F"] if fstype != "xfs" else []), device)
        return device

    def mount(self, device: str, name: str, *options: str, fstype: str | None = None) -> Path:
        point = self.root / name
        point.mkdir(parents=True, exist_ok=True)
        typed = ["-t", fstype] if fstype else []
        sh("mount", *typed, *(["-o", ",".join(options)] if options else []), device, str(point))
        self.mounted.append(point)
        return point

    def umount(self, point: Path) -> None:
        sh("umount", str(point))
        self.mounted.remove(point)

    def cleanup(self) -> None:
        for point in reversed(self.mounted):
            if sh("umount", str(point), check=False).returncode != 0:
                sh("umount", "--lazy", str(point), check=False)
        for device in self.loops:
            # Partition mappings outlive a detached loop device and trip whoever attaches it next.
            sh("partx", "--delete", device, check=False)
            sh("losetup", "--detach", device, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def lab():
    work = Lab()
    try:
        yield work
    finally:
        work.cleanup()


def fill(top: Path, files: int, mib: int) -> None:
    """``files`` files of ``mib`` MiB of random bytes each (random, so no layer can skip them as zeros)."""
    block = os.urandom(MIB)
    for index in range(files):
        with open(top / f"data-{index:03}.bin", "wb") as handle:
            for _ in range(mib):
                handle.write(block)


def small_tree(top: Path) -> None:
    (top / "etc").mkdir()
    (top / "etc" / "hostname").write_text("copied\n")
    os.link(top / "etc" / "hostname", top / "etc" / "hostname.hard")
    os.symlink("hostname", top / "etc" / "link")
    fill(top, 3, 4)


def stamped(lab: Lab, name: str, mib: int) -> tuple[str, str]:
    """A device that starts with a known pattern, and the hash of its first MiB."""
    device = lab.device(name, mib)
    with open(device, "r+b") as handle:
        handle.write(b"\xaa" * MIB)
    return device, sha256(device, MIB)
