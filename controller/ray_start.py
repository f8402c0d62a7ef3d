"""Starting Ray, the one way every command and job does it."""

from __future__ import annotations

import sys
from pathlib import Path


def local_ray():
    """A local Ray for the CLI (address="local": never a stale cluster file); joins the
    cluster instead under `ray job submit` (RAY_ADDRESS set)."""
    import logging
    import os

    # Ray's notices (token auth on by default; each dataset's plan, start and end; progress
    # bars off) say nothing a user of this tool acts on, and Ray Data resets its loggers'
    # levels from RAY_DATA_LOG_LEVEL when it runs; set it to show more. Ray's own logs are
    # linked from the run folder (`_on_ray`).
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "ERROR")
    import ray

    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(ignore_reinit_error=True)
        else:
            # workers' logs stay in Ray's log folder (TRL, datasets and Ray Data are loud);
            # failures still come back with their tracebacks
            ray.init(address="local", include_dashboard=False, configure_logging=False, log_to_driver=False,
                     runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    if not sys.stdout.isatty():  # Ray Data logs a progress table every 10 s to a pipe: keep the log readable
        ray.data.DataContext.get_current().enable_progress_bars = False
    return ray


def link_ray_logs(run_dir: str) -> Path | None:
    """`<run_dir>/ray_logs` → this Ray session's log folder (workers, trainers, vLLM)."""
    import ray

    try:
        logs = Path(ray._private.worker._global_node.get_logs_dir_path())
    except AttributeError:  # a cluster joined through RAY_ADDRESS: its logs are on its nodes
        return None
    link = Path(run_dir) / "ray_logs"
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(logs, target_is_directory=True)
    return link


def ray_log_hint() -> str | None:
    """Where this process's Ray logged (its session folder), if Ray was started or joined here."""
    if "ray" not in sys.modules:
        return None
    import ray

    if not ray.is_initialized():
        return None
    try:
        return str(Path(ray._private.worker._global_node.get_logs_dir_path()))
    except AttributeError:
        return "the Ray dashboard (Jobs → this job's logs)"
