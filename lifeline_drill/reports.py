"""The drill reports: drills.json (the record), junit.xml (for CI) and summary.md (for people).

Every writer is a pure function of the drills.json document, so the reports can be made again from
a saved drills.json and tested on hand-built documents.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from lifeline_drill.phases import (
    NOT_BROKEN,
    NOT_RECOVERED,
    PHASES,
    PLANT_FAILED,
    RECOVERED,
    phase_title,
)

# Outcomes where the drill ran and the system did not behave: the recovery (or the fault) is at
# fault. The others (refused, unreachable, error) mean the drill itself could not be carried out.
FAILURE_OUTCOMES = frozenset({NOT_RECOVERED, NOT_BROKEN, PLANT_FAILED})


class PhaseRecord(TypedDict):
    seconds: float | None
    started: str | None


class DrillRecord(TypedDict):
    fault: str
    target: str
    vars: dict[str, Any]
    outcome: str
    ok: bool
    started: str | None
    phases: dict[str, PhaseRecord]
    time_to_recovery: float | None
    total_seconds: float | None
    failed_phase: str | None
    failed_task: str | None
    message: str | None
    runner_status: str | None
    rc: int | None
    artifacts: str | None


class Summary(TypedDict):
    total: int
    recovered: int
    failed: int


class Document(TypedDict):
    started: str
    finished: str
    inventory: str
    matrix: str
    drills: list[DrillRecord]
    summary: Summary


def summarize(drills: Sequence[Mapping[str, Any]]) -> Summary:
    recovered = sum(1 for d in drills if d["outcome"] == RECOVERED)
    return {"total": len(drills), "recovered": recovered, "failed": len(drills) - recovered}


def drills_json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# ---- shared formatting ---------------------------------------------------------------------------


def first_line(text: str | None) -> str:
    # Split on newlines only: str.splitlines also splits on \v, \f and other control characters.
    return next((line.strip() for line in (text or "").split("\n") if line.strip()), "")


def failure_headline(drill: Mapping[str, Any]) -> str:
    """Where and why a drill failed, in one line: ``recover, task "X": first line of the message``."""
    where = phase_title(drill["failed_phase"]) if drill.get("failed_phase") else ""
    if drill.get("failed_task"):
        where = f'{where}, task "{drill["failed_task"]}"' if where else f'task "{drill["failed_task"]}"'
    reason = first_line(drill.get("message"))
    return ": ".join(part for part in (where, reason) if part) or drill["outcome"]


# ---- junit.xml -----------------------------------------------------------------------------------

# Characters XML 1.0 cannot carry even escaped (control characters, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: object) -> str:
    """Text ElementTree can escape into well-formed XML: bytes decoded, forbidden characters dropped."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return _NOT_XML.sub("", text)


def junit_time(seconds: float | None) -> str:
    """Seconds as the JUnit schema's SUREFIRE_TIME wants them: digits, at most 3 decimals."""
    return f"{max(0.0, seconds or 0.0):.3f}"


def _junit_timestamp(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).isoformat(timespec="seconds")
    except ValueError:
        return None


def phase_lines(drill: Mapping[str, Any]) -> str:
    """The phase timings as text, one phase a line (the testcase's system-out)."""
    lines = []
    for phase in PHASES:
        seconds = (drill["phases"].get(phase) or {}).get("seconds")
        lines.append(f"{phase}: " + ("not run" if seconds is None else f"{seconds:.3f} s"))
    for name, key in (("time_to_recovery", "time_to_recovery"), ("total", "total_seconds")):
        value = drill.get(key)
        lines.append(f"{name}: " + ("-" if value is None else f"{value:.3f} s"))
    lines.append(f"outcome: {drill['outcome']}")
    if drill.get("artifacts"):
        lines.append(f"artifacts: {drill['artifacts']}")
    return "\n".join(lines) + "\n"


def failure_details(drill: Mapping[str, Any]) -> str:
    lines = [
        f"outcome: {drill['outcome']}",
        f"phase: {drill.get('failed_phase') or '-'}",
        f"task: {drill.get('failed_task') or '-'}",
        f"runner status: {drill.get('runner_status') or '-'}, rc: {drill.get('rc')}",
    ]
    if drill.get("message"):
        lines += ["", str(drill["message"])]
    return "\n".join(lines) + "\n"


def _testcase(suite: ET.Element, drill: Mapping[str, Any]) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        name=xml_text(drill["target"]),
        classname=xml_text(f"lifeline.drill.{drill['fault']}"),
        time=junit_time(drill.get("total_seconds")),
    )
    if drill["outcome"] != RECOVERED:
        tag = "failure" if drill["outcome"] in FAILURE_OUTCOMES else "error"
        problem = ET.SubElement(
            case, tag, type=xml_text(drill["outcome"]), message=xml_text(failure_headline(drill))
        )
        problem.text = xml_text(failure_details(drill))
    ET.SubElement(case, "system-out").text = xml_text(phase_lines(drill))


def _count(drills: Sequence[Mapping[str, Any]]) -> tuple[int, int]:
    failures = sum(1 for d in drills if d["outcome"] in FAILURE_OUTCOMES)
    errors = sum(1 for d in drills if d["outcome"] != RECOVERED and d["outcome"] not in FAILURE_OUTCOMES)
    return failures, errors


def junit_xml(document: Mapping[str, Any]) -> bytes:
    """junit.xml: one testsuite per fault, one testcase per target; valid against junit-10.xsd."""
    drills = document["drills"]
    by_fault: dict[str, list[Mapping[str, Any]]] = {}
    for drill in drills:
        by_fault.setdefault(drill["fault"], []).append(drill)
    failures, errors = _count(drills)
    total_time = sum(d.get("total_seconds") or 0.0 for d in drills)
    root = ET.Element(
        "testsuites",
        name="lifeline drills",
        tests=str(len(drills)),
        failures=str(failures),
        errors=str(errors),
        time=junit_time(total_time),
    )
    for fault, cases in by_fault.items():
        suite_failures, suite_errors = _count(cases)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=xml_text(fault),
            tests=str(len(cases)),
            failures=str(suite_failures),
            errors=str(suite_errors),
            skipped="0",
            time=junit_time(sum(c.get("total_seconds") or 0.0 for c in cases)),
        )
        stamp = next(filter(None, (_junit_timestamp(c.get("started")) for c in cases)), None)
        stamp = stamp or _junit_timestamp(document.get("started"))
        if stamp:
            suite.set("timestamp", stamp)
        for case in cases:
            _testcase(suite, case)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


# ---- summary.md ----------------------------------------------------------------------------------

NOT_RUN = "—"


def _cell(value: object) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _seconds(value: float | None) -> str:
    return NOT_RUN if value is None else f"{value:.1f}"


def _when(value: str | None) -> str:
    try:
        return datetime.fromisoformat(value or "").strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    except ValueError:
        return value or "?"


def summary_markdown(document: Mapping[str, Any]) -> str:
    """summary.md: totals, one table row per drill, then what went wrong in the failed ones."""
    drills = document["drills"]
    summary = summarize(drills)
    lines = [
        "# Lifeline drills",
        "",
        f"**{summary['total']} drills: {summary['recovered']} recovered, {summary['failed']} failed** "
        f"(started {_when(document.get('started'))}, finished {_when(document.get('finished'))}).",
        "",
        "| fault | target | outcome | plant | prove broken | recover | prove recovered | time to recovery |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for drill in drills:
        timings = [_seconds((drill["phases"].get(p) or {}).get("seconds")) for p in PHASES]
        cells = [drill["fault"], drill["target"], drill["outcome"], *timings]
        cells.append(_seconds(drill.get("time_to_recovery")))
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    failed = [d for d in drills if d["outcome"] != RECOVERED]
    if failed:
        lines += ["", "## Failures", ""]
        lines += [
            f"- **{_cell(d['fault'])} / {_cell(d['target'])}** ({d['outcome']}): {_cell(failure_headline(d))}"
            for d in failed
        ]
    return "\n".join(lines) + "\n"


# ---- files ---------------------------------------------------------------------------------------

REPORT_FILES = ("drills.json", "junit.xml", "summary.md")


def write_reports(out: Path, document: Mapping[str, Any]) -> list[Path]:
    """Write the three reports into ``out``, each replaced whole (never left half-written)."""
    contents = {
        # A lone surrogate (undecodable output) becomes the JSON escape \udXXX: still valid JSON.
        "drills.json": drills_json(document).encode("utf-8", "backslashreplace"),
        "junit.xml": junit_xml(document),
        "summary.md": summary_markdown(document).encode("utf-8", "replace"),
    }
    written = []
    for name in REPORT_FILES:
        path = out / name
        partial = path.with_name(f".{name}.tmp")
        partial.write_bytes(contents[name])
        partial.replace(path)
        written.append(path)
    return written
