"""geo-risk: deforestation-risk maps from regional rasters and vectors.

Stages (one module each): tiling → data/model/train → predict → decide → export → evaluate → review.
Importing this package is cheap: torch is imported only by the stages that need it.
"""

import os

# PyTorch's OpenMP threads spin while waiting for work; on a machine where anything else runs
# (a laptop is never idle) a training step then takes ~10× longer. OpenMP reads this once, when
# torch loads it, so it is set here, before any geo_risk module imports torch; a user's value wins.
# (docs/training.md, "Threads")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
