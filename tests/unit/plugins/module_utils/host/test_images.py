"""host.images: formats from real images qemu-img made, backing chains built node by node, and the
FUSE export a loop device attaches to, started and stopped for real (qemu-storage-daemon)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ansible_collections.lifeline.rescue.plugins.module_utils.attach.attachment import (
    AttachError,
    Attachment,
    undo,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.host import images
from ansible_collections.lifeline.rescue.plugins.module_utils.host.images import ImageError

from support.runners import run as tool_run

MIB = 1 << 20


def qemu_img(*argv: str | Path) -> str:
    done = subprocess.run(
        ["qemu-img", *map(str, argv)], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout


def made(tmp_path: Path, name: str, fmt: str, *options: str, size: str = "8M") -> Path:
    path = tmp_path / name
    qemu_img("create", "-q", "-f", fmt, *options, path, size)
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo", encoding="utf-8") as handle:
        return any(line.split()[4] == path for line in handle)


# ---- formats --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options", "expected"),
    [
        ("raw", (), "raw"),
        ("qcow2", (), "qcow2"),
        ("qcow2", ("-o", "compat=0.10"), "qcow2"),
        ("vmdk", (), "vmdk"),
        ("vmdk", ("-o", "subformat=streamOptimized"), "vmdk"),
        ("vmdk", ("-o", "subformat=monolithicFlat"), "vmdk"),
        ("vhdx", (), "vhdx"),
        ("vpc", (), "vpc"),
        ("vpc", ("-o", "subformat=fixed"), "vpc"),
        ("vdi", (), "vdi"),
        ("qcow", (), "qcow"),
        ("qed", (), "qed"),
    ],
    ids=lambda v: "-".join(v) if isinstance(v, tuple) else v,
)
def test_the_format_is_what_qemu_img_made(tmp_path, fmt, options, expected):
    image = made(tmp_path, f"disk.{fmt}", fmt, *options)

    assert images.format_of(*images.read_ends(str(image))) == expected
    # qemu's own probe agrees (it is never asked when lifeline attaches), but for a fixed VHD,
    # whose only header is its last sector: qemu's probe reads the start and says raw.
    probed = json.loads(qemu_img("info", "--output=json", image))["format"]
    assert probed == ("raw" if "subformat=fixed" in options else fmt)


def test_the_name_says_nothing(tmp_path):
    image = made(tmp_path, "vm-108-disk-1.raw", "qcow2")

    assert images.inspect(tool_run, str(image)).format == "qcow2"


def test_a_raw_disk_whose_guest_wrote_a_qcow2_header_is_raw_only_when_forced(tmp_path):
    secret = tmp_path / "shadow"  # a host file the guest would like to read
    secret.write_text("root:$6$salt$hash:19000:0:99999:7:::\n" * 25)
    header = made(tmp_path, "header.qcow2", "qcow2", "-b", str(secret), "-F", "raw", "-u")
    disk = tmp_path / "guest.raw"
    with open(disk, "wb") as handle:
        handle.write(header.read_bytes())
        handle.truncate(8 * MIB)

    # By its header it is a qcow2 overlay of a file that is not an image: refused, never followed.
    with pytest.raises(ImageError, match=rf"{secret} as its backing file, which is not a disk image"):
        images.inspect(tool_run, str(disk))
    forced = images.inspect(tool_run, str(disk), forced="raw")
    assert (forced.format, forced.header_says, forced.exported) == ("raw", "qcow2", False)
    assert forced.detected_by == "target_image_format"


@pytest.mark.parametrize("fmt", ["qcow", "qed"])
def test_formats_lifeline_does_not_attach_are_refused_with_a_way_out(tmp_path, fmt):
    image = made(tmp_path, f"old.{fmt}", fmt)

    with pytest.raises(
        ImageError, match=rf"does not attach: convert it \(qemu-img convert -f {fmt} -O qcow2"
    ):
        images.inspect(tool_run, str(image))


def test_an_unknown_forced_format_is_refused(tmp_path):
    image = made(tmp_path, "disk.raw", "raw")

    with pytest.raises(ImageError, match="target_image_format=iso is not one of"):
        images.inspect(tool_run, str(image), forced="iso")


@pytest.mark.parametrize(
    "make", [lambda p: os.mkfifo(p), lambda p: p.symlink_to("/etc/hostname")], ids=["fifo", "link"]
)
def test_what_is_not_a_regular_file_is_refused_without_blocking(tmp_path, make):
    path = tmp_path / "disk"
    make(path)

    with pytest.raises(ImageError, match=r"not a regular file|cannot be opened"):
        images.read_ends(str(path))


# ---- backing chains -------------------------------------------------------------------------------


def test_a_chain_is_followed_with_each_layer_s_format_and_snapshots_are_listed(tmp_path):
    base = made(tmp_path, "base.raw", "raw")
    middle = made(tmp_path, "middle.qcow2", "qcow2", "-b", "base.raw", "-F", "raw")
    top = made(tmp_path, "top.qcow2", "qcow2", "-b", str(middle), "-F", "qcow2")
    qemu_img("snapshot", "-c", "before-upgrade", top)

    image = images.inspect(tool_run, str(top))

    assert [(layer.path, layer.format) for layer in image.layers] == [
        (str(top), "qcow2"),
        (str(middle), "qcow2"),
        (str(base), "raw"),
    ]
    assert image.backing_chain == [str(middle), str(base)]
    assert image.snapshots == ["before-upgrade"]
    assert image.virtual_size == 8 * MIB
    assert images.qcow2_backing(images.read_ends(str(top))[0]) == (str(middle), "qcow2")


def test_an_overlay_without_a_recorded_backing_format_uses_the_backing_file_s_header(tmp_path):
    made(tmp_path, "base.qcow2", "qcow2")
    top = made(tmp_path, "top.qcow2", "qcow2", "-b", "base.qcow2", "-F", "qcow2")
    # Old qemu recorded no backing format: the header extension that holds it is renamed away.
    header = bytearray(top.read_bytes())
    at = header.index(images.QCOW2_BACKING_FORMAT_EXTENSION.to_bytes(4, "big"))
    header[at : at + 4] = b"\x6c\x69\x66\x65"
    top.write_bytes(bytes(header))
    assert images.qcow2_backing(bytes(header[:4096])) == ("base.qcow2", "")

    image = images.inspect(tool_run, str(top))

    assert [(layer.format, layer.detected_by) for layer in image.layers] == [
        ("qcow2", "header"),
        ("qcow2", "header"),
    ]


def test_a_backing_file_replaced_by_another_format_is_refused(tmp_path):
    made(tmp_path, "base.img", "qcow2")
    top = made(tmp_path, "top.qcow2", "qcow2", "-b", "base.img", "-F", "qcow2")
    made(tmp_path, "base.img", "vdi")  # the file the overlay names is now something else

    with pytest.raises(ImageError, match="its header says vdi"):
        images.inspect(tool_run, str(top))


@pytest.mark.parametrize(
    ("backing", "why"),
    [
        ("nbd://127.0.0.1/export", "a protocol or option string"),
        ("/dev/null", "not a regular file"),
        ("missing.qcow2", "cannot be read"),
    ],
)
def test_backing_files_that_are_not_plain_files_are_refused(tmp_path, backing, why):
    top = made(tmp_path, "top.qcow2", "qcow2", "-u", "-b", backing, "-F", "raw")

    with pytest.raises(ImageError, match=why):
        images.inspect(tool_run, str(top))


def test_a_chain_that_loops_is_refused(tmp_path):
    first = made(tmp_path, "a.qcow2", "qcow2")
    made(tmp_path, "b.qcow2", "qcow2", "-b", "a.qcow2", "-F", "qcow2")
    qemu_img("rebase", "-u", "-F", "qcow2", "-b", "b.qcow2", first)

    with pytest.raises(ImageError, match="loops back"):
        images.inspect(tool_run, str(first))


def test_overlays_built_on_an_image_are_found_beside_it(tmp_path):
    base = made(tmp_path, "base.qcow2", "qcow2")
    made(tmp_path, "web1.qcow2", "qcow2", "-b", "base.qcow2", "-F", "qcow2")
    made(tmp_path, "web2.qcow2", "qcow2", "-b", str(base), "-F", "qcow2")
    made(tmp_path, "other.qcow2", "qcow2")
    (tmp_path / "notes.txt").write_text("QFI")

    assert images.overlays_of(str(base)) == [str(tmp_path / "web1.qcow2"), str(tmp_path / "web2.qcow2")]
    assert images.overlays_of(str(tmp_path / "other.qcow2")) == []


# ---- the export -----------------------------------------------------------------------------------


@pytest.fixture
def job(tmp_path):
    """An Attachment whose export files are named after this test's own state file."""
    attachment = Attachment(
        run=tool_run, mount_point=str(tmp_path / "mnt"), state_file=str(tmp_path / f"{tmp_path.name}.json")
    )
    yield attachment
    for step in reversed(attachment.steps):  # whatever a failing test left
        if step["action"] == "export":
            pid = images.export_pid(step["pidfile"], step["file"])
            if pid:
                os.kill(pid, signal.SIGKILL)
            subprocess.run(["umount", "-l", step["file"]], capture_output=True, check=False, timeout=60)
            for path in (step["file"], step["pidfile"]):
                Path(path).unlink(missing_ok=True)


def test_an_overlay_is_written_through_its_export_and_its_backing_file_is_not(tmp_path, job):
    base = made(tmp_path, "base.raw", "raw")
    top = made(tmp_path, "top.qcow2", "qcow2", "-b", "base.raw", "-F", "raw")
    base_before = sha256(base)

    exported = job.export_image(images.inspect(tool_run, str(top)))
    with open(exported, "r+b") as handle:
        handle.seek(3 * MIB)
        handle.write(b"written through the export")
    done, left = undo(tool_run, job.steps)

    assert left == [] and done == [f"stopped the export of {top} ({exported})"]
    assert not os.path.exists(exported) and not mounted(exported)
    assert sha256(base) == base_before
    raw = tmp_path / "back.raw"
    qemu_img("convert", "-f", "qcow2", "-O", "raw", top, raw)
    with open(raw, "rb") as handle:
        handle.seek(3 * MIB)
        assert handle.read(26) == b"written through the export"


def test_a_read_only_export_cannot_be_written_and_leaves_the_image_as_it_was(tmp_path, job):
    top = made(tmp_path, "disk.vhdx", "vhdx")
    before = sha256(top)
    job.readonly = True

    exported = job.export_image(images.inspect(tool_run, str(top), readonly=True))
    with pytest.raises(OSError), open(exported, "r+b") as handle:
        handle.write(b"x")
    assert os.path.getsize(exported) == 8 * MIB
    undo(tool_run, job.steps)

    assert sha256(top) == before


def test_an_image_another_program_writes_is_exported_only_read_only(tmp_path, job):
    image = made(tmp_path, "guest.qcow2", "qcow2")
    # A guest's qemu holds the image with qemu's own lock.
    guest = subprocess.Popen(
        ["qemu-io", "-f", "qcow2", str(image)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not any(h.pid == guest.pid for h in _holders(image)) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises((AttachError, ImageError), match="locked by another program"):
            job.export_image(images.inspect(tool_run, str(image)))
        job.readonly = True
        exported = job.export_image(images.inspect(tool_run, str(image), readonly=True))
        assert os.path.getsize(exported) == 8 * MIB
    finally:
        guest.communicate(b"quit\n", timeout=30)
    undo(tool_run, job.steps)


def _holders(image: Path):
    from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts

    st = image.stat()
    return mounts.holders(files=[(st.st_dev, st.st_ino)])


def test_a_daemon_killed_outright_is_found_and_its_mount_removed(tmp_path, job):
    image = made(tmp_path, "disk.vdi", "vdi")
    exported = job.export_image(images.inspect(tool_run, str(image)))
    [step] = [s for s in job.steps if s["action"] == "export"]
    pid = images.export_pid(step["pidfile"], exported)
    os.unlink(step["pidfile"])  # a run killed before it read the pid file: found by command line
    assert images.export_pid(step["pidfile"], exported) == pid

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while os.path.exists(f"/proc/{pid}/exe") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mounted(exported), "a killed FUSE server leaves its mount"
    done, left = undo(tool_run, job.steps)

    assert left == [] and done == [f"stopped the export of {image} ({exported})"]
    assert not mounted(exported) and not os.path.exists(exported)


def test_the_export_names_every_layer_s_format_and_never_lets_qemu_probe(tmp_path):
    base = made(tmp_path, "base.raw", "raw")
    top = made(tmp_path, "top.qcow2", "qcow2", "-b", "base.raw", "-F", "raw")

    argv = images.export_argv(images.inspect(tool_run, str(top)), "/x.raw", "/x.pid", readonly=False)
    nodes = [json.loads(argv[i + 1]) for i, arg in enumerate(argv) if arg == "--blockdev"]

    assert [(n["driver"], n.get("filename", n.get("file"))) for n in nodes] == [
        ("file", str(base)),
        ("raw", "file1"),
        ("file", str(top)),
        ("qcow2", "file0"),
    ]
    assert nodes[3]["backing"] == "layer1" and "backing" not in nodes[1]
    assert [n.get("read-only", False) for n in nodes] == [True, True, False, False]
    assert json.loads(argv[-1])["writable"] is True
