#!/usr/bin/env python3
"""Benchmark: attaching and detaching the same root as a raw, a qcow2 and a vmdk disk image, against
the manual workaround for a qcow2 (a full `qemu-img convert -O raw` before a raw attach).

    .venv/bin/python tools/bench/attach-formats.py [ROUNDS] [SUITE]   (root; default 5, bookworm)

The root (the suite's cached tree) is put into a raw disk image (msdos, ext4) and converted with
qemu-img; each image is attached and detached ROUNDS times by the engine rescue_attach and
rescue_detach run (attach.target.attach, then attachment.undo). Prints the medians, the ratio
qcow2/raw, and the ratio of a qcow2's attach and detach to one full conversion of it. Every round
must find the root, and leave no loop device, FUSE mount, storage daemon or record behind; the
script fails otherwise. Works under .cache/bench/attach-formats.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / ".collections"))
sys.path.insert(0, str(REPO / "tests"))

from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import (  # noqa: E402
    Attachment,
    state_file_for,
    undo,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.target import attach  # noqa: E402
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import ToolError  # noqa: E402

from support import images  # noqa: E402

CACHE = Path(os.environ.get("LIFELINE_CACHE", "/var/cache/lifeline"))
TREES = Path(os.environ.get("LIFELINE_TREES", CACHE / "trees"))
WORK = REPO / ".cache" / "bench" / "attach-formats"
FORMATS = ("raw", "qcow2", "vmdk")
TOOL_TIMEOUT = 300
# What module_runner gives a tool: LC_ALL=C, and the sbin directories.
ENV = {**os.environ, "LC_ALL": "C", "PATH": f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"}


def run(argv: list[str]) -> str:
    """The Runner contract (host/runner.py) over the real tools, each with a timeout."""
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=TOOL_TIMEOUT, check=False)
    if done.returncode != 0:
        raise ToolError(
            f"{' '.join(argv)} failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def make_images(suite: str) -> dict[str, Path]:
    """The suite's tree as a raw disk image and as each other format of FORMATS."""
    root = WORK / "root"
    subprocess.run(["cp", "-a", str(TREES / suite), str(root)], check=True, timeout=TOOL_TIMEOUT)
    made = {"raw": WORK / "disk.raw"}
    images.disk_image(root, made["raw"])
    shutil.rmtree(root)
    for fmt in FORMATS[1:]:
        made[fmt] = images.convert(made["raw"], WORK / f"disk.{fmt}", fmt)
    return made


def attach_and_detach(image: Path, point: Path) -> tuple[float, float]:
    """(seconds to attach, seconds to detach) of one round; fails unless the root was found and
    nothing was left."""
    before = images.host_state()
    job = Attachment(run=run, mount_point=str(point), state_file=state_file_for(str(point)))
    start = time.perf_counter()
    attach(job, "image", str(image), fstab_mounts=[])
    attached = time.perf_counter()
    found = (point / "etc" / "os-release").is_file()
    undo(run, job.steps)
    os.unlink(job.state_file)
    detached = time.perf_counter()
    if not found:
        raise SystemExit(f"bench/attach-formats.py: {image} attached, but no root at {point}")
    left = images.left_behind(before, images.host_state(), WORK)
    if left:
        raise SystemExit(f"bench/attach-formats.py: {image} left behind: {left}")
    return attached - start, detached - attached


def convert_once(qcow2: Path) -> float:
    """Seconds for the manual workaround's first step: the whole qcow2 written out as a raw file."""
    target = WORK / "converted.raw"
    start = time.perf_counter()
    images.convert(qcow2, target, "raw", source_format="qcow2")
    took = time.perf_counter() - start
    target.unlink()
    return took


def main(argv: list[str]) -> int:
    rounds = int(argv[0]) if argv else 5
    suite = argv[1] if len(argv) > 1 else "bookworm"
    if os.geteuid() != 0:
        print("bench/attach-formats.py: needs root (loop devices, mounts)", file=sys.stderr)
        return 2
    if not (TREES / suite / "etc" / "os-release").exists():
        print(f"bench/attach-formats.py: no tree at {TREES / suite}: run `make images`", file=sys.stderr)
        return 2
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    made = make_images(suite)
    point = WORK / "mnt"
    medians: dict[str, tuple[float, float]] = {}
    print(f"{suite}, {images.DISK_MIB} MiB disk, median of {rounds} rounds")
    print(f"{'format':8} {'attach':>9} {'detach':>9} {'total':>9}")
    for fmt in FORMATS:
        timings = [attach_and_detach(made[fmt], point) for _ in range(rounds)]
        medians[fmt] = (
            statistics.median(t[0] for t in timings),
            statistics.median(t[1] for t in timings),
        )
        attach_s, detach_s = medians[fmt]
        print(f"{fmt:8} {attach_s:8.2f}s {detach_s:8.2f}s {attach_s + detach_s:8.2f}s")
    total = {fmt: sum(pair) for fmt, pair in medians.items()}
    converting = statistics.median(convert_once(made["qcow2"]) for _ in range(rounds))
    print(f"qcow2/raw (attach + detach): {total['qcow2'] / total['raw']:.2f}")
    print(f"vmdk/raw (attach + detach): {total['vmdk'] / total['raw']:.2f}")
    data_mib = made["qcow2"].stat().st_blocks * 512 / (1 << 20)
    print(
        f"qemu-img convert -O raw of the qcow2 ({data_mib:.0f} MiB of data, "
        f"{data_mib / converting:.0f} MiB/s): {converting:.2f}s; "
        f"qcow2 attach + detach / convert: {total['qcow2'] / converting:.2f}"
    )
    print(
        "  the convert grows with the disk's data, the attach does not; and it is only the workaround's "
        "first step: the copy must still be attached, and written back after the repair"
    )
    shutil.rmtree(WORK)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
