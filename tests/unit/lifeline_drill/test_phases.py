"""The drill runner's phases (lifeline_drill/phases.py): markers and labels of plays, phases and
outcomes from hand-built ansible-runner events, progress lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from lifeline_drill import phases
from lifeline_drill.phases import ProgressTracker, analyse, label_plays, play_marker
from support.drill import (
    BROKEN,
    PLANT,
    RECOVERED,
    RECOVERY,
    REPORT,
    T0,
    TIMELINE,
    at,
    drill_events,
    event,
    failed,
    play,
    task,
)


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
