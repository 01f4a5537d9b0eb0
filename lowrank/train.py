"""`python -m lowrank.train` and `lowrank.train.train_pack`: the entry points of the training engine
(lowrank.engine.cli and lowrank.engine.job, one trainer per run), kept at this name for the pipeline, the docs and
the tests."""

import sys

from lowrank.engine.cli import main
from lowrank.engine.job import train_pack

__all__ = ["main", "train_pack"]

if __name__ == "__main__":
    sys.exit(main())
