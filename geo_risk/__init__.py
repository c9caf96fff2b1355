"""geo-risk: deforestation-risk maps from regional rasters and vectors.

Stages (one module each): tiling → data/model/train → predict → decide → export → evaluate → review.
Importing this package is cheap: torch is imported only by the stages that need it.
"""

__version__ = "0.1.0"
