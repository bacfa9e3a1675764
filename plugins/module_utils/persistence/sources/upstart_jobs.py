# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source: Upstart's jobs (the init of RHEL 6 and of Ubuntu 10.04 to 14.10): ``/etc/init/**/*.conf``
with their ``.override`` files, and the session jobs a desktop login starts.

Each ``exec`` line and each line of a ``script ... end script`` block (of the main process and of
pre-start, post-start, pre-stop and post-stop) is an item. An override's stanzas replace the job's
stanzas of the same name where Upstart reads override files (Ubuntu's; not RHEL 6's Upstart 0.6.5):
a process the override replaces is still an item, with a note saying so, since an Upstart that
reads no override runs it. What starts the job (``start on``, ``manual``), ``respawn`` and ``task``
are facts of the job's files, shown with each finding.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.model import FileFacts
from ansible_collections.lifeline.rescue.plugins.module_utils.persistence.reader import RootReader
from ansible_collections.lifeline.rescue.plugins.module_utils.target.accounts import Account

SYSTEM_JOB_DIRS = ("/etc/init",)
# Session jobs (Upstart 1.7 and later) run as whoever logs in to a desktop.
SESSION_JOB_DIRS = ("/etc/xdg/upstart", "/usr/share/upstart/sessions")
HOME_JOB_DIRS = (".config/upstart", ".init")
PROCESSES = ("main", "pre-start", "post-start", "pre-stop", "post-stop")
# A stanza continued over more lines or characters than this (an unclosed quote in a hostile file)
# is cut there, so that reading a file stays linear in its size.
MAX_STANZA_LINES = 100
MAX_STANZA_CHARS = 64 << 10
# Events Upstart emits while the system boots: a job started on one of them runs at every boot.
_BOOT_EVENT = re.compile(
    r"\b(?:startup|runlevel|filesystem|(?:local|remote|virtual|all)-filesystems|mounted|"
    r"net-device-up|static-network-up|started\s+rc|stopped\s+rc|rcS|desktop-session-start)\b"
)


@dataclass
class _Process:
    """One process of a job: where it is written and its lines (number, text, command)."""

    facts: FileFacts
    lines: list[tuple[int, str, str]]


@dataclass
class _Stanzas:
    """What one job file says: its processes and the stanzas that decide when and how it runs."""

    processes: dict[str, _Process] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)  # "start on", "manual", "respawn", ...


def collect(reader: RootReader) -> None:
    places: list[tuple[str, Account | None, str]] = [(d, None, "root") for d in SYSTEM_JOB_DIRS]
    places += [(d, None, "") for d in SESSION_JOB_DIRS]
    places += [(posixpath.join(a.home, d), a, a.name) for a in reader.homes() for d in HOME_JOB_DIRS]
    for directory, account, user in places:
        jobs: dict[str, dict[str, str]] = {}
        for path, _is_link in reader.entries("upstart_job", directory, recursive=True):
            stem, suffix = posixpath.splitext(path)
            if suffix in (".conf", ".override"):
                jobs.setdefault(stem, {})[suffix] = path
        for files in jobs.values():
            # An override without its .conf defines no job: Upstart ignores it.
            if ".conf" in files:
                _job(reader, files[".conf"], files.get(".override"), account, user)


def _job(reader: RootReader, conf: str, override: str | None, account: Account | None, user: str) -> None:
    job_facts = reader.file("upstart_job", conf, account)
    if job_facts is None:
        return
    job = _stanzas(reader, job_facts)
    override_facts = reader.file("upstart_job", override, account) if override else None
    over = _stanzas(reader, override_facts) if override_facts else _Stanzas()
    settings = _merged(job.settings, over.settings)
    notes = _facts_of(settings, override_facts)
    for name in sorted(set(job.processes) & set(over.processes), key=PROCESSES.index):
        job_facts.notes.append(
            f"its {_shown(name)} is replaced by {override}'s where Upstart reads override files "
            "(not RHEL 6's Upstart 0.6.5, which runs this one)"
        )
    job_facts.notes += notes
    reader.file_item(job_facts)
    if override_facts is not None:
        override_facts.notes += notes
        # An override that only disables or adjusts a job starts nothing of its own.
        if over.processes or "start on" in over.settings:
            reader.file_item(override_facts)
    runs_as = settings.get("setuid") or user
    # A process an override replaces is still read: an Upstart that reads no override file runs it.
    for stanzas in (job, over):
        for name in PROCESSES:
            process = stanzas.processes.get(name)
            for number, text, command in process.lines if process else ():
                reader.command_item(process.facts, number, text, command, user=runs_as)


def _merged(job: dict[str, str], override: dict[str, str]) -> dict[str, str]:
    """The job's settings with its override's read after them: 'manual' drops the 'start on' read
    before it, a later 'start on' takes the job out of manual again."""
    settings = dict(job)
    if "manual" in override:
        settings.pop("start on", None)
    if "start on" in override:
        settings.pop("manual", None)
    settings.update(override)
    return settings


def _shown(process: str) -> str:
    return "main process" if process == "main" else f"{process} process"


def _facts_of(settings: dict[str, str], override: FileFacts | None) -> list[str]:
    """What a report says about when and how the job runs."""
    notes = []
    start_on = settings.get("start on")
    if "manual" in settings and not start_on:
        where = override.path if override and settings["manual"] == override.path else "its .conf"
        notes.append(
            f"disabled by 'manual' in {where}: Upstart starts it only when asked "
            "(Upstart 0.6.7 and later; RHEL 6's Upstart 0.6.5 does not know 'manual')"
        )
    elif start_on and _BOOT_EVENT.search(start_on):
        notes.append(f"Upstart starts it at boot (start on {start_on})")
    elif start_on:
        notes.append(f"Upstart starts it on an event (start on {start_on})")
    else:
        notes.append("no 'start on': it runs only when started by hand or by another job")
    if "respawn" in settings:
        notes.append("respawned by Upstart whenever it exits")
    if "task" in settings:
        notes.append("a task: runs to completion each time it is started")
    return notes


def _stanzas(reader: RootReader, facts: FileFacts) -> _Stanzas:
    """The stanzas of one job or override file."""
    found = _Stanzas()
    lines = iter(reader.text_lines(facts))
    for number, text, words in _logical_lines(lines):
        if not words:
            continue
        first = words[0]
        process, rest = ("main", words) if first in ("exec", "script") else (first, words[1:])
        if process in PROCESSES and rest and rest[0] == "exec":
            command = _after_words(text, 2 if process != "main" else 1)
            found.processes[process] = _Process(facts, [(number, text, command)] if command else [])
        elif process in PROCESSES and rest and rest[0] == "script":
            found.processes[process] = _Process(facts, _script_block(lines))
        elif first in ("start", "stop") and words[1:2] == ["on"]:
            found.settings[f"{first} on"] = " ".join(words[2:])
            if first == "start":
                found.settings.pop("manual", None)
        elif first == "manual":
            found.settings["manual"] = facts.path
            found.settings.pop("start on", None)
        elif first in ("respawn", "task") and len(words) == 1:
            found.settings[first] = facts.path
        elif first == "setuid" and len(words) == 2:
            found.settings["setuid"] = words[1]
    return found


def _script_block(lines: Iterator[tuple[int, str]]) -> list[tuple[int, str, str]]:
    """The shell lines of a script block, up to its "end script" line (or the end of the file)."""
    found = []
    for number, text in lines:
        stripped = text.strip()
        if stripped.split("#", 1)[0].split() == ["end", "script"]:
            break
        if not stripped.startswith("#"):
            found.append((number, text, stripped))
    return found


def _after_words(text: str, count: int) -> str:
    """``text`` without its first ``count`` words: what an exec stanza runs."""
    parts = text.strip().split(None, count)
    return parts[count].strip() if len(parts) > count else ""


def _logical_lines(lines: Iterator[tuple[int, str]]) -> Iterator[tuple[int, str, list[str]]]:
    """(first line number, text, words) of each stanza outside script blocks: a stanza goes on over
    a backslash at the end of a line, an open quote, or (start on, stop on) an open parenthesis;
    '#' outside quotes starts a comment. The caller reads script blocks from the same iterator."""
    for number, text in lines:
        words = _Words()
        continued = words.feed(text)
        parts, size = [text], len(text)
        while continued or words.quote or (words.depth > 0 and words.words[:1] in (["start"], ["stop"])):
            short = len(parts) < MAX_STANZA_LINES and size < MAX_STANZA_CHARS
            following = next(lines, None) if short else None
            if following is None:
                break
            # A backslash joins the lines as one; a quote or parenthesis keeps the line break.
            if continued:
                parts[-1] = parts[-1].rstrip("\r")[:-1]
            parts.append(
                (" " if continued else "\n") + (following[1].lstrip() if continued else following[1])
            )
            size += len(following[1])
            continued = words.feed(following[1])
        yield number, "".join(parts), words.done()


class _Words:
    """The words of a stanza, read line by line (each line once, however long the stanza)."""

    def __init__(self) -> None:
        self.words: list[str] = []
        self.current: list[str] = []
        self.quote = ""
        self.depth = 0

    def feed(self, text: str) -> bool:
        """Read one line; True when it ends in a backslash that continues the stanza."""
        text = text.rstrip("\r")
        continued = False
        i = 0
        while i < len(text):
            char = text[i]
            if self.quote:
                if char == self.quote:
                    self.quote = ""
                else:
                    self.current.append(char)
            elif char in "\"'":
                self.quote = char
            elif char == "\\":
                if i + 1 == len(text):
                    continued = True
                else:
                    i += 1
                    self.current.append(text[i])
            elif char == "#":
                break
            elif char in " \t":
                self._end_word()
            else:
                self.depth = max(0, self.depth + (char == "(") - (char == ")"))
                self.current.append(char)
            i += 1
        if self.quote:
            self.current.append("\n")
        else:
            self._end_word()
        return continued

    def _end_word(self) -> None:
        if self.current:
            self.words.append("".join(self.current))
            self.current = []

    def done(self) -> list[str]:
        self._end_word()
        return self.words
