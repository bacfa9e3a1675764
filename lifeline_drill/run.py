"""Running the drills with ansible-runner: one playbook run per drill, targets side by side.

A target takes one drill at a time, in matrix order (a drill leaves its target broken or recovered
for the next one); different targets may run concurrently, one worker thread per target queue.
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import ansible_runner

from lifeline_drill.matrix import Drill, queues_by_target
from lifeline_drill.phases import (
    ERROR,
    PHASES,
    RECOVERED,
    Analysis,
    PhaseTiming,
    ProgressTracker,
    analyse,
)
from lifeline_drill.reports import DrillRecord, failure_headline

REPO = Path(__file__).resolve().parent.parent
DEFAULT_PLAYBOOK = REPO / "playbooks" / "drill.yml"


@dataclass(frozen=True)
class Settings:
    inventory: Path
    out: Path
    playbook: Path = DEFAULT_PLAYBOOK
    timeout: int | None = None
    jobs: int = 1

    @property
    def runs(self) -> Path:
        return self.out / "runs"

    @property
    def report_dir(self) -> Path:
        return self.out / "reports"


class Console:
    """Progress lines ``[  12.3s] target/fault: text`` from any thread, one whole line at a time."""

    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None) -> None:
        self.quiet = quiet
        self._stream = stream
        self._lock = threading.Lock()
        self._start = time.monotonic()

    def _write(self, text: str) -> None:
        stream = self._stream or sys.stdout  # looked up late: tests capture sys.stdout
        with self._lock:
            stream.write(text)
            stream.flush()

    def progress(self, drill: Drill, text: str) -> None:
        if not self.quiet:
            self.drill_line(drill, text)

    def drill_line(self, drill: Drill, text: str) -> None:
        self._write(f"[{time.monotonic() - self._start:6.1f}s] {drill.label}: {text}\n")

    def text(self, text: str) -> None:
        self._write(text if text.endswith("\n") else text + "\n")


def drill_extravars(drill: Drill, settings: Settings) -> dict[str, Any]:
    """The extra vars of one drill: the user's, then the runner's contract with drill.yml."""
    return {
        **drill.vars,
        "drill_fault": drill.fault,
        "drill_confirm": True,
        "lifeline_hosts": drill.target,
        "lifeline_report_dir": str(settings.report_dir),
    }


def drill_envvars() -> dict[str, str]:
    return {
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        # The ansible-playbook next to this Python (the venv's), not another one found on PATH.
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:60]


def private_data_dir(settings: Settings, drill: Drill, stamp: str) -> Path:
    """A fresh directory per drill: ansible-runner keeps the run's artifacts (events, stdout) there."""
    settings.runs.mkdir(parents=True, exist_ok=True)
    prefix = f"{stamp}-{_safe_name(drill.target)}-{_safe_name(drill.fault)}-"
    return Path(tempfile.mkdtemp(prefix=prefix, dir=settings.runs))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def drill_record(
    drill: Drill,
    analysis: Analysis,
    *,
    started: datetime,
    status: str | None,
    rc: int | None,
    artifacts: Path | None,
) -> DrillRecord:
    """One drill's entry of drills.json."""
    return {
        "fault": drill.fault,
        "target": drill.target,
        "vars": dict(drill.vars),
        "outcome": analysis.outcome,
        "ok": analysis.ok,
        "started": _iso(analysis.started or started),
        "phases": {
            phase: {"seconds": _round(timing.seconds), "started": _iso(timing.started)}
            for phase, timing in analysis.phases.items()
        },
        "time_to_recovery": _round(analysis.time_to_recovery),
        "total_seconds": _round(analysis.total_seconds),
        "failed_phase": analysis.failed_phase,
        "failed_task": analysis.failed_task,
        "message": analysis.message,
        "runner_status": status,
        "rc": rc,
        "artifacts": str(artifacts) if artifacts is not None else None,
    }


def not_run_record(drill: Drill, reason: str, *, artifacts: Path | None = None) -> DrillRecord:
    """The entry of a drill that ansible-runner never ran (interrupted, or it could not start)."""
    analysis = Analysis(ERROR, {phase: PhaseTiming() for phase in PHASES}, None, None, message=reason)
    return drill_record(drill, analysis, started=datetime.now(UTC), status=None, rc=None, artifacts=artifacts)


def end_line(record: Mapping[str, Any]) -> str:
    """The progress line of a finished drill."""
    total = record.get("total_seconds")
    took = f" in {total:.1f} s" if total is not None else ""
    if record["outcome"] == RECOVERED:
        return f"recovered{took} (time to recovery {record['time_to_recovery']:.1f} s)"
    return f"{record['outcome'].upper()}{took}: {failure_headline(record)}"


def run_drill(drill: Drill, settings: Settings, console: Console, cancel: threading.Event) -> DrillRecord:
    """Run drill.yml for one drill and read its outcome from the events."""
    started = datetime.now(UTC)
    private = private_data_dir(settings, drill, started.strftime("%Y%m%dT%H%M%S"))
    tracker = ProgressTracker()
    events: list[dict[str, Any]] = []

    def on_event(event: dict[str, Any]) -> bool:
        events.append(event)
        for line in tracker.feed(event):
            console.progress(drill, line)
        return True  # keep writing the event into the artifacts

    try:
        runner = ansible_runner.run(
            private_data_dir=str(private),
            project_dir=str(REPO),
            playbook=str(settings.playbook),
            inventory=str(settings.inventory),
            extravars=drill_extravars(drill, settings),
            envvars=drill_envvars(),
            quiet=True,
            event_handler=on_event,
            cancel_callback=cancel.is_set,
            **({"timeout": settings.timeout} if settings.timeout else {}),
        )
    except Exception as exc:  # ansible-runner refuses to start (e.g. no ansible-playbook): one drill lost
        return not_run_record(drill, f"ansible-runner could not run the playbook: {exc}", artifacts=private)
    analysis = analyse(events, runner.status, runner.rc, timeout=settings.timeout, stopped=datetime.now(UTC))
    if runner.status in ("timeout", "canceled") and (killed := stop_leftovers(private)):
        message = f"{analysis.message}\n(killed {killed} Ansible process(es) the runner had left running)"
        analysis = replace(analysis, message=message)
    return drill_record(
        drill, analysis, started=started, status=runner.status, rc=runner.rc, artifacts=private
    )


def stop_leftovers(private: Path) -> int:
    """Kill what is left of a drill's playbook after a timeout or an interruption; how many.

    ansible-runner kills the playbook's process group, but ansible-core starts each worker in a
    session of its own, so the worker and the task it runs would go on (and change the target
    while its next drill runs). They are found by the drill's private data dir, which is in the
    command line of every ansible-playbook process of the drill and of no other process.
    """
    marker = f"{private}/".encode()
    killed = 0
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if marker not in (entry / "cmdline").read_bytes():
                continue
            pid = int(entry.name)
            # A worker leads its own group, with the module processes it started: kill them all.
            group = os.getpgid(pid)
            if group == pid and group != os.getpgrp():
                os.killpg(group, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
            killed += 1
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to see
    return killed


@contextmanager
def interrupts_cancel(cancel: threading.Event) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) cancels the running drills and skips the rest, and reports are still
    written. Only the main thread may set signal handlers; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        cancel.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _worker(
    targets: queue.Queue[str],
    queues: Mapping[str, list[int]],
    run_one: Callable[[int], DrillRecord],
    results: dict[int, DrillRecord],
) -> None:
    """Take a whole target's queue at a time and run its drills one after another."""
    while True:
        try:
            target = targets.get_nowait()
        except queue.Empty:
            return
        for index in queues[target]:
            results[index] = run_one(index)


def run_matrix(
    drills: Sequence[Drill], settings: Settings, console: Console, cancel: threading.Event | None = None
) -> list[DrillRecord]:
    """Run every drill; the records come back in matrix order, whatever order they ran in."""
    if cancel is None:
        cancel = threading.Event()
    settings.report_dir.mkdir(parents=True, exist_ok=True)
    queues = queues_by_target(drills)

    def run_one(index: int) -> DrillRecord:
        drill = drills[index]
        if cancel.is_set():
            record = not_run_record(drill, "not run: the drill run was interrupted")
        else:
            try:
                record = run_drill(drill, settings, console, cancel)
            except Exception:  # a bug here must cost one drill, not the others' reports
                record = not_run_record(drill, f"drill runner error:\n{traceback.format_exc()}")
        console.drill_line(drill, end_line(record))
        return record

    targets: queue.Queue[str] = queue.Queue()
    for target in queues:
        targets.put(target)
    results: dict[int, DrillRecord] = {}
    workers = [
        threading.Thread(target=_worker, args=(targets, queues, run_one, results), name=f"drill-worker-{n}")
        for n in range(max(1, min(settings.jobs, len(queues))))
    ]
    with interrupts_cancel(cancel):
        for worker in workers:
            worker.start()
        for worker in workers:
            # Joined in short waits so the main thread keeps handling Ctrl-C.
            while worker.is_alive():
                worker.join(0.2)
    return [results[index] for index in range(len(drills))]
