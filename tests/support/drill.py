"""What the drill runner's tests share: hand-built ansible-runner events of a drill, the stand-in drill
playbook's data (tests/unit/data/drill/), and Jenkins' JUnit schema the reports are validated against
(junit-10.xsd, which `make venv` extracts from pytest's sdist into .venv/share/lifeline by
tools/setup/venv.sh)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support import paths

DATA = paths.DATA / "drill"
JUNIT_XSD = paths.REPO / ".venv" / "share" / "lifeline" / "junit-10.xsd"

# ---- hand-built events ---------------------------------------------------------------------------

T0 = datetime(2026, 11, 22, 16, 20, 0, tzinfo=UTC)

PLANT = "drill plant: plant the fault"
BROKEN = "drill prove broken: the fault broke it"
RECOVERY = "Restore a broken glibc"
RECOVERED = "drill prove recovered: it works again"
REPORT = "drill report: write the record"


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def event(kind: str, seconds: float, **data: Any) -> dict[str, Any]:
    return {"event": kind, "created": at(seconds), "event_data": data}


def play(seconds: float, name: str) -> dict[str, Any]:
    return event("playbook_on_play_start", seconds, play=name, name=name)


def task(seconds: float, play_name: str, name: str, **data: Any) -> list[dict[str, Any]]:
    """A task that starts and succeeds on the target."""
    return [
        event("playbook_on_task_start", seconds, play=play_name, task=name, **data),
        event("runner_on_ok", seconds + 0.1, play=play_name, task=name, host="t", res={"changed": False}),
    ]


def failed(
    seconds: float, play_name: str, name: str, res: dict[str, Any], **data: Any
) -> list[dict[str, Any]]:
    return [
        event("playbook_on_task_start", seconds, play=play_name, task=name),
        event("runner_on_failed", seconds + 0.1, play=play_name, task=name, host="t", res=res, **data),
    ]


# A successful drill: plant 0-2 s, prove broken 2-3, recover 3-9 (two plays), prove recovered 9-11,
# report 11-12, stats at 12.5.
TIMELINE: list[tuple[float, str, str]] = [
    (0.0, PLANT, "Plant the fault"),
    (2.0, BROKEN, "Prove it broken"),
    (3.0, RECOVERY, "Restore its glibc"),
    (6.0, "Repair crontabs and find persistence", "Repair its crontabs"),
    (9.0, RECOVERED, "Prove it recovered"),
    (11.0, REPORT, "Write the record"),
]


def drill_events(until: str | None = None, failure: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The successful drill's events; with ``until``, the run stops failing in that play."""
    events = [event("playbook_on_start", -0.5)]
    for start, name, task_name in TIMELINE:
        events.append(play(start, name))
        if name == until:
            events += failed(start + 0.2, name, task_name, failure or {"msg": "it failed"})
            events.append(event("playbook_on_stats", start + 0.5))
            return events
        events += task(start + 0.2, name, task_name)
    events.append(event("playbook_on_stats", 12.5))
    return events


# ---- the JUnit schema ----------------------------------------------------------------------------


@functools.cache
def _load_junit_schema():
    import xmlschema

    return xmlschema.XMLSchema(str(JUNIT_XSD))


def junit_schema():
    """junit-10.xsd, loaded once. Missing, the test fails (a skip would hide an unchecked report)."""
    if not JUNIT_XSD.is_file():
        pytest.fail(
            f"{JUNIT_XSD} is missing: run `make venv` (tools/setup/venv.sh extracts it from pytest's sdist)"
        )
    try:
        return _load_junit_schema()
    except ImportError:
        pytest.fail("xmlschema is not installed in .venv: run `make venv` (requirements/dev.txt pins it)")
