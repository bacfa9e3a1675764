"""The drill runner's command line (lifeline_drill/cli.py): usage errors, and one run of the real
ansible-runner on a stand-in drill playbook (tests/unit/data/drill/)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifeline_drill import phases
from lifeline_drill.cli import main
from support.drill import DATA, junit_schema


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
    """tests/unit/data/drill/matrix.yml: fault_ok recovers on both targets, fault_stays is not recovered
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
