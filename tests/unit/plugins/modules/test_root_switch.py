"""The root_switch module: what it refuses on this host before anything happens, run in-process the way
Ansible runs it; then, in a private mount namespace, the switch and the way back, and the dead-man
switch armed, confirmed, disarmed and firing, the module end to end.

Run as a script, this file is the helper that runs the module inside the namespace that a test starts
with ``unshare --mount --propagation private`` (support/namespace.py): nothing it mounts reaches the
host.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import deadman_switch, pivot
from ansible_collections.lifeline.rescue.plugins.modules import root_switch

from support.modules import run_module
from support.namespace import assert_switched, helper, mountinfo, report, shape, tool, wait_for

pytest_plugins = ("support.namespace",)

# ---- on this host: what it refuses before anything happens ----------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"new_root": "/nonexistent/copy"}, "nothing is mounted on /nonexistent/copy", id="no copy"
        ),
        pytest.param(
            {"new_root": "/nonexistent/copy", "_ansible_check_mode": True},
            "nothing is mounted on",
            id="no copy, check mode",
        ),
        pytest.param(
            {"new_root": "/x", "confirm_timeout": -1}, "confirm_timeout=-1: give 0 or more", id="timeout"
        ),
        pytest.param(
            {"new_root": "/x", "state": "confirmed"}, "no dead-man switch was armed in", id="confirm"
        ),
        pytest.param(
            {"new_root": "/x", "state": "rolled_back"}, "there is nothing to roll back", id="roll back"
        ),
    ],
)
def test_the_module_refuses(capsys, tmp_path, args, message):
    # Only the mounts this module could make: the machine's others come and go with other work.
    def ours() -> list[str]:
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        mine = (args["new_root"], str(tmp_path))
        return [p for p in points if p in mine or p.startswith(tuple(m + "/" for m in mine))]

    before = ours()
    rc, result = run_module(root_switch, capsys, state_dir=str(tmp_path / "state"), **args)

    assert rc == 1
    assert message in result["msg"]
    assert result["changed"] is False
    assert "skipped" not in result
    assert ours() == before


# ---- in a private mount namespace ----------------------------------------------------------------


def test_the_module_switches_and_rolls_back(namespace):
    report = namespace("module")

    first, again, back_check, back, back_again, check, no_python = report["results"]
    assert (check["changed"], {s["outcome"] for s in check["steps"]}) == (True, {"planned"})
    assert check["steps"][0]["command"].startswith("pivot_root ")
    assert shape(report["after_check"]) == shape(report["before"])
    assert first["changed"] is True and first["deadman"] == {}, first
    assert first["record"] == "/run/lifeline/switch.json"
    assert {m["mount_point"] for m in first["mounts_moved"]} >= {"/proc", "/sys", "/dev", "/run"}
    assert_switched(report["before"], report["switched"], report["plan"])
    assert (again["changed"], again["steps"]) == (False, first["steps"])
    assert (back_check["changed"], back_check["steps"][0]["outcome"]) == (True, "planned")
    assert back["changed"] is True and all(s["outcome"] == "done" for s in back["steps"])
    assert back_again["changed"] is False
    assert shape(report["back"]) == shape(report["before"])
    for result in report["results"][:-1]:
        assert not {"skipped", "failed"} & set(result), result
    assert no_python["failed"] is True and no_python["changed"] is False
    assert f"has no {report['python']}: the dead-man switch could not run" in no_python["msg"]


def test_the_module_arms_confirms_and_disarms_the_deadman_switch(namespace):
    report = namespace("module-deadman")

    armed, confirmed, confirmed_again, back, armed2, back2, armed3, late = report["results"]
    assert armed["deadman"]["status"] == "waiting" and armed["deadman"]["timeout"] == 3
    assert (confirmed["changed"], confirmed["deadman"]["status"]) == (True, "confirmed")
    assert confirmed_again["changed"] is False
    assert report["after_deadline"] == "switched"
    assert back["changed"] is True
    assert "failed" not in back, back["msg"]
    # Rolled back while it waits: the dead-man switch is disarmed first.
    assert armed2["deadman"]["status"] == "waiting"
    assert (back2["changed"], back2["deadman"]["status"]) == (True, "disarmed")
    assert "failed" not in back2, back2["msg"]
    # Confirmed too late: the task fails and says the host went back.
    assert armed3["deadman"]["status"] == "waiting"
    assert late["failed"] is True
    assert "the dead-man switch fired at" in late["msg"] and "went back to its old root" in late["msg"]
    assert shape(report["back"]) == shape(report["before"])


def test_switched_again_arms_a_dead_man_switch_that_was_disarmed(namespace):
    """A host left on the copy with its dead-man switch disarmed (a way back that did not happen) is
    guarded again by the next state=switched, not reported as armed with the old log."""
    report = namespace("module-rearm")

    armed, again, back = report["results"]
    assert armed["deadman"]["status"] == "waiting"
    assert report["disarmed"] == "disarmed"
    assert again["changed"] is True and again["deadman"]["status"] == "waiting"
    assert again["deadman"]["pid"] != armed["deadman"]["pid"]
    assert again["deadman"]["token"] != armed["deadman"]["token"]
    assert "failed" not in back, back.get("msg")
    assert shape(report["back"]) == shape(report["before"])


# ---- the helper's scenarios, run inside the namespace -----------------------------------------


def module_result(**args) -> dict:
    """root_switch run in this process, as Ansible runs it: its JSON result."""
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        root_switch.main()
    return json.loads(out.getvalue())


def scenario_module(spec: dict, new: str) -> None:
    before = mountinfo()
    # The first result of this process is printed on the new root, where none of the module's files
    # (nor Ansible's) are: what the module needs at its exit must have been loaded before the switch.
    results = [module_result(new_root=new, confirm_timeout=0)]
    switched = mountinfo()
    results.append(module_result(new_root=new, confirm_timeout=0))
    results.append(module_result(new_root=new, state="rolled_back", _ansible_check_mode=True))
    results.append(module_result(new_root=new, state="rolled_back"))
    results.append(module_result(new_root=new, state="rolled_back"))
    back = mountinfo()
    results.append(module_result(new_root=new, _ansible_check_mode=True))
    # The dead-man switch would need this python at its path on the copy: refused before anything moves.
    results.append(module_result(new_root=new, confirm_timeout=5))
    report(
        before=before,
        switched=switched,
        back=back,
        after_check=mountinfo(),
        python=sys.executable,
        plan=pivot.plan_switch(before, new).as_dict(),
        results=results,
    )


def bind_python(new: str) -> None:
    """This python at its own path on the copy too, read-only, so the module's dead-man can run there."""
    for tree in sorted({sys.prefix, sys.base_prefix}):
        os.makedirs(new + tree, exist_ok=True)
        tool(["mount", "-n", "--bind", tree, new + tree])
        tool(["mount", "-n", "-o", "remount,bind,ro", new + tree])


def scenario_module_deadman(spec: dict, new: str) -> None:
    bind_python(new)
    before = mountinfo()
    restart = ["touch /run/lifeline-restarted"]
    results = [module_result(new_root=new, confirm_timeout=3, restart_on_fallback=restart)]
    print(f"deadman-pid {results[-1]['deadman'].get('pid', 0)}", flush=True)
    results.append(module_result(new_root=new, state="confirmed"))
    results.append(module_result(new_root=new, state="confirmed"))
    time.sleep(3)
    plan = pivot.load_record("/run/lifeline").plan
    after_deadline = pivot.state_of(plan, mounts.parse_mountinfo(mountinfo()))
    results.append(module_result(new_root=new, state="rolled_back"))
    results.append(module_result(new_root=new, confirm_timeout=30))
    print(f"deadman-pid {results[-1]['deadman'].get('pid', 0)}", flush=True)
    results.append(module_result(new_root=new, state="rolled_back"))
    results.append(module_result(new_root=new, confirm_timeout=2, restart_on_fallback=restart))
    print(f"deadman-pid {results[-1]['deadman'].get('pid', 0)}", flush=True)
    wait_for("/run/lifeline", deadman_switch.FINAL, 30)
    results.append(module_result(new_root=new, state="confirmed"))
    report(before=before, after_deadline=after_deadline, back=mountinfo(), results=results)


def scenario_module_rearm(spec: dict, new: str) -> None:
    bind_python(new)
    before = mountinfo()
    results = [module_result(new_root=new, confirm_timeout=30)]
    print(f"deadman-pid {results[-1]['deadman'].get('pid', 0)}", flush=True)
    disarmed = (deadman_switch.disarm("/run/lifeline") or {}).get("status")
    results.append(module_result(new_root=new, confirm_timeout=30))
    print(f"deadman-pid {results[-1]['deadman'].get('pid', 0)}", flush=True)
    results.append(module_result(new_root=new, state="rolled_back"))
    report(before=before, disarmed=disarmed, back=mountinfo(), results=results)


SCENARIOS = {
    "module": scenario_module,
    "module-rearm": scenario_module_rearm,
    "module-deadman": scenario_module_deadman,
}


if __name__ == "__main__":
    helper(SCENARIOS)
