"""The whole loop on a Ray cluster:

    RAY_AUTH_MODE=token ray job submit --address http://HEAD:8265 --working-dir . -- \
        /abs/path/.venv/bin/python jobs/pipeline.py --config C run_dir=/shared/runs/x [key=value …]

Migrate, translate, iteration 0 (SFT on the translations), then `pipeline.iterations` rounds
of sample → SFT → DPO, EX after each, and the report. A re-submitted job skips every
finished stage (controller/pipeline.py). scripts/cluster_check.py does this against a head
and two workers on one machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
