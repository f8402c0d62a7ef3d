"""Stage 1 on a Ray cluster:

    ray job submit --working-dir . -- .venv/bin/python jobs/translate.py --config configs/quickstart.yaml [key=value …]

Shards already written are skipped; the summary is printed and written to
<run_dir>/translate/summary.json, D_Trans to <run_dir>/d_trans/<engine>.parquet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.translator import translate_on_ray  # noqa: E402
from exesql_ray.config import load_config  # noqa: E402
from exesql_ray.errors import UserError  # noqa: E402
from exesql_ray.translate_stage import plan, summarize  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except UserError as e:
        print(f"translate: error: {e}", file=sys.stderr)
        return 2
    import ray

    ray.init(address="auto" if cfg_address_auto() else "local", ignore_reinit_error=True)
    t0 = time.time()
    p = plan(cfg)
    print(f"translate: {p.examples} examples × {len(p.engines)} engines, {len(p.tasks)} shards to do", flush=True)
    for out in translate_on_ray(cfg, p):
        print(f"  {out['engine']}: {Path(out['path']).name} ({out['examples']} examples)", flush=True)
    print(json.dumps(summarize(p, time.time() - t0)))
    return 0


def cfg_address_auto() -> bool:
    """Under `ray job submit` (or beside a running `ray start`), join that cluster."""
    import os

    return bool(os.environ.get("RAY_ADDRESS")) or Path("/tmp/ray/ray_current_cluster").exists()


if __name__ == "__main__":
    sys.exit(main())
