"""Stage 3 on a Ray cluster (SFT, then DPO, of one iteration):

    ray job submit --working-dir . -- .venv/bin/python jobs/train.py sft --config C --iteration K [key=value …]
    ray job submit --working-dir . -- .venv/bin/python jobs/train.py dpo --config C --iteration K

Workers, GPUs and the ZeRO stage come from the config's `train` section; run_dir must be on
storage every node sees (checkpoints and the final model are written there).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from controller.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
