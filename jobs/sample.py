"""Stage 2 on a Ray cluster:

    ray job submit --working-dir . -- .venv/bin/python jobs/sample.py --config C --iteration K [key=value …]

Generator replicas and executor actors as the config sizes them; shards already written are
skipped. The summary is printed and written to <run_dir>/sample/iter-K/summary.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["sample", *sys.argv[1:]]))
