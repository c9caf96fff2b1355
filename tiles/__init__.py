"""tiles — align rasters and vectors on one grid, derive layers, cut chips. No torch here."""

from tiles.grid import Grid, grid_from_raster, read_on_grid
from tiles.stack import PeriodCodes, StackSpec, build_stack
from tiles.chip_store import write_chip_store
from tiles.store import chip_index, open_store, write_stack

__all__ = [
    "Grid", "PeriodCodes", "StackSpec", "build_stack", "chip_index", "grid_from_raster", "open_store",
    "read_on_grid", "write_chip_store", "write_stack",
]
