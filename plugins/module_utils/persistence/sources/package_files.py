# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: packaged files that are no longer what their package installed, and files no package
installed in the directories packages fill with programs.

Checked against the package database's recorded digests (packages.integrity): every program the
startup items collected so far run, every setuid, setgid or capable file, and the system programs
trojans replace. Items carry "checksum-mismatch" (with, in ``references``, a sibling that still has
the recorded digest: where a wrapper moved the original), "unowned-in-packaged-dir", or
"original-of-replaced-file" for that moved original. Configuration files an admin changed and
diverted files are not mismatches. Runs after every source whose items it checks.
"""

from __future__ import annotations

import os
import posixpath
import stat

from ansible_collections.lifeline.rescue.plugins.module_utils.packages import integrity as package_integrity
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts, Item
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import PATH, RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.target import rootfs

KIND = "package_file"
# The programs user-space rootkits and wrappers replace (the tools an admin uses to look for them,
# the ways in, the shells, the schedulers) and the PAM module every password goes through. Looked up
# in the program directories (and the PAM module directories).
SYSTEM_PROGRAMS = (
    "ls",
    "ps",
    "ss",
    "netstat",
    "top",
    "find",
    "lsof",
    "du",
    "pstree",
    "kill",
    "who",
    "w",
    "last",
    "login",
    "su",
    "sudo",
    "sshd",
    "ssh",
    "passwd",
    "bash",
    "sh",
    "dash",
    "systemctl",
    "crontab",
    "cron",
    "crond",
    "ip",
    "ifconfig",
    "md5sum",
    "sha256sum",
    "stat",
    "strings",
    "dpkg",
    "rpm",
    "pam_unix.so",
)
PROGRAM_DIRS = ("/usr/bin", "/usr/sbin", "/bin", "/sbin")
# Where PAM modules live on the families' layouts (a *-linux-gnu directory per architecture).
PAM_DIRS = ("/lib/security", "/lib64/security", "/usr/lib/security", "/usr/lib64/security")
PAM_MULTIARCH_PARENTS = ("/lib", "/usr/lib")
# Names a wrapper gives the program it moved aside; any other file no package owns in the same
# directory is compared too.
ASIDE = ("{}.orig", "{}.old", "{}.bak", "{}.real", "{}.distrib", "{}~", ".{}")
MAX_SIBLINGS = 64
CONFIGURATION = "/etc/"
# What dpkg writes beside a file it is replacing, left there when the run is interrupted.
DPKG_LEFTOVERS = ("dpkg-new", "dpkg-tmp")


def begin(reader: RootReader) -> None:
    """Start hashing the system programs: no other source's items are needed to name them."""
    if reader.package_database:
        programs = _system_programs(_packaged_dirs(reader))
        reader.integrity().hash_soon(_to_check(reader, programs, set()))


def hash_soon(reader: RootReader, items: list[Item]) -> None:
    """Start hashing the programs ``items`` (just collected by a source) run, while the other
    sources read."""
    if reader.package_database:
        reader.integrity().hash_soon(_to_check(reader, _programs_of(items), set()))


def collect(reader: RootReader) -> None:
    if not reader.package_database:
        return
    integrity = reader.integrity()
    checked: set[str] = set()
    mismatched: dict[str, package_integrity.Verdict] = {}
    directories = _packaged_dirs(reader)
    candidates = _programs_of(reader.items) + _system_programs(directories)
    for resolved in _to_check(reader, candidates, checked):
        verdict = integrity.verdict(resolved)
        if verdict.status == package_integrity.MISMATCH:
            mismatched[resolved] = verdict
    unowned = _unowned_in(reader, directories)
    originals: dict[str, str] = {}
    for path, verdict in mismatched.items():
        original = _original_of(reader, path, verdict, unowned)
        if original:
            originals[original] = path
        _mismatch_item(reader, path, verdict, original)
    for path, st in unowned:
        _unowned_item(reader, path, st, originals.get(path))


def _programs_of(items: list[Item]) -> list[str]:
    """What the items run, and the privileged files themselves."""
    found = [p for item in items for p in item.executes if p.startswith("/")]
    return found + [item.file.path for item in items if item.kind == "privileged_file"]


def _system_programs(directories: list[str]) -> list[str]:
    return [posixpath.join(d, name) for name in SYSTEM_PROGRAMS for d in (*directories, *PATH)]


def _to_check(reader: RootReader, candidates: list[str], checked: set[str]) -> list[str]:
    """The candidates' resolved paths whose package integrity is checked, each once (``checked``
    grows): packaged regular files outside /etc."""
    found = []
    for path in candidates:
        resolved = reader.resolved_path(path)
        if resolved is None or resolved in checked or reader.kind_of(resolved) != "file":
            continue
        if resolved.startswith(CONFIGURATION):
            # rc.local and the like are meant to be edited (rpm's %config, dpkg's conffiles): the
            # other sources judge what they run, not whether they changed.
            continue
        checked.add(resolved)
        if not reader.unowned(resolved):
            found.append(resolved)
    return found


def _packaged_dirs(reader: RootReader) -> list[str]:
    """The program and PAM module directories of the root, each once (as resolved)."""
    found: list[str] = []
    places = list(PROGRAM_DIRS) + list(PAM_DIRS)
    for parent in PAM_MULTIARCH_PARENTS:
        for entry, _is_link in reader.entries(KIND, parent, once=False):
            if posixpath.basename(entry).endswith(("-linux-gnu", "-linux-gnueabihf")):
                places.append(posixpath.join(entry, "security"))
    for place in places:
        resolved = reader.resolved_path(place)
        if resolved and resolved not in found and reader.kind_of(resolved) == "directory":
            found.append(resolved)
    return found


def _unowned_in(reader: RootReader, directories: list[str]) -> list[tuple[str, os.stat_result]]:
    """Regular files no package lists in the packaged directories (links are the alternatives'),
    but for where a diversion put a package's file and what an interrupted dpkg run left beside
    a packaged file (foo.dpkg-new, foo.dpkg-tmp)."""
    integrity = reader.integrity()
    found = []
    for directory in directories:
        for path, is_link in reader.entries(KIND, directory, once=False):
            if is_link or not reader.unowned(path):
                continue
            stem, dot, suffix = path.rpartition(".")
            if dot and suffix in DPKG_LEFTOVERS and not reader.unowned(stem):
                continue
            if integrity.verdict(path).status != package_integrity.UNOWNED:
                continue
            try:
                st = os.lstat(rootfs.join(reader.root, path))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((path, st))
    return found


def _original_of(
    reader: RootReader,
    path: str,
    verdict: package_integrity.Verdict,
    unowned: list[tuple[str, os.stat_result]],
) -> str:
    """A sibling of ``path`` that still has the digest its package recorded, "" when none has."""
    directory, name = posixpath.split(path)
    siblings = [posixpath.join(directory, pattern.format(name)) for pattern in ASIDE]
    siblings += [p for p, _st in unowned if posixpath.dirname(p) == directory]
    integrity = reader.integrity()
    for sibling in list(dict.fromkeys(siblings))[:MAX_SIBLINGS]:
        if sibling != path and integrity.same_as_recorded(sibling, verdict):
            return sibling
    return ""


def _facts(reader: RootReader, path: str) -> FileFacts | None:
    try:
        st = os.lstat(rootfs.join(reader.root, path))
    except OSError:
        return None
    return FileFacts(path=path, kind=KIND, resolved=path, st=st)


def _mismatch_item(reader: RootReader, path: str, verdict: package_integrity.Verdict, original: str) -> None:
    facts = _facts(reader, path)
    if facts is None:
        return
    text = (
        f"{verdict.listed} of {verdict.package}: {verdict.algorithm} recorded {verdict.recorded}, "
        f"now {verdict.actual or verdict.problem}"
    )
    if original:
        text += f"; {original} has the recorded digest (the original, moved aside)"
    # Neither executes nor payload: the file is judged by its package, not as a program a
    # location runs (a rule on hidden paths would move the original named in references).
    reader.items.append(
        Item(
            KIND,
            facts,
            text=text,
            references=(original,) if original else (),
            traits=frozenset({"checksum-mismatch"}),
        )
    )


def _unowned_item(reader: RootReader, path: str, st: os.stat_result, replaced: str | None) -> None:
    facts = FileFacts(path=path, kind=KIND, resolved=path, st=st)
    if replaced:
        text, traits = f"the original of {replaced}, moved aside", {"original-of-replaced-file"}
    else:
        text, traits = f"no package installed {path}", {"unowned-in-packaged-dir"}
    reader.items.append(Item(KIND, facts, text=text, traits=frozenset(traits)))


def repair_steps(reader: RootReader, item: Item) -> str:
    """What puts a replaced packaged file back, for a "manual" quarantine step."""
    package = reader.integrity().verdict(item.file.path).package
    reinstall = (
        f"dnf reinstall {package} (yum reinstall {package}; zypper install -f {package})"
        if reader.package_manager == "rpm"
        else f"apt-get install --reinstall {package}"
    )
    steps = f"{item.file.path} is not the file its package installed: reinstall it ({reinstall})"
    if item.references:
        steps += (
            f"; the original is {item.references[0]} (its digest is the recorded one): "
            f"mv -- {item.references[0]} {item.file.path} puts it back"
        )
    return steps + "; it was not changed"
