"""The drill reports (lifeline_drill/reports.py): JUnit XML valid against junit-10.xsd, its content, the
Markdown summary and the JSON document, with hostile text in the messages."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from lifeline_drill import phases, reports
from support.drill import at, junit_schema


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
