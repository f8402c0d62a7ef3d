"""Stage 1 on a Ray cluster:

    ray job submit --working-dir . -- .venv/bin/python jobs/translate.py --config configs/quickstart.yaml [key=value …]

Translator actors as `translate.workers` sizes them; shards already written are skipped. The
summary is printed and written to <run_dir>/translate/summary.json, D_Trans to
<run_dir>/d_trans/<engine>.parquet.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["translate", *sys.argv[1:]]))
