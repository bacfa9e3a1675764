# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LUKS1 and LUKS2 volumes through cryptsetup: read a header, open with a key, close, and name the
mappings an attachment makes.

A passphrase never appears on a command line (where ps and the logs of Ansible would show it): it
goes to cryptsetup on its standard input (``--key-file=-``), exactly as given, with no newline.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.host import disks, lvm
from ansible_collections.lifeline.rescue.plugins.module_utils.host.disks import DiskError
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import (
    Runner,
    ToolError,
    ToolMissing,
)

MAPPER_DIR = "/dev/mapper"
# device-mapper names are at most 127 bytes; the slug is cut well below that.
_SLUG_MAX = 64
# cryptsetup's exit status for "No key available with this passphrase" (cryptsetup(8), RETURN CODES).
_WRONG_KEY = "failed (exit 2)"
# ... and for a mapping that is not active (cryptsetup status).
_INACTIVE = "failed (exit 4)"


class LuksError(DiskError):
    """A LUKS volume could not be read, opened or closed; the message says which and why."""


@dataclass(frozen=True)
class Key:
    """What unlocks the target's LUKS volumes: a key file on the rescuer, or a passphrase."""

    key_file: str = ""
    passphrase: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        if bool(self.key_file) == bool(self.passphrase):
            raise LuksError("give a LUKS key file or a passphrase, one of the two")

    def argv(self) -> list[str]:
        return [f"--key-file={self.key_file}"] if self.key_file else ["--key-file=-"]

    def describe(self) -> str:
        return f"the key file {self.key_file}" if self.key_file else "the passphrase given"


@dataclass(frozen=True)
class Header:
    version: str  # "1" or "2"
    uuid: str


def header(run: Runner, device: str) -> Header:
    """The LUKS version and UUID of ``device`` from its header (``cryptsetup luksDump``)."""
    try:
        text = run(["cryptsetup", "luksDump", device])
    except ToolMissing:
        raise
    except ToolError as exc:
        raise LuksError(f"{device} has no LUKS header cryptsetup can read: {exc}") from exc
    found: dict[str, str] = {}
    for key, value in re.findall(r"^(Version|UUID):\s*(\S+)\s*$", text, flags=re.MULTILINE):
        found.setdefault(key, value)  # the header's own, before any section of the dump
    return Header(version=found.get("Version", "?"), uuid=found.get("UUID", ""))


def mapping_name(mount_point: str, taken: set[str], mapper_dir: str = MAPPER_DIR) -> str:
    """``lifeline-<slug of the mount point>-<n>``: the first n free both in ``mapper_dir`` (other
    attachments, the rescuer's own volumes) and in ``taken`` (this attachment's names so far)."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", mount_point).strip("-")[:_SLUG_MAX].strip("-") or "root"
    try:
        present = set(os.listdir(mapper_dir))
    except OSError:
        present = set()
    number = 1
    while f"lifeline-{slug}-{number}" in present | taken:
        number += 1
    return f"lifeline-{slug}-{number}"


def open_volume(run: Runner, device: str, name: str, key: Key, what: str, readonly: bool = False) -> None:
    """``cryptsetup open --type luks`` of ``device`` as /dev/mapper/NAME. ``what`` names the volume
    for the error a wrong key gives ("partition 2 (LUKS2 UUID=...)")."""
    argv = ["cryptsetup", "open", "--type", "luks", *key.argv()]
    if readonly:
        argv.append("--readonly")
    argv += [device, name]
    try:
        if key.passphrase:
            run(argv, stdin=key.passphrase)
        else:
            run(argv)
    except ToolError as exc:
        if _WRONG_KEY in str(exc):
            raise LuksError(
                f"{key.describe()} does not open {what}: give the right target_luks_key_file or "
                "target_luks_passphrase"
            ) from exc
        raise LuksError(f"{what} could not be unlocked: {exc}") from exc


def is_open(run: Runner, name: str) -> bool:
    try:
        run(["cryptsetup", "status", name])
    except ToolError as exc:
        if _INACTIVE in str(exc):
            return False
        raise
    return True


def close(run: Runner, name: str) -> bool:
    """Close the mapping ``name``; False when it was not open (nothing to do)."""
    if not is_open(run, name):
        return False
    mapping = f"{MAPPER_DIR}/{name}"
    if os.path.exists(mapping) and disks.stacked_on(mapping):
        # The rescuer's udev may activate a volume group the moment the mapping opens, before the
        # attachment recorded one (a failure in between): what is seen through it is deactivated.
        run(["vgchange", "--config", lvm.only_devices_config([mapping]), "--activate", "n"])
    run(["cryptsetup", "close", name])
    return True
