# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: kernel modules. What is loaded at boot (/etc/modules, modules-load.d: each name a line
item), what modprobe runs instead of loading a module (modprobe.d's `install` and `remove` lines:
commands run as root), and the module files themselves: a .ko outside the kernels' module trees,
or one in /lib/modules that no package installed, is how a rootkit gets into the kernel.

Traits: "outside-module-tree" (a .ko file where no kernel looks for modules), "unpackaged-module"
(a .ko in a kernel's module tree whose kernel's packaged modules sit beside it, owned by no package),
"dkms-built" (the same file DKMS keeps in /var/lib/dkms: built on the machine from a package's
source), "local-kernel" (a module tree no package installed any file of, with its kernel image in
/boot: a kernel built and installed by hand), "install-command" and "loads-unpackaged-module".
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence import records
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import (
    MAX_HASH,
    FileFacts,
    Item,
)
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

LOAD_FILES = ("/etc/modules",)
LOAD_DIRS = (
    "/etc/modules-load.d",
    "/run/modules-load.d",
    "/usr/local/lib/modules-load.d",
    "/usr/lib/modules-load.d",
    "/lib/modules-load.d",
)
MODPROBE_DIRS = (
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
)
MODULE_TREES = ("/usr/lib/modules", "/lib/modules")
# Where a module file is looked for outside the module trees (homes are added).
SEARCHED = ("/usr", "/opt", "/etc", "/var", "/tmp", "/root", "/srv", "/boot", "/dev/shm")
# Not walked: the module trees (read on their own), container engines' image layers and machines'
# roots (whole filesystems of their own), kernel headers, and trees that hold nothing but text.
PRUNED = (
    *MODULE_TREES,
    "/usr/share/doc",
    "/usr/share/man",
    "/usr/share/locale",
    "/usr/share/icons",
    "/usr/share/zoneinfo",
    "/usr/share/i18n",
    "/usr/include",
    "/usr/src/linux-headers-*",
    "/usr/src/linux-kbuild-*",
    "/usr/src/kernels",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers/storage/overlay",
    "/var/lib/lxc",
    "/var/lib/machines",
    "/var/lib/dpkg/info",
    records.DEFAULT_QUARANTINE_DIR,
)
DKMS = "/var/lib/dkms"
_MODULE_NAME = re.compile(r"\.ko(\.(xz|zst|gz))?$")
_MODULE_WORD = re.compile(r"[A-Za-z0-9_-]{1,64}")


def collect(reader: RootReader) -> None:
    unowned_modules = _module_files(reader)
    for path in LOAD_FILES:
        _load_file(reader, path, unowned_modules)
    for directory in LOAD_DIRS:
        for path, _is_link in reader.entries("kernel_module", directory):
            if path.endswith(".conf"):
                _load_file(reader, path, unowned_modules)
    for directory in MODPROBE_DIRS:
        for path, _is_link in reader.entries("kernel_module", directory):
            if path.endswith(".conf"):
                _modprobe_file(reader, path)


def module_name(path: str) -> str:
    """The name modprobe knows a module file by ("nf-nat.ko.xz" -> "nf_nat")."""
    return _MODULE_NAME.sub("", posixpath.basename(path)).replace("-", "_")


def _module_files(reader: RootReader) -> set[str]:
    """Every module file met as an item; the names of those no package owns."""
    unowned: set[str] = set()
    dkms = _dkms_digests(reader)
    for tree in MODULE_TREES:
        kernels = [p for p, _is_link in reader.entries("kernel_module", tree)]
        for kernel in kernels:
            if reader.kind_of(kernel) != "directory":
                continue
            found = [p for p, _e in reader.walk("kernel_module", kernel) if _MODULE_NAME.search(p)]
            packaged = any(not reader.unowned(p) for p in found) or reader.package_of(kernel) is not None
            version = posixpath.basename(kernel)
            local = not packaged and reader.kind_of(f"/boot/vmlinuz-{version}") == "file"
            for path in found:
                if not reader.unowned(path):
                    continue
                traits = {"unpackaged-module"}
                if _digest(reader, path) in dkms:
                    traits = {"dkms-built"}
                elif local:
                    traits = {"local-kernel"}
                if _module_item(reader, path, traits) and "unpackaged-module" in traits:
                    unowned.add(module_name(path))
    # Homes the walk has not covered yet; a system account's home of "/" or /bin is not a home.
    homes = [
        a.home
        for a in reader.homes()
        if a.home.startswith("/home/") and not any(a.home.startswith(t + "/") for t in SEARCHED)
    ]
    searched = [*SEARCHED, *homes]
    for top in dict.fromkeys(searched):
        for path, _entry in reader.walk("kernel_module", top, prune=PRUNED):
            if _MODULE_NAME.search(path):
                traits = {"outside-module-tree"}
                if path.startswith(DKMS + "/"):
                    traits = {"dkms-built"}
                if _module_item(reader, path, traits) and reader.unowned(path) and "dkms-built" not in traits:
                    unowned.add(module_name(path))
    return unowned


def _module_item(reader: RootReader, path: str, traits: set[str]) -> bool:
    if rootfs.lexists(reader.root, path + records.METADATA_SUFFIX):
        return False  # a module an earlier quarantine moved, beside its record (in any quarantine directory)
    facts = reader.file("kernel_module", path, read=False)
    if facts is None:
        return False
    reader.items.append(
        Item(
            "kernel_module",
            facts,
            command=path,
            user="root",
            executes=(path,),
            references=(path,),
            payload=path,
            traits=frozenset(traits),
        )
    )
    return True


def _digest(reader: RootReader, path: str) -> str:
    """The sha256 of a regular file inside the root ('' for anything else), read in chunks."""
    try:
        where = rootfs.resolve(reader.root, path)
        if where.escaped or not stat.S_ISREG(os.lstat(where.host).st_mode):
            return ""
        fd = os.open(where.host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (OSError, rootfs.RootError):
        return ""
    digest, size = hashlib.sha256(), 0
    try:
        while size < MAX_HASH:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    except OSError:
        return ""
    finally:
        os.close(fd)
    return digest.hexdigest()


def _dkms_digests(reader: RootReader) -> set[str]:
    """The digests of the modules DKMS built (its own store keeps a copy of each)."""
    found = set()
    for path, entry in reader.walk("kernel_module", DKMS, limit=20000):
        if _MODULE_NAME.search(path) and entry.is_file(follow_symlinks=False):
            found.add(_digest(reader, path))
    found.discard("")
    return found


def _load_file(reader: RootReader, path: str, unowned_modules: set[str]) -> None:
    facts = reader.file("kernel_module", path)
    if facts is None:
        return
    reader.file_item(facts)
    for number, text in reader.text_lines(facts):
        words = text.split("#", 1)[0].split(";", 1)[0].split()
        if not words or not _MODULE_WORD.fullmatch(words[0]):
            continue
        name = words[0].replace("-", "_")
        traits = {"loads-at-boot"}
        if name in unowned_modules:
            traits.add("loads-unpackaged-module")
        reader.items.append(
            Item("kernel_module", facts, number, text, text.strip(), "root", traits=frozenset(traits))
        )


def _modprobe_file(reader: RootReader, path: str) -> None:
    facts = reader.file("kernel_module", path)
    if facts is None:
        return
    reader.file_item(facts)
    for number, text in _joined(reader, facts):
        words = text.split(None, 2)
        if len(words) == 3 and words[0] in ("install", "remove"):
            item = reader.command_item(facts, number, text, words[2], user="root")
            item.traits = frozenset({"install-command"})


def _joined(reader: RootReader, facts: FileFacts) -> list[tuple[int, str]]:
    """modprobe.d's statements: comments dropped, '\\' continuations joined."""
    found: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, text in reader.text_lines(facts):
        if pending is None and text.lstrip().startswith("#"):
            continue
        if pending is not None:
            number, text = pending[0], pending[1] + " " + text.strip()
            pending = None
        if text.rstrip().endswith("\\"):
            pending = (number, text.rstrip()[:-1])
            continue
        found.append((number, text.strip()))
    if pending is not None:
        found.append(pending)
    return found
