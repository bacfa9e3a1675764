# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The three states root_switch drives a host to: switched to the copy (with its dead-man switch
armed), confirmed on it, or rolled back to the old root. Each fills the module's result as it goes,
so a failure part way still says which steps ran; each is idempotent and has a check mode.
"""

from __future__ import annotations

import os
import shlex
import sys

from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import deadman_switch, pivot


def describe(result: dict, plan: pivot.Plan) -> None:
    result["mounts_moved"] = plan.moved
    result["mounts_left"] = plan.left


def planned(argvs: list[list[str]]) -> list[dict]:
    return [{"command": shlex.join(argv), "outcome": "planned", "seconds": 0.0} for argv in argvs]


def refuse_state_dir(plan: pivot.Plan, table: list[mounts.Mount], state_dir: str) -> None:
    """The state directory must move with the switch, or the dead-man switch loses its files."""
    holder = mounts.mount_containing(table, state_dir)
    moving = {m["mount_point"] for m in plan.moved}
    if holder is None or holder.mount_point not in moving:
        where = holder.mount_point if holder else "?"
        raise pivot.SwitchError(
            f"state_dir {state_dir} is on the filesystem mounted on {where}, which does not move with "
            "the switch: give a directory on a tmpfs that does, such as /run/lifeline"
        )


def switched(run: Runner, check_mode: bool, params: dict, result: dict) -> None:
    """Switch to the copy on ``new_root`` (unless it is there already) and arm the dead-man switch;
    a switch whose dead-man switch cannot be armed is switched back."""
    state_dir, new_root = params["state_dir"], params["new_root"]
    table = mounts.read_mountinfo()
    record = pivot.load_record(state_dir)
    if record and record.plan.new_root == new_root and pivot.state_of(record.plan, table) == "switched":
        describe(result, record.plan)
        result["steps"] = record.log
        _guard_again(check_mode, params, record, result)
        return
    plan = pivot.plan_switch(table, new_root, params["old_root"])
    describe(result, plan)
    if check_mode:
        result["changed"] = True
        result["steps"] = planned([step["argv"] for step in plan.steps])
        return
    refuse_state_dir(plan, table, state_dir)
    timeout = params["confirm_timeout"]
    if timeout and not os.path.isfile(plan.new_root + sys.executable):
        raise pivot.SwitchError(
            f"the copy on {plan.new_root} has no {sys.executable}: the dead-man switch could not run "
            "after the switch"
        )
    record = pivot.switch(plan, run)
    result["changed"], result["steps"] = True, record.log
    try:
        pivot.save_record(state_dir, record)
        if timeout:
            confirm_path = os.path.join(state_dir, deadman_switch.CONFIRMATION)
            result["deadman"] = deadman_switch.arm(
                state_dir, timeout, confirm_path, params["restart_on_fallback"], record
            )
    except (pivot.SwitchError, OSError) as exc:
        # A switch without its dead-man switch is not what was asked for: go back.
        what = f"the switch worked but the dead-man switch could not be armed ({exc})"
        try:
            result["steps"] = record.log + pivot.switch_back(record, run)
        except pivot.SwitchError as failed:
            result["steps"] = record.log + failed.log
            raise pivot.SwitchError(f"{what}; then {failed}", result["steps"]) from failed
        raise pivot.SwitchError(f"{what}: switched back to the old root", result["steps"]) from exc


def _guard_again(check_mode: bool, params: dict, record: pivot.Record, result: dict) -> None:
    """The host is on the copy already: its dead-man switch must still guard it (waiting) or have
    been confirmed. One disarmed for a way back that did not happen, or never armed, is armed again;
    one that crashed is not guessed about."""
    state_dir, timeout = params["state_dir"], params["confirm_timeout"]
    log = deadman_switch.read_log(state_dir) or {}
    result["deadman"] = log
    status = log.get("status")
    if not timeout or status in ("waiting", "confirmed"):
        return
    if status not in (None, "disarmed"):
        raise pivot.SwitchError(
            f"the host is on the copy, but its dead-man switch is {status} ({log.get('log')}): look at "
            "findmnt and that log, then confirm the switch or roll it back"
        )
    result["changed"] = True
    if not check_mode:
        confirm_path = os.path.join(state_dir, deadman_switch.CONFIRMATION)
        result["deadman"] = deadman_switch.arm(
            state_dir, timeout, confirm_path, params["restart_on_fallback"], record
        )


def confirmed(run: Runner, check_mode: bool, params: dict, result: dict) -> None:
    """Confirm the new root: the dead-man switch ends and the switch stays."""
    state_dir = params["state_dir"]
    log = deadman_switch.read_log(state_dir)
    if check_mode:
        result["deadman"] = log or {}
        result["changed"] = bool(log) and log.get("status") == "waiting"
        return
    result["changed"], result["deadman"] = deadman_switch.confirm(state_dir)


def rolled_back(run: Runner, check_mode: bool, params: dict, result: dict) -> None:
    """Go back to the old root, the dead-man switch disarmed first; nothing when it is there already."""
    state_dir = params["state_dir"]
    record = pivot.load_record(state_dir)
    if record is None:
        raise pivot.SwitchError(f"no switch is recorded in {state_dir}: there is nothing to roll back")
    describe(result, record.plan)
    result["deadman"] = deadman_switch.read_log(state_dir) or {}
    table = mounts.read_mountinfo()
    where = pivot.state_of(record.plan, table)
    if where == "old root":
        return
    if where != "switched":
        raise pivot.SwitchError(
            f"/ is neither the copy ({record.plan.new_source}) with the old root on {record.plan.old_path} "
            f"nor the old root ({record.plan.old_source}) with the copy on {record.plan.new_root}: "
            "look at findmnt and switch back by hand"
        )
    result["changed"] = True
    if check_mode:
        ops = pivot.undo_operations(record)
        result["steps"] = planned([pivot.op_argv(op) for op in ops])
        return
    log = deadman_switch.disarm(state_dir)
    if log is not None:
        result["deadman"] = log
        if log.get("status") not in deadman_switch.FINAL:
            raise pivot.SwitchError(
                f"the dead-man switch is {log.get('status')} right now ({log.get('log')}): let it finish"
            )
    result["steps"] = pivot.switch_back(record, run, table)


STATES = {"switched": switched, "confirmed": confirmed, "rolled_back": rolled_back}
