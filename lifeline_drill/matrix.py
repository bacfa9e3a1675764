"""The drill matrix: which faults are planted on which targets, read from YAML, checked, expanded.

    drills:
      - fault: crontab_nul_blocks
        targets: [drill-live]
      - fault: glibc_link_removed
        targets: [drill-rescuer, drill-rescuer-2]
        vars: {drill_target_root: /srv/drill/root}

An optional top-level ``vars`` mapping applies to every drill; an entry's ``vars`` override it and
``-e KEY=VALUE`` on the command line overrides both.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOP_KEYS = ("drills", "vars")
ENTRY_KEYS = ("fault", "targets", "vars")
# The runner sets these for every drill (the contract with playbooks/drill.yml): a matrix or -e
# that set them would either be overridden silently or break the contract.
RUNNER_VARS = frozenset({"drill_fault", "drill_confirm", "lifeline_hosts", "lifeline_report_dir"})


class MatrixError(ValueError):
    """The matrix (or the selection from it) cannot be used; the message names every problem."""


@dataclass(frozen=True)
class Drill:
    """One run of drill.yml: one fault planted on one target, with the extra vars for it."""

    fault: str
    target: str
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.target}/{self.fault}"


def _kind(value: object) -> str:
    """How a YAML value reads in an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{value!r} (a {type(value).__name__})"


def _unknown_keys(where: str, data: Mapping[Any, Any], allowed: Sequence[str]) -> list[str]:
    problems = []
    for key in data:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        place = "" if where else " at the top"
        problems.append(f"{where}unknown key {key!r}{place} (allowed: {', '.join(allowed)}){hint}")
    return problems


def _check_vars(where: str, value: object) -> list[str]:
    if not isinstance(value, Mapping):
        return [f"{where}'vars' must be a mapping of variable names to values, got {_kind(value)}"]
    problems = []
    for key in value:
        if not isinstance(key, str) or not key:
            problems.append(f"{where}vars: variable names must be non-empty strings, got {_kind(key)}")
        elif key in RUNNER_VARS:
            problems.append(f"{where}vars: {key!r} is set by the drill runner and cannot be given")
    return problems


def _check_fault(where: str, entry: Mapping[str, Any]) -> list[str]:
    if "fault" not in entry:
        return [f"{where}'fault' is missing"]
    fault = entry["fault"]
    if not isinstance(fault, str) or not fault.strip():
        return [f"{where}'fault' must be a non-empty string, got {_kind(fault)}"]
    return []


def _check_targets(where: str, entry: Mapping[str, Any]) -> list[str]:
    if "targets" not in entry:
        return [f"{where}'targets' is missing"]
    targets = entry["targets"]
    if not isinstance(targets, list):
        return [f"{where}'targets' must be a list of inventory host names, got {_kind(targets)}"]
    if not targets:
        return [f"{where}'targets' is empty"]
    problems = []
    seen: set[str] = set()
    for index, target in enumerate(targets):
        if not isinstance(target, str) or not target.strip():
            problems.append(f"{where}targets[{index}] must be a non-empty host name, got {_kind(target)}")
        elif target in seen:
            problems.append(f"{where}target {target!r} is named twice")
        else:
            seen.add(target)
    return problems


def _check_entry(index: int, entry: object) -> list[str]:
    where = f"drills[{index}]: "
    if not isinstance(entry, Mapping):
        return [f"{where}expected a mapping with 'fault' and 'targets', got {_kind(entry)}"]
    problems = _unknown_keys(where, entry, ENTRY_KEYS)
    problems += _check_fault(where, entry)
    problems += _check_targets(where, entry)
    if "vars" in entry:
        problems += _check_vars(where, entry["vars"])
    return problems


def _check_top(data: object) -> list[str]:
    if data is None:
        return ["the file is empty; expected a mapping with a 'drills' list"]
    if not isinstance(data, Mapping):
        return [f"expected a mapping with a 'drills' list at the top, got {_kind(data)}"]
    problems = _unknown_keys("", data, TOP_KEYS)
    if "vars" in data:
        problems += _check_vars("", data["vars"])
    drills = data.get("drills")
    if "drills" not in data:
        problems.append("'drills' is missing")
    elif not isinstance(drills, list):
        problems.append(f"'drills' must be a list of entries, got {_kind(drills)}")
    elif not drills:
        problems.append("'drills' is empty")
    else:
        for index, entry in enumerate(drills):
            problems += _check_entry(index, entry)
    return problems


def _repeated_pairs(entries: Sequence[Mapping[str, Any]]) -> list[str]:
    """A fault on the same target in two entries would run the same drill twice under one name."""
    first: dict[tuple[str, str], int] = {}
    problems = []
    for index, entry in enumerate(entries):
        for target in dict.fromkeys(entry["targets"]):
            pair = (entry["fault"], target)
            if pair not in first:
                first[pair] = index
                continue
            problems.append(
                f"drills[{index}]: fault {pair[0]!r} on target {target!r} is already in drills[{first[pair]}]"
            )
    return problems


def parse_matrix(data: object) -> list[Drill]:
    """The drills of a loaded matrix, in matrix order (entry by entry, target by target)."""
    problems = _check_top(data)
    if not problems:
        assert isinstance(data, Mapping)
        problems = _repeated_pairs(data["drills"])
    if problems:
        raise MatrixError("\n".join(problems))
    assert isinstance(data, Mapping)
    common = dict(data.get("vars") or {})
    return [
        Drill(entry["fault"], target, {**common, **(entry.get("vars") or {})})
        for entry in data["drills"]
        for target in entry["targets"]
    ]


def load_matrix(path: Path) -> list[Drill]:
    """The drills of the matrix file ``path``; MatrixError names the file and each problem."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MatrixError(f"{path}: cannot read it: {exc.strerror or exc}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MatrixError(f"{path}: not valid YAML: {exc}") from exc
    try:
        return parse_matrix(data)
    except MatrixError as exc:
        raise MatrixError("\n".join(f"{path}: {line}" for line in str(exc).splitlines())) from None


def parse_extra_vars(items: Iterable[str]) -> dict[str, str]:
    """``-e KEY=VALUE`` options as variables. Values stay strings, as with ansible-playbook -e."""
    extra: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise MatrixError(f"-e {item!r}: expected KEY=VALUE")
        if key in RUNNER_VARS:
            raise MatrixError(f"-e {item!r}: {key!r} is set by the drill runner and cannot be given")
        extra[key] = value
    return extra


def with_extra_vars(drills: Iterable[Drill], extra: Mapping[str, Any]) -> list[Drill]:
    return [Drill(d.fault, d.target, {**d.vars, **extra}) for d in drills]


def _unknown_names(option: str, wanted: Sequence[str], known: Sequence[str], what: str) -> list[str]:
    problems = []
    for name in dict.fromkeys(wanted):
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" ({what}s: {', '.join(known)})"
            problems.append(f"{option} {name}: the matrix has no such {what}{hint}")
    return problems


def select(drills: Sequence[Drill], only: Sequence[str] = (), targets: Sequence[str] = ()) -> list[Drill]:
    """The drills of the faults in ``only`` on the hosts in ``targets`` (all when empty). A name the
    matrix does not have is an error: a typo must not shrink a drill run silently."""
    faults = list(dict.fromkeys(d.fault for d in drills))
    hosts = list(dict.fromkeys(d.target for d in drills))
    problems = _unknown_names("--only", only, faults, "fault")
    problems += _unknown_names("--target", targets, hosts, "target")
    if problems:
        raise MatrixError("\n".join(problems))
    chosen = [d for d in drills if (not only or d.fault in only) and (not targets or d.target in targets)]
    if not chosen:
        raise MatrixError("no drill of the matrix matches both --only and --target")
    return chosen


def queues_by_target(drills: Sequence[Drill]) -> dict[str, list[int]]:
    """Indexes of each target's drills in matrix order: a target takes one drill at a time."""
    queues: dict[str, list[int]] = {}
    for index, drill in enumerate(drills):
        queues.setdefault(drill.target, []).append(index)
    return queues
