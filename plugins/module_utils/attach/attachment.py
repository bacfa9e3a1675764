# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attach a broken system's disk on a rescuer, record every step, and undo them in reverse.

Each reversible action (loop device, partition mappings, device nodes, volume group rename and
activation, mounts, directories) is appended to ``steps`` the moment it succeeds and written to a
state file, so a failure at any point, or a killed run, leaves an exact list of what to undo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import stat
import tempfile
import time
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks, images, luks, lvm, mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import DiskError, Volume
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner, ToolError
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

STATE_DIR = "/run/lifeline/attachments"
# Where block device nodes are looked for and made when missing.
DEV = "/dev"
# Where images that are not raw are shown as raw files (qemu-storage-daemon's FUSE exports).
EXPORT_DIR = "/run/lifeline/exports"
# The kernel file systems a chroot step needs, in mount order.
API_MOUNTS = (
    ("/dev", ["--bind", "/dev"]),
    ("/dev/pts", ["--bind", "/dev/pts"]),
    ("/proc", ["-t", "proc", "proc"]),
    ("/sys", ["-t", "sysfs", "sysfs"]),
    ("/run", ["--bind", "/run"]),
)
FSTAB_FSTYPES = (*disks.ROOT_FSTYPES, "vfat")


class AttachError(LifelineError):
    """Attaching or detaching failed; the message says what is wrong and what to do next."""


class NoRootFound(AttachError):
    """No volume found so far is the root: on a disk with LVM physical volumes, look inside them."""


def state_file_for(mount_point: str) -> str:
    """One state file per mount point: a readable name, made unique by a digest of the exact path."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", mount_point).strip("-") or "root"
    digest = hashlib.sha256(mount_point.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return f"{STATE_DIR}/{slug}-{digest}.json"


def write_state(state_file: str, mount_point: str, steps: list[dict], readonly: bool = False) -> None:
    """Record the steps of an attachment atomically: a crash leaves the old record or the new one."""
    os.makedirs(os.path.dirname(state_file), mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(state_file), prefix=".state-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"mount_point": mount_point, "readonly": readonly, "steps": steps}, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, state_file)


def read_state(state_file: str) -> tuple[str, list[dict], bool]:
    """(mount point, steps, whether read-only) of a state file; AttachError when it cannot be read."""
    try:
        with open(state_file, encoding="utf-8") as handle:
            record = json.load(handle)
        return record["mount_point"], list(record["steps"]), bool(record.get("readonly", False))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise AttachError(f"{state_file} cannot be read ({exc}): undo the attachment by hand") from exc


def _mount_argv(volume: Volume, options: list[str]) -> list[str]:
    """mount(8) arguments for a volume, without the target."""
    return ["-t", volume.fstype, "-o", ",".join(options), volume.device]


@dataclass
class Attachment:
    """The record of one attachment, and the engine that builds it."""

    run: Runner
    mount_point: str
    # Attach without writing a byte of the target: loop devices and exports read-only, filesystems
    # mounted without replaying their journals, volume groups activated without writing metadata.
    readonly: bool = False
    state_file: str = ""
    steps: list[dict] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    candidates: list[dict] = field(default_factory=list)
    not_mounted: list[str] = field(default_factory=list)
    root_volume: Volume | None = None
    image: images.Image | None = None
    # Unlocks the target's LUKS volumes; kept out of repr, and never written to the state file.
    luks_key: luks.Key | None = field(default=None, repr=False)

    # ---- recording -------------------------------------------------------------------------------

    def _record(self, step: dict, what: str) -> None:
        self.steps.append(step)
        self.plan.append(what)
        self._save()

    def _save(self) -> None:
        if self.state_file:
            write_state(self.state_file, self.mount_point, self.steps, self.readonly)

    # ---- the mount point -------------------------------------------------------------------------

    def prepare_mount_point(self) -> None:
        path = os.path.abspath(self.mount_point)
        if any(m.mount_point == path for m in mounts.read_mountinfo()):
            raise AttachError(
                f"{path} is already a mount point: choose another rescue_mount_point or unmount it"
            )
        missing = []
        probe = path
        while not os.path.lexists(probe):
            missing.insert(0, probe)
            probe = os.path.dirname(probe)
        if os.path.lexists(path):
            if os.path.islink(path) or not os.path.isdir(path):
                raise AttachError(f"{path} exists and is not a directory: choose another rescue_mount_point")
            if os.listdir(path):
                raise AttachError(f"{path} is not empty: choose another rescue_mount_point")
        for directory in missing:
            os.mkdir(directory, 0o755)
            self._record({"action": "mkdir", "path": directory}, f"created {directory}")

    # ---- preflight -------------------------------------------------------------------------------

    def refuse_busy_image(self, image: str) -> None:
        """Refuse an image already attached or open in another program (a running guest's qemu).

        A read-only look is allowed beside readers and writers alike: it is said in the plan, since
        what a writer changes meanwhile may be seen half written.
        """
        loops = disks.loops_backed_by(self.run, image)
        st = os.stat(image)
        users = mounts.holders(files=[(st.st_dev, st.st_ino)])
        if self.readonly:
            for user in users:
                self.plan.append(f"note: {user.describe()}: a running system may change it while it is read")
            return
        if loops:
            where = _mount_points_of(loops)
            raise AttachError(
                f"{image} is already attached as {', '.join(loops)}"
                + (f" and mounted at {', '.join(where)}" if where else "")
                + ": use target_root=<that mount point>, or unmount it and detach it (losetup -d) first"
            )
        if users:
            raise AttachError(
                f"{image} is in use by {'; '.join(h.describe() for h in users)}: stop it first "
                "(a running virtual machine must be powered off before its disk is repaired), or look "
                "without writing (target_readonly: true, or --check)"
            )

    def refuse_busy_device(self, device: str) -> None:
        numbers = disks.device_numbers(device)
        mounted = mounts.mounts_of_devices(mounts.read_mountinfo(), numbers, disks.device_nodes(device))
        if mounted:
            where = ", ".join(sorted({f"{m.source} on {m.mount_point}" for m in mounted}))
            raise AttachError(
                f"{device} is already mounted ({where}): use target_root=<mount point> or unmount it first"
            )
        stacked = disks.stacked_on(device)
        if stacked:
            raise AttachError(
                f"{device} is in use by {', '.join(stacked)} built on it (an LVM volume group or md array "
                "activated automatically?): deactivate it first (vgchange -an VG, mdadm --stop)"
            )
        rdevs = [os.makedev(*n) for n in numbers]
        users = mounts.holders(devices=rdevs)
        if self.readonly:
            for user in users:
                self.plan.append(f"note: {user.describe()}: a running system may change it while it is read")
            return
        if users:
            raise AttachError(
                f"{device} is in use by {'; '.join(h.describe() for h in users)}: stop it first, or look "
                "without writing (target_readonly: true, or --check)"
            )

    # ---- disks -----------------------------------------------------------------------------------

    def attach_loop(self, image: str, tries: int = 5) -> str:
        """A free loop device backed by ``image``.

        ``losetup --find --show IMAGE`` fails with ENOENT in a container whose static /dev lacks the
        node of the number the kernel hands out (loop devices the host or other containers attached
        since it started): the free device is asked for first, its node made, then attached; another
        attacher taking that number meanwhile makes it busy, and the next free one is asked for.
        """
        for attempt in range(1, tries + 1):
            name = os.path.basename(self.run(["losetup", "--find"]).strip())
            with open(f"/sys/class/block/{name}/dev", encoding="ascii") as handle:
                loop = self._device_node(name, handle.read().strip())
            try:
                self.run(["losetup", *(["--read-only"] if self.readonly else []), loop, image])
                break
            except ToolError as exc:
                if "busy" not in str(exc) or attempt == tries:
                    raise
        # The backing file is recorded by identity too: the detach must work from any directory,
        # and must not detach a loop device that was since reused for another file.
        step = {"action": "loop", "device": loop, "backing": image, "backing_id": disks.file_id(image)}
        self._record(step, f"attached {image} to {loop}{' read-only' if self.readonly else ''}")
        return loop

    def export_image(self, image: images.Image) -> str:
        """A raw view of an image that is not raw: a file qemu-storage-daemon serves through FUSE.

        The step is recorded before the daemon starts, so a run killed at any moment leaves a record
        that finds the daemon (its pid file, else its command line) and stops it.
        """
        os.makedirs(EXPORT_DIR, mode=0o700, exist_ok=True)
        base = os.path.join(EXPORT_DIR, os.path.basename(self.state_file or "export").replace(".json", ""))
        mount_file, pidfile = f"{base}.raw", f"{base}.pid"
        for stale in (mount_file, pidfile):
            if os.path.lexists(stale) and not os.path.ismount(stale):
                os.unlink(stale)  # left by a run whose record is gone: nothing serves it
        if os.path.ismount(mount_file):
            raise AttachError(
                f"{mount_file} is still served by an earlier run whose record is gone: stop it "
                f"(umount {mount_file}; kill the qemu-storage-daemon serving it) and run again"
            )
        with open(mount_file, "x", encoding="ascii"):
            pass  # a FUSE export is mounted over a regular file
        step = {"action": "export", "file": mount_file, "pidfile": pidfile, "image": image.path}
        mode = "read-only" if self.readonly else "read-write"
        self._record(step, f"exported {image.path} ({image.format}) {mode} as the raw file {mount_file}")
        try:
            self.run(images.export_argv(image, mount_file, pidfile, self.readonly))
        except ToolError as exc:
            raise AttachError(images.lock_words(image.path, str(exc))) from exc
        return mount_file

    def map_partitions(self, disk: str, is_loop: bool) -> None:
        """Give every partition volume its device node, asking the kernel for the mappings if needed."""
        wanted = [v for v in self.volumes if v.number]
        if not wanted:
            for volume in self.volumes:
                volume.device = disk
            return
        known = disks.partition_nodes(disk)
        # A loop device this run attached can still carry the mappings of the image its number
        # held before (they outlive a detach): --update makes them the ones this image's table says.
        if not known or is_loop:
            self.run(["partx", "--update" if known else "--add", disk])
            self._record({"action": "partitions", "device": disk}, f"added partition mappings of {disk}")
            known = disks.partition_nodes(disk)
        for volume in wanted:
            if volume.number not in known:
                hint = "" if is_loop else " (partprobe or partx -u may be needed)"
                raise AttachError(f"the kernel shows no partition {volume.number} on {disk}{hint}")
            name, majmin = known[volume.number]
            volume.device = self._device_node(name, majmin)

    def _device_node(self, name: str, majmin: str) -> str:
        """/dev/NAME for a kernel block device, created when this system's /dev lacks it (a container).

        A static /dev (a container's, copied from its host when it started) can hold a node of that
        name left from an earlier use of the number: the kernel hands partition numbers out anew,
        so a block node naming another device is stale and is made again."""
        path = os.path.join(DEV, name)
        major, _colon, minor = majmin.partition(":")
        rdev = os.makedev(int(major), int(minor))
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISBLK(st.st_mode):
            raise AttachError(f"{path} exists but is not a block device: remove it or fix /dev")
        if st is not None and st.st_rdev == rdev:
            return path
        if st is not None:
            os.unlink(path)
        os.mknod(path, 0o660 | stat.S_IFBLK, rdev)
        made = "created" if st is None else "replaced the stale"
        self._record({"action": "node", "path": path, "rdev": majmin}, f"{made} device node {path}")
        return path

    # ---- finding the root ------------------------------------------------------------------------

    def choose_root(self, target_partition: str) -> tuple[Volume, str]:
        """(volume, btrfs subvolume or "") that holds the target's root."""
        if target_partition:
            chosen = [v for v in self.volumes if v.matches(target_partition)]
            if len(chosen) != 1:
                raise (NoRootFound if not chosen else AttachError)(
                    f"target_partition={target_partition} names {'no' if not chosen else 'more than one'} "
                    f"volume on the target; it has: {_listing(self.volumes)}"
                )
            volume = chosen[0]
            if not disks.mountable(volume):
                raise AttachError(
                    f"target_partition={target_partition} is {volume.describe()}: not a root filesystem"
                )
            evidence = self._probe_root(volume)
            return volume, evidence.get("subvolume", "")
        found = []
        for volume in self.volumes:
            if not disks.mountable(volume):
                continue
            evidence = self._probe_root(volume)
            self.candidates.append({"volume": volume.describe(), **evidence})
            if evidence.get("root"):
                found.append((volume, evidence))
        if len(found) == 1:
            return found[0][0], found[0][1].get("subvolume", "")
        if found:
            names = "; ".join(f"{v.describe()} ({e.get('os') or 'unknown system'})" for v, e in found)
            raise AttachError(
                f"several filesystems hold a Linux root (etc/os-release and etc/fstab): {names}. "
                "Name the broken one with target_partition (a partition number, UUID=..., LABEL=... or VG/LV)"
            )
        probed = "; ".join(f"{c['volume']}: {c.get('why', '')}" for c in self.candidates) or _listing(
            self.volumes
        )
        raise NoRootFound(
            f"no root filesystem (one holding etc/os-release and etc/fstab) found; looked at: {probed}"
        )

    def _probe_root(self, volume: Volume) -> dict:
        """Mount ``volume`` read-only for a moment and look for a root (top level or a btrfs subvolume)."""
        os.makedirs(os.path.dirname(STATE_DIR), mode=0o700, exist_ok=True)
        where = tempfile.mkdtemp(prefix="probe-", dir=os.path.dirname(STATE_DIR))
        try:
            try:
                self.run(["mount", *_mount_argv(volume, self.options(volume, probe=True)), where])
            except ToolError as exc:
                return {"root": False, "why": f"could not be mounted: {exc}"}
            try:
                return _root_evidence(where, volume.fstype)
            finally:
                self.run(["umount", where])
        finally:
            os.rmdir(where)

    def options(self, volume: Volume, probe: bool = False, subvolume: str = "") -> list[str]:
        """Mount options a rescuer needs for this filesystem."""
        opts = list(disks.PROBE_OPTIONS.get(volume.fstype, ["ro"])) if probe or self.readonly else ["rw"]
        if volume.fstype == "xfs" and volume.uuid and volume.uuid in self._mounted_xfs_uuids():
            opts.append("nouuid")  # the rescuer runs from a clone of the same image
        if subvolume:
            opts.append(f"subvol={subvolume}")
        return opts

    def _mounted_xfs_uuids(self) -> set[str]:
        uuids = set()
        for m in mounts.read_mountinfo():
            if m.fstype == "xfs" and m.source.startswith("/dev/") and os.path.exists(m.source):
                try:
                    uuids.add(
                        self.run(
                            ["blkid", "--probe", "--match-tag", "UUID", "--output", "value", m.source]
                        ).strip()
                    )
                except ToolError:
                    continue
        return uuids

    # ---- mounting --------------------------------------------------------------------------------

    def mount(self, argv: list[str], target: str, what: str) -> None:
        self.run(["mount", *argv, target])
        self._record({"action": "mount", "target": target}, what)

    def mount_root(self, volume: Volume, subvolume: str) -> None:
        opts = self.options(volume, subvolume=subvolume)
        self.mount(
            _mount_argv(volume, opts),
            self.mount_point,
            f"mounted {volume.describe()} ({','.join(opts)}) at {self.mount_point}",
        )
        self.root_volume = volume

    def mount_fstab(self, wanted: list[str]) -> None:
        """Mount the target's own /boot, /usr, ... as its fstab names them, found among its volumes."""
        try:
            entries = mounts.parse_fstab(rootfs.read_text(self.mount_point, "/etc/fstab"))
        except rootfs.RootError as exc:
            self.not_mounted.append(f"fstab not read: {exc}")
            return
        chosen = sorted((e for e in entries if e.file in wanted), key=lambda e: mounts.depth(e.file))
        for entry in chosen:
            matches = [v for v in self.volumes if v.matches(entry.spec) and v is not self.root_volume]
            if not matches:
                self.not_mounted.append(
                    f"{entry.file}: {entry.spec} (fstab line {entry.line}) is not on the target's disk"
                )
                continue
            volume = matches[0]
            if volume.fstype not in FSTAB_FSTYPES:
                self.not_mounted.append(
                    f"{entry.file}: {volume.describe()} is not a filesystem lifeline mounts"
                )
                continue
            try:
                target = rootfs.safe_directory(self.mount_point, entry.file)
            except rootfs.RootError as exc:
                self.not_mounted.append(f"{entry.file}: {exc}")
                continue
            opts = self.options(volume)
            self.mount(
                _mount_argv(volume, opts),
                target,
                f"mounted {volume.describe()} at {target} (fstab line {entry.line})",
            )

    def bind_api(self) -> None:
        """Bind the rescuer's /dev, /dev/pts, /proc, /sys and /run into the root for a chroot step."""
        for inside, argv in API_MOUNTS:
            try:
                target = rootfs.safe_directory(self.mount_point, inside)
            except rootfs.RootError as exc:
                self.not_mounted.append(f"{inside} not bound: {exc}")
                continue
            self.mount(argv, target, f"mounted {inside} into the target ({target})")

    # ---- LVM -------------------------------------------------------------------------------------

    def activate_lvm(self, pvs: list[Volume]) -> None:
        """Activate the target's volume groups (renamed if the rescuer has one of the same name)."""
        devices = [v.device for v in pvs]
        if not disks.has_device_mapper():
            raise AttachError(
                f"the target's root is probably on LVM ({', '.join(v.describe() for v in pvs)} are LVM "
                "physical volumes), but this rescuer's kernel has no device-mapper ('device-mapper' is not "
                "in /proc/misc): load it (modprobe dm_mod) or attach the disk to a rescuer that has it"
            )
        config = lvm.only_devices_config(devices)
        theirs = lvm.report(self.run, ["vgs", "-o", "vg_name,vg_uuid", "--config", config], "vg")
        if self.readonly:
            config += lvm.read_only_config([vg["vg_name"] for vg in theirs])
        clones = lvm.active_here(self.run, [vg["vg_uuid"] for vg in theirs], _device_numbers(devices))
        if clones:
            # Nothing is built on the target's devices (refuse_busy_device): what is active with
            # these UUIDs is on other disks, the rescuer's own root perhaps. Activating the copy
            # would hand back those very volumes, and the repair would write on them.
            names = ", ".join(f"{v['vg_name']} ({v['vg_uuid']})" for v in theirs if v["vg_uuid"] in clones)
            raise AttachError(
                f"the target's volume group {names} has the UUID of a volume group active on this "
                "rescuer: the two disks are copies of one image. Nothing was activated. Use a rescuer "
                "made from another image, or give the copy new UUIDs first (vgimportclone --basevgname "
                "NEWNAME DEVICE; it also renames the group, so rename it back before the target boots)"
            )
        ours = {
            row["vg_name"]
            for row in lvm.report(self.run, ["vgs", "-o", "vg_name,vg_uuid"], "vg")
            if row["vg_uuid"] not in {t["vg_uuid"] for t in theirs}
        }
        for vg in theirs:
            name = vg["vg_name"]
            if name in ours:
                if self.readonly:
                    raise AttachError(
                        f"the target's volume group {name} has the name of one of this rescuer's; a "
                        "rename writes LVM metadata, which a read-only look does not do: attach it "
                        "read-write, or use a rescuer whose volume groups have other names"
                    )
                new = f"{name}_lifeline"
                lvm.rename_vg(self.run, config, vg["vg_uuid"], new)
                self._record(
                    {"action": "vg_rename", "uuid": vg["vg_uuid"], "from": name, "to": new, "config": config},
                    f"renamed the target's volume group {name} to {new} (the rescuer has one named {name})",
                )
                name = new
            self.run(["vgchange", "--config", config, "--activate", "y", name])
            self._record(
                {"action": "vg_activate", "vg": name, "config": config}, f"activated volume group {name}"
            )
            for lv in lvm.report(
                self.run, ["lvs", "-o", "lv_name,vg_name,lv_path", "--config", config, name], "lv"
            ):
                info = disks.parse_blkid_udev(
                    self.run(["blkid", "--probe", "--output", "udev", lv["lv_path"]])
                )
                self.volumes.append(
                    disks.volume_from(info, lv=f"{name}/{lv['lv_name']}", device=lv["lv_path"])
                )

    # ---- LUKS ------------------------------------------------------------------------------------

    def locked_luks(self) -> list[Volume]:
        """The LUKS volumes found so far that this attachment has not unlocked."""
        unlocked = {s["device"] for s in self.steps if s["action"] == "luks_open"}
        return [v for v in self.volumes if v.fstype == "crypto_LUKS" and v.device not in unlocked]

    def open_luks(self, volumes: list[Volume]) -> None:
        """Unlock ``volumes`` with the key given; what each holds joins the volumes."""
        names = ", ".join(v.describe() for v in volumes)
        if not disks.has_device_mapper():
            raise AttachError(
                f"the target's root is probably inside LUKS ({names}), but this rescuer's kernel has no "
                "device-mapper ('device-mapper' is not in /proc/misc): load it (modprobe dm_mod) or "
                "attach the disk to a rescuer that has it"
            )
        if self.luks_key is None:
            raise AttachError(
                f"no root found outside LUKS, and no key was given for the LUKS volumes {names}: set "
                "target_luks_key_file (a key file on the rescuer) or target_luks_passphrase "
                "(options luks_key_file, luks_passphrase of rescue_attach)"
            )
        taken = {s["name"] for s in self.steps if s["action"] == "luks_open"}
        for volume in volumes:
            header = luks.header(self.run, volume.device)
            what = f"{volume.name} (LUKS{header.version} UUID={header.uuid or volume.uuid})"
            name = luks.mapping_name(self.mount_point, taken)
            luks.open_volume(self.run, volume.device, name, self.luks_key, what, readonly=self.readonly)
            taken.add(name)
            self._record(
                {"action": "luks_open", "name": name, "device": volume.device},
                f"unlocked {what} as /dev/mapper/{name}" + (" (read-only)" if self.readonly else ""),
            )
            inside = f"{luks.MAPPER_DIR}/{name}"
            self.volumes.append(
                disks.volume_from(disks.probe(self.run, inside), device=inside, luks=volume.name)
            )


def _device_numbers(devices: list[str]) -> frozenset[str]:
    """ "major:minor" of each of ``devices`` that exists."""
    numbers = set()
    for device in devices:
        try:
            rdev = os.stat(device).st_rdev
        except OSError:
            continue
        numbers.add(f"{os.major(rdev)}:{os.minor(rdev)}")
    return frozenset(numbers)


def _root_evidence(top: str, fstype: str) -> dict:
    try:
        return _find_root(top, fstype)
    except (rootfs.RootError, OSError) as exc:
        return {"root": False, "why": f"unreadable as a root: {exc}"}


def _find_root(top: str, fstype: str) -> dict:
    def looks_like_root(path: str) -> bool:
        return rootfs.lexists(path, "/etc/fstab") and any(
            rootfs.lexists(path, p) for p in ("/etc/os-release", "/etc/redhat-release")
        )

    if looks_like_root(top):
        return {"root": True, "os": rootfs.os_release(top).get("PRETTY_NAME", "")}
    if fstype == "btrfs":
        for entry in sorted(os.listdir(top)):
            path = os.path.join(top, entry)
            # A btrfs subvolume's top directory always has inode 256.
            if (
                not os.path.islink(path)
                and os.path.isdir(path)
                and os.stat(path).st_ino == 256
                and looks_like_root(path)
            ):
                return {
                    "root": True,
                    "subvolume": entry,
                    "os": rootfs.os_release(path).get("PRETTY_NAME", ""),
                }
    held = sorted(os.listdir(top))[:8]
    return {
        "root": False,
        "why": f"no etc/os-release with etc/fstab (top level holds: {', '.join(held) or 'nothing'})",
    }


def _listing(volumes: list[Volume]) -> str:
    return "; ".join(v.describe() for v in volumes) or "nothing"


def _mount_points_of(devices: list[str]) -> list[str]:
    numbers, nodes = set(), set()
    for device in devices:
        try:
            numbers |= disks.device_numbers(device)
            nodes |= disks.device_nodes(device)
        except OSError:
            continue
    return sorted({m.mount_point for m in mounts.mounts_of_devices(mounts.read_mountinfo(), numbers, nodes)})


# ---- undo --------------------------------------------------------------------------------------

# What undoing each kind of step does, in words (check mode and the plan say this).
UNDO_WORDS = {
    "mount": "unmount {target}",
    "node": "remove device node {path}",
    "partitions": "remove partition mappings of {device}",
    "loop": "detach {device} ({backing})",
    "export": "stop the export of {image} ({file})",
    "vg_activate": "deactivate volume group {vg}",
    "vg_rename": "rename volume group {to} back to {from}",
    "luks_open": "close LUKS mapping {name} ({device})",
    "mkdir": "remove {path}",
}


def _stop_export(run: Runner, step: dict) -> str:
    """Stop the daemon serving an export (it unmounts the file as it ends), then remove its files."""
    mount_file, pidfile = step["file"], step["pidfile"]
    pid = images.export_pid(pidfile, mount_file)
    stopped = False
    if pid:
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            os.kill(pid, sig)
            if _gone(pid, wait):
                stopped = True
                break
        else:
            raise DiskError(f"qemu-storage-daemon (pid {pid}) serving {mount_file} does not stop")
    if any(m.mount_point == mount_file for m in mounts.read_mountinfo()):
        run(["umount", mount_file])  # a daemon killed outright leaves its FUSE mount behind
        stopped = True
    for path in (mount_file, pidfile):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return f"stopped the export of {step['image']} ({mount_file})" if stopped else ""


def _gone(pid: int, within: float) -> bool:
    """Whether process ``pid`` ends (or is a zombie) within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                state = handle.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def undo_plan(steps: list[dict]) -> list[str]:
    """What undo() would do with ``steps``, newest first."""
    return [UNDO_WORDS.get(s["action"], "undo {action}").format(**s) for s in reversed(steps)]


def undo(run: Runner, steps: list[dict]) -> tuple[list[str], list[dict]]:
    """Undo ``steps`` newest first. Returns (what was done, steps still left).

    Stops at the first step that cannot be undone: what came before it (a loop device under a busy
    mount, say) must stay until the obstacle is gone, and the steps left say exactly what that is.
    """
    done = []
    left = list(steps)
    while left:
        step = left[-1]
        try:
            message = _undo_one(run, step)
        except (LifelineError, OSError) as exc:
            raise UndoError(str(exc), done, left) from exc
        left.pop()
        if message:
            done.append(message)
    return done, left


def recorded_steps(state_file: str, mount_point: str) -> tuple[list[dict], bool]:
    """(steps, read-only) of the attachment recorded for ``mount_point``; AttachError when the
    record is unreadable or names another mount point."""
    recorded, steps, readonly = read_state(state_file)
    if recorded != mount_point:
        raise AttachError(
            f"{state_file} records an attachment at {recorded}, not at {mount_point}: "
            "undo it with that mount_point"
        )
    return steps, readonly


def undo_recorded(run: Runner, state_file: str, mount_point: str) -> list[str]:
    """Undo the attachment recorded in ``state_file`` and remove the record; what was done.

    When a step cannot be undone, the steps left are written back (UndoError says which)."""
    steps, readonly = recorded_steps(state_file, mount_point)
    try:
        done, _left = undo(run, steps)
    except UndoError as exc:
        write_state(state_file, mount_point, exc.left, readonly)
        raise
    os.unlink(state_file)
    return done


class UndoError(AttachError):
    def __init__(self, message: str, done: list[str], left: list[dict]):
        super().__init__(message)
        self.done, self.left = done, left


def _undo_one(run: Runner, step: dict) -> str:
    action = step["action"]
    if action == "mount":
        target = step["target"]
        if not any(m.mount_point == target for m in mounts.read_mountinfo()):
            return ""
        try:
            run(["umount", target])
        except ToolError as exc:
            users = mounts.holders(under=[target])
            who = "; ".join(h.describe() for h in users[:10]) or "no process found (a mount below it?)"
            raise DiskError(f"{target} cannot be unmounted ({exc}); it is held by: {who}") from exc
        return f"unmounted {target}"
    if action == "node":
        path = step["path"]
        if os.path.exists(path) and stat.S_ISBLK(os.lstat(path).st_mode):
            os.unlink(path)
            return f"removed device node {path}"
        return ""
    if action == "partitions":
        run(["partx", "--delete", step["device"]])
        return f"removed partition mappings of {step['device']}"
    if action == "loop":
        device, backing = step["device"], step["backing"]
        if disks.loop_backings(run).get(device) == step["backing_id"]:
            run(["losetup", "--detach", device])
            return f"detached {device} ({backing})"
        return ""
    if action == "export":
        return _stop_export(run, step)
    if action == "vg_activate":
        run(["vgchange", "--config", step["config"], "--activate", "n", step["vg"]])
        return f"deactivated volume group {step['vg']}"
    if action == "vg_rename":
        lvm.rename_vg(run, step["config"], step["uuid"], step["from"])
        return f"renamed volume group {step['to']} back to {step['from']}"
    if action == "luks_open":
        if luks.close(run, step["name"]):
            return f"closed LUKS mapping {step['name']} ({step['device']})"
        return ""
    if action == "mkdir":
        try:
            os.rmdir(step["path"])
        except FileNotFoundError:
            return ""
        return f"removed {step['path']}"
    raise DiskError(f"unknown step {action!r} in the attachment record")
