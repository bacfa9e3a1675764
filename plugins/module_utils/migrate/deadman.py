# Copyright: lifeline contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lifeline dead-man switch: unless the confirmation file appears in time, switch back to the old root.

This file is a program of its own. lifeline.rescue.root_switch writes it, as it is, beside its
configuration (a JSON file) on a tmpfs that moves with the switch, and starts it as
``python3 deadman.py CONFIG`` in a session of its own, so that it outlives the module and the
connection and needs nothing of the collection when it fires: standard library only, Python 3.8
and later. Importing it does nothing; the unit tests run its parts.

Its status and every step it takes are in the JSON log the configuration names, rewritten
atomically. SIGTERM disarms it while it waits; once it has fired it finishes what it started.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import traceback

# The way back must find mount(8) and the restart commands' programs whatever PATH it inherited.
PATH_TAIL = ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
OUTPUT_KEPT = 2000  # characters of a command's output kept in the log


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def shared(mountinfo: str = "/proc/self/mountinfo") -> bool:
    """Is any mount shared (systemd makes them so)? pivot_root and mount --move refuse those."""
    try:
        with open(mountinfo, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return True  # cannot tell: making the mounts private is harmless
    for line in lines:
        fields = line.split(" ")
        if "-" in fields and any(f.startswith("shared:") for f in fields[6 : fields.index("-")]):
            return True
    return False


def remove(path: str) -> dict:
    """Remove an empty mount point (or a file); the log entry of it."""
    started = time.monotonic()
    entry = {"command": shlex.join(["rm", "-d", path]), "outcome": "done"}
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError as exc:
        entry["outcome"] = "failed"
        entry["error"] = str(exc)
    entry["seconds"] = round(time.monotonic() - started, 3)
    return entry


class DeadmanSwitch:
    """One armed dead-man switch: its configuration, its state as the log shows it, and its run."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.env = dict(os.environ, LC_ALL="C", PATH=os.environ.get("PATH", "") + PATH_TAIL)
        self.state: dict = {
            "status": "waiting",
            "pid": os.getpid(),
            # Which arming this process belongs to: a log is trusted only with the token it was armed with.
            "token": config["token"],
            "armed": config["armed"],
            "deadline": config["deadline"],
            "timeout": config["timeout"],
            "confirm_path": config["confirm_path"],
            "script": config["script"],
            "log": config["log"],
            "steps": [],
            "restarts": [],
        }
        self.disarm_asked = False
        # The log is written through a descriptor of its directory: while the mounts move back, the
        # path /run/lifeline leads nowhere for a moment, the tmpfs it names is still the same.
        self.here = os.open(os.path.dirname(config["log"]), os.O_RDONLY | os.O_DIRECTORY)
        self.name = os.path.basename(config["log"])
        # The commands' stdin, opened now: once the way back has moved /dev under the old root, the
        # copy's /dev is the empty directory a real root has below its devtmpfs, without a /dev/null.
        self.null = os.open(os.devnull, os.O_RDONLY)

    def save(self) -> None:
        """Rewrite the log atomically: a reader sees the old state or the new one, never a part."""
        temporary = self.name + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600, dir_fd=self.here)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.state, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.name, src_dir_fd=self.here, dst_dir_fd=self.here)

    def ask_to_disarm(self, signum, frame) -> None:
        """SIGTERM: only noted here; the wait loop disarms (a handler that wrote the log itself could
        run in the middle of a save and interleave two states in one file)."""
        self.disarm_asked = True

    def finish(self, status: str) -> None:
        self.state["status"] = status
        self.state["finished"] = now()
        self.save()

    def run(self, argv: list[str], timeout: float) -> dict:
        """Run one command of the way back or a restart; its log entry."""
        started = time.monotonic()
        entry: dict = {"command": shlex.join(argv)}
        try:
            done = subprocess.run(
                argv,
                stdin=self.null,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
                timeout=timeout,
                check=False,
            )
            entry["outcome"] = "done" if done.returncode == 0 else "failed"
            entry["exit"] = done.returncode
            entry["output"] = done.stdout.decode("utf-8", "replace")[-OUTPUT_KEPT:]
        except (OSError, subprocess.TimeoutExpired) as exc:
            entry["outcome"] = "failed"
            entry["error"] = str(exc)
        entry["seconds"] = round(time.monotonic() - started, 3)
        return entry

    def switch_back(self) -> bool:
        """The switch undone, step by step, each in the log; False at the first step that fails, with
        the commands left under ``left``."""
        ops = list(self.config["undo"])
        if shared():
            ops.insert(0, {"argv": self.config["make_private"]})
        for index, op in enumerate(ops):
            if "remove" in op:
                self.state["steps"].append(remove(op["remove"]))  # an empty mount point left harms nothing
                self.save()
                continue
            entry = self.run(op["argv"], self.config["command_timeout"])
            self.state["steps"].append(entry)
            self.save()
            if entry["outcome"] != "done":
                left = ops[index:]
                self.state["left"] = [shlex.join(o.get("argv") or ["rm", "-d", o["remove"]]) for o in left]
                return False
        return True

    def wait(self) -> str:
        """Wait for the confirmation, a disarm or the deadline: "confirmed", "disarmed" or "fired"."""
        end = time.monotonic() + self.config["timeout"]
        while time.monotonic() < end:
            if self.disarm_asked:
                return "disarmed"
            if os.path.lexists(self.config["confirm_path"]):
                return "confirmed"
            time.sleep(self.config["poll"])
        return "disarmed" if self.disarm_asked else "fired"

    def watch(self) -> None:
        os.chdir("/")
        signal.signal(signal.SIGTERM, self.ask_to_disarm)
        self.save()
        outcome = self.wait()
        if outcome != "fired":
            self.finish(outcome)
            return
        # Too late to disarm: a way back stopped half way is worse than either root.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        self.state["status"] = "switching back"
        self.state["fired"] = now()
        self.save()
        back = self.switch_back()
        self.state["status"] = "restarting"
        self.save()
        for command in self.config["restart"]:
            entry = self.run(["/bin/sh", "-c", command], self.config["command_timeout"])
            self.state["restarts"].append(entry)
            self.save()
        self.finish("switched back" if back else "switch back failed")

    def main(self) -> None:
        try:
            self.watch()
        except BaseException:  # noted, so that nobody waits for a dead process
            self.state["status"] = "crashed"
            self.state["error"] = traceback.format_exc()
            self.state["finished"] = now()
            self.save()
            raise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    if len(argv) != 2:
        sys.stderr.write(f"usage: {argv[0]} CONFIG.json\n")
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    DeadmanSwitch(config).main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
