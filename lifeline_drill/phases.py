"""Phase timings and the outcome of one drill, read from ansible-runner's events.

Pure functions on event dicts (``event``, ``created``, ``event_data``): nothing here runs Ansible,
so every rule can be tested on hand-built event lists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

PHASES: tuple[str, ...] = ("plant", "prove_broken", "recover", "prove_recovered")
# Labels of plays that are no phase: checks before the plant (a failure there is a refusal) and
# the bookkeeping play after the proof (its time counts only in the total).
PREFLIGHT = "preflight"
REPORT = "report"

RECOVERED = "recovered"
REFUSED = "refused"
PLANT_FAILED = "plant failed"
NOT_BROKEN = "not broken"
NOT_RECOVERED = "not recovered"
UNREACHABLE = "unreachable"
ERROR = "error"
OUTCOMES: tuple[str, ...] = (RECOVERED, REFUSED, PLANT_FAILED, NOT_BROKEN, NOT_RECOVERED, UNREACHABLE, ERROR)

# The phase a failure happened in decides what the drill proved.
_OUTCOME_OF_FAILED_PHASE = {
    PREFLIGHT: REFUSED,
    "plant": PLANT_FAILED,
    "prove_broken": NOT_BROKEN,
    "recover": NOT_RECOVERED,
    "prove_recovered": NOT_RECOVERED,
}

# What the drill role says whenever it refuses a drill (not disposable, unconfirmed, a fault
# the host cannot take, a variable missing): a refusal, not a failed plant.
REFUSAL_WORDS = "Nothing was planted"

_MARKER = re.compile(r"\s*drill\s+(plant|prove\s+broken|prove\s+recovered|report)\s*(?::|$)", re.IGNORECASE)

MESSAGE_LIMIT = 2000


def phase_title(phase: str) -> str:
    """``prove_broken`` -> ``prove broken``: how people read a phase name."""
    return phase.replace("_", " ")


def play_marker(name: str) -> str | None:
    """The phase (or REPORT) a play's name announces with its ``drill <phase>:`` prefix, if any."""
    match = _MARKER.match(name or "")
    if match is None:
        return None
    return "_".join(match.group(1).lower().split())


def parse_created(value: str) -> datetime:
    """An event's ``created`` time, aware; ansible-runner writes naive UTC times for some events."""
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def label_plays(names: Sequence[str]) -> list[str]:
    """The phase (or PREFLIGHT/REPORT) of each play, in the order the plays started.

    Marked plays carry their phase. Unmarked plays after the last "prove broken" play and before
    the first "prove recovered" play after it are the recovery playbook's: ``recover``. Any other
    unmarked play belongs to the phase running when it started (PREFLIGHT before the first).
    Called on the plays seen so far, it gives the live view; on all of them, the final one.
    """
    markers = [play_marker(name) for name in names]
    last_broken = max((i for i, m in enumerate(markers) if m == "prove_broken"), default=None)
    first_recovered = None
    if last_broken is not None:
        first_recovered = next(
            (i for i, m in enumerate(markers) if m == "prove_recovered" and i > last_broken), len(markers)
        )
    labels: list[str] = []
    for index, marker in enumerate(markers):
        if marker is not None:
            labels.append(marker)
        elif last_broken is not None and last_broken < index < first_recovered:
            labels.append("recover")
        else:
            labels.append(labels[-1] if labels else PREFLIGHT)
    return labels


@dataclass(frozen=True)
class PhaseTiming:
    seconds: float | None = None
    started: datetime | None = None

    @property
    def ran(self) -> bool:
        return self.seconds is not None


@dataclass(frozen=True)
class Failure:
    """The event that stopped the drill: a failed (not ignored) task or an unreachable host."""

    event: str
    phase: str | None
    task: str | None
    message: str


@dataclass(frozen=True)
class Analysis:
    outcome: str
    phases: dict[str, PhaseTiming]
    time_to_recovery: float | None
    total_seconds: float | None
    failed_phase: str | None = None
    failed_task: str | None = None
    message: str | None = None
    started: datetime | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == RECOVERED


@dataclass
class _Play:
    name: str
    started: datetime | None
    label: str = PREFLIGHT
    events: list[Mapping[str, Any]] = field(default_factory=list)


def _data(event: Mapping[str, Any]) -> Mapping[str, Any]:
    return event.get("event_data") or {}


def _play_name(event: Mapping[str, Any]) -> str:
    data = _data(event)
    return str(data.get("play") or data.get("name") or "")


def _created(event: Mapping[str, Any]) -> datetime | None:
    value = event.get("created")
    if not value:
        return None
    try:
        return parse_created(str(value))
    except ValueError:
        return None


def in_order(events: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Events in the order Ansible emitted them: by ``counter`` when every event has one."""
    listed = list(events)
    if listed and all(isinstance(e.get("counter"), int) for e in listed):
        return sorted(listed, key=lambda e: e["counter"])
    return listed


def split_plays(events: Sequence[Mapping[str, Any]]) -> list[_Play]:
    """Each play with the events that came after its start, labelled with its phase."""
    plays: list[_Play] = []
    for event in events:
        if event.get("event") == "playbook_on_play_start":
            plays.append(_Play(_play_name(event), _created(event)))
        elif plays:
            plays[-1].events.append(event)
    for play, label in zip(plays, label_plays([p.name for p in plays]), strict=True):
        play.label = label
    return plays


def end_time(events: Sequence[Mapping[str, Any]], stopped: datetime | None = None) -> datetime | None:
    """When the playbook ended: its stats event; without one (timeout, interruption, crash) when
    the runner stopped it, else the last event seen."""
    for event in reversed(events):
        if event.get("event") == "playbook_on_stats":
            return _created(event)
    times = [t for t in map(_created, events) if t is not None]
    if stopped is not None and times:
        return max(stopped, *times)
    return max(times) if times else None


def phase_runs(plays: Sequence[_Play]) -> list[tuple[str, datetime]]:
    """(label, start) of each run of consecutive plays with the same label."""
    runs: list[tuple[str, datetime]] = []
    for play in plays:
        if play.started is not None and not (runs and runs[-1][0] == play.label):
            runs.append((play.label, play.started))
    return runs


def phase_timings(plays: Sequence[_Play], end: datetime | None) -> dict[str, PhaseTiming]:
    """Seconds of each phase: from its first play's start to the start of the next play with another
    label (a phase, or the report play), the last one to ``end``. Phases that never started: None."""
    runs = phase_runs(plays)
    seconds: dict[str, float] = {}
    starts: dict[str, datetime] = {}
    for index, (label, start) in enumerate(runs):
        stop = runs[index + 1][1] if index + 1 < len(runs) else end or start
        starts.setdefault(label, start)
        # A phase that comes back later (odd, but possible) adds up its runs.
        seconds[label] = seconds.get(label, 0.0) + max(0.0, (stop - start).total_seconds())
    return {
        phase: PhaseTiming(round(seconds[phase], 6), starts[phase]) if phase in seconds else PhaseTiming()
        for phase in PHASES
    }


def _text(value: object) -> str:
    """Any result value as text that can be written anywhere (lone surrogates replaced)."""
    if isinstance(value, bytes):
        text = value.decode("utf-8", "replace")
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return text.encode("utf-8", "replace").decode("utf-8")


def _head(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail(text: str, limit: int) -> str:
    # The end of a command's output is where it says why it failed.
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def result_message(res: Mapping[str, Any], limit: int = MESSAGE_LIMIT) -> str:
    """A task result's ``msg``, followed by its stderr (else stdout) when it has output."""
    msg = _text(res["msg"]).strip() if res.get("msg") not in (None, "") else ""
    output = next((_text(res[k]).strip() for k in ("stderr", "stdout") if res.get(k)), "")
    if not msg:
        return _tail(output, limit)
    if not output:
        return _head(msg, limit)
    msg = _head(msg, limit // 2)
    return f"{msg}\n{_tail(output, limit - len(msg) - 1)}"


def _ignored(event: Mapping[str, Any]) -> bool:
    data = _data(event)
    res = data.get("res") or {}
    return bool(data.get("ignore_errors") or (isinstance(res, Mapping) and res.get("ignore_errors")))


def _task_title(data: Mapping[str, Any]) -> str | None:
    task = data.get("task")
    if not task:
        return None
    role = data.get("role")
    # Role tasks carry their role apart; some callbacks already prefix it ("role : task").
    return f"{role}: {task}" if role and not str(task).startswith(str(role)) else str(task)


def find_failure(plays: Sequence[_Play]) -> Failure | None:
    """The failure that stopped the drill: an unreachable host first, else the last failed task
    that was not ignored (failures a ``rescue`` handled come before the one that ended the run)."""
    found: Failure | None = None
    for kind in ("runner_on_unreachable", "runner_on_failed"):
        for play in plays:
            for event in play.events:
                if event.get("event") != kind or _ignored(event):
                    continue
                data = _data(event)
                res = data.get("res") if isinstance(data.get("res"), Mapping) else {}
                found = Failure(kind, play.label, _task_title(data), result_message(res))
        if found is not None:
            return found
    return None


def runner_output(events: Sequence[Mapping[str, Any]], limit: int = MESSAGE_LIMIT) -> str:
    """The last lines Ansible printed (e.g. ``ERROR! ...`` when the playbook did not load)."""
    lines = [_text(e.get("stdout") or "") for e in events if (e.get("stdout") or "").strip()]
    text = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(lines)).replace("\r\n", "\n").strip()
    return _tail(text, limit)


def _seconds_between(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round(max(0.0, (end - start).total_seconds()), 6)


def _error_without_failure(
    status: str | None,
    plays: Sequence[_Play],
    events: Sequence[Mapping[str, Any]],
    missing: Sequence[str],
    timeout: float | None,
) -> str:
    """Why a drill with no failed task still did not recover."""
    where = f" in phase {plays[-1].label}" if plays else " before the first play"
    if status == "timeout":
        limit = f" of {timeout:g} s" if timeout else ""
        return f"the playbook ran past the drill's time limit{limit}{where}"
    if status == "canceled":
        return f"the drill was interrupted{where}"
    if status == "successful" and missing:
        return "the playbook succeeded but these phases never started: " + ", ".join(missing)
    output = runner_output(events)
    return f"ansible-runner status {status!r} without a failed task" + (f":\n{output}" if output else "")


def analyse(
    events: Iterable[Mapping[str, Any]],
    status: str | None,
    rc: int | None,
    *,
    timeout: float | None = None,
    stopped: datetime | None = None,
) -> Analysis:
    """Phase timings, time to recovery and outcome of one drill from its events and the runner's
    final status and return code (``timeout``: the time limit it had; ``stopped``: when the runner
    returned, the end of a playbook that never reached its stats)."""
    ordered = in_order(events)
    plays = split_plays(ordered)
    end = end_time(ordered, stopped)
    phases = phase_timings(plays, end)
    first = next((t for t in map(_created, ordered) if t is not None), None)
    start = next((_created(e) for e in ordered if e.get("event") == "playbook_on_start"), None) or first
    total = _seconds_between(start, end)
    missing = [phase for phase in PHASES if not phases[phase].ran]
    # A timeout or an interruption is the cause even after a failure a rescue handled; a
    # successful run handled all its failures.
    failure = find_failure(plays) if status not in ("successful", "timeout", "canceled") else None

    if status == "successful" and rc == 0 and not missing:
        ttr = round(phases["recover"].seconds + phases["prove_recovered"].seconds, 6)
        return Analysis(RECOVERED, phases, ttr, total, started=start)
    if failure is not None:
        if failure.event == "runner_on_unreachable":
            outcome = UNREACHABLE
        else:
            outcome = _OUTCOME_OF_FAILED_PHASE.get(failure.phase or "", ERROR)
            if outcome == PLANT_FAILED and REFUSAL_WORDS in (failure.message or ""):
                outcome = REFUSED
        return Analysis(
            outcome, phases, None, total, failure.phase, failure.task, failure.message, started=start
        )
    message = _error_without_failure(status, plays, ordered, missing, timeout)
    phase = plays[-1].label if plays else None
    return Analysis(ERROR, phases, None, total, phase, None, message, started=start)


class ProgressTracker:
    """Turns one drill's live event stream into progress lines: each phase as it starts, then each
    task of that phase the first time it runs on a host (skipped tasks, such as the other recovery
    playbooks' in the recovery phase, are not shown; loops and repeated task names print once)."""

    def __init__(self) -> None:
        self._plays: list[str] = []
        self._phase: str | None = None
        self._tasks: set[str] = set()

    @property
    def phase(self) -> str | None:
        return self._phase

    def feed(self, event: Mapping[str, Any]) -> list[str]:
        kind = event.get("event")
        if kind == "playbook_on_play_start":
            return self._play_started(_play_name(event))
        if kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable") and self._phase in PHASES:
            return self._task_started(_task_title(_data(event)))
        return []

    def _play_started(self, name: str) -> list[str]:
        self._plays.append(name)
        label = label_plays(self._plays)[-1]
        if label == self._phase:
            return []
        self._phase, self._tasks = label, set()
        return [phase_title(label)] if label in PHASES else []

    def _task_started(self, task: str | None) -> list[str]:
        if not task or task in self._tasks:
            return []
        self._tasks.add(task)
        return [f"{phase_title(self._phase or '')} ({task})"]
