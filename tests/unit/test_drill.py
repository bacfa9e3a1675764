"""The drill runner (lifeline_drill): phases and outcomes from events, the matrix, the reports,
and one run of the real ansible-runner on a stand-in drill playbook (data/drill/).

junit.xml is validated against Jenkins' junit-10.xsd, which `make venv` extracts from pytest's
sdist into .venv/share/lifeline (tools/setup-venv.sh).
"""

from __future__ import annotations

import functools
import json
import re
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lifeline_drill import phases, reports, run
from lifeline_drill.cli import main
from lifeline_drill.matrix import (
    Drill,
    MatrixError,
    load_matrix,
    parse_extra_vars,
    parse_matrix,
    queues_by_target,
    select,
)
from lifeline_drill.phases import ProgressTracker, analyse, label_plays, play_marker
from support import paths
from support.paths import REPO

DATA = paths.DATA / "drill"
JUNIT_XSD = REPO / ".venv" / "share" / "lifeline" / "junit-10.xsd"

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


def seconds_of(analysis: phases.Analysis) -> dict[str, float | None]:
    return {name: timing.seconds for name, timing in analysis.phases.items()}


# ---- phases: markers and labels ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "marker"),
    [
        ("drill plant: crontab_nul_blocks", "plant"),
        ("drill prove broken: cron skips the file", "prove_broken"),
        ("drill prove recovered: cron reads it again", "prove_recovered"),
        ("drill report: record", "report"),
        ("Drill Prove  Broken:x", "prove_broken"),
        ("drill plant", "plant"),
        ("drill planter: no", None),
        ("Restore a broken glibc", None),
        ("the drill plant: not at the start", None),
        ("", None),
    ],
)
def test_play_marker(name, marker):
    assert play_marker(name) == marker


def test_labels_unmarked_plays_by_position():
    names = ["Check", PLANT, "Plant helper", BROKEN, "Recover 1", "Recover 2", RECOVERED, "Extra", REPORT]
    assert label_plays(names) == [
        "preflight",
        "plant",
        "plant",
        "prove_broken",
        "recover",
        "recover",
        "prove_recovered",
        "prove_recovered",
        "report",
    ]


def test_recovery_starts_after_the_last_prove_broken_play():
    names = [PLANT, BROKEN, "Between proofs", BROKEN, "Recover", RECOVERED]
    assert label_plays(names) == [
        "plant",
        "prove_broken",
        "prove_broken",
        "prove_broken",
        "recover",
        "prove_recovered",
    ]


def test_no_recovery_without_a_prove_broken_play():
    assert label_plays(["Check", PLANT, "Unmarked"]) == ["preflight", "plant", "plant"]


# ---- phases: timings and outcomes ----------------------------------------------------------------


def test_successful_drill():
    analysis = analyse(drill_events(), "successful", 0)
    assert analysis.outcome == "recovered" and analysis.ok
    assert seconds_of(analysis) == {"plant": 2.0, "prove_broken": 1.0, "recover": 6.0, "prove_recovered": 2.0}
    assert analysis.phases["recover"].started == T0 + timedelta(seconds=3)
    assert analysis.time_to_recovery == 8.0
    # From playbook_on_start to playbook_on_stats: the report play counts in the total.
    assert analysis.total_seconds == 13.0
    assert analysis.failed_phase is None and analysis.message is None


@pytest.mark.parametrize(
    ("until", "outcome", "phase", "ran"),
    [
        (PLANT, "plant failed", "plant", ["plant"]),
        (BROKEN, "not broken", "prove_broken", ["plant", "prove_broken"]),
        (RECOVERY, "not recovered", "recover", ["plant", "prove_broken", "recover"]),
        (
            "Repair crontabs and find persistence",
            "not recovered",
            "recover",
            ["plant", "prove_broken", "recover"],
        ),
        (
            RECOVERED,
            "not recovered",
            "prove_recovered",
            ["plant", "prove_broken", "recover", "prove_recovered"],
        ),
        (REPORT, "error", "report", ["plant", "prove_broken", "recover", "prove_recovered"]),
    ],
)
def test_failure_in_each_phase(until, outcome, phase, ran):
    analysis = analyse(drill_events(until, {"msg": "Assertion failed\nsecond line"}), "failed", 2)
    assert analysis.outcome == outcome and not analysis.ok
    assert analysis.failed_phase == phase
    task_name = next(t for _, name, t in TIMELINE if name == until)
    assert analysis.failed_task == task_name
    assert analysis.message == "Assertion failed\nsecond line"
    assert [name for name, seconds in seconds_of(analysis).items() if seconds is not None] == ran
    # The failing phase lasts until the playbook's stats, 0.5 s after the failing play's start.
    if phase != "report":
        phase_start = (analysis.phases[phase].started - T0).total_seconds()
        play_start = next(start for start, name, _ in TIMELINE if name == until)
        assert analysis.phases[phase].seconds == play_start + 0.5 - phase_start
    assert analysis.time_to_recovery is None


def test_refused_before_anything_is_planted():
    events = [
        event("playbook_on_start", 0),
        play(0.1, "Refuse unless disposable and confirmed"),
        *failed(0.2, "Refuse unless disposable and confirmed", "Check the target", {"msg": "not disposable"}),
        event("playbook_on_stats", 0.5),
    ]
    analysis = analyse(events, "failed", 2)
    assert analysis.outcome == "refused"
    assert analysis.failed_phase == "preflight"
    assert analysis.message == "not disposable"
    assert all(timing.seconds is None and timing.started is None for timing in analysis.phases.values())
    assert analysis.total_seconds == 0.5


def test_a_refusal_inside_the_plant_phase_is_a_refusal():
    """The drill role refuses inside the plant play, always with its words: nothing was planted."""
    message = "Nothing was planted on t: t is not marked disposable"
    events = [
        event("playbook_on_start", 0),
        play(0.1, PLANT),
        *failed(0.2, PLANT, "Refuse a host not marked disposable", {"msg": message}),
        event("playbook_on_stats", 0.5),
    ]
    analysis = analyse(events, "failed", 2)
    assert (analysis.outcome, analysis.failed_phase, analysis.message) == ("refused", "plant", message)

    other = [*events[:2], *failed(0.2, PLANT, "Plant the fault", {"msg": "planter exit 2"}), events[-1]]
    assert analyse(other, "failed", 2).outcome == "plant failed"


def test_unreachable_target():
    events = [
        event("playbook_on_start", 0),
        play(1, PLANT),
        event("playbook_on_task_start", 1.1, play=PLANT, task="Plant the fault"),
        event(
            "runner_on_unreachable",
            4,
            play=PLANT,
            task="Plant the fault",
            host="t",
            res={"msg": "Failed to connect to the host via ssh", "unreachable": True},
        ),
        event("playbook_on_stats", 4.5),
    ]
    analysis = analyse(events, "failed", 4)
    assert analysis.outcome == "unreachable"
    assert (analysis.failed_phase, analysis.failed_task) == ("plant", "Plant the fault")
    assert analysis.message == "Failed to connect to the host via ssh"
    assert analysis.phases["plant"].seconds == 3.5


def test_timestamps_with_and_without_offset():
    # Naive times are UTC; 18:20:03+02:00 is 16:20:03 UTC.
    events = [
        {"event": "playbook_on_start", "created": "2026-11-22T16:19:59.5", "event_data": {}},
        {"event": "playbook_on_play_start", "created": "2026-11-22T16:20:00", "event_data": {"play": PLANT}},
        {
            "event": "playbook_on_play_start",
            "created": "2026-11-22T18:20:03+02:00",
            "event_data": {"play": BROKEN},
        },
        {
            "event": "playbook_on_play_start",
            "created": "2026-11-22T16:20:04.250000",
            "event_data": {"play": "R"},
        },
        {
            "event": "playbook_on_play_start",
            "created": "2026-11-22T16:20:10Z",
            "event_data": {"play": RECOVERED},
        },
        {"event": "playbook_on_stats", "created": "2026-11-22T11:20:11.5-05:00", "event_data": {}},
    ]
    analysis = analyse(events, "successful", 0)
    assert seconds_of(analysis) == {
        "plant": 3.0,
        "prove_broken": 1.25,
        "recover": 5.75,
        "prove_recovered": 1.5,
    }
    assert analysis.phases["prove_broken"].started == datetime(2026, 11, 22, 16, 20, 3, tzinfo=UTC)
    assert analysis.time_to_recovery == 7.25
    assert analysis.total_seconds == 12.0


def test_recovery_playbook_with_several_plays():
    names = [PLANT, BROKEN, "Attach the target", "Restore its glibc", "Detach the target", RECOVERED]
    events = [event("playbook_on_start", 0)]
    for second, name in enumerate(names):
        events += [play(second * 2, name), *task(second * 2 + 0.5, name, f"task of {name}")]
    events.append(event("playbook_on_stats", 13))
    analysis = analyse(events, "successful", 0)
    assert seconds_of(analysis) == {"plant": 2.0, "prove_broken": 2.0, "recover": 6.0, "prove_recovered": 3.0}
    assert analysis.time_to_recovery == 9.0


def test_unmarked_plays_outside_the_recovery():
    # A check before the plant counts in no phase; a helper play after the plant is the plant's.
    names = ["Check the target", PLANT, "Plant helper", BROKEN, "Recover", RECOVERED]
    events = [event("playbook_on_start", 0)] + [play(second, name) for second, name in enumerate(names)]
    events.append(event("playbook_on_stats", 7))
    analysis = analyse(events, "successful", 0)
    assert seconds_of(analysis) == {"plant": 2.0, "prove_broken": 1.0, "recover": 1.0, "prove_recovered": 2.0}


def test_ignored_and_rescued_failures():
    events = drill_events(RECOVERY)
    # Before the fatal failure: one ignored, one a rescue handled (not told apart in the events).
    extra = [
        *failed(3.05, RECOVERY, "Ignored probe", {"msg": "ignored"}, ignore_errors=True),
        *failed(3.1, RECOVERY, "First try", {"msg": "rescued"}),
    ]
    index = events.index(next(e for e in events if e["event_data"].get("play") == RECOVERY)) + 1
    events[index:index] = extra
    analysis = analyse(events, "failed", 2)
    assert (analysis.failed_task, analysis.message) == ("Restore its glibc", "it failed")


def test_only_ignored_failures_in_a_successful_run():
    events = drill_events()
    events[3:3] = failed(0.3, PLANT, "Probe", {"msg": "no such file"}, ignore_errors=True)
    assert analyse(events, "successful", 0).outcome == "recovered"


def test_message_from_output_when_msg_is_missing_and_trimmed():
    analysis = analyse(drill_events(RECOVERY, {"stderr": "E" * 5000 + "\nreal cause"}), "failed", 2)
    assert analysis.message.endswith("\nreal cause")
    assert len(analysis.message) <= phases.MESSAGE_LIMIT


def test_message_keeps_both_msg_and_stderr():
    res = {"msg": "non-zero return code", "rc": 3, "stderr": "cp: cannot stat '/x'", "stdout": "ignored"}
    analysis = analyse(drill_events(RECOVERY, res), "failed", 2)
    assert analysis.message == "non-zero return code\ncp: cannot stat '/x'"


def test_structured_msg_is_json():
    analysis = analyse(drill_events(PLANT, {"msg": ["one", {"two": 2}]}), "failed", 2)
    assert analysis.message == '["one", {"two": 2}]'


def test_runner_failed_without_a_failed_task():
    events = [
        event("playbook_on_start", 0),
        {
            "event": "verbose",
            "created": at(0.1),
            "stdout": "\x1b[0;31mERROR! 'drill_fault' is undefined\x1b[0m\r\n",
            "event_data": {},
        },
    ]
    analysis = analyse(events, "failed", 1)
    assert analysis.outcome == "error"
    assert analysis.failed_phase is None
    assert "without a failed task" in analysis.message
    assert analysis.message.endswith("ERROR! 'drill_fault' is undefined")


def test_timeout_is_an_error_in_the_running_phase():
    events = drill_events()[:10]  # stopped in the recovery's first task, no stats: stopped at 20 s
    analysis = analyse(events, "timeout", 254, timeout=600, stopped=T0 + timedelta(seconds=20))
    assert analysis.outcome == "error"
    assert analysis.failed_phase == "recover"
    assert analysis.message == "the playbook ran past the drill's time limit of 600 s in phase recover"
    assert analysis.phases["recover"].seconds == 17.0 and analysis.time_to_recovery is None
    assert analysis.total_seconds == 20.5
    # Without the runner's stop time, the last event ends it.
    assert analyse(events, "timeout", 254).phases["recover"].seconds == 0.3


def test_interrupted_drill():
    analysis = analyse(drill_events()[:5], "canceled", 254)
    assert (analysis.outcome, analysis.failed_phase) == ("error", "prove_broken")
    assert analysis.message == "the drill was interrupted in phase prove_broken"


def test_success_without_every_phase_is_an_error():
    events = [e for e in drill_events() if e["event_data"].get("play") not in (RECOVERED,)]
    analysis = analyse(events, "successful", 0)
    assert analysis.outcome == "error"
    assert analysis.message == "the playbook succeeded but these phases never started: prove_recovered"


def test_events_are_ordered_by_counter():
    events = drill_events()
    for counter, item in enumerate(events):
        item["counter"] = counter + 1
    assert seconds_of(analyse(list(reversed(events)), "successful", 0)) == seconds_of(
        analyse(drill_events(), "successful", 0)
    )


def test_no_events_at_all():
    analysis = analyse([], "failed", 1)
    assert analysis.outcome == "error" and analysis.total_seconds is None
    assert all(timing.seconds is None for timing in analysis.phases.values())


def test_progress_prints_phases_and_each_task_that_ran_once():
    tracker = ProgressTracker()
    stream = [
        play(0, "Check the target"),
        event("runner_on_ok", 0.1, play="Check the target", task="Refuse unless disposable"),
        play(1, PLANT),
        event("playbook_on_task_start", 1.1, play=PLANT, task="Plant the fault", role="drill"),
        event("runner_on_ok", 1.2, play=PLANT, task="Plant the fault", role="drill"),
        event("runner_on_ok", 1.3, play=PLANT, task="Plant the fault", role="drill"),
        play(2, "Plant helper"),
        event("runner_on_ok", 2.1, play="Plant helper", task="Plant the fault", role="drill"),
        play(3, BROKEN),
        event("runner_on_ok", 3.1, play=BROKEN, task="Prove it broken"),
        play(4, "Repair crontabs and find persistence"),
        event("playbook_on_task_start", 4.0, play="x", task="Restore the glibc", role="restore-glibc"),
        event("runner_on_skipped", 4.05, play="x", task="Restore the glibc", role="restore-glibc"),
        event("runner_on_ok", 4.1, play="x", task="Repair the crontabs", role="repair-crontab"),
        play(5, "Second recovery play"),
        event("runner_on_failed", 5.1, play="y", task="Detach"),
        play(6, RECOVERED),
        play(7, REPORT),
        event("runner_on_ok", 7.1, play=REPORT, task="Write the record"),
    ]
    lines = [line for item in stream for line in tracker.feed(item)]
    assert lines == [
        "plant",
        "plant (drill: Plant the fault)",
        "prove broken",
        "prove broken (Prove it broken)",
        "recover",
        "recover (repair-crontab: Repair the crontabs)",
        "recover (Detach)",
        "prove recovered",
    ]


# ---- matrix --------------------------------------------------------------------------------------

GOOD = {
    "vars": {"drill_target_root": "/srv/drill/root", "level": 1},
    "drills": [
        {"fault": "crontab_nul_blocks", "targets": ["drill-live"]},
        {"fault": "glibc_link_removed", "targets": ["drill-rescuer", "drill-live"], "vars": {"level": 2}},
    ],
}


def test_matrix_expands_in_matrix_order_with_vars():
    drills = parse_matrix(GOOD)
    assert [(d.fault, d.target) for d in drills] == [
        ("crontab_nul_blocks", "drill-live"),
        ("glibc_link_removed", "drill-rescuer"),
        ("glibc_link_removed", "drill-live"),
    ]
    assert drills[0].vars == {"drill_target_root": "/srv/drill/root", "level": 1}
    assert drills[1].vars == {"drill_target_root": "/srv/drill/root", "level": 2}
    assert queues_by_target(drills) == {"drill-live": [0, 2], "drill-rescuer": [1]}


BAD_MATRICES = [
    (None, "the file is empty"),
    ([{"fault": "x", "targets": ["a"]}], "expected a mapping with a 'drills' list at the top, got a list"),
    ({"drill": []}, "unknown key 'drill' at the top"),
    ({"drill": []}, "did you mean 'drills'?"),
    ({"vars": {}}, "'drills' is missing"),
    ({"drills": {"fault": "x"}}, "'drills' must be a list of entries, got a mapping"),
    ({"drills": []}, "'drills' is empty"),
    ({"drills": ["x"]}, "drills[0]: expected a mapping with 'fault' and 'targets', got the string 'x'"),
    ({"drills": [{"targets": ["a"]}]}, "drills[0]: 'fault' is missing"),
    ({"drills": [{"fault": "", "targets": ["a"]}]}, "drills[0]: 'fault' must be a non-empty string"),
    (
        {"drills": [{"fault": 3, "targets": ["a"]}]},
        "drills[0]: 'fault' must be a non-empty string, got 3 (a int)",
    ),
    ({"drills": [{"fault": "x"}]}, "drills[0]: 'targets' is missing"),
    ({"drills": [{"fault": "x", "targets": []}]}, "drills[0]: 'targets' is empty"),
    (
        {"drills": [{"fault": "x", "targets": "a"}]},
        "drills[0]: 'targets' must be a list of inventory host names",
    ),
    (
        {"drills": [{"fault": "x", "targets": ["a", None]}]},
        "drills[0]: targets[1] must be a non-empty host name",
    ),
    ({"drills": [{"fault": "x", "targets": ["a", "b", "a"]}]}, "drills[0]: target 'a' is named twice"),
    (
        {
            "drills": [
                {"fault": "x", "targets": ["a"]},
                {"fault": "y", "targets": ["a"]},
                {"fault": "x", "targets": ["a"]},
            ]
        },
        "drills[2]: fault 'x' on target 'a' is already in drills[0]",
    ),
    ({"drills": [{"fault": "x", "targets": ["a"], "target": "b"}]}, "drills[0]: unknown key 'target'"),
    ({"drills": [{"fault": "x", "targets": ["a"], "vars": ["k=v"]}]}, "drills[0]: 'vars' must be a mapping"),
    (
        {"drills": [{"fault": "x", "targets": ["a"], "vars": {"lifeline_hosts": "b"}}]},
        "drills[0]: vars: 'lifeline_hosts' is set by the drill runner",
    ),
    (
        {"vars": {"drill_confirm": False}, "drills": [{"fault": "x", "targets": ["a"]}]},
        "vars: 'drill_confirm'",
    ),
    ({"drills": [{"fault": "x", "targets": ["a"]}, 7]}, "drills[1]: expected a mapping"),
]


@pytest.mark.parametrize(("data", "error"), BAD_MATRICES)
def test_bad_matrix(data, error):
    with pytest.raises(MatrixError) as caught:
        parse_matrix(data)
    assert error in str(caught.value)


def test_every_problem_is_reported_at_once():
    data = {"drills": [{"fault": "x"}, {"targets": []}]}
    with pytest.raises(MatrixError) as caught:
        parse_matrix(data)
    assert str(caught.value).splitlines() == [
        "drills[0]: 'targets' is missing",
        "drills[1]: 'fault' is missing",
        "drills[1]: 'targets' is empty",
    ]


def test_load_matrix_names_the_file(tmp_path):
    path = tmp_path / "matrix.yml"
    path.write_text("drills:\n  - fault: x\n    targets: [a, a]\n")
    with pytest.raises(MatrixError, match=re.escape(f"{path}: drills[0]: target 'a' is named twice")):
        load_matrix(path)
    path.write_text("drills: [\n")
    with pytest.raises(MatrixError, match=re.escape(f"{path}: not valid YAML")):
        load_matrix(path)
    with pytest.raises(MatrixError, match="cannot read it"):
        load_matrix(tmp_path / "missing.yml")


def test_select_and_extra_vars():
    drills = parse_matrix(GOOD)
    chosen = select(drills, only=["glibc_link_removed"], targets=["drill-live"])
    assert [(d.fault, d.target) for d in chosen] == [("glibc_link_removed", "drill-live")]
    with pytest.raises(
        MatrixError,
        match=r"--only glibc_link_remove: the matrix has no such fault; did you mean 'glibc_link_removed'",
    ):
        select(drills, only=["glibc_link_remove"])
    with pytest.raises(
        MatrixError, match=r"--target nope: the matrix has no such target \(targets: drill-live"
    ):
        select(drills, targets=["nope"])
    with pytest.raises(MatrixError, match="no drill of the matrix matches"):
        select(drills, only=["crontab_nul_blocks"], targets=["drill-rescuer"])
    assert parse_extra_vars(["a=1", "b=x=y", "c="]) == {"a": "1", "b": "x=y", "c": ""}
    with pytest.raises(MatrixError, match="expected KEY=VALUE"):
        parse_extra_vars(["novalue"])
    with pytest.raises(MatrixError, match="'drill_fault' is set by the drill runner"):
        parse_extra_vars(["drill_fault=x"])


# ---- reports -------------------------------------------------------------------------------------


def record(fault: str, target: str, outcome: str, **changes: Any) -> dict[str, Any]:
    ran = outcome == "recovered"
    timings = dict(zip(phases.PHASES, (1.25, 0.5, 30.04, 2.0), strict=True))
    drill = {
        "fault": fault,
        "target": target,
        "vars": {},
        "outcome": outcome,
        "ok": ran,
        "started": "2026-11-22T16:20:01.123456+00:00",
        "phases": {p: {"seconds": s, "started": at(i)} for i, (p, s) in enumerate(timings.items())},
        "time_to_recovery": 32.04 if ran else None,
        "total_seconds": 35.2,
        "failed_phase": None,
        "failed_task": None,
        "message": None,
        "runner_status": "successful" if ran else "failed",
        "rc": 0 if ran else 2,
        "artifacts": f"/out/runs/{target}-{fault}",
    }
    drill.update(changes)
    return drill


HOSTILE = "bad \x00\x01\x08\x0b\x0c\x1b[31m\ud800 \ufffe end ]]> <tag> & \"quoted\" 'single'\nsecond line"


def document(drills: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "started": "2026-11-22T16:20:00+00:00",
        "finished": "2026-11-22T16:25:00+00:00",
        "inventory": "/inv",
        "matrix": "/matrix.yml",
        "drills": drills,
        "summary": reports.summarize(drills),
    }


def mixed_document() -> dict[str, Any]:
    return document(
        [
            record("crontab_nul_blocks", "drill-live", "recovered"),
            record(
                "crontab_nul_blocks",
                "drill-live-2",
                "not recovered",
                failed_phase="recover",
                failed_task="Repair the crontabs",
                message="cron still skips /etc/crontab\nsecond line",
                phases={
                    "plant": {"seconds": 1.0, "started": at(0)},
                    "prove_broken": {"seconds": 0.5, "started": at(1)},
                    "recover": {"seconds": 12.3456, "started": at(2)},
                    "prove_recovered": {"seconds": None, "started": None},
                },
            ),
            record(
                "glibc_link_removed",
                "drill-rescuer",
                "refused",
                failed_phase="preflight",
                failed_task="Refuse unless disposable",
                message="drill-rescuer is not marked lifeline_disposable",
                phases={p: {"seconds": None, "started": None} for p in phases.PHASES},
                total_seconds=0.4,
            ),
            record(
                "glibc_link_removed",
                "drill-weird|host",
                "not broken",
                failed_phase="prove_broken",
                failed_task="Prove <it> broken",
                message=HOSTILE,
                total_seconds=1234.56789,
            ),
            record(
                "glibc_link_removed",
                "drill-gone",
                "error",
                message="ansible-runner could not run the playbook:\r\nno ansible-playbook",
                phases={p: {"seconds": None, "started": None} for p in phases.PHASES},
                total_seconds=None,
                started=None,
                runner_status=None,
                rc=None,
            ),
        ]
    )


@functools.cache
def _load_junit_schema():
    import xmlschema

    return xmlschema.XMLSchema(str(JUNIT_XSD))


def junit_schema():
    """junit-10.xsd, loaded once. Missing, the test fails (a skip would hide an unchecked report)."""
    if not JUNIT_XSD.is_file():
        pytest.fail(
            f"{JUNIT_XSD} is missing: run `make venv` (tools/setup-venv.sh extracts it from pytest's sdist)"
        )
    try:
        return _load_junit_schema()
    except ImportError:
        pytest.fail("xmlschema is not installed in .venv: run `make venv` (requirements/dev.txt pins it)")


def test_junit_validates_against_junit_10_xsd():
    xml = reports.junit_xml(mixed_document())
    junit_schema().validate(xml.decode("utf-8"))


def test_junit_content():
    root = ET.fromstring(reports.junit_xml(mixed_document()))
    assert root.tag == "testsuites"
    assert root.attrib == {
        "name": "lifeline drills",
        "tests": "5",
        "failures": "2",
        "errors": "2",
        "time": "1305.368",
    }
    suites = root.findall("testsuite")
    assert [
        (s.get("name"), s.get("tests"), s.get("failures"), s.get("errors"), s.get("skipped")) for s in suites
    ] == [
        ("crontab_nul_blocks", "2", "1", "0", "0"),
        ("glibc_link_removed", "3", "1", "2", "0"),
    ]
    assert suites[0].get("time") == "70.400"
    assert suites[0].get("timestamp") == "2026-11-22T16:20:01+00:00"
    cases = root.findall("testsuite/testcase")
    assert [(c.get("name"), c.get("classname")) for c in cases] == [
        ("drill-live", "lifeline.drill.crontab_nul_blocks"),
        ("drill-live-2", "lifeline.drill.crontab_nul_blocks"),
        ("drill-rescuer", "lifeline.drill.glibc_link_removed"),
        ("drill-weird|host", "lifeline.drill.glibc_link_removed"),
        ("drill-gone", "lifeline.drill.glibc_link_removed"),
    ]
    assert all(re.fullmatch(r"\d+\.\d{3}", c.get("time")) for c in cases)
    assert cases[3].get("time") == "1234.568"

    recovered, not_recovered, refused, hostile, gone = cases
    assert recovered.find("failure") is None and recovered.find("error") is None
    failure = not_recovered.find("failure")
    assert failure.get("type") == "not recovered"
    assert failure.get("message") == 'recover, task "Repair the crontabs": cron still skips /etc/crontab'
    assert "cron still skips /etc/crontab\nsecond line" in failure.text
    assert "phase: recover" in failure.text
    out = not_recovered.find("system-out").text
    assert "recover: 12.346 s" in out and "prove_recovered: not run" in out
    error = refused.find("error")
    assert error.get("type") == "refused" and refused.find("failure") is None
    assert "not marked lifeline_disposable" in error.get("message")
    # Characters XML 1.0 forbids are gone; markup characters survive escaping.
    text = hostile.find("failure").text
    assert "bad [31m  end ]]> <tag> & \"quoted\" 'single'\nsecond line" in text
    assert hostile.find("failure").get("message").endswith("bad [31m  end ]]> <tag> & \"quoted\" 'single'")
    assert gone.find("error").get("type") == "error" and gone.get("time") == "0.000"


def test_junit_of_no_drills():
    xml = reports.junit_xml(document([]))
    junit_schema().validate(xml.decode("utf-8"))
    assert ET.fromstring(xml).get("tests") == "0"


def test_summary_markdown():
    text = reports.summary_markdown(mixed_document())
    lines = text.splitlines()
    assert lines[0] == "# Lifeline drills"
    assert "**5 drills: 1 recovered, 4 failed**" in text
    header = (
        "| fault | target | outcome | plant | prove broken | recover | prove recovered | time to recovery |"
    )
    assert header in lines
    assert "| crontab_nul_blocks | drill-live | recovered | 1.2 | 0.5 | 30.0 | 2.0 | 32.0 |" in lines
    assert "| crontab_nul_blocks | drill-live-2 | not recovered | 1.0 | 0.5 | 12.3 | — | — |" in lines
    assert "| glibc_link_removed | drill-rescuer | refused | — | — | — | — | — |" in lines
    assert any(line.startswith("| glibc_link_removed | drill-weird\\|host | not broken |") for line in lines)
    failures = lines[lines.index("## Failures") :]
    assert (
        '- **crontab_nul_blocks / drill-live-2** (not recovered): recover, task "Repair the crontabs": '
        "cron still skips /etc/crontab" in failures
    )
    assert any(
        line.startswith("- **glibc_link_removed / drill-rescuer** (refused): preflight") for line in failures
    )
    assert (
        "- **glibc_link_removed / drill-gone** (error): ansible-runner could not run the playbook:"
        in failures
    )
    assert len([line for line in failures if line.startswith("- ")]) == 4


def test_summary_without_failures_has_no_failures_section():
    text = reports.summary_markdown(document([record("f", "t", "recovered")]))
    assert "**1 drills: 1 recovered, 0 failed**" in text
    assert "## Failures" not in text


def test_drills_json_and_write_reports(tmp_path):
    doc = mixed_document()
    written = reports.write_reports(tmp_path, doc)
    assert [p.name for p in written] == ["drills.json", "junit.xml", "summary.md"]
    loaded = json.loads((tmp_path / "drills.json").read_text(encoding="utf-8"))
    assert loaded["summary"] == {"total": 5, "recovered": 1, "failed": 4}
    # Even a lone surrogate comes back: written as the JSON escape \\ud800.
    assert loaded["drills"][3]["message"] == HOSTILE
    assert loaded["drills"][1]["phases"]["recover"] == {"seconds": 12.3456, "started": at(2)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["drills.json", "junit.xml", "summary.md"]


# ---- the runner, with ansible-runner replaced ----------------------------------------------------


class FakeAnsibleRunner:
    """ansible_runner.run that replays a drill's events and records the calls (no Ansible)."""

    def __init__(self, fail: set[tuple[str, str]] = frozenset(), delay: float = 0.0) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.delay = delay
        self.running: set[str] = set()
        self.overlap: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, **kwargs: Any) -> SimpleNamespace:
        target, fault = kwargs["extravars"]["lifeline_hosts"], kwargs["extravars"]["drill_fault"]
        with self.lock:
            self.calls.append(kwargs)
            if target in self.running:
                self.overlap.append(target)
            self.running.add(target)
        time.sleep(self.delay)
        bad = (fault, target) in self.fail
        for item in drill_events(RECOVERY if bad else None):
            kwargs["event_handler"](item)
        with self.lock:
            self.running.discard(target)
        return SimpleNamespace(status="failed" if bad else "successful", rc=2 if bad else 0)


def test_run_drill_keeps_the_contract_with_drill_yml(tmp_path, monkeypatch, capsys):
    fake = FakeAnsibleRunner()
    monkeypatch.setattr(run.ansible_runner, "run", fake)
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out")
    drill = Drill("crontab_nul_blocks", "drill-live", {"drill_target_root": "/srv/root"})
    result = run.run_drill(drill, settings, run.Console(), threading.Event())

    (call,) = fake.calls
    assert call["extravars"] == {
        "drill_target_root": "/srv/root",
        "drill_fault": "crontab_nul_blocks",
        "drill_confirm": True,
        "lifeline_hosts": "drill-live",
        "lifeline_report_dir": str(tmp_path / "out" / "reports"),
    }
    assert call["playbook"] == str(REPO / "playbooks" / "drill.yml")
    assert call["project_dir"] == str(REPO)
    assert call["inventory"] == str(tmp_path / "hosts.yml")
    assert call["envvars"]["ANSIBLE_CONFIG"] == str(REPO / "ansible.cfg")
    assert call["envvars"]["PATH"].startswith(str(Path(run.sys.executable).parent) + ":")
    assert call["quiet"] is True and "timeout" not in call
    private = Path(call["private_data_dir"])
    assert private.parent == tmp_path / "out" / "runs" and private.is_dir()
    assert result["artifacts"] == str(private)
    assert result["outcome"] == "recovered" and result["time_to_recovery"] == 8.0
    assert result["phases"]["plant"] == {"seconds": 2.0, "started": at(0)}

    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"\[ +\d+\.\ds\] drill-live/crontab_nul_blocks: plant", out[0])
    assert any(line.endswith("drill-live/crontab_nul_blocks: recover (Restore its glibc)") for line in out)


def test_runner_that_cannot_start_costs_one_drill(tmp_path, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("ansible-playbook not found")

    monkeypatch.setattr(run.ansible_runner, "run", broken)
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out", timeout=30)
    result = run.run_drill(Drill("f", "t"), settings, run.Console(), threading.Event())
    assert result["outcome"] == "error"
    assert result["message"] == "ansible-runner could not run the playbook: ansible-playbook not found"


def test_targets_run_side_by_side_but_one_drill_at_a_time(tmp_path, monkeypatch, capsys):
    fake = FakeAnsibleRunner(fail={("f2", "b")}, delay=0.05)
    monkeypatch.setattr(run.ansible_runner, "run", fake)
    drills = [
        Drill(f, t) for f, t in [("f1", "a"), ("f1", "b"), ("f2", "a"), ("f2", "b"), ("f3", "a"), ("f1", "c")]
    ]
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out", jobs=2, timeout=60)
    console = run.Console(quiet=True)
    results = run.run_matrix(drills, settings, console)

    assert [(r["fault"], r["target"]) for r in results] == [(d.fault, d.target) for d in drills]
    assert [r["outcome"] for r in results] == ["recovered"] * 3 + ["not recovered"] + ["recovered"] * 2
    assert fake.overlap == []
    per_target = {}
    for call in fake.calls:
        per_target.setdefault(call["extravars"]["lifeline_hosts"], []).append(
            call["extravars"]["drill_fault"]
        )
    assert per_target == {"a": ["f1", "f2", "f3"], "b": ["f1", "f2"], "c": ["f1"]}
    assert all(call["timeout"] == 60 for call in fake.calls)
    # --quiet: only the ends of the drills.
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 6
    assert any(
        line.endswith('b/f2: NOT RECOVERED in 4.0 s: recover, task "Restore its glibc": it failed')
        for line in out
    )


def test_interrupted_run_skips_the_rest(tmp_path, monkeypatch):
    fake = FakeAnsibleRunner()
    monkeypatch.setattr(run.ansible_runner, "run", fake)
    cancel = threading.Event()
    cancel.set()
    settings = run.Settings(inventory=tmp_path / "hosts.yml", out=tmp_path / "out")
    results = run.run_matrix([Drill("f", "a")], settings, run.Console(quiet=True), cancel)
    assert fake.calls == []
    assert results[0]["outcome"] == "error" and "interrupted" in results[0]["message"]


def test_leftovers_of_a_stopped_drill_are_killed(tmp_path):
    """ansible-core's workers run in sessions of their own: the runner's kill of the playbook's
    process group misses them. They carry the drill's private data dir in their command line."""
    private = tmp_path / "runs" / "drill-1"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    ours = subprocess.Popen([*sleeper, f"{private}/env/extravars"], start_new_session=True)
    other = subprocess.Popen([*sleeper, f"{private}-other/env/extravars"], start_new_session=True)
    try:
        assert run.stop_leftovers(private) == 1
        assert ours.wait(timeout=10) == -signal.SIGKILL
        assert other.poll() is None
    finally:
        for process in (ours, other):
            if process.poll() is None:
                process.kill()
                process.wait()


# ---- the command line ----------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str) -> int:
    base = ["--inventory", str(DATA / "hosts.yml"), "--out", str(tmp_path / "out")]
    return main([*base, *args], playbook=DATA / "drill.yml")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--matrix", "missing.yml"], "missing.yml: cannot read it"),
        (["--matrix", "{bad}"], "drills[1]: 'targets' is empty"),
        (["--matrix", "{good}", "--only", "nope"], "--only nope: the matrix has no such fault"),
        (["--matrix", "{good}", "--target", "drill-c"], "--target drill-c: the matrix has no such target"),
        (["--matrix", "{good}", "-e", "lifeline_hosts=x"], "'lifeline_hosts' is set by the drill runner"),
        (["--matrix", "{good}", "--jobs", "0"], "argument --jobs: '0' must be 1 or more"),
        (["--matrix", "{good}", "--timeout", "soon"], "argument --timeout: 'soon' is not a whole number"),
        (["--inventory", "/nonexistent/hosts.yml", "--matrix", "{good}"], "no such file or directory"),
        ([], "the following arguments are required: --matrix"),
    ],
)
def test_usage_errors_exit_2(tmp_path, capsys, args, error):
    bad = tmp_path / "bad.yml"
    bad.write_text("drills:\n  - fault: x\n    targets: [drill-a]\n  - fault: y\n    targets: []\n")
    args = [a.format(bad=bad, good=DATA / "matrix.yml") for a in args]
    assert cli(tmp_path, *args) == 2
    assert error in capsys.readouterr().err
    assert not (tmp_path / "out" / "drills.json").exists()


def test_missing_drill_playbook_is_a_usage_error(tmp_path, capsys):
    code = main(
        ["--inventory", str(DATA / "hosts.yml"), "--matrix", str(DATA / "matrix.yml")],
        playbook=tmp_path / "drill.yml",
    )
    assert code == 2
    assert "the drill playbook is missing" in capsys.readouterr().err


# ---- the real ansible-runner on the stand-in drill playbook --------------------------------------


def test_real_drills_with_ansible_runner(tmp_path, capsys):
    """data/drill/matrix.yml: fault_ok recovers on both targets, fault_stays is not recovered
    (its proof of recovery fails), fault_refused is refused before anything is planted."""
    matrix = ["--matrix", str(DATA / "matrix.yml"), "-e", "drill_test_from_cli=cli", "--timeout", "120"]
    code = cli(tmp_path, *matrix, "--jobs", "2")
    assert code == 1
    out_dir = tmp_path / "out"
    doc = json.loads((out_dir / "drills.json").read_text(encoding="utf-8"))
    assert doc["summary"] == {"total": 4, "recovered": 2, "failed": 2}
    assert doc["inventory"] == str(DATA / "hosts.yml") and doc["matrix"] == str(DATA / "matrix.yml")
    drills = {(d["fault"], d["target"]): d for d in doc["drills"]}
    assert list(drills) == [
        ("fault_ok", "drill-a"),
        ("fault_ok", "drill-b"),
        ("fault_stays", "drill-a"),
        ("fault_refused", "drill-b"),
    ]
    for key in [("fault_ok", "drill-a"), ("fault_ok", "drill-b")]:
        drill = drills[key]
        assert (drill["outcome"], drill["ok"], drill["runner_status"], drill["rc"]) == (
            "recovered",
            True,
            "successful",
            0,
        )
        starts = [drill["phases"][p]["started"] for p in phases.PHASES]
        assert starts == sorted(starts)
        assert all(drill["phases"][p]["seconds"] > 0 for p in phases.PHASES)
        ttr = drill["phases"]["recover"]["seconds"] + drill["phases"]["prove_recovered"]["seconds"]
        assert drill["time_to_recovery"] == pytest.approx(ttr, abs=0.002)
        assert drill["total_seconds"] > sum(drill["phases"][p]["seconds"] for p in phases.PHASES)
        assert drill["vars"] == {"drill_test_from_cli": "cli"}
        assert Path(drill["artifacts"]).parent == out_dir / "runs"

    stays = drills[("fault_stays", "drill-a")]
    assert (stays["outcome"], stays["failed_phase"], stays["failed_task"]) == (
        "not recovered",
        "prove_recovered",
        "Prove the target recovered",
    )
    assert stays["message"] == "still broken: fault_stays survived the recovery"
    assert stays["time_to_recovery"] is None and stays["phases"]["prove_recovered"]["seconds"] > 0
    refused = drills[("fault_refused", "drill-b")]
    assert (refused["outcome"], refused["failed_phase"]) == ("refused", "preflight")
    assert refused["message"] == "refusing: drill-b is not marked disposable"
    assert all(refused["phases"][p]["seconds"] is None for p in phases.PHASES)

    junit_schema().validate(str(out_dir / "junit.xml"))
    assert "| fault_stays | drill-a | not recovered |" in (out_dir / "summary.md").read_text(encoding="utf-8")
    printed = capsys.readouterr().out
    assert "drill-a/fault_ok: recover (Repair the target)" in printed
    assert "drill-a/fault_ok: recovered in" in printed
    assert "drill-b/fault_refused: REFUSED in" in printed
    assert "| fault | target | outcome |" in printed

    # Only the drills that recover: exit code 0.
    assert cli(tmp_path, *matrix, "--only", "fault_ok", "--target", "drill-a", "--quiet") == 0
    doc = json.loads((out_dir / "drills.json").read_text(encoding="utf-8"))
    assert [(d["fault"], d["target"], d["outcome"]) for d in doc["drills"]] == [
        ("fault_ok", "drill-a", "recovered")
    ]
    printed = capsys.readouterr().out
    assert "recover (" not in printed and "drill-a/fault_ok: recovered in" in printed
    assert len(list((out_dir / "runs").iterdir())) == 5
