# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Switch the live root to its copy with pivot_root, put every mount back, and switch back if need be.

The switch is one step that undoes itself: each part (pivot_root, then one ``mount --move`` per
mount that was under the old root) is recorded the moment it succeeds, and the first failure undoes
the recorded parts in reverse, so the host is on its old root again with every mount where it was.

After a switch a dead-man switch can be armed (deadman_switch.py): a program of its own
(deadman.py) that switches back by itself unless a confirmation file appears in time. It carries
the reverse of the switch as data (``undo_operations``), so it needs nothing of this collection
when it fires.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from ansible_collections.lifeline.rescue.plugins.module_utils.errors import LifelineError
from ansible_collections.lifeline.rescue.plugins.module_utils.host import mounts
from ansible_collections.lifeline.rescue.plugins.module_utils.host.mounts import Mount
from ansible_collections.lifeline.rescue.plugins.module_utils.host.runner import Runner
from ansible_collections.lifeline.rescue.plugins.module_utils.migrate import submounts

OLD_ROOT = "mnt/oldroot"
STATE_DIR = "/run/lifeline"
RECORD = "switch.json"  # the done steps of the last switch: what switch_back and the dead-man undo

# Without --no-mtab, mount(8) also writes /run/mount/utab, which is not there while /run waits under
# the old root: the mount succeeds and mount(8) still exits 16, and the switch would not know.
MOUNT = ("mount", "--no-mtab")
UMOUNT = ("umount", "--no-mtab")
MAKE_PRIVATE = ["mount", "--no-mtab", "--make-rprivate", "/"]


class SwitchError(LifelineError):
    """The switch, or the way back, failed; the message says in what state the host is and what to do.

    ``log`` holds every command run so far with its outcome and timing.
    """

    def __init__(self, message: str, log: list[dict] | None = None):
        super().__init__(message)
        self.log = log or []


# ---- the plan -----------------------------------------------------------------------------------


@dataclass
class Plan:
    """The ordered steps of a switch, and which mount ends up where."""

    new_root: str  # where the copy is mounted, as the old root sees it
    old_root: str  # where the old root goes, relative to the new root
    new_root_id: int  # mount ids survive pivot_root and mount --move: they say which root is which
    old_root_id: int
    new_source: str
    old_source: str
    steps: list[dict] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)  # every mount put back, moved itself or carried
    left: list[dict] = field(default_factory=list)  # mounts that stay under the old root, and why

    @property
    def old_path(self) -> str:
        """The old root's mount point once the switch is done."""
        return "/" + self.old_root

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Plan:
        return cls(**data)


def _normal(path: str) -> str:
    return os.path.normpath("/" + path.strip("/")) if path.strip("/") else "/"


def _covered(subs: list[Mount], others: list[Mount]) -> dict[int, str]:
    """Mounts no path reaches, with the mount point that hides them.

    A mount is hidden when another child of its parent sits on a directory above it (``/run/netns``
    mounted on /, then a tmpfs on /run); what is below a hidden mount is hidden too. Hidden mounts
    stay with the old root: moved, they would turn visible, which they were not. ``others`` may hide
    mounts too but are not judged (the new root, which hides what was mounted below its place).
    """
    children: dict[int, list[Mount]] = {}
    for mount in [*subs, *others]:
        children.setdefault(mount.parent_id, []).append(mount)
    hidden: dict[int, str] = {}
    for mount in subs:
        if mount.parent_id in hidden:
            hidden[mount.mount_id] = hidden[mount.parent_id]
            continue
        for sibling in children.get(mount.parent_id, []):
            if (
                sibling.mount_id != mount.mount_id
                and sibling.mount_point != mount.mount_point
                and mounts.is_under(mount.mount_point, sibling.mount_point)
            ):
                hidden[mount.mount_id] = sibling.mount_point
                break
    return hidden


def _actions(subs: list[Mount], root: Mount, target: Mount) -> list[tuple[Mount, str, str]]:
    """(mount, action, reason) for the mounts under the old root, in the preflight's order.

    The preflight marks each ``move``, ``rebind`` or ``carried``; a bind of the root that sits on a
    mount that moves travels with it, so it is carried too, and so is everything below it.
    """
    hidden = _covered(subs, [target])
    decided: dict[int, str] = {root.mount_id: "root"}
    points = {m.mount_id: m.mount_point for m in subs}
    found = []
    plan = submounts.move_plan(subs, root)
    if len(plan) != len(subs):
        raise AssertionError(f"move_plan gave {len(plan)} entries for {len(subs)} mounts")
    # zip(strict=True) needs Python 3.10; rescuers run older ones (bullseye: 3.9).
    for mount, entry in zip(subs, plan):
        parent = decided.get(mount.parent_id)
        if mount.mount_id in hidden:
            action, reason = "hidden", f"hidden under the mount on {hidden[mount.mount_id]}"
        elif parent == "hidden":
            action, reason = "hidden", f"below {points[mount.parent_id]}, which stays with the old root"
        elif parent in ("move", "carried"):
            action, reason = "carried", ""
        elif parent is None:
            action, reason = "hidden", f"its parent mount (id {mount.parent_id}) is not under /"
        else:  # on the old root itself, or on a fresh bind: preflight says move or rebind
            action, reason = entry["action"], ""
        decided[mount.mount_id] = action
        found.append((mount, action, reason))
    return found


def _refuse_shared(involved: list[Mount]) -> None:
    """pivot_root and mount --move fail with EINVAL on shared mounts; say so before anything moves."""
    shared = sorted({m.mount_point for m in involved if m.shared})
    if shared:
        raise SwitchError(
            f"shared mount propagation on {', '.join(shared)}: pivot_root and mount --move refuse "
            "shared mounts; run `mount --make-rprivate /` first (the preflight's plan does)"
        )


def plan_switch(mountinfo: str | Sequence[Mount], new_root: str, old_root_name: str = OLD_ROOT) -> Plan:
    """The ordered steps that switch / to the filesystem mounted on ``new_root``.

    First ``pivot_root NEW NEW/OLD``, then one ``mount --move /OLD/P P`` for each mount that was
    under the old / (proc, sys, dev, run first, then the rest by depth, as mountinfo lists them),
    or a fresh bind from the new root for a bind of the old root's own filesystem. Mounts below a
    moved one travel with it, the new root and what is below it are left alone, and hidden mounts
    stay with the old root. Raises SwitchError when the switch cannot work as asked.
    """
    table = mounts.parse_mountinfo(mountinfo) if isinstance(mountinfo, str) else list(mountinfo)
    new_root = _normal(new_root)
    if not old_root_name.strip("/") or ".." in old_root_name.split("/"):
        raise SwitchError(f"old_root={old_root_name!r}: give a directory below the new root, like {OLD_ROOT}")
    old_name = _normal(old_root_name).lstrip("/")
    root = mounts.mount_at(table, "/")
    target = mounts.mount_at(table, new_root)
    if root is None:
        raise SwitchError("the mount table has no / : is /proc mounted?")
    if new_root == "/" or target is None or target.mount_id == root.mount_id:
        raise SwitchError(f"nothing is mounted on {new_root}: mount the copy of the root there first")
    old_path = "/" + old_name
    put_old = new_root + old_path
    in_new = _descendants(table, target)
    if any(m.mount_point == put_old for m in in_new):
        raise SwitchError(f"{put_old} is a mount point: pivot_root needs an empty directory there")
    copy = {target.mount_id} | {m.mount_id for m in in_new}
    subs = [m for m in submounts.submounts(table, root) if m.mount_id not in copy]
    stale = [m.mount_point for m in subs if mounts.is_under(m.mount_point, old_path)]
    if stale:
        raise SwitchError(
            f"{', '.join(stale)} already mounted under {old_path}, where the old root would go "
            "(a switch not undone?): unmount it, or choose another old_root"
        )
    plan = Plan(new_root, old_name, target.mount_id, root.mount_id, target.source, root.source)
    plan.steps.append(
        {
            "action": "pivot_root",
            "mount_point": new_root,
            "argv": ["pivot_root", new_root, put_old],
            "undo": ["pivot_root", old_path, old_path + new_root],
            "ensure": put_old,
            "like": None,
            "carries": [m.mount_point for m in in_new],
        }
    )
    involved = [root, target, *[m for m in table if m.mount_id == target.parent_id]]
    carrier: dict[int, dict] = {}  # mount id -> the step whose move brings it along
    for mount, action, reason in _actions(subs, root, target):
        entry = {"mount_point": mount.mount_point, "fstype": mount.fstype, "source": mount.source}
        if action == "hidden":
            plan.left.append({**entry, "reason": reason})
            continue
        plan.moved.append({**entry, "action": action})
        if action == "carried":
            carrier[mount.mount_id] = carrier[mount.parent_id]
            carrier[mount.mount_id]["carries"].append(mount.mount_point)
            continue
        if mounts.is_under(old_path, mount.mount_point):
            raise SwitchError(
                f"{mount.mount_point} is mounted on the old root and would cover {old_path} in the new "
                "one, hiding the old root: choose an old_root outside it"
            )
        involved.append(mount)
        carrier[mount.mount_id] = _put_back(mount, action, old_path)
        plan.steps.append(carrier[mount.mount_id])
    _refuse_shared(involved)
    return plan


def _descendants(table: list[Mount], top: Mount) -> list[Mount]:
    """The mounts on ``top`` and on those, by parent id: what pivot_root carries along with it."""
    found: list[Mount] = []
    ids = {top.mount_id}
    for mount in sorted(table, key=lambda m: mounts.depth(m.mount_point)):
        if mount.parent_id in ids and mount.mount_id not in ids:
            ids.add(mount.mount_id)
            found.append(mount)
    return found


def _put_back(mount: Mount, action: str, old_path: str) -> dict:
    point = mount.mount_point
    if action == "rebind":
        # A bind of the old root's own filesystem, moved, would still show the old filesystem: the
        # same directory of the new root is bound there instead, and the old bind stays behind.
        argv, undo = [*MOUNT, "--bind", mount.root, point], [*UMOUNT, "--lazy", point]
    else:
        argv = [*MOUNT, "--move", old_path + point, point]
        undo = [*MOUNT, "--move", point, old_path + point]
    return {
        "action": action,
        "mount_point": point,
        "argv": argv,
        "undo": undo,
        "ensure": point,
        # A mount point must be of the kind of what is mounted: podman binds files (/etc/hosts).
        "like": mount.root if action == "rebind" else old_path + point,
        "carries": [],
    }


# ---- carrying it out ----------------------------------------------------------------------------


@dataclass
class Record:
    """A switch as it was carried out: its plan, the steps done (with the mount points they created)
    and every command run, with its outcome and timing."""

    plan: Plan
    done: list[dict] = field(default_factory=list)
    log: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"plan": self.plan.as_dict(), "done": self.done, "log": self.log}

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        return cls(Plan.from_dict(data["plan"]), list(data["done"]), list(data.get("log", [])))


def _entry(argv: list[str], outcome: str, started: float, phase: str, error: str = "") -> dict:
    entry = {
        "command": shlex.join(argv),
        "outcome": outcome,
        "seconds": round(time.monotonic() - started, 3),
        "phase": phase,
    }
    if error:
        entry["error"] = error
    return entry


def _ensure(path: str, like: str | None) -> list[str]:
    """Create a missing mount point and its missing parents; what was created, outermost first.

    The mount point is an empty file when ``like`` (what will be mounted there) is not a directory.
    On a failure it removes what it created before raising, so a failed step leaves nothing behind.
    """
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.insert(0, probe)
        probe = os.path.dirname(probe)
    created: list[str] = []
    try:
        for name in missing:
            if name == path and like and os.path.lexists(like) and not os.path.isdir(like):
                os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            else:
                os.mkdir(name, 0o755)
            created.append(name)
    except OSError:
        _remove_all(created)
        raise
    return created


def _remove(path: str) -> None:
    """Remove an empty mount point this switch created (a directory, or an empty file)."""
    if os.path.isdir(path) and not os.path.islink(path):
        os.rmdir(path)
    else:
        os.unlink(path)


def _remove_all(created: list[str]) -> None:
    for name in reversed(created):
        with contextlib.suppress(OSError):  # an empty mount point left in the new root harms nothing
            _remove(name)


def switch(plan: Plan, run: Runner) -> Record:
    """Carry out the plan; on the first failure undo what was done, in reverse, and raise SwitchError.

    Everything the caller needs after this must be loaded before: after pivot_root the files of
    the old root (a module's own files among them) are only reachable below the old root.
    """
    record = Record(plan)
    for step in plan.steps:
        started = time.monotonic()
        try:
            created = _ensure(step["ensure"], step["like"])
        except OSError as exc:
            error = f"cannot create the mount point {exc.filename or step['ensure']}: {exc.strerror}"
            record.log.append(_entry(["mkdir", "-p", step["ensure"]], "failed", started, "switch", error))
            _roll_back(record, run, f"`{shlex.join(step['argv'])}` could not run: {error}")
        try:
            run(step["argv"])
        except Exception as exc:  # whatever it was, the host must not stay half switched
            _remove_all(created)
            record.log.append(_entry(step["argv"], "failed", started, "switch", str(exc)))
            _roll_back(record, run, str(exc))
        record.done.append({**step, "created": created})
        entry = _entry(step["argv"], "done", started, "switch")
        if created:
            entry["created"] = created
        record.log.append(entry)
    return record


def undo_operations(record: Record) -> list[dict]:
    """The reverse of the done steps, last first: ``{"argv": [...]}`` or ``{"remove": path}``.

    One list drives a rollback, switch_back() and the dead-man script, so the three cannot differ.
    """
    ops: list[dict] = []
    for step in reversed(record.done):
        ops.append({"argv": step["undo"], "action": step["action"], "mount_point": step["mount_point"]})
        ops += [{"remove": path} for path in reversed(step.get("created", []))]
    return ops


def op_argv(op: dict) -> list[str]:
    """The command an undo operation stands for (``rm -d`` for a mount point the switch created)."""
    return ["rm", "-d", op["remove"]] if "remove" in op else op["argv"]


def _run_ops(ops: list[dict], run: Runner, log: list[dict], phase: str) -> tuple[int, str] | None:
    """Run undo operations in order; (index, error) of the first that failed, None when all ran.

    A mount point that cannot be removed is noted and passed over: an empty one harms nothing,
    while stopping there would leave the host between two roots.
    """
    for index, op in enumerate(ops):
        started = time.monotonic()
        try:
            if "remove" in op:
                _remove(op["remove"])
            else:
                run(op["argv"])
        except (LifelineError, OSError) as exc:
            log.append(_entry(op_argv(op), "failed", started, phase, str(exc)))
            if "remove" in op:
                continue
            return index, str(exc)
        log.append(_entry(op_argv(op), "done", started, phase))
    return None


def state_left(plan: Plan, ops: list[dict], failed: int) -> str:
    """Where the host is when ``ops[failed]`` failed, and the commands that finish the way back."""
    rest = ops[failed:]
    if any(op.get("action") == "pivot_root" for op in rest):
        where = (
            f"/ is still the new root ({plan.new_source}) and the old root ({plan.old_source}) is on "
            f"{plan.old_path}"
        )
    else:
        where = f"/ is the old root ({plan.old_source}) again"
    still = [op["mount_point"] for op in rest if op.get("action") in ("move", "rebind")]
    if still:
        where += f"; still in place on the new root: {', '.join(still)}"
    commands = "; ".join(f"`{shlex.join(op_argv(op))}`" for op in rest)
    return f"{where}. Finish by hand, in this order: {commands}"


def _roll_back(record: Record, run: Runner, what: str) -> None:
    """Undo a switch that failed part way, and raise the SwitchError that says how it ended."""
    ops = undo_operations(record)
    failed = _run_ops(ops, run, record.log, "undo")
    if failed is None:
        raise SwitchError(
            f"{what}. The switch was undone: the system is back on its old root "
            f"({record.plan.old_source}) with every mount where it was",
            record.log,
        )
    index, error = failed
    raise SwitchError(
        f"{what}. Undoing the switch failed too: {error}. " + state_left(record.plan, ops, index),
        record.log,
    )


def switch_back(record: Record, run: Runner, table: list[Mount] | None = None) -> list[dict]:
    """Reverse a completed switch: the mounts back under the old root, pivot_root back, the mount
    points it created removed. Returns the log; raises SwitchError saying where it stopped.

    ``table`` is the mount table now (read from /proc when not given): systemd re-executed on the
    new root makes every mount shared, which pivot_root and mount --move refuse, so they are made
    private first.
    """
    table = mounts.read_mountinfo() if table is None else table
    ops = undo_operations(record)
    if any(m.shared for m in table):
        ops.insert(0, {"argv": MAKE_PRIVATE})
    log: list[dict] = []
    failed = _run_ops(ops, run, log, "switch back")
    if failed is not None:
        index, error = failed
        raise SwitchError(
            f"switching back failed: {error}. " + state_left(record.plan, ops, index),
            log,
        )
    return log


def state_of(plan: Plan, table: list[Mount]) -> str:
    """``switched`` (the copy is /, the old root on its place), ``old root`` (as before the switch)
    or ``unknown``; decided by mount ids, which pivot_root and mount --move keep."""
    root = mounts.mount_at(table, "/")
    old = mounts.mount_at(table, plan.old_path)
    new = mounts.mount_at(table, plan.new_root)
    if root is not None and root.mount_id == plan.new_root_id and old and old.mount_id == plan.old_root_id:
        return "switched"
    if root is not None and root.mount_id == plan.old_root_id and new and new.mount_id == plan.new_root_id:
        return "old root"
    return "unknown"


# ---- state files --------------------------------------------------------------------------------


def write_file(path: str, text: str, mode: int = 0o600) -> None:
    """Write a state file atomically: a reader (or a crash) sees the old file or the new one."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_json(path: str) -> dict | None:
    """A state file's content; None when there is none. SwitchError when it is unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise SwitchError(f"{path} cannot be read ({exc}): look at it, then remove it") from exc


def save_record(state_dir: str, record: Record) -> str:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, RECORD)
    write_file(path, json.dumps(record.as_dict(), indent=1))
    return path


def load_record(state_dir: str) -> Record | None:
    data = read_json(os.path.join(state_dir, RECORD))
    try:
        return None if data is None else Record.from_dict(data)
    except (KeyError, TypeError) as exc:
        raise SwitchError(f"{os.path.join(state_dir, RECORD)} is not a switch record ({exc})") from exc
