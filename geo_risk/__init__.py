"""geo-risk: deforestation-risk maps from regional rasters and vectors.

Stages (one module each): tiling → data/model/train → predict → decide → export → evaluate → review.
Importing this package is cheap: torch is imported only by the stages that need it.
"""

import os
import sys

# PyTorch's OpenMP threads spin while waiting for work; on a machine where anything else runs
# (a laptop is never idle) a training step then takes ~10× longer. OpenMP reads this once, when
# torch loads it, so it is set here, before any geo_risk module imports torch; a user's value wins.
# (docs/training.md, "Threads")
#: torch was imported before geo_risk, without the variable: too late for it (the trainer warns)
OMP_POLICY_TOO_LATE = "torch" in sys.modules and "OMP_WAIT_POLICY" not in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
