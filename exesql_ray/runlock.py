"""One live process per run folder.

`<run_dir>/.lock` holds the PID of the process using the folder and that process's start
time (from /proc), so that a lock whose process has died, or whose PID was reused by another
process, is seen as stale and taken over. Two live runs on one folder would race in training
and its checkpoints; the second is refused in one line.

Not an `fcntl.flock`: a lock held by an open file would outlive the command in any child it
forked without exec (a dataloader worker, a subprocess left behind), and the run folder would
stay locked after the command itself had died.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from exesql_ray.errors import UserError

LOCK_NAME = ".lock"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), or None
    when no such process runs. Where /proc is missing, any live PID counts as the holder."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        if not Path("/proc/self/stat").exists():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
            return "unknown"
        return None
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


class RunLock:
    """`with RunLock(run_dir, command):` holds the folder for this process."""

    def __init__(self, run_dir: str | Path, command: str):
        self.path = Path(run_dir) / LOCK_NAME
        self.command = command
        self.held = False

    def holder(self) -> dict | None:
        """The live process that holds the folder, or None (no lock, or a stale one)."""
        try:
            info = json.loads(self.path.read_text())
            pid = int(info["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        started = _start_time(pid)
        if started is None or (info.get("started") not in (None, started) and started != "unknown"):
            return None  # died, or the PID now belongs to another process
        return info

    def acquire(self) -> None:
        me = {"pid": os.getpid(), "started": _start_time(os.getpid()), "command": self.command,
              "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                other = self.holder()
                if other is not None and other.get("pid") != os.getpid():
                    raise UserError(f"run folder {self.path.parent} is in use by process {other['pid']} "
                                    f"({other.get('command', '?')}, since {other.get('since', '?')}); wait for it "
                                    f"or stop it, or use another run_dir") from None
                self.path.unlink(missing_ok=True)  # stale (or ours): take it over
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return
        raise UserError(f"run folder {self.path.parent}: could not take {self.path} (another process keeps "
                        "taking it)")

    def release(self) -> None:
        if self.held:
            try:
                info = json.loads(self.path.read_text())
                if int(info.get("pid", -1)) == os.getpid():
                    self.path.unlink()
            except (OSError, ValueError):
                pass
            self.held = False

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
