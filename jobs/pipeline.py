"""The whole loop on a Ray cluster:

    ray job submit --working-dir . -- .venv/bin/python jobs/pipeline.py --config C [key=value …]

Migrate, translate, then `pipeline.iterations` rounds of evaluate → sample → SFT → DPO and a
last evaluation. A re-submitted job skips every finished stage (see actors/pipeline.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from exesql_ray.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
