"""Disk images for the lanes that attach one: a raw disk made from a root without mounting anything,
the hypervisor formats qemu-img converts it into, and what the kernel and qemu-img say about an image
afterwards (read back through a scratch raw copy, never through the code under test)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The one partition of disk_image starts at sector 2048.
PARTITION_OFFSET = 1 << 20
DISK_MIB = 768
# Generous bounds for a tool working on a disk image of DISK_MIB.
TOOL_TIMEOUT = 300
# Where the attach code keeps its records and its exports of non-raw images.
STATE_DIR = Path("/run/lifeline/attachments")
EXPORT_DIR = Path("/run/lifeline/exports")
# The formats qemu-img writes and `qemu-img check` can check (vpc cannot be checked).
CHECKABLE = ("qcow2", "vmdk", "vhdx", "vdi")


def disk_image(root: Path, image: Path, size_mib: int = DISK_MIB) -> None:
    """A raw disk image (msdos label, one partition from 1 MiB) whose ext4 filesystem holds ``root``,
    made without a loop device: sfdisk on the file, mkfs.ext4 -d at the partition's offset."""
    fs_uuid = str(uuid.uuid4())
    (root / "etc/fstab").write_text(f"UUID={fs_uuid} / ext4 defaults 0 1\n")
    with open(image, "wb") as handle:
        handle.truncate(size_mib << 20)
    partition = "label: dos\nstart=2048, type=83\n"
    subprocess.run(["sfdisk", "-q", str(image)], input=partition, text=True, check=True, timeout=60)
    mkfs = ["mkfs.ext4", "-q", "-F", "-L", "root", "-U", fs_uuid, "-E", f"offset={PARTITION_OFFSET}"]
    subprocess.run(
        [*mkfs, "-d", str(root), str(image), f"{size_mib - 1}M"],
        check=True,
        capture_output=True,
        timeout=TOOL_TIMEOUT,
    )


def qemu_img(*args: str | Path) -> str:
    """qemu-img's output; the test fails with its own words when it fails."""
    done = subprocess.run(
        ["qemu-img", *map(str, args)], capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"qemu-img {' '.join(map(str, args))}: {done.stderr or done.stdout}"
    return done.stdout


def convert(source: Path, target: Path, fmt: str, source_format: str = "raw", *options: str) -> Path:
    """``source`` written as a ``fmt`` image at ``target``; ``options``: qemu-img -o (subformat=fixed)."""
    qemu_img(
        "convert",
        "-f",
        source_format,
        "-O",
        fmt,
        *(("-o", ",".join(options)) if options else ()),
        source,
        target,
    )
    return target


def info(image: Path, fmt: str = "") -> dict:
    """``qemu-img info`` of the image: the format its header says, unless ``fmt`` forces one."""
    forced = ["-f", fmt] if fmt else []
    return json.loads(qemu_img("info", "--output=json", "-U", *forced, image))


def check(image: Path) -> subprocess.CompletedProcess:
    """``qemu-img check``: exit 0 when the image's metadata is consistent and nothing leaks."""
    return subprocess.run(
        ["qemu-img", "check", str(image)], capture_output=True, text=True, timeout=TOOL_TIMEOUT, check=False
    )


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def read_back(image: Path, scratch: Path, *convert_args: str) -> Iterator[Path]:
    """The image's root as qemu-img reads it: converted to a scratch raw file (``convert_args`` pick a
    format or a snapshot), its partition mounted read-only from a loop device the mount makes and
    frees. Yields the mounted root."""
    scratch.mkdir(parents=True, exist_ok=True)
    raw = scratch / f"{image.name}.readback.raw"
    qemu_img("convert", "-U", *convert_args, "-O", "raw", image, raw)
    point = scratch / f"{image.name}.readback"
    point.mkdir()
    subprocess.run(
        ["mount", "-o", f"ro,noload,loop,offset={PARTITION_OFFSET}", str(raw), str(point)],
        check=True,
        timeout=60,
    )
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True, timeout=60)
        point.rmdir()
        raw.unlink()


# ---- what an attachment may leave behind ------------------------------------------------------------


@dataclass(frozen=True)
class HostState:
    """What the kernel and /proc show that an attachment makes: loop devices with their backing files,
    qemu-storage-daemon processes with their command lines, FUSE mounts, mounts anywhere, attachment
    records with their text, and export files."""

    loops: frozenset[tuple[str, str]]
    daemons: dict[int, str]
    fuse_mounts: frozenset[str]
    mounts: frozenset[str]
    state_files: dict[str, str]
    export_files: frozenset[str]


def loop_devices() -> set[tuple[str, str]]:
    """(device, backing file) of every loop device, from losetup."""
    done = subprocess.run(
        ["losetup", "--list", "--json", "--output", "NAME,BACK-FILE"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    listed = json.loads(done.stdout or '{"loopdevices": []}')["loopdevices"]
    return {(d["name"], d.get("back-file") or "") for d in listed}


def storage_daemons() -> dict[int, str]:
    """{pid: command line} of every qemu-storage-daemon, read from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if os.path.basename(argv[0]) == b"qemu-storage-daemon":
            found[int(entry)] = " ".join(a.decode("utf-8", "surrogateescape") for a in argv)
    return found


def mountinfo() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of every mount this process sees."""
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            fields = line.split()
            after = fields.index("-")
            found.append((fields[4].replace("\\040", " "), fields[after + 1]))
    return found


def _texts(directory: Path) -> dict[str, str]:
    found = {}
    for path in directory.glob("*") if directory.is_dir() else []:
        try:
            found[str(path)] = path.read_text(errors="replace")
        except OSError:
            found[str(path)] = ""
    return found


def host_state() -> HostState:
    mounted = mountinfo()
    return HostState(
        loops=frozenset(loop_devices()),
        daemons=storage_daemons(),
        fuse_mounts=frozenset(point for point, fstype in mounted if fstype.startswith("fuse")),
        mounts=frozenset(point for point, _ in mounted),
        state_files=_texts(STATE_DIR),
        export_files=frozenset(str(p) for p in EXPORT_DIR.glob("*")) if EXPORT_DIR.is_dir() else frozenset(),
    )


def left_behind(before: HostState, after: HostState, under: Path) -> dict[str, list]:
    """What ``after`` holds that ``before`` did not and an attachment of the images below ``under``
    made: loop devices backed by those images or by their export files, their storage daemons (their
    command line names the image), the attachment records of mount points below ``under``, the export
    files and FUSE mounts those daemons or records name, and mounts below ``under``. Other runs' (say,
    unit tests running beside this lane) are not counted. Empty when everything was undone."""
    top = str(under) + "/"
    daemons = {pid: argv for pid, argv in after.daemons.items() if pid not in before.daemons and top in argv}
    records = {
        path: text
        for path, text in after.state_files.items()
        if path not in before.state_files and top in text
    }
    named = " ".join([*daemons.values(), *records.values()])
    # An export is named after its attachment's record, whose name spells the mount point.
    slug = re.sub(r"[^A-Za-z0-9]+", "-", str(under)).strip("-")

    def ours(path: str) -> bool:
        return path in named or path.startswith(top) or os.path.basename(path).startswith(slug)

    exports = sorted(p for p in after.export_files - before.export_files if ours(p))
    fuse = sorted(p for p in after.fuse_mounts - before.fuse_mounts if ours(p))
    found = {
        "loop devices": sorted(
            loop
            for loop in after.loops - before.loops
            if loop[1].startswith(top) or loop[1] in exports or loop[1].removesuffix(" (deleted)") in exports
        ),
        "qemu-storage-daemon pids": sorted(daemons),
        "fuse mounts": fuse,
        "mounts": sorted(m for m in after.mounts - before.mounts if m.startswith(top)),
        "state files": sorted(records),
        "export files": exports,
    }
    return {what: items for what, items in found.items() if items}


def clean_up(leftovers: dict[str, list]) -> list[str]:
    """Undo by force what a failed test left (lazy unmounts, loop detach, daemons killed), so the next
    test starts clean; returns what could not be undone."""
    trouble = []

    def attempt(argv: list[str], must: bool = True) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 and must:
            trouble.append(f"{' '.join(argv)}: {done.stderr.strip()}")

    for point in sorted(leftovers.get("mounts", []), key=len, reverse=True):
        attempt(["umount", "-l", point])
    # The loop devices' own mounts sit below the test's directory: unmounted above.
    for device, _backing in leftovers.get("loop devices", []):
        attempt(["partx", "--delete", device], must=False)  # a disk without partitions has none
        attempt(["losetup", "--detach", device])
    for pid in leftovers.get("qemu-storage-daemon pids", []):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    for point in leftovers.get("fuse mounts", []):
        attempt(["umount", "-l", point])
    for path in leftovers.get("state files", []) + leftovers.get("export files", []):
        with contextlib.suppress(OSError):
            os.unlink(path)
    return trouble
