"""Errors a user can act on.

A UserError is bad input (a path, a file, a setting): the CLI prints its one line on stderr
and exits 2. `DiskFull` and `OutOfMemory` are ones too: the machine, not the SQL, stopped the
work, and the one line says where, what to change, and that what finished is kept. Anything
else is a bug and keeps its traceback.

`user_error_in` finds such an error however deep a Ray actor, task or Ray Data UDF wrapped it
(RayTaskError, UserCodeException, Ray Train's TrainingFailedError), so that the user sees its
line and not Ray's pages around it. Ray Data re-raises a UDF's exception as a
UserCodeException whose chain does not survive pickling; the worker's traceback text, which
Ray keeps in the message, is then the only place the original line is, so it is read there.
"""

from __future__ import annotations

import errno
import re

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class UserError(Exception):
    """Bad input named precisely enough to fix: the file, row or setting at fault."""


class DiskFull(UserError):
    """A write ran out of space. The temporary file is gone and no output is half-written."""


class EngineDown(UserError):
    """An engine kept failing (server gone, too many connections, a broken file) after its
    retries: the stage stops, keeps what it wrote, and records nothing about the SQL."""


class OutOfMemory(UserError):
    """Ray's memory monitor killed a worker: the machine, not the SQL or the data, stopped
    the work; what finished is kept and a re-run resumes it."""


def disk_full(path, exc: OSError, what: str = "") -> DiskFull:
    """The one line for a write to `path` that failed with ENOSPC or EDQUOT."""
    done = f"{what}; " if what else ""
    return DiskFull(f"no space left on the device writing {path} ({exc.strerror}): {done}nothing half-written "
                    "was left; free some space and run the same command again (finished work is kept)")


def _inner(exc: BaseException) -> list[BaseException]:
    """What an exception wraps: Python's chain and Ray's `cause` (a RayTaskError holds the
    exception raised in the worker; Ray Data's UserCodeException chains the RayTaskError)."""
    out = [getattr(exc, "cause", None), exc.__cause__, exc.__context__]
    return [e for e in out if isinstance(e, BaseException)]


def user_error_in(exc: BaseException, _depth: int = 0) -> UserError | None:
    """The UserError (or a disk-full OSError, as a DiskFull; a worker Ray killed for memory, as
    an OutOfMemory) inside `exc`, or None for a bug."""
    seen, todo = set(), [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        cause = getattr(e, "cause", None)
        if isinstance(e, UserError):
            # Ray's RayTaskError(UserError) is both; its message is Ray's traceback, its
            # `cause` the worker's own exception with the one line
            return cause if isinstance(cause, UserError) else e
        if isinstance(e, OSError) and e.errno in NO_SPACE:  # a write outside atomic_write
            return DiskFull(f"no space left on the device writing {e.filename or 'a file of the run'} "
                            f"({e.strerror}); free some space and run the same command again (finished stages "
                            "and shards are kept; the file it was writing is written again)")
        todo.extend(_inner(e))
        if type(e).__module__.startswith("ray."):
            found = _from_ray_text(str(e)) or _out_of_memory(str(e))
            if found is not None:
                return found
    return None


# The last line of a worker's traceback as Ray prints it: `module.Class: message`
_RAISED = re.compile(r"^exesql_ray\.errors\.(UserError|DiskFull): (.+)$", re.M)
_NO_SPACE_TEXT = re.compile(r"^\w*Error: \[Errno (?:28|122)\] [^\n]*?(?:: '([^']+)')?$", re.M)


def _from_ray_text(text: str) -> UserError | None:
    m = _RAISED.search(text)
    if m:
        return (DiskFull if m.group(1) == "DiskFull" else UserError)(m.group(2).strip())
    m = _NO_SPACE_TEXT.search(text)
    if m:
        return DiskFull(f"no space left on the device writing {m.group(1) or 'a file of the run'}; free some "
                        "space and run the same command again (finished stages and shards are kept; the file it "
                        "was writing is written again)")
    return None


def disk_full_under(folder, need_bytes: int) -> DiskFull | None:
    """A DiskFull naming `folder` when the filesystem holding it (or its checkpoints/, which may
    be another mount) has less than `need_bytes` free: how a failed training stage is told
    apart from a bug. Torch's and safetensors' writers do not say "Errno 28" ("file write
    failed"), and the error comes back from a Ray Train worker as text."""
    import shutil
    from pathlib import Path

    folder = Path(folder)
    places = [p for p in (folder / "checkpoints", folder) if p.is_dir()]
    if not places:
        return None
    free = min(shutil.disk_usage(p).free for p in places)
    if free >= need_bytes:
        return None
    return DiskFull(f"no space left on the device under {folder} ({free / 2**20:.1f} MiB free; a checkpoint of this "
                    f"model takes about {need_bytes / 2**20:.0f} MiB): training stopped; its last complete "
                    "checkpoint is kept: free some space and run the same command again")


_LOW_MEMORY = re.compile(r"running low on memory.*?was ([\d.]+GB)(?: used)? / ([\d.]+GB)", re.S)


def _out_of_memory(text: str) -> OutOfMemory | None:
    m = _LOW_MEMORY.search(text)
    if m is None:
        return None
    return OutOfMemory(f"Ray stopped a worker because this machine ran low on memory ({m.group(1)} of "
                       f"{m.group(2)} in use): run the command alone, or lower train.<stage>.batch_size or "
                       "max_length (training) or sample.generate_batch_size (sampling); finished stages, shards "
                       "and checkpoints are kept and the same command resumes")
