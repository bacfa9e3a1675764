"""Every program a role or playbook runs through command, shell, raw or script has a time limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import yaml

from support.paths import REPO

RUNNERS = {f"ansible.builtin.{name}" for name in ("command", "shell", "raw", "script")}


def tasks(items) -> Iterator[dict]:
    for task in items or []:
        if isinstance(task, dict):
            for section in ("block", "rescue", "always"):
                yield from tasks(task.get(section))
            yield task


def task_files() -> Iterator[tuple[Path, list]]:
    for path in sorted((REPO / "roles").glob("*/tasks/*.yml")):
        yield path, yaml.safe_load(path.read_text())
    for path in sorted((REPO / "playbooks").glob("*.yml")):
        plays = yaml.safe_load(path.read_text()) or []
        sections = ("pre_tasks", "tasks", "post_tasks", "handlers")
        plays = [play for play in plays if isinstance(play, dict)]
        yield path, [task for play in plays for section in sections for task in play.get(section) or []]


def test_every_program_run_has_a_time_limit():
    unlimited, seen = [], 0
    for path, items in task_files():
        for task in tasks(items):
            if RUNNERS & set(task):
                seen += 1
                if "timeout" not in task:
                    unlimited.append(f"{path.relative_to(REPO)}: {task.get('name')}")
    assert seen > 30, "the walk found the roles' command tasks"
    assert unlimited == []
