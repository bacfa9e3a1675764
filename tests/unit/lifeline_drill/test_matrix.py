"""The drill matrix (lifeline_drill/matrix.py): expansion in matrix order with vars, every problem of a
bad matrix at once, selection and extra vars."""

from __future__ import annotations

import re

import pytest

from lifeline_drill.matrix import (
    MatrixError,
    load_matrix,
    parse_extra_vars,
    parse_matrix,
    queues_by_target,
    select,
)

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
