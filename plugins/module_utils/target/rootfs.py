# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a broken root as data: resolve paths the way a chroot would, never leaving the root.

An absolute symlink inside the target resolves against the target root, and ``..`` at the root
stays at the root (chroot semantics). Whenever a link tried to climb above the root, the result
says so, because a link like that is itself a finding in a damaged or hostile tree.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError

# The kernel gives up after 40 links in one lookup (MAXSYMLINKS); a hostile root gets the same limit.
MAX_LINKS = 40
READ_CHUNK = 1 << 20


class RootError(LifelineError):
    """A path inside a target root cannot be used; the message says where and why."""


@dataclass
class Resolved:
    """Where a path inside the root really leads.

    ``inside`` is the canonical path as seen from within the root ("/usr/lib/os-release"),
    ``host`` the same file as seen from the rescuer ("/mnt/lifeline/usr/lib/os-release").
    """

    root: str
    inside: str
    escaped: bool = False
    links: list[str] = field(default_factory=list)

    @property
    def host(self) -> str:
        return join(self.root, self.inside)


def join(root: str, inside: str) -> str:
    """The rescuer's path for ``inside`` (an absolute path within ``root``)."""
    rel = inside.lstrip("/")
    return os.path.join(root, rel) if rel else root


# While a reader holds the root still (remembered_lookups), what the leading components of a path
# resolved to, by (root, those components): a scan resolves thousands of paths in the same few
# directories. None when not remembering.
_remembered: dict[tuple[str, str], tuple[list[str], bool, list[str], int]] | None = None


@contextlib.contextmanager
def remembered_lookups() -> Iterator[None]:
    """Within the block, directories once resolved are not looked up again: for readers of a root
    nothing changes meanwhile (a scan), never around writes."""
    global _remembered
    outer = _remembered
    _remembered = {} if outer is None else outer
    try:
        yield
    finally:
        _remembered = outer


def resolve(root: str, path: str, *, follow_last: bool = True) -> Resolved:
    """Resolve ``path`` inside ``root`` one component at a time, never leaving the root.

    Missing components are kept as they are (the result may name a file that does not exist).
    Raises RootError on a symlink loop.
    """
    root = os.path.abspath(root)
    result = Resolved(root=root, inside="/")
    given = [p for p in path.split("/") if p not in ("", ".")]
    done: list[str] = []
    followed = 0
    consumed = 0  # of the given components
    remembered = _remembered
    if remembered is not None:
        for consumed in range(len(given) - 1, 0, -1):
            state = remembered.get((root, "/".join(given[:consumed])))
            if state is not None:
                done, result.escaped, links, followed = list(state[0]), state[1], state[2], state[3]
                result.links = list(links)
                break
        else:
            consumed = 0
    parts = given[consumed:]
    expanded = 0  # parts in front that a link's target put there
    while parts:
        if remembered is not None and not expanded and 0 < consumed < len(given):
            remembered.setdefault(
                (root, "/".join(given[:consumed])), (list(done), result.escaped, list(result.links), followed)
            )
        part = parts.pop(0)
        if expanded:
            expanded -= 1
        else:
            consumed += 1
        if part == "..":
            if done:
                done.pop()
            else:
                result.escaped = True
            continue
        candidate = "/" + "/".join([*done, part])
        if not parts and not follow_last:
            done.append(part)
            break
        try:
            st = os.lstat(join(root, candidate))
        except OSError:
            done.append(part)
            continue
        if not stat.S_ISLNK(st.st_mode):
            done.append(part)
            continue
        followed += 1
        if followed > MAX_LINKS:
            raise RootError(f"{path}: too many levels of symbolic links inside {root} (a link loop)")
        target = os.readlink(join(root, candidate))
        result.links.append(f"{candidate} -> {target}")
        if target.startswith("/"):
            done = []
        target_parts = [p for p in target.split("/") if p not in ("", ".")]
        parts = target_parts + parts
        expanded += len(target_parts)
    result.inside = "/" + "/".join(done)
    return result


def lexists(root: str, path: str) -> bool:
    """True when ``path`` exists in the root as a file, directory or link (even a dangling one)."""
    try:
        os.lstat(resolve(root, path, follow_last=False).host)
    except OSError:
        return False
    return True


def shown(root: str, path: str, where: Resolved | None = None) -> str:
    """``path`` for a message, with where its links led inside the root when they led elsewhere."""
    try:
        where = where or resolve(root, path)
    except RootError:
        return path
    return path if where.inside == path else f"{path} (resolved to {where.inside})"


def read_bytes(root: str, path: str, limit: int, *, missing_ok: bool = False) -> bytes | None:
    """The bytes of regular file ``path`` inside the root, links followed only within the root.

    None when the file does not exist and ``missing_ok``; RootError when it is missing, not a
    regular file, unreadable or larger than ``limit``.
    """
    where = resolve(root, path)
    named = shown(root, path, where)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        # Look before opening: opening a device node or FIFO a hostile root planted blocks or runs a driver.
        if not stat.S_ISREG(os.lstat(where.host).st_mode):
            raise RootError(f"{named} in {root} is not a regular file")
        fd = os.open(where.host, flags)
    except OSError as exc:
        if missing_ok and isinstance(exc, FileNotFoundError):
            return None
        raise RootError(f"{named} in {root}: {os.strerror(exc.errno or errno.EIO)}") from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RootError(f"{named} in {root} is not a regular file")
        parts, size = [], 0
        while size <= limit:
            chunk = os.read(fd, min(READ_CHUNK, limit + 1 - size))
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise RootError(f"{named} in {root}: {os.strerror(exc.errno or errno.EIO)}") from exc
    finally:
        os.close(fd)
    if size > limit:
        raise RootError(f"{named} in {root} is larger than {limit} bytes, not read")
    return b"".join(parts)


def read_text(root: str, path: str, limit: int = 1 << 20) -> str:
    """Read a regular text file inside the root (read_bytes); RootError also when it holds NUL bytes."""
    data = read_bytes(root, path, limit) or b""
    if b"\0" in data:
        raise RootError(f"{path} in {root}: holds NUL bytes, not a text file")
    return data.decode("utf-8", errors="replace")


def _shell_word(value: str) -> str | None:
    """One shell word as os-release(5) allows it: quoted or not, backslash escapes; None if malformed."""
    out, quote, i = [], "", 0
    while i < len(value):
        char = value[i]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                out.append(char)
        elif char == "\\" and i + 1 < len(value):
            nxt = value[i + 1]
            # Inside double quotes a backslash only escapes $ ` " \ and newline, as in sh.
            if quote == '"' and nxt not in '$`"\\\n':
                out.append(char)
            else:
                out.append(nxt)
                i += 1
        elif char in "'\"" and (not quote or quote == char):
            quote = "" if quote else char
        elif not quote and char.isspace():
            break
        else:
            out.append(char)
        i += 1
    return None if quote else "".join(out)


def parse_os_release(text: str) -> dict[str, str]:
    """Parse os-release(5): KEY=value lines, values read the way a shell reads them."""
    info: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _equals, value = line.partition("=")
        word = _shell_word(value)
        if key.isidentifier() and word is not None:
            info[key] = word
    return info


def os_release(root: str) -> dict[str, str]:
    """The target's identity from etc/os-release, usr/lib/os-release or etc/redhat-release."""
    for candidate in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            return parse_os_release(read_text(root, candidate, limit=64 * 1024))
        except RootError:
            continue
    try:
        line = read_text(root, "/etc/redhat-release", limit=4096).strip().splitlines()[0]
    except (RootError, IndexError):
        return {}
    return {"PRETTY_NAME": line, "ID_LIKE": "rhel"}


def linux_root_problems(root: str) -> list[str]:
    """What keeps ``root`` from looking like a Linux root filesystem; empty when it does."""
    problems = []
    if not os.path.isdir(root):
        return [f"{root} is not a directory"]
    for directory in ("/etc", "/usr"):
        if not os.path.isdir(resolve(root, directory).host):
            problems.append(f"no {directory} directory")
    if not any(lexists(root, p) for p in ("/etc/os-release", "/usr/lib/os-release", "/etc/redhat-release")):
        problems.append("no etc/os-release, usr/lib/os-release or etc/redhat-release")
    return problems


def not_a_linux_root(option: str, given: str, root: str) -> str:
    """The error for an option naming ``root`` (as ``given``) that is not a Linux root; "" when it is one."""
    problems = linux_root_problems(root)
    return f"{option}={given} does not look like a Linux root: {'; '.join(problems)}" if problems else ""


def is_running_root(path: str, running_root: str = "/") -> bool:
    """True when ``path`` is the very directory the rescuer runs from (same device and inode)."""
    try:
        a, b = os.stat(path), os.stat(running_root)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def safe_directory(root: str, path: str) -> str:
    """The rescuer's path of directory ``path`` inside the root, refusing anything not a real directory.

    Used before mounting onto a path that the target's own files name: a hostile root could point
    ``boot`` at the rescuer's ``/etc``; resolving inside the root and refusing links stops that.
    """
    where = resolve(root, path)
    if where.links:
        raise RootError(
            f"{path} in {root} goes through a symbolic link ({'; '.join(where.links)}): "
            "lifeline mounts only onto real directories of the target"
        )
    if where.inside == "/":
        raise RootError(f"{path} in {root} is the target's root itself")
    host = where.host
    real_root = os.path.realpath(root)
    real = os.path.realpath(host)
    if real != real_root and not real.startswith(real_root.rstrip("/") + "/"):
        raise RootError(f"{path} in {root} leads outside the root ({real})")
    try:
        st = os.lstat(host)
    except OSError as exc:
        raise RootError(f"{path} in {root}: no such directory (resolved to {where.inside})") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise RootError(f"{path} in {root}: not a directory (resolved to {where.inside})")
    return host
